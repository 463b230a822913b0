using System.Collections.Concurrent;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace InfraTools.Tests;

/// <summary>One HTTP request as the endpoint received it.</summary>
public sealed record FaultRequest(string Method, string Path, string Query, IReadOnlyDictionary<string, string> Headers, byte[] Body)
{
    /// <summary>The object key of a path-style request (/bucket/key), unescaped; empty for bucket requests.</summary>
    public string Key
    {
        get
        {
            var rest = Path.TrimStart('/');
            var slash = rest.IndexOf('/');
            return slash < 0 ? "" : Uri.UnescapeDataString(rest[(slash + 1)..]);
        }
    }

    public bool IsListing => Method == "GET" && Query.Contains("list-type=2", StringComparison.Ordinal);

    public bool IsGetObject => Method == "GET" && Key.Length > 0 && !Query.Contains("uploads", StringComparison.Ordinal);

    /// <summary>The value of a query parameter, unescaped, or null.</summary>
    public string? QueryValue(string name)
    {
        foreach (var part in Query.Split('&'))
            if (part.StartsWith(name + "=", StringComparison.Ordinal)) return Uri.UnescapeDataString(part[(name.Length + 1)..]);
        return null;
    }
}

/// <summary>Rewrites of S3 XML answers for fault rules.</summary>
public static class S3Xml
{
    /// <summary>A ListObjectsV2 page cut to its first <paramref name="keep"/> objects that says it is truncated, with the given token (none if null).</summary>
    public static string TruncatedListing(string listing, int keep, string? token)
    {
        var doc = System.Xml.Linq.XDocument.Parse(listing);
        var root = doc.Root!;
        var ns = root.Name.Namespace;
        foreach (var extra in root.Elements(ns + "Contents").Skip(keep).ToList()) extra.Remove();
        root.Element(ns + "IsTruncated")!.Value = "true";
        root.Element(ns + "NextContinuationToken")?.Remove();
        if (token is not null) root.Add(new System.Xml.Linq.XElement(ns + "NextContinuationToken", token));
        root.Element(ns + "KeyCount")?.SetValue(keep);
        return doc.ToString();
    }

    public static string Error(string code, string message) =>
        $"<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>{code}</Code><Message>{message}</Message><RequestId>tx1</RequestId><HostId>h</HostId></Error>";

}

/// <summary>One HTTP response: status, headers (in order) and body.</summary>
public sealed class FaultResponse
{
    public int Status { get; set; } = 200;
    public string Reason { get; set; } = "OK";
    public List<(string Name, string Value)> Headers { get; } = [];
    public byte[] Body { get; set; } = [];

    public string? Header(string name) => Headers.FirstOrDefault(h => h.Name.Equals(name, StringComparison.OrdinalIgnoreCase)).Value;

    public void SetHeader(string name, string? value)
    {
        Headers.RemoveAll(h => h.Name.Equals(name, StringComparison.OrdinalIgnoreCase));
        if (value is not null) Headers.Add((name, value));
    }

    public string BodyText
    {
        get => Encoding.UTF8.GetString(Body);
        set => Body = Encoding.UTF8.GetBytes(value);
    }

    public static FaultResponse Make(int status, string body, string contentType = "application/xml") => new()
    {
        Status = status,
        Reason = ((HttpStatusCode)status).ToString(),
        Headers = { ("Content-Type", contentType) },
        BodyText = body,
    };
}

/// <summary>What the endpoint does with a request a rule matched.</summary>
public abstract record Fault
{
    /// <summary>Answer this instead of asking the real server (sent the way <paramref name="Then"/> says, if given).</summary>
    public sealed record Answer(Func<FaultRequest, FaultResponse> Make, Fault? Then = null) : Fault;
    /// <summary>Ask the real server, then change its answer (and send it the way <paramref name="Then"/> says, if given).</summary>
    public sealed record Rewrite(Action<FaultRequest, FaultResponse> Change, Fault? Then = null) : Fault;
    /// <summary>Send the headers and the first <paramref name="Bytes"/> bytes of the body, then nothing more (the connection stays open).</summary>
    public sealed record StallAfter(int Bytes) : Fault;
    /// <summary>Send the headers and the first <paramref name="Bytes"/> bytes of the body, then close the connection.</summary>
    public sealed record CloseAfter(int Bytes) : Fault;
    /// <summary>Send the real answer with Transfer-Encoding: chunked instead of a Content-Length.</summary>
    public sealed record Chunked : Fault;
    /// <summary>Send the real answer without Content-Length and close the connection after the body (HTTP/1.0 style).</summary>
    public sealed record NoLengthThenClose : Fault;
    /// <summary>Answer nothing at all, not even headers, and keep the connection open (a SIGSTOPped server).</summary>
    public sealed record Silence : Fault;
}

