// The HTTP path under S3Store: the handler every request goes through (S3HttpHandler), its request signing
// (SigV4), its connections (QuickAckConnection) and the one translation of S3 and network errors into
// StoreException kinds (S3Errors).
using System.Collections.Concurrent;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Security.Cryptography;
using System.Text;
using System.Xml;
using InfraTools.Storage;
using InfraTools.Time;
using Minio.Exceptions;

namespace InfraTools.S3;

/// <summary>
/// Sits between Minio and the network and fixes what Minio 7 gets in the way of:
/// <list type="bullet">
/// <item>Minio only builds path-style URLs; with virtual-host addressing this moves the bucket into the host
/// name and re-signs the request (<see cref="SigV4"/>).</item>
/// <item>Minio sends a bucket-exists HEAD before every stat; once a bucket answered 200, later HEADs of the
/// same bucket are answered here without a round trip.</item>
/// <item>Transient failures (connection reset, 500/502/503/504) of requests that are safe to repeat are
/// retried twice with a short backoff.</item>
/// <item>Error answers become <see cref="StoreException"/>s here (<see cref="S3Errors"/>). Listings are not
/// Minio's: <see cref="S3Store"/> sends and checks their pages itself (<see cref="ListingPage"/>).</item>
/// </list>
/// </summary>
public sealed class S3HttpHandler(S3Settings settings, HttpMessageHandler inner) : DelegatingHandler(inner)
{
    private static readonly TimeSpan[] RetryDelays = [TimeSpan.FromMilliseconds(200), TimeSpan.FromMilliseconds(800)];
    private readonly ConcurrentDictionary<string, bool> _existingBuckets = new(StringComparer.Ordinal);
    private readonly string _secretKey = settings.SecretKey.Reveal();

    /// <summary>Requests that reached the network, for tests and debug output.</summary>
    public long RequestsSent => Interlocked.Read(ref _requestsSent);
    private long _requestsSent;

    protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        var bucketHead = BucketOfBucketHead(request);
        if (bucketHead is not null && _existingBuckets.ContainsKey(bucketHead))
            return new HttpResponseMessage(HttpStatusCode.OK) { RequestMessage = request, Content = new ByteArrayContent([]) };

        var what = S3Request.Of(request);
        if (settings.Addressing == S3Addressing.VirtualHost) MoveBucketToHost(request);

