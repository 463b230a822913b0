using System.Net;
using System.Net.Sockets;

namespace InfraTools.S3;

/// <summary>
/// TCP connections that acknowledge what the server sends at once instead of after Linux's 40 ms delayed-ACK
/// timer. A server that writes one response in several pieces without TCP_NODELAY (Ceph RGW's beast frontend
/// by default) holds every later piece until the earlier one is acknowledged (Nagle), and Linux delays that
/// acknowledgement on request/response connections, so such a response stalls ~40 ms: per listing page, per
/// download. TCP_QUICKACK turns the delay off, but the kernel turns it back on whenever the connection sends, so
/// it is set again after every write and read (one setsockopt, bench/RESULTS.md "quick ACK").
/// </summary>
internal static class QuickAckConnection
{
    /// <summary>For <see cref="SocketsHttpHandler.ConnectCallback"/>.</summary>
    public static ValueTask<Stream> ConnectAsync(SocketsHttpConnectionContext context, CancellationToken cancellationToken) =>
        ConnectAsync(context.DnsEndPoint, cancellationToken);

    public static async ValueTask<Stream> ConnectAsync(DnsEndPoint endPoint, CancellationToken cancellationToken)
    {
        var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        try
        {
            await socket.ConnectAsync(endPoint, cancellationToken).ConfigureAwait(false);
            return new QuickAckStream(socket);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    private sealed class QuickAckStream(Socket socket) : NetworkStream(socket, ownsSocket: true)
    {
        private const int IpProtoTcp = 6;
        private const int TcpQuickAck = 12; // linux/tcp.h
        private static readonly byte[] On = BitConverter.GetBytes(1);
        private bool _unsupported;

        private void AcknowledgeAtOnce()
        {
            if (_unsupported) return;
            try { Socket.SetRawSocketOption(IpProtoTcp, TcpQuickAck, On); }
            catch (SocketException) { _unsupported = true; } // not Linux TCP: nothing to fix
            catch (ObjectDisposedException) { }
        }

        // Only the asynchronous calls: the HTTP connection uses nothing else. (NetworkStream routes a subclass's
        // synchronous span calls through the array overloads, so overriding both would recurse.)
        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            var read = await base.ReadAsync(buffer, cancellationToken).ConfigureAwait(false);
            AcknowledgeAtOnce();
            return read;
        }

        public override async Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken)
        {
            var read = await base.ReadAsync(buffer, offset, count, cancellationToken).ConfigureAwait(false);
            AcknowledgeAtOnce();
            return read;
        }

        public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
        {
            await base.WriteAsync(buffer, cancellationToken).ConfigureAwait(false);
            AcknowledgeAtOnce();
        }

        public override async Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken)
        {
            await base.WriteAsync(buffer, offset, count, cancellationToken).ConfigureAwait(false);
            AcknowledgeAtOnce();
        }
    }
}
