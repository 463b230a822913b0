using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using InfraTools.Cli;

namespace InfraTools.Http;

/// <summary>One request as <see cref="SmallHttpServer"/> read it: header names are lower case; the body is at most <see cref="SmallHttpServer.MaxBodyBytes"/>.</summary>
public sealed record HttpRequest(string Method, string Path, IReadOnlyDictionary<string, string> Headers, byte[] Body)
{
    public string? Header(string name) => Headers.TryGetValue(name, out var value) ? value : null;
}

/// <summary>An answer; <see cref="Text"/> makes a plain-text one.</summary>
public sealed record HttpResponse(int Status, string ContentType, byte[] Body)
{
    public static HttpResponse Text(int status, string text) => new(status, "text/plain; charset=utf-8", Encoding.UTF8.GetBytes(text));
}

/// <summary>
/// A minimal HTTP/1.1 server for the tools' small endpoints (cron's /metrics and /health, content-pull's /deploy,
/// /health and /metrics): one request per connection, the head up to 8 KiB, a body only with Content-Length (up
/// to 64 KiB), 10 s per client. A plain TcpListener instead of HttpListener or Kestrel keeps the binaries and
/// their idle memory small; these endpoints need nothing more.
/// </summary>
public sealed class SmallHttpServer : IAsyncDisposable
{
    public const int MaxHeadBytes = 8192;
    public const int MaxBodyBytes = 64 * 1024;
    private static readonly TimeSpan ClientTimeout = TimeSpan.FromSeconds(10);

    private readonly Func<HttpRequest, CancellationToken, Task<HttpResponse>> _handle;
    private readonly TcpListener _listener;
    private readonly CancellationTokenSource _stop = new();
    private Task _accepting = Task.CompletedTask;

    private SmallHttpServer(IPEndPoint endpoint, Func<HttpRequest, CancellationToken, Task<HttpResponse>> handle)
    {
        _listener = new TcpListener(endpoint);
        _handle = handle;
    }

    public IPEndPoint Endpoint => (IPEndPoint)_listener.LocalEndpoint;

    /// <summary>
    /// Parses ip[:port], :port, [ipv6]:port or host[:port] (a missing port is <paramref name="defaultPort"/>, a
    /// missing host all interfaces); errors name <paramref name="option"/>.
    /// </summary>
    public static IPEndPoint ParseAddress(string address, string option, int defaultPort)
    {
        string host;
        var port = defaultPort;
        string? portText = null;
        if (address.StartsWith('['))
        {
            var end = address.IndexOf(']');
            if (end < 0) throw new UsageException($"{option} '{address}': missing ']' after the IPv6 address");
            host = address[1..end];
            if (end + 1 < address.Length)
            {
                if (address[end + 1] != ':') throw new UsageException($"{option} '{address}': expected ':PORT' after ']'");
                portText = address[(end + 2)..];
            }
        }
        else if (address.Count(c => c == ':') == 1)
        {
            var colon = address.IndexOf(':');
            (host, portText) = (address[..colon], address[(colon + 1)..]);
        }
        else host = address;

        if (portText is not null && (!int.TryParse(portText, NumberStyles.None, CultureInfo.InvariantCulture, out port) || port is < 0 or > 65535))
            throw new UsageException($"{option} '{address}': '{portText}' is not a port number");
        if (host.Length == 0) return new IPEndPoint(IPAddress.Any, port);
        if (IPAddress.TryParse(host, out var ip)) return new IPEndPoint(ip, port);
        try
        {
            var resolved = Dns.GetHostAddresses(host);
            var chosen = resolved.FirstOrDefault(a => a.AddressFamily == AddressFamily.InterNetwork) ?? resolved.FirstOrDefault();
            if (chosen is null) throw new UsageException($"{option} '{address}': '{host}' has no address");
            return new IPEndPoint(chosen, port);
        }
        catch (SocketException ex)
        {
            throw new UsageException($"{option} '{address}': cannot resolve '{host}': {ex.Message}");
        }
    }

    /// <summary>Binds and starts serving; a bind failure is a configuration error (exit code 3) that names <paramref name="option"/>.</summary>
    public static SmallHttpServer Start(IPEndPoint endpoint, string address, string option, string what, Func<HttpRequest, CancellationToken, Task<HttpResponse>> handle)
    {
        var server = new SmallHttpServer(endpoint, handle);
        try
        {
            server._listener.Start();
        }
        catch (SocketException ex)
        {
            throw new ConfigurationException($"cannot listen on {address} for {what}: {ex.Message} (choose another {option})");
        }
        server._accepting = server.AcceptAsync();
        return server;
    }