        var response = await SendWithRetriesAsync(request, cancellationToken).ConfigureAwait(false);
        if (bucketHead is not null && response.StatusCode == HttpStatusCode.OK) _existingBuckets[bucketHead] = true;
        // Error answers are translated here, once: Minio would read an HTML page or an error without a message
        // as .NET internals ("DTD is prohibited", "Value cannot be null"). A HEAD has no body to read; Minio
        // turns its status into "no such bucket/object", which is all a HEAD can say.
        if (!response.IsSuccessStatusCode && request.Method != HttpMethod.Head)
        {
            using (response)
            {
                var body = await ReadBodyAsync(response, what, cancellationToken).ConfigureAwait(false);
                throw S3Errors.FromResponse(response.StatusCode, response.Content.Headers.ContentType?.MediaType, body, what, settings.EndpointText);
            }
        }
        return response;
    }

    private async Task<byte[]> ReadBodyAsync(HttpResponseMessage response, S3Request what, CancellationToken cancellationToken)
    {
        try
        {
            return await response.Content.ReadAsByteArrayAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is HttpRequestException or IOException && !cancellationToken.IsCancellationRequested)
        {
            throw S3Errors.FromNetwork(ex, what, settings.EndpointText, duringBody: true, settings.IoTimeout);
        }
    }

    private async Task<HttpResponseMessage> SendWithRetriesAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        var repeatable = request.Method == HttpMethod.Get || request.Method == HttpMethod.Head
            || request.Method == HttpMethod.Put || request.Method == HttpMethod.Delete;
        for (var attempt = 0; ; attempt++)
        {
            var last = !repeatable || attempt == RetryDelays.Length;
            try
            {
                Interlocked.Increment(ref _requestsSent);
                var response = await base.SendAsync(request, cancellationToken).ConfigureAwait(false);
                if (last || !IsTransient(response.StatusCode)) return response;
                response.Dispose();
            }
            catch (HttpRequestException ex) when (!last && ex.HttpRequestError != HttpRequestError.ConnectionError && !cancellationToken.IsCancellationRequested
                                                  && !S3Errors.IsIdleTimeout(ex))
            {
                // A refused connection is not retried: the endpoint is down or wrong, and waiting will not help.
                // Neither is a request that got no answer for the whole I/O timeout: that would triple the wait.
            }
            await Task.Delay(RetryDelays[attempt], cancellationToken).ConfigureAwait(false);
        }
    }

    private static bool IsTransient(HttpStatusCode status) =>
        status is HttpStatusCode.InternalServerError or HttpStatusCode.BadGateway or HttpStatusCode.ServiceUnavailable or HttpStatusCode.GatewayTimeout;

    /// <summary>The bucket name if this is Minio's bucket-exists request (HEAD on the bucket itself).</summary>
    private string? BucketOfBucketHead(HttpRequestMessage request)
    {
        if (request.Method != HttpMethod.Head || request.RequestUri is not { } uri || uri.Query.Length > 0) return null;
        var path = uri.AbsolutePath.Trim('/');
        return path.Length > 0 && !path.Contains('/') && uri.Host == settings.Endpoint.Host ? path : null;
    }

    /// <summary>http://endpoint/bucket/key?q becomes http://bucket.endpoint/key?q, signed again.</summary>
    private void MoveBucketToHost(HttpRequestMessage request)
    {
        if (request.RequestUri is not { } uri || uri.Host != settings.Endpoint.Host) return;
        var path = uri.AbsolutePath;
        var slash = path.IndexOf('/', 1);
        var bucket = slash < 0 ? path[1..] : path[1..slash];
        if (bucket.Length == 0) return;
        var rest = slash < 0 ? "/" : path[slash..];
        request.RequestUri = new UriBuilder(uri) { Host = $"{bucket}.{uri.Host}", Path = rest }.Uri;
        request.Headers.Host = null;
        SigV4.Resign(request, _secretKey);
    }
}

/// <summary>
/// AWS Signature Version 4 for S3, used only to re-sign a request that Minio already signed once, after
/// <see cref="S3HttpHandler"/> moved the bucket from the path into the host name (Minio 7 can only build
/// path-style URLs). It keeps Minio's signed header list, date and payload hash, and recomputes the signature
/// for the new host and path, for both header (Authorization) and query (presigned URL) signatures.
/// </summary>
public static class SigV4
{
    private const string Algorithm = "AWS4-HMAC-SHA256";

