using System.Net;
using System.Net.Sockets;
using InfraTools.S3;

namespace InfraTools.Tests;

/// <summary>
/// Against a server that does not set TCP_NODELAY (Ceph RGW's default) a response written in pieces stalls
/// ~40 ms whenever the client delays its ACK; the S3 connections must not delay it (bench/RESULTS.md "quick ACK").
/// </summary>
public sealed class QuickAckConnectionTests
{
    private const int IpProtoTcp = 6, TcpQuickAck = 12;

    [Fact]
    public async Task After_a_request_and_response_exchange_the_connection_still_acknowledges_at_once()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var endPoint = new DnsEndPoint("127.0.0.1", ((IPEndPoint)listener.LocalEndpoint).Port);

        // The same exchange on a plain socket first: Linux then switches the connection to delayed ACKs, which
        // is what the quick-ACK connection has to undo (if this changes, the test below proves nothing). A pause
        // of over 40 ms between a read and the next write (a busy machine) can keep a plain socket out of that
        // mode, hence a few attempts.
        var plainDelays = false;
        for (var attempt = 0; attempt < 5 && !plainDelays; attempt++)
        {
            var plainSocket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            await plainSocket.ConnectAsync(endPoint);
            await using var plain = new NetworkStream(plainSocket, ownsSocket: true);
            using var server = await listener.AcceptSocketAsync();
            await ExchangeAsync(plain, server);
            plainDelays = !AcknowledgesAtOnce(plainSocket);
        }
        Assert.True(plainDelays, "a plain connection was expected to delay its ACKs after an exchange");

        var connecting = QuickAckConnection.ConnectAsync(endPoint, TimeSpan.FromSeconds(30), CancellationToken.None);
        using (var server = await listener.AcceptSocketAsync())
        await using (var quick = (NetworkStream)await connecting)
        {
            await ExchangeAsync(quick, server);
            Assert.True(AcknowledgesAtOnce(quick.Socket), "the S3 connection delays its ACKs: responses from a server without TCP_NODELAY stall ~40 ms");
        }
    }

    /// <summary>Request/response rounds like HTTP keep-alive, ending with a request sent right after a response.</summary>
    private static async Task ExchangeAsync(NetworkStream client, Socket server)
    {
        var buffer = new byte[64];
        for (var round = 0; round < 4; round++)
        {
            await client.WriteAsync("GET / HTTP/1.1\r\n\r\n"u8.ToArray());
            await server.ReceiveAsync(buffer);
            var response = "HTTP/1.1 200 OK\r\n\r\n"u8.ToArray();
            await server.SendAsync(response);
            await client.ReadExactlyAsync(buffer.AsMemory(0, response.Length));
        }
        await client.WriteAsync("GET / HTTP/1.1\r\n\r\n"u8.ToArray());
    }

    private static bool AcknowledgesAtOnce(Socket socket)
    {
        var value = new byte[4];
        socket.GetRawSocketOption(IpProtoTcp, TcpQuickAck, value);
        return BitConverter.ToInt32(value) != 0;
    }
}