/// <summary>
/// A fault-injecting S3 endpoint on 127.0.0.1 for the tests: a byte-level HTTP/1.1 proxy in front of the real
/// S3 server that forwards every request unchanged (so SigV4 signatures stay valid: the client signed for this
/// endpoint's host, and the server checks what it receives) and, for requests a rule matches, injects what RGW
/// cannot produce on demand: stalls and truncation mid-body, chunked bodies, broken pagination, 5xx and HTML
/// answers. Without an upstream it answers only what its rules answer (a plain web server, for example).
/// Rules are tried in order; the first match wins. Everything it started stops on Dispose.
/// </summary>
public sealed class FaultyS3 : IDisposable
{
    private readonly TcpListener _listener;
    private readonly Uri? _upstream;
    private readonly CancellationTokenSource _stop = new();
    private readonly List<(Func<FaultRequest, bool> When, Fault Fault, int Times)> _rules = [];
    private readonly ConcurrentBag<TcpClient> _connections = [];
    private readonly ConcurrentQueue<FaultRequest> _requests = new();
    private readonly Task _accepting;

    public FaultyS3(string? upstream)
    {
        _upstream = upstream is null ? null : new Uri(upstream);
        _listener = new TcpListener(IPAddress.Loopback, 0);
        _listener.Start();
        _accepting = AcceptAsync();
    }

    /// <summary>A proxy in front of the shared test server.</summary>
    public static FaultyS3 InFrontOf(S3Server server) => new(server.Endpoint);

    public int Port => ((IPEndPoint)_listener.LocalEndpoint).Port;
    public string Endpoint => $"http://127.0.0.1:{Port}";

    /// <summary>TCP connections accepted so far: a client that keeps its connections warm opens no new one.</summary>
    public int ConnectionsAccepted => _connections.Count;

    /// <summary>Every request received so far, in order.</summary>
    public IReadOnlyList<FaultRequest> Requests => _requests.ToArray();

    /// <summary>How many requests a rule has matched so far, by rule index.</summary>
    private readonly ConcurrentDictionary<int, int> _hits = new();

    /// <summary>Adds a rule; with <paramref name="times"/> it applies to that many matching requests only. Returns its index.</summary>
    public int When(Func<FaultRequest, bool> match, Fault fault, int times = int.MaxValue)
    {
        lock (_rules)
        {
            _rules.Add((match, fault, times));
            return _rules.Count - 1;
        }
    }

    public int Hits(int rule) => _hits.TryGetValue(rule, out var n) ? n : 0;

    /// <summary>The S3 settings for a tool, pointing at this endpoint with the real server's credentials.</summary>
    public Dictionary<string, string?> Environment(S3Server server, params (string Key, string? Value)[] extra)
    {
        var env = server.Environment(extra);
        env["S3_ENDPOINT"] = Endpoint;
        return env;
    }

    private Fault? Match(FaultRequest request)
    {
        lock (_rules)
        {
            for (var i = 0; i < _rules.Count; i++)
            {
                var (when, fault, times) = _rules[i];
                if (!when(request)) continue;
                var hits = _hits.AddOrUpdate(i, 1, (_, n) => n + 1);
                if (hits > times) continue;
                return fault;
            }
        }
        return null;
    }