    /// <summary>Re-signs <paramref name="request"/> in place; it must already carry a Minio SigV4 signature.</summary>
    public static void Resign(HttpRequestMessage request, string secretKey)
    {
        var uri = request.RequestUri ?? throw new InvalidOperationException("request has no URI");
        // Minio adds the header without validation, and HttpHeaders cannot parse it back as an AuthenticationHeaderValue.
        if (request.Headers.NonValidated.TryGetValues("Authorization", out var authorizationValues)
            && authorizationValues.ToString() is { } authorization
            && authorization.StartsWith(Algorithm + " ", StringComparison.Ordinal))
        {
            var fields = ParseAuthorization(authorization[(Algorithm.Length + 1)..]);
            var signedHeaders = fields["SignedHeaders"];
            var credential = fields["Credential"];
            var amzDate = HeaderValue(request, "x-amz-date") ?? throw new InvalidOperationException("signed request has no x-amz-date");
            var payloadHash = HeaderValue(request, "x-amz-content-sha256") ?? "UNSIGNED-PAYLOAD";
            var canonicalHeaders = new StringBuilder();
            foreach (var name in signedHeaders.Split(';'))
                canonicalHeaders.Append(name).Append(':').Append(CanonicalHeaderValue(name == "host" ? HostHeader(uri) : HeaderValue(request, name) ?? "")).Append('\n');
            var canonicalRequest = string.Join('\n', request.Method.Method, uri.AbsolutePath, CanonicalQuery(uri.Query, skip: null),
                canonicalHeaders.ToString(), signedHeaders, payloadHash);
            var scope = credential[(credential.IndexOf('/') + 1)..];
            var signature = Sign(secretKey, amzDate, scope, canonicalRequest);
            request.Headers.Remove("Authorization");
            request.Headers.TryAddWithoutValidation("Authorization", $"{Algorithm} Credential={credential}, SignedHeaders={signedHeaders}, Signature={signature}");
        }
        else if (uri.Query.Contains("X-Amz-Signature=", StringComparison.Ordinal))
        {
            var query = ParseQuery(uri.Query);
            var amzDate = query["X-Amz-Date"];
            var credential = query["X-Amz-Credential"];
            var signedHeaders = query["X-Amz-SignedHeaders"];
            var canonicalHeaders = new StringBuilder();
            foreach (var name in signedHeaders.Split(';'))
                canonicalHeaders.Append(name).Append(':').Append(CanonicalHeaderValue(name == "host" ? HostHeader(uri) : HeaderValue(request, name) ?? "")).Append('\n');
            var canonicalRequest = string.Join('\n', request.Method.Method, uri.AbsolutePath, CanonicalQuery(uri.Query, skip: "X-Amz-Signature"),
                canonicalHeaders.ToString(), signedHeaders, "UNSIGNED-PAYLOAD");
            var scope = credential[(credential.IndexOf('/') + 1)..];
            var signature = Sign(secretKey, amzDate, scope, canonicalRequest);
            var rebuilt = new UriBuilder(uri) { Query = ReplaceQueryValue(uri.Query, "X-Amz-Signature", signature) };
            request.RequestUri = rebuilt.Uri;
        }
    }

    /// <summary>
    /// A presigned URL (query signature, signed header host only) for <paramref name="method"/> on
    /// <paramref name="uri"/>, whose query may already hold parameters: the tools' own requests that Minio 7
    /// cannot build (a listing that starts after a key).
    /// </summary>
    public static Uri Presign(HttpMethod method, Uri uri, S3Settings settings, DateTime utcNow, TimeSpan expires)
    {
        var amzDate = utcNow.ToString("yyyyMMdd'T'HHmmss'Z'", CultureInfo.InvariantCulture);
        var scope = $"{amzDate[..8]}/{settings.Region}/s3/aws4_request";
        var query = uri.Query.TrimStart('?');
        var signing = new List<string>
        {
            "X-Amz-Algorithm=" + Algorithm,
            "X-Amz-Credential=" + Encode($"{settings.AccessKey.Reveal()}/{scope}"),
            "X-Amz-Date=" + amzDate,
            "X-Amz-Expires=" + ((int)expires.TotalSeconds).ToString(CultureInfo.InvariantCulture),
            "X-Amz-SignedHeaders=host",
        };
        if (settings.SessionToken is { } token) signing.Add("X-Amz-Security-Token=" + Encode(token.Reveal()));
        var canonicalQuery = CanonicalQuery(string.Join('&', query.Length == 0 ? signing : [query, .. signing]), skip: null);
        var canonicalRequest = string.Join('\n', method.Method, uri.AbsolutePath, canonicalQuery, $"host:{HostHeader(uri)}\n", "host", "UNSIGNED-PAYLOAD");
        var signature = Sign(settings.SecretKey.Reveal(), amzDate, scope, canonicalRequest);
        return new UriBuilder(uri) { Query = canonicalQuery + "&X-Amz-Signature=" + signature }.Uri;
    }

    /// <summary>The signature for a canonical request; scope is date/region/service/aws4_request.</summary>
    public static string Sign(string secretKey, string amzDate, string scope, string canonicalRequest)
    {
        var stringToSign = $"{Algorithm}\n{amzDate}\n{scope}\n{Hex(SHA256.HashData(Encoding.UTF8.GetBytes(canonicalRequest)))}";
        var parts = scope.Split('/');
        var key = Encoding.UTF8.GetBytes("AWS4" + secretKey);
        foreach (var part in parts) key = HMACSHA256.HashData(key, Encoding.UTF8.GetBytes(part));
        return Hex(HMACSHA256.HashData(key, Encoding.UTF8.GetBytes(stringToSign)));
    }