    private async Task AcceptAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            Socket client;
            try
            {
                client = await _listener.AcceptSocketAsync(_stop.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }
            catch (SocketException)
            {
                continue;
            }
            catch (ObjectDisposedException)
            {
                return;
            }
            _ = ServeAsync(client);
        }
    }

    private async Task ServeAsync(Socket client)
    {
        using var _ = client;
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(_stop.Token);
        timeout.CancelAfter(ClientTimeout);
        try
        {
            var (request, error) = await ReadRequestAsync(client, timeout.Token).ConfigureAwait(false);
            if (request is null && error is null) return;
            var response = error ?? await _handle(request!, timeout.Token).ConfigureAwait(false);
            await RespondAsync(client, response, request?.Method == "HEAD", timeout.Token).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is OperationCanceledException or SocketException or IOException or ObjectDisposedException)
        {
            // A slow or vanished client, or the server stopping: nothing to report.
        }
    }

    /// <summary>The request, or the error answer for one that cannot be served; (null, null) when the client sent nothing.</summary>
    private static async Task<(HttpRequest? Request, HttpResponse? Error)> ReadRequestAsync(Socket client, CancellationToken cancellationToken)
    {
        var buffer = new byte[MaxHeadBytes + MaxBodyBytes];
        var filled = 0;
        var headEnd = -1;
        var separator = 0;
        while (filled < MaxHeadBytes)
        {
            var n = await client.ReceiveAsync(buffer.AsMemory(filled, MaxHeadBytes - filled), SocketFlags.None, cancellationToken).ConfigureAwait(false);
            if (n == 0) break;
            filled += n;
            if ((headEnd = buffer.AsSpan(0, filled).IndexOf("\r\n\r\n"u8)) >= 0) { separator = 4; break; }
            if ((headEnd = buffer.AsSpan(0, filled).IndexOf("\n\n"u8)) >= 0) { separator = 2; break; }
        }
        if (filled == 0) return (null, null);
        if (headEnd < 0) return (null, HttpResponse.Text(431, "request head too large or incomplete\n"));

        var lines = Encoding.ASCII.GetString(buffer, 0, headEnd).Split('\n').Select(l => l.TrimEnd('\r')).ToArray();
        var parts = lines[0].Split(' ');
        if (parts.Length < 2) return (null, HttpResponse.Text(400, "bad request\n"));
        var headers = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var line in lines.Skip(1))
        {
            var colon = line.IndexOf(':');
            if (colon > 0) headers[line[..colon].Trim().ToLowerInvariant()] = line[(colon + 1)..].Trim();
        }
        var length = 0;
        if (headers.TryGetValue("content-length", out var lengthText)
            && (!int.TryParse(lengthText, NumberStyles.None, CultureInfo.InvariantCulture, out length) || length > MaxBodyBytes))
            return (null, HttpResponse.Text(413, $"the body must be at most {MaxBodyBytes} bytes\n"));
        if (headers.ContainsKey("transfer-encoding")) return (null, HttpResponse.Text(411, "send the body with a Content-Length\n"));

        // What came after the head belongs to the body; read the rest of it.
        var bodyStart = headEnd + separator;
        var body = new byte[length];
        var have = Math.Min(filled - bodyStart, length);
        buffer.AsSpan(bodyStart, have).CopyTo(body);
        while (have < length)
        {
            var n = await client.ReceiveAsync(body.AsMemory(have), SocketFlags.None, cancellationToken).ConfigureAwait(false);
            if (n == 0) return (null, HttpResponse.Text(400, "the body is shorter than its Content-Length\n"));
            have += n;
        }
        return (new HttpRequest(parts[0], parts[1].Split('?', 2)[0], headers, body), null);
    }

    private static string Reason(int status) => status switch
    {
        200 => "OK",
        202 => "Accepted",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        405 => "Method Not Allowed",
        411 => "Length Required",
        413 => "Content Too Large",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        503 => "Service Unavailable",
        _ => "Status",
    };

    private static async Task RespondAsync(Socket client, HttpResponse response, bool headOnly, CancellationToken cancellationToken)
    {
        var head = $"HTTP/1.1 {response.Status} {Reason(response.Status)}\r\nContent-Type: {response.ContentType}\r\nContent-Length: {response.Body.Length}\r\nConnection: close\r\n\r\n";
        await client.SendAsync(Encoding.ASCII.GetBytes(head), SocketFlags.None, cancellationToken).ConfigureAwait(false);
        if (!headOnly) await client.SendAsync(response.Body, SocketFlags.None, cancellationToken).ConfigureAwait(false);
        client.Shutdown(SocketShutdown.Send);
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync().ConfigureAwait(false);
        _listener.Stop();
        await _accepting.ConfigureAwait(false);
        _stop.Dispose();
    }
}