    private async Task AcceptAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            TcpClient client;
            try { client = await _listener.AcceptTcpClientAsync(_stop.Token); }
            catch (Exception) { return; }
            _connections.Add(client);
            _ = Task.Run(() => ServeAsync(client));
        }
    }

    private async Task ServeAsync(TcpClient client)
    {
        using var _ = client;
        TcpClient? upstream = null;
        try
        {
            var downstream = client.GetStream();
            var reader = new HttpReader(downstream);
            Stream? up = null;
            HttpReader? upReader = null;
            while (!_stop.IsCancellationRequested)
            {
                var head = await reader.ReadHeadAsync(_stop.Token);
                if (head is null) return;
                var (method, target, _) = ParseRequestLine(head.StartLine);
                var body = await reader.ReadBodyAsync(head, isResponse: false, requestMethod: method, _stop.Token);
                var question = target.IndexOf('?');
                var request = new FaultRequest(method, question < 0 ? target : target[..question], question < 0 ? "" : target[(question + 1)..],
                    head.Headers.GroupBy(h => h.Name, StringComparer.OrdinalIgnoreCase).ToDictionary(g => g.Key, g => g.Last().Value, StringComparer.OrdinalIgnoreCase),
                    body);
                _requests.Enqueue(request);
                var fault = Match(request);

                if (fault is Fault.Silence)
                {
                    try { await Task.Delay(Timeout.Infinite, _stop.Token); } catch (OperationCanceledException) { }
                    return;
                }
                FaultResponse response;
                if (fault is Fault.Answer answer)
                {
                    response = answer.Make(request);
                }
                else
                {
                    if (_upstream is null)
                    {
                        response = FaultResponse.Make(404, "<html><body><h1>404 Not Found</h1></body></html>", "text/html");
                    }
                    else
                    {
                        if (up is null)
                        {
                            upstream = new TcpClient();
                            await upstream.ConnectAsync(_upstream.Host, _upstream.Port, _stop.Token);
                            up = upstream.GetStream();
                            upReader = new HttpReader(up);
                        }
                        await up.WriteAsync(Encoding.ASCII.GetBytes(head.Raw), _stop.Token);
                        await up.WriteAsync(body, _stop.Token);
                        var answerHead = await upReader!.ReadHeadAsync(_stop.Token) ?? throw new IOException("upstream closed the connection");
                        var answerBody = await upReader.ReadBodyAsync(answerHead, isResponse: true, requestMethod: method, _stop.Token);
                        response = ToResponse(answerHead, answerBody);
                        if (fault is Fault.Rewrite rewrite) rewrite.Change(request, response);
                    }
                }

                var keepOpen = await WriteResponseAsync(downstream, request, response, fault switch
                {
                    Fault.Rewrite { Then: { } then } => then,
                    Fault.Answer { Then: { } then } => then,
                    _ => fault,
                });
                if (!keepOpen) return;
            }
        }
        catch (Exception) when (_stop.IsCancellationRequested) { }
        catch (IOException) { }
        catch (SocketException) { }
        catch (ObjectDisposedException) { }
        finally
        {
            upstream?.Dispose();
        }
    }

    /// <summary>Writes the response as the fault wants it; false when the connection must not be reused.</summary>
    private async Task<bool> WriteResponseAsync(Stream downstream, FaultRequest request, FaultResponse response, Fault? fault)
    {
        var head = new StringBuilder();
        head.Append(CultureInfo.InvariantCulture, $"HTTP/1.1 {response.Status} {response.Reason}\r\n");
        var chunked = fault is Fault.Chunked;
        var noLength = fault is Fault.NoLengthThenClose;
        foreach (var (name, value) in response.Headers)
        {
            if (name.Equals("Content-Length", StringComparison.OrdinalIgnoreCase) || name.Equals("Transfer-Encoding", StringComparison.OrdinalIgnoreCase)) continue;
            if (name.Equals("Connection", StringComparison.OrdinalIgnoreCase)) continue;
            head.Append(name).Append(": ").Append(value).Append("\r\n");
        }
        var hasBody = request.Method != "HEAD";
        if (chunked) head.Append("Transfer-Encoding: chunked\r\n");
        else if (noLength) head.Append("Connection: close\r\n");
        else
        {
            // A HEAD answer keeps the Content-Length of the object it describes.
            var length = hasBody ? response.Body.Length.ToString(CultureInfo.InvariantCulture) : response.Header("Content-Length") ?? "0";
            head.Append("Content-Length: ").Append(length).Append("\r\n");
        }
        head.Append("\r\n");
        await downstream.WriteAsync(Encoding.ASCII.GetBytes(head.ToString()), _stop.Token);
        if (!hasBody) return true;

        switch (fault)
        {
            case Fault.StallAfter stall:
                await downstream.WriteAsync(response.Body.AsMemory(0, Math.Min(stall.Bytes, response.Body.Length)), _stop.Token);
                await downstream.FlushAsync(_stop.Token);
                try { await Task.Delay(Timeout.Infinite, _stop.Token); } catch (OperationCanceledException) { }
                return false;
            case Fault.CloseAfter close:
                await downstream.WriteAsync(response.Body.AsMemory(0, Math.Min(close.Bytes, response.Body.Length)), _stop.Token);
                await downstream.FlushAsync(_stop.Token);
                return false;
            case Fault.Chunked:
                for (var offset = 0; offset < response.Body.Length; offset += 8192)
                {
                    var length = Math.Min(8192, response.Body.Length - offset);
                    await downstream.WriteAsync(Encoding.ASCII.GetBytes($"{length:x}\r\n"), _stop.Token);
                    await downstream.WriteAsync(response.Body.AsMemory(offset, length), _stop.Token);
                    await downstream.WriteAsync("\r\n"u8.ToArray(), _stop.Token);
                }
                await downstream.WriteAsync("0\r\n\r\n"u8.ToArray(), _stop.Token);
                return true;
            case Fault.NoLengthThenClose:
                await downstream.WriteAsync(response.Body, _stop.Token);
                await downstream.FlushAsync(_stop.Token);
                return false;
            default:
                await downstream.WriteAsync(response.Body, _stop.Token);
                return true;
        }
    }

    private static FaultResponse ToResponse(HttpHead head, byte[] body)
    {
        var parts = head.StartLine.Split(' ', 3);
        var response = new FaultResponse
        {
            Status = int.Parse(parts[1], CultureInfo.InvariantCulture),
            Reason = parts.Length > 2 ? parts[2] : "",
            Body = body,
        };
        response.Headers.AddRange(head.Headers);
        return response;
    }

    private static (string Method, string Target, string Version) ParseRequestLine(string line)
    {
        var parts = line.Split(' ');
        return (parts[0], parts.Length > 1 ? parts[1] : "/", parts.Length > 2 ? parts[2] : "HTTP/1.1");
    }

    public void Dispose()
    {
        _stop.Cancel();
        _listener.Stop();
        foreach (var connection in _connections) connection.Dispose();
        try { _accepting.Wait(TimeSpan.FromSeconds(5)); } catch (AggregateException) { }
        _stop.Dispose();
    }

    /// <summary>The start line and headers of an HTTP message, as received (Raw keeps the exact bytes to forward).</summary>
    private sealed record HttpHead(string StartLine, List<(string Name, string Value)> Headers, string Raw);

    /// <summary>Reads HTTP/1.1 messages from a stream: heads line by line, bodies by Content-Length or chunked.</summary>
    private sealed class HttpReader(Stream stream)
    {
        private readonly byte[] _buffer = new byte[64 * 1024];
        private int _start, _end;

        public async Task<HttpHead?> ReadHeadAsync(CancellationToken cancellationToken)
        {
            var raw = new StringBuilder();
            var lines = new List<string>();
            while (true)
            {
                var line = await ReadLineAsync(cancellationToken);
                if (line is null) return null;
                raw.Append(line).Append("\r\n");
                if (line.Length == 0)
                {
                    if (lines.Count == 0) continue;
                    break;
                }
                lines.Add(line);
            }
            var headers = lines.Skip(1).Select(l => l.Split(':', 2)).Select(p => (p[0].Trim(), p.Length > 1 ? p[1].Trim() : "")).ToList();
            return new HttpHead(lines[0], headers, raw.ToString());
        }

        public async Task<byte[]> ReadBodyAsync(HttpHead head, bool isResponse, string requestMethod, CancellationToken cancellationToken)
        {
            if (isResponse)
            {
                var status = int.Parse(head.StartLine.Split(' ')[1], CultureInfo.InvariantCulture);
                if (requestMethod == "HEAD" || status is 204 or 304 || status < 200) return [];
            }
            var transfer = head.Headers.FirstOrDefault(h => h.Name.Equals("Transfer-Encoding", StringComparison.OrdinalIgnoreCase)).Item2;
            if (transfer is not null && transfer.Contains("chunked", StringComparison.OrdinalIgnoreCase))
            {
                using var body = new MemoryStream();
                while (true)
                {
                    var sizeLine = await ReadLineAsync(cancellationToken) ?? throw new IOException("connection closed in a chunk header");
                    var size = int.Parse(sizeLine.Split(';')[0].Trim(), NumberStyles.HexNumber, CultureInfo.InvariantCulture);
                    if (size == 0)
                    {
                        while ((await ReadLineAsync(cancellationToken))?.Length > 0) { }
                        return body.ToArray();
                    }
                    body.Write(await ReadExactlyAsync(size, cancellationToken));
                    await ReadLineAsync(cancellationToken);
                }
            }
            var lengthText = head.Headers.FirstOrDefault(h => h.Name.Equals("Content-Length", StringComparison.OrdinalIgnoreCase)).Item2;
            var length = lengthText is null ? 0 : long.Parse(lengthText, CultureInfo.InvariantCulture);
            return await ReadExactlyAsync((int)length, cancellationToken);
        }

        private async Task<string?> ReadLineAsync(CancellationToken cancellationToken)
        {
            var line = new List<byte>();
            while (true)
            {
                if (_start == _end && !await FillAsync(cancellationToken)) return line.Count == 0 ? null : Encoding.Latin1.GetString(line.ToArray());
                var b = _buffer[_start++];
                if (b == '\n')
                {
                    if (line.Count > 0 && line[^1] == '\r') line.RemoveAt(line.Count - 1);
                    return Encoding.Latin1.GetString(line.ToArray());
                }
                line.Add(b);
            }
        }

        private async Task<byte[]> ReadExactlyAsync(int count, CancellationToken cancellationToken)
        {
            var result = new byte[count];
            var done = 0;
            while (done < count)
            {
                if (_start == _end && !await FillAsync(cancellationToken)) throw new IOException("connection closed in a body");
                var take = Math.Min(count - done, _end - _start);
                Array.Copy(_buffer, _start, result, done, take);
                _start += take;
                done += take;
            }
            return result;
        }

        private async Task<bool> FillAsync(CancellationToken cancellationToken)
        {
            _start = 0;
            _end = await stream.ReadAsync(_buffer, cancellationToken);
            return _end > 0;
        }
    }
}