    /// <summary>Query parameters sorted by name, each name and value encoded the way SigV4 wants (RFC 3986).</summary>
    public static string CanonicalQuery(string query, string? skip)
    {
        var pairs = new List<(string Name, string Value)>();
        foreach (var (name, value) in SplitQuery(query))
        {
            if (name == skip) continue;
            pairs.Add((Encode(name), Encode(value)));
        }
        pairs.Sort((a, b) => a.Name != b.Name ? string.CompareOrdinal(a.Name, b.Name) : string.CompareOrdinal(a.Value, b.Value));
        return string.Join('&', pairs.Select(p => $"{p.Name}={p.Value}"));
    }

    private static IEnumerable<(string Name, string Value)> SplitQuery(string query)
    {
        foreach (var part in query.TrimStart('?').Split('&', StringSplitOptions.RemoveEmptyEntries))
        {
            var eq = part.IndexOf('=');
            var name = Uri.UnescapeDataString(eq < 0 ? part : part[..eq]);
            var value = eq < 0 ? "" : Uri.UnescapeDataString(part[(eq + 1)..]);
            yield return (name, value);
        }
    }

    private static Dictionary<string, string> ParseQuery(string query) =>
        SplitQuery(query).GroupBy(p => p.Name).ToDictionary(g => g.Key, g => g.First().Value, StringComparer.Ordinal);

    private static string ReplaceQueryValue(string query, string name, string value) =>
        string.Join('&', query.TrimStart('?').Split('&').Select(p => p.StartsWith(name + "=", StringComparison.Ordinal) ? $"{name}={value}" : p));

    private static Dictionary<string, string> ParseAuthorization(string parameter) =>
        parameter.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries)
            .Select(p => p.Split('=', 2))
            .ToDictionary(p => p[0], p => p.Length > 1 ? p[1] : "", StringComparer.Ordinal);

    private static string HostHeader(Uri uri) => uri.IsDefaultPort ? uri.Host : $"{uri.Host}:{uri.Port.ToString(CultureInfo.InvariantCulture)}";

    private static string? HeaderValue(HttpRequestMessage request, string name)
    {
        if (request.Headers.TryGetValues(name, out var values)) return string.Join(',', values);
        if (request.Content is not null && request.Content.Headers.TryGetValues(name, out var contentValues)) return string.Join(',', contentValues);
        return null;
    }

    private static string CanonicalHeaderValue(string value) => string.Join(' ', value.Trim().Split(' ', StringSplitOptions.RemoveEmptyEntries));

    private static string Encode(string value)
    {
        var bytes = Encoding.UTF8.GetBytes(value);
        var sb = new StringBuilder(bytes.Length * 3);
        foreach (var b in bytes)
        {
            var c = (char)b;
            if (char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.' or '~') sb.Append(c);
            else sb.Append('%').Append(b.ToString("X2", CultureInfo.InvariantCulture));
        }
        return sb.ToString();
    }

    private static string Hex(byte[] bytes) => Convert.ToHexStringLower(bytes);
}

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

/// <summary>
/// The one place where whatever went wrong with an S3 request becomes a <see cref="StoreException"/>: an error
/// answer (parsed here from its XML, whatever the status), an answer that is not S3 at all (an HTML page from a
/// web server or proxy, an empty body), or a network failure (refused, reset, stalled). Messages say what
/// happened in S3 terms and what to check; they never show .NET internals.
/// </summary>
internal static class S3Errors
{
    /// <summary>The exception for a non-success answer to <paramref name="request"/>, from its status, content type and body.</summary>
    public static StoreException FromResponse(HttpStatusCode status, string? contentType, byte[] body, S3Request request, string endpoint)
    {
        if (status == HttpStatusCode.NotModified) return new StoreException(StoreErrorKind.NotModified, $"{request.Where} has not changed");
        var (code, message) = ParseError(body);
        if (code is not null) return FromCode(code, message, (int)status, request, endpoint);
        var what = body.Length == 0 ? "an empty body" : contentType ?? "a body without a content type";
        var statusText = $"HTTP {(int)status} {ReasonPhrase(status)}";
        // A 5xx from a proxy in front of S3 (502 while the server restarts) may pass; a 4xx page will not.
        var kind = (int)status >= 500 ? StoreErrorKind.ServerError : StoreErrorKind.UnexpectedAnswer;
        return new StoreException(kind,
            $"{request.Operation} {request.Where} failed: the server at {endpoint} answered {statusText} with {what}, not an S3 error: check that S3_ENDPOINT is the S3 service's URL, not a web site or proxy");
    }

