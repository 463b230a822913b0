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
/// Every read and write also has an idle timeout: a server that stops sending (a stalled radosgw, a proxy that
/// sent headers and then nothing) fails the read with a <see cref="TimeoutException"/> inside an IOException after
/// <c>idleTimeout</c> without a byte, instead of holding the run (and its cron slot) forever.
/// </summary>
internal static class QuickAckConnection
{
    public static async ValueTask<Stream> ConnectAsync(DnsEndPoint endPoint, TimeSpan idleTimeout, CancellationToken cancellationToken)
    {
        var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        try
        {
            await socket.ConnectAsync(endPoint, cancellationToken).ConfigureAwait(false);
            return new QuickAckStream(socket, idleTimeout);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    private sealed class QuickAckStream(Socket socket, TimeSpan idleTimeout) : NetworkStream(socket, ownsSocket: true)
    {
        private CancellationTokenSource _idle = new();
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
            var idle = StartIdleTimer(cancellationToken, out var registration);
            int read;
            try { read = await base.ReadAsync(buffer, idle).ConfigureAwait(false); }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested) { throw TimedOut("receive"); }
            finally { await registration.DisposeAsync().ConfigureAwait(false); }
            AcknowledgeAtOnce();
            return read;
        }

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

        public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
        {
            var idle = StartIdleTimer(cancellationToken, out var registration);
            try { await base.WriteAsync(buffer, idle).ConfigureAwait(false); }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested) { throw TimedOut("send"); }
            finally { await registration.DisposeAsync().ConfigureAwait(false); }
            AcknowledgeAtOnce();
        }

        public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

        /// <summary>A token that fires after the idle timeout or with the caller's; one reusable source per connection (HTTP/1.1 does one operation at a time).</summary>
        private CancellationToken StartIdleTimer(CancellationToken cancellationToken, out CancellationTokenRegistration registration)
        {
            if (!_idle.TryReset())
            {
                _idle.Dispose();
                _idle = new CancellationTokenSource();
            }
            _idle.CancelAfter(idleTimeout);
            registration = cancellationToken.CanBeCanceled ? cancellationToken.UnsafeRegister(static s => ((CancellationTokenSource)s!).Cancel(), _idle) : default;
            return _idle.Token;
        }

        private IOException TimedOut(string what) =>
            new($"no data could be {(what == "send" ? "sent" : "received")} for {idleTimeout.TotalSeconds:0.###} s",
                new TimeoutException($"{what} idle for {idleTimeout}"));

        protected override void Dispose(bool disposing)
        {
            if (disposing) _idle.Dispose();
            base.Dispose(disposing);
        }
    }
}
