using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using InfraTools.Cli;
using Prometheus;

namespace InfraTools.Cron.Monitoring;

/// <summary>
/// A minimal HTTP/1.1 server for /metrics (Prometheus text format) and /health ("OK" as supercronic answers, 503 while stopping).
/// One request per connection. A plain TcpListener instead of HttpListener or Kestrel keeps the binary and
/// its idle memory small; Prometheus needs nothing more.
/// </summary>
public sealed class MetricsServer : IAsyncDisposable
{
    public const int DefaultPort = 9746;
    private const int MaxRequestBytes = 8192;
    private static readonly TimeSpan ClientTimeout = TimeSpan.FromSeconds(10);

    private readonly CollectorRegistry _registry;
    private readonly Func<bool> _healthy;
    private readonly TcpListener _listener;
    private readonly CancellationTokenSource _stop = new();
    private Task _accepting = Task.CompletedTask;

    private MetricsServer(CollectorRegistry registry, Func<bool> healthy, IPEndPoint endpoint)
    {
        _registry = registry;
        _healthy = healthy;
        _listener = new TcpListener(endpoint);
    }

    public IPEndPoint Endpoint => (IPEndPoint)_listener.LocalEndpoint;

    /// <summary>Parses supercronic's -prometheus-listen-address: ip[:port], :port, [ipv6]:port or host[:port].</summary>
    public static IPEndPoint ParseAddress(string address)
    {
        string host;
        var port = DefaultPort;
        string? portText = null;
        if (address.StartsWith('['))
        {
            var end = address.IndexOf(']');
            if (end < 0) throw new UsageException($"-prometheus-listen-address '{address}': missing ']' after the IPv6 address");
            host = address[1..end];
            if (end + 1 < address.Length)
            {
                if (address[end + 1] != ':') throw new UsageException($"-prometheus-listen-address '{address}': expected ':PORT' after ']'");
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
            throw new UsageException($"-prometheus-listen-address '{address}': '{portText}' is not a port number");
        if (host.Length == 0) return new IPEndPoint(IPAddress.Any, port);
        if (IPAddress.TryParse(host, out var ip)) return new IPEndPoint(ip, port);
        try
        {
            var resolved = Dns.GetHostAddresses(host);
            var chosen = resolved.FirstOrDefault(a => a.AddressFamily == AddressFamily.InterNetwork) ?? resolved.FirstOrDefault();
            if (chosen is null) throw new UsageException($"-prometheus-listen-address '{address}': '{host}' has no address");
            return new IPEndPoint(chosen, port);
        }
        catch (SocketException ex)
        {
            throw new UsageException($"-prometheus-listen-address '{address}': cannot resolve '{host}': {ex.Message}");
        }
    }

    /// <summary>Binds and starts serving; a bind failure is a configuration error (exit code 3).</summary>
    public static MetricsServer Start(string address, CollectorRegistry registry, Func<bool> healthy)
    {
        var server = new MetricsServer(registry, healthy, ParseAddress(address));
        try
        {
            server._listener.Start();
        }
        catch (SocketException ex)
        {
            throw new ConfigurationException($"cannot listen on {address} for metrics: {ex.Message} (choose another -prometheus-listen-address)");
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
            var request = await ReadRequestHeadAsync(client, timeout.Token).ConfigureAwait(false);
            if (request is null) return;
            var parts = request.Split(' ');
            if (parts.Length < 2)
            {
                await RespondAsync(client, 400, "Bad Request", "text/plain; charset=utf-8", "bad request\n"u8.ToArray(), false, timeout.Token).ConfigureAwait(false);
                return;
            }
            var (method, target) = (parts[0], parts[1]);
            var path = target.Split('?', 2)[0];
            var head = method == "HEAD";
            if (method is not ("GET" or "HEAD"))
            {
                await RespondAsync(client, 405, "Method Not Allowed", "text/plain; charset=utf-8", "only GET and HEAD\n"u8.ToArray(), false, timeout.Token).ConfigureAwait(false);
                return;
            }
            switch (path)
            {
                case "/metrics":
                    using (var body = new MemoryStream())
                    {
                        await _registry.CollectAndExportAsTextAsync(body, ExpositionFormat.PrometheusText, timeout.Token).ConfigureAwait(false);
                        await RespondAsync(client, 200, "OK", "text/plain; version=0.0.4; charset=utf-8", body.ToArray(), head, timeout.Token).ConfigureAwait(false);
                    }
                    break;
                case "/health":
                    var healthy = _healthy();
                    await RespondAsync(client, healthy ? 200 : 503, healthy ? "OK" : "Service Unavailable", "text/plain; charset=utf-8",
                        healthy ? "OK"u8.ToArray() : "stopping\n"u8.ToArray(), head, timeout.Token).ConfigureAwait(false);
                    break;
                case "/":
                    await RespondAsync(client, 200, "OK", "text/plain; charset=utf-8", "cron: see /metrics and /health\n"u8.ToArray(), head, timeout.Token).ConfigureAwait(false);
                    break;
                default:
                    await RespondAsync(client, 404, "Not Found", "text/plain; charset=utf-8", "not found\n"u8.ToArray(), head, timeout.Token).ConfigureAwait(false);
                    break;
            }
        }
        catch (Exception ex) when (ex is OperationCanceledException or SocketException or IOException or ObjectDisposedException)
        {
            // A slow or vanished client, or cron stopping: nothing to report.
        }
    }

    /// <summary>The request line, after reading the whole head (up to 8 KiB); null when the client sent nothing usable.</summary>
    private static async Task<string?> ReadRequestHeadAsync(Socket client, CancellationToken cancellationToken)
    {
        var buffer = new byte[MaxRequestBytes];
        var filled = 0;
        while (filled < buffer.Length)
        {
            var n = await client.ReceiveAsync(buffer.AsMemory(filled), SocketFlags.None, cancellationToken).ConfigureAwait(false);
            if (n == 0) break;
            filled += n;
            if (buffer.AsSpan(0, filled).IndexOf("\r\n\r\n"u8) >= 0 || buffer.AsSpan(0, filled).IndexOf("\n\n"u8) >= 0) break;
        }
        var text = Encoding.ASCII.GetString(buffer, 0, filled);
        var end = text.IndexOf('\n');
        return end <= 0 ? null : text[..end].TrimEnd('\r');
    }

    private static async Task RespondAsync(Socket client, int status, string reason, string contentType, byte[] body, bool headOnly, CancellationToken cancellationToken)
    {
        var head = $"HTTP/1.1 {status} {reason}\r\nContent-Type: {contentType}\r\nContent-Length: {body.Length}\r\nConnection: close\r\n\r\n";
        await client.SendAsync(Encoding.ASCII.GetBytes(head), SocketFlags.None, cancellationToken).ConfigureAwait(false);
        if (!headOnly) await client.SendAsync(body, SocketFlags.None, cancellationToken).ConfigureAwait(false);
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