    /// <summary>The exception for an S3 error code (NoSuchKey, AccessDenied...).</summary>
    public static StoreException FromCode(string code, string? message, int status, S3Request request, string endpoint, Exception? inner = null)
    {
        var detail = string.IsNullOrWhiteSpace(message) ? "" : $": {message.Trim().TrimEnd('.')}";
        return code switch
        {
            "NoSuchBucket" => new StoreException(StoreErrorKind.BucketNotFound,
                $"bucket '{request.Bucket}' does not exist at {endpoint}: check the bucket name in the s3:// URL, or create the bucket", inner),
            "NoSuchKey" => new StoreException(StoreErrorKind.ObjectNotFound, $"{request.Where} does not exist", inner),
            "SignatureDoesNotMatch" or "InvalidAccessKeyId" or "InvalidToken" or "ExpiredToken" or "TokenRefreshRequired" => new StoreException(
                StoreErrorKind.AuthenticationFailed,
                $"the S3 server at {endpoint} rejected the credentials ({code}): check S3_ACCESS_KEY and S3_SECRET_KEY", inner),
            "AccessDenied" or "AllAccessDisabled" => new StoreException(StoreErrorKind.AccessDenied,
                $"access denied to {request.Where} on {request.Operation}: check S3_ACCESS_KEY/S3_SECRET_KEY and that they may {request.Operation} in this bucket", inner),
            _ => new StoreException(status is >= 400 and < 500 ? StoreErrorKind.UnexpectedAnswer : StoreErrorKind.ServerError,
                $"{request.Operation} {request.Where} failed: the server answered {code}{(status > 0 ? $" (HTTP {status})" : "")}{detail}", inner),
        };
    }

    /// <summary>Network trouble before an answer arrived (the endpoint is unreachable) or while its body was read (the transfer broke).</summary>
    public static StoreException FromNetwork(Exception ex, S3Request request, string endpoint, bool duringBody, TimeSpan ioTimeout)
    {
        var reason = IsIdleTimeout(ex) ? $"nothing received or sent for {GoDuration.FormatShort(ioTimeout)}, S3_IO_TIMEOUT" : Innermost(ex).Message.TrimEnd('.');
        return duringBody
            ? new StoreException(StoreErrorKind.Interrupted, $"the transfer of {request.Where} from {endpoint} broke off ({reason}); the local copy, if any, was kept", ex)
            : new StoreException(StoreErrorKind.Unreachable, $"cannot reach the S3 endpoint {endpoint} ({reason}): check S3_ENDPOINT and that the server is up", ex);
    }

    /// <summary>Whatever Minio or HttpClient threw for a request that got no usable answer.</summary>
    public static StoreException FromException(Exception ex, S3Request request, string endpoint, TimeSpan ioTimeout)
    {
        if (Find<StoreException>(ex) is { } known) return known;
        switch (ex)
        {
            case HttpRequestException or SocketException or ConnectionException or AuthenticationException or OperationCanceledException or IOException:
                return FromNetwork(ex, request, endpoint, duringBody: false, ioTimeout);
            case BucketNotFoundException:
                return FromCode("NoSuchBucket", null, 404, request, endpoint, ex);
            case ObjectNotFoundException:
                return FromCode("NoSuchKey", null, 404, request, endpoint, ex);
            case AuthorizationException:
                return FromCode((ex as MinioException)?.Response?.Code is { Length: > 0 } c ? c : "SignatureDoesNotMatch", null, 403, request, endpoint, ex);
            case AccessDeniedException:
                return FromCode("AccessDenied", null, 403, request, endpoint, ex);
            case MinioException { Response.Code: { Length: > 0 } code } minio:
                return FromCode(code, minio.Response.Message, 0, request, endpoint, ex);
            default:
                return new StoreException(StoreErrorKind.ServerError, $"{request.Operation} {request.Where} failed: {Innermost(ex).Message.TrimEnd('.')}", ex);
        }
    }

