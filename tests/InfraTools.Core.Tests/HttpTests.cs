using System.Net;
using System.Net.Sockets;
using System.Text;
using InfraTools.Http;

namespace InfraTools.Tests;

public class HubSignatureTests
{
    // The example in GitHub's documentation ("Validating webhook deliveries").
    private static readonly byte[] Secret = "It's a Secret to Everybody"u8.ToArray();
    private static readonly byte[] Body = "Hello, World!"u8.ToArray();
    private const string Expected = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";

    [Fact]
    public void Signs_as_GitHub_documents() => Assert.Equal(Expected, HubSignature.Sign(Secret, Body));

    [Theory]
    [InlineData(Expected, true)]
    [InlineData("SHA256=757107EA0EB2509FC211221CCE984B8A37570B6D7586C22C46F4379C8B043E17", true)]
    [InlineData(null, false)]
    [InlineData("", false)]
    [InlineData("sha1=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17", false)]
    [InlineData("sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e18", false)]
    [InlineData("sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e1", false)]
    [InlineData("sha256=zz7107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17", false)]
    public void Verifies_only_the_signature_of_this_body(string? header, bool valid) => Assert.Equal(valid, HubSignature.Verify(Secret, Body, header));

    [Fact]
    public void Another_body_or_secret_fails()
    {
        Assert.False(HubSignature.Verify(Secret, "Hello, World?"u8, Expected));
        Assert.False(HubSignature.Verify("another secret"u8, Body, Expected));
    }
}

public class SmallHttpServerTests
{
    private static async Task<string> RawAsync(IPEndPoint endpoint, byte[] request)
    {
        using var client = new TcpClient();
        await client.ConnectAsync(endpoint);
        var stream = client.GetStream();
        await stream.WriteAsync(request);
        using var reader = new StreamReader(stream, Encoding.ASCII);
        return await reader.ReadToEndAsync();
    }

    [Fact]
    public async Task Reads_a_body_by_its_length_and_refuses_one_too_large_or_chunked()
    {
        var seen = new List<HttpRequest>();
        await using var server = SmallHttpServer.Start(new IPEndPoint(IPAddress.Loopback, 0), "127.0.0.1:0", "--listen", "tests", (request, _) =>
        {
            lock (seen) seen.Add(request);
            return Task.FromResult(HttpResponse.Text(202, $"{request.Method} {request.Path} {request.Body.Length}\n"));
        });
        var ok = await RawAsync(server.Endpoint, "POST /deploy?x=1 HTTP/1.1\r\nHost: a\r\nX-Hub-Signature-256: sha256=ab\r\nContent-Length: 5\r\n\r\nhello"u8.ToArray());
        Assert.StartsWith("HTTP/1.1 202 Accepted\r\n", ok);
        Assert.EndsWith("POST /deploy 5\n", ok);
        var request = Assert.Single(seen);
        Assert.Equal("hello", Encoding.ASCII.GetString(request.Body));
        Assert.Equal("sha256=ab", request.Header("x-hub-signature-256"));

        var large = await RawAsync(server.Endpoint, Encoding.ASCII.GetBytes($"POST /deploy HTTP/1.1\r\nContent-Length: {SmallHttpServer.MaxBodyBytes + 1}\r\n\r\n"));
        Assert.StartsWith("HTTP/1.1 413 ", large);
        var chunked = await RawAsync(server.Endpoint, "POST /deploy HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"u8.ToArray());
        Assert.StartsWith("HTTP/1.1 411 ", chunked);
        var garbage = await RawAsync(server.Endpoint, "nonsense\r\n\r\n"u8.ToArray());
        Assert.StartsWith("HTTP/1.1 400 ", garbage);
        Assert.Single(seen);
    }
}