    /// <summary>The Code and Message of an S3 error body, or (null, null) if the body is not one.</summary>
    public static (string? Code, string? Message) ParseError(byte[] body)
    {
        if (body.Length == 0) return (null, null);
        try
        {
            using var reader = XmlReader.Create(new MemoryStream(body), new XmlReaderSettings
            {
                DtdProcessing = DtdProcessing.Prohibit, IgnoreComments = true, IgnoreProcessingInstructions = true, IgnoreWhitespace = true,
            });
            if (reader.MoveToContent() != XmlNodeType.Element || reader.LocalName != "Error") return (null, null);
            string? code = null, message = null;
            reader.Read();
            while (!reader.EOF)
            {
                // ReadElementContentAsString moves to the next node itself: read on only when nothing was consumed.
                if (reader.NodeType == XmlNodeType.Element && reader.Depth == 1 && reader.LocalName == "Code") code = reader.ReadElementContentAsString();
                else if (reader.NodeType == XmlNodeType.Element && reader.Depth == 1 && reader.LocalName == "Message") message = reader.ReadElementContentAsString();
                else reader.Read();
            }
            return (string.IsNullOrWhiteSpace(code) ? null : code.Trim(), message);
        }
        catch (XmlException)
        {
            return (null, null);
        }
    }

    public static bool IsIdleTimeout(Exception ex) => Find<TimeoutException>(ex) is not null;

    private static T? Find<T>(Exception? ex) where T : Exception
    {
        for (; ex is not null; ex = ex.InnerException)
            if (ex is T found) return found;
        return null;
    }

    private static Exception Innermost(Exception ex)
    {
        while (ex.InnerException is not null) ex = ex.InnerException;
        return ex;
    }

    private static string ReasonPhrase(HttpStatusCode status) =>
        string.Concat(status.ToString().Select((c, i) => i > 0 && char.IsUpper(c) ? " " + c : c.ToString()));

}

/// <summary>What a request was about, for messages: the operation ("get", "list"...), bucket and key.</summary>
internal sealed record S3Request(string Operation, string Bucket, string? Key)
{
    public string Where => Key is null ? $"s3://{Bucket}" : $"s3://{Bucket}/{Key}";

    /// <summary>Reads the operation, bucket and key from a path-style request.</summary>
    public static S3Request Of(HttpRequestMessage request)
    {
        var uri = request.RequestUri!;
        var path = uri.AbsolutePath.TrimStart('/');
        var slash = path.IndexOf('/');
        var bucket = Uri.UnescapeDataString(slash < 0 ? path : path[..slash]);
        var key = slash < 0 || slash == path.Length - 1 ? null : Uri.UnescapeDataString(path[(slash + 1)..]);
        var query = uri.Query;
        var method = request.Method.Method;
        var operation = method switch
        {
            "GET" when query.Contains("list-type=", StringComparison.Ordinal) || key is null => "list",
            "GET" => "get",
            "HEAD" => key is null ? "check bucket" : "stat",
            "PUT" when key is null => "create bucket",
            "PUT" or "POST" when !query.Contains("delete", StringComparison.Ordinal) => "put",
            _ => "delete",
        };
        if (operation == "list")
            foreach (var part in query.TrimStart('?').Split('&'))
                if (part.StartsWith("prefix=", StringComparison.Ordinal) && part.Length > "prefix=".Length) key = Uri.UnescapeDataString(part["prefix=".Length..]);
        return new S3Request(operation, bucket, key);
    }
}
