using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Runtime.CompilerServices;
using System.Security.Authentication;
using System.Xml;
using Minio;
using Minio.DataModel.Args;
using Minio.Exceptions;

namespace InfraTools.S3;

/// <summary>One object in a listing.</summary>
public sealed record S3Object(string Key, long Size, string ETag, DateTimeOffset LastModified);

/// <summary>What a stat or get tells about an object. Metadata keys are the x-amz-meta-* names without the prefix.</summary>
public sealed record S3ObjectInfo(string Key, long Size, string ETag, DateTimeOffset LastModified, string? ContentType,
    IReadOnlyDictionary<string, string> Metadata);

/// <summary>
/// The S3 operations the tools use, working the same under JIT and in the Native AOT binary. Every failure
/// comes out as an <see cref="S3Exception"/> with a clear message and exit code.
/// Design notes: the operations the tools use (bucket check, list, stat, get, put, batch delete) send their
/// own requests, signed with <see cref="SigV4"/>: one request per get (Minio's GetObjectAsync would first send
/// a bucket-exists HEAD and a stat HEAD, and it cannot read ranged responses), and no Minio request pipeline
/// in the tools' binaries, whose XmlSerializer-based response parsing cost ~1.5 MB of each AOT binary. The
/// bucket-exists HEAD before a stat is answered from memory after the first success (<see cref="S3HttpHandler"/>).
/// Minio still serves the operations only tests and the demo use (make bucket, single delete).
/// </summary>
public sealed class S3Client : IDisposable
{
    /// <summary>Longest an unanswered request may wait for response headers before it counts as unreachable.</summary>
    public static readonly TimeSpan ResponseTimeout = TimeSpan.FromSeconds(120);
    private static readonly TimeSpan ConnectTimeout = TimeSpan.FromSeconds(10);

    private readonly IMinioClient _minio;
    private readonly HttpClient _http;
    private readonly S3HttpHandler _handler;

    public S3Settings Settings { get; }

    /// <summary>HTTP requests that went out on the network so far (after bucket-exists caching).</summary>
    public long RequestsSent => _handler.RequestsSent;

    public S3Client(S3Settings settings, int maxConnections = 16)
    {
        MinioTrimming.KeepXmlModelTypes();
        Settings = settings;
        var sockets = new SocketsHttpHandler
        {
            MaxConnectionsPerServer = Math.Max(1, maxConnections),
            ConnectTimeout = ConnectTimeout,
            PooledConnectionIdleTimeout = TimeSpan.FromSeconds(30),
            AutomaticDecompression = DecompressionMethods.None,
            UseCookies = false,
            AllowAutoRedirect = false,
        };
        _handler = new S3HttpHandler(settings, sockets);
        _http = new HttpClient(_handler) { Timeout = Timeout.InfiniteTimeSpan };
        var builder = new MinioClient()
            .WithEndpoint(settings.HostAndPort)
            .WithSSL(settings.Secure)
            .WithRegion(settings.Region)
            .WithCredentials(settings.AccessKey.Reveal(), settings.SecretKey.Reveal())
            .WithTimeout((int)ResponseTimeout.TotalMilliseconds)
            .WithHttpClient(_http, disposeHttpClient: false);
        if (settings.SessionToken is { } token) builder = builder.WithSessionToken(token.Reveal());
        _minio = builder.Build();
    }

    public async Task<bool> BucketExistsAsync(string bucket, CancellationToken cancellationToken = default)
    {
        try
        {
            using var request = SignedRequest(HttpMethod.Head, bucket, null, []);
            using var response = await SendAsync(request, cancellationToken).ConfigureAwait(false);
            if (response.IsSuccessStatusCode) return true;
            if (response.StatusCode == HttpStatusCode.NotFound) return false;
            throw await ErrorFromResponseAsync(response, bucket, null, "check bucket", cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (IsTranslatable(ex, cancellationToken))
        {
            throw Translate(ex, bucket, null, "check bucket");
        }
    }

    /// <summary>Creates a bucket (tests and the demo; the tools never create buckets).</summary>
    public async Task MakeBucketAsync(string bucket, CancellationToken cancellationToken = default)
    {
        try
        {
            await _minio.MakeBucketAsync(new MakeBucketArgs().WithBucket(bucket), cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (IsTranslatable(ex, cancellationToken))
        {
            throw Translate(ex, bucket, null, "create bucket");
        }
    }

    /// <summary>Every object under <paramref name="prefix"/> (recursive, ListObjectsV2, all pages), in key order.</summary>
    public async IAsyncEnumerable<S3Object> ListAsync(string bucket, string prefix, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        string? continuation = null;
        do
        {
            List<(string Name, string Value)> query = [("list-type", "2"), ("encoding-type", "url"), ("prefix", prefix)];
            if (continuation is not null) query.Add(("continuation-token", continuation));
            ListPage page;
            try
            {
                using var request = SignedRequest(HttpMethod.Get, bucket, null, query);
                using var headersTimeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
                headersTimeout.CancelAfter(ResponseTimeout);
                using var response = await _http.SendAsync(request, HttpCompletionOption.ResponseContentRead, headersTimeout.Token).ConfigureAwait(false);
                if (!response.IsSuccessStatusCode)
                    throw await ErrorFromResponseAsync(response, bucket, null, "list", cancellationToken).ConfigureAwait(false);
                await using var body = await response.Content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false);
                page = ListPage.Read(body);
            }
            catch (Exception ex) when (IsTranslatable(ex, cancellationToken))
            {
                throw Translate(ex, bucket, null, "list");
            }
            foreach (var item in page.Objects) yield return item;
            continuation = page.IsTruncated ? page.NextContinuationToken : null;
            if (page.IsTruncated && string.IsNullOrEmpty(continuation))
                throw new S3Exception(S3ErrorKind.ServerError, $"list {Where(bucket, null)} failed: the server answered a truncated page without a continuation token");
        }
        while (continuation is not null);
    }

    /// <summary>
    /// The object's size, ETag, Last-Modified, content type and metadata (HEAD). As with Minio, the bucket is
    /// checked first (answered from memory after its first success, see <see cref="S3HttpHandler"/>), because
    /// the 404 of a HEAD has no body that would tell a missing bucket from a missing object.
    /// </summary>
    public async Task<S3ObjectInfo> StatAsync(string bucket, string key, CancellationToken cancellationToken = default)
    {
        if (!await BucketExistsAsync(bucket, cancellationToken).ConfigureAwait(false))
            throw FromErrorCode("NoSuchBucket", null, bucket, key, "stat", null);
        try
        {
            using var request = SignedRequest(HttpMethod.Head, bucket, key, []);
            using var response = await SendAsync(request, cancellationToken).ConfigureAwait(false);
            if (!response.IsSuccessStatusCode)
                throw await ErrorFromResponseAsync(response, bucket, key, "stat", cancellationToken).ConfigureAwait(false);
            return InfoFromHeaders(key, response);
        }
        catch (Exception ex) when (IsTranslatable(ex, cancellationToken))
        {
            throw Translate(ex, bucket, key, "stat");
        }
    }

    /// <summary>
    /// Downloads an object with a single request and hands its content to <paramref name="consume"/>, which must
    /// read the stream before returning. With <paramref name="range"/> only that byte range is sent.
    /// </summary>
    public async Task<S3ObjectInfo> GetAsync(string bucket, string key, Func<Stream, S3ObjectInfo, CancellationToken, Task> consume,
        (long From, long To)? range = null, CancellationToken cancellationToken = default)
    {
        HttpResponseMessage response;
        try
        {
            using var request = SignedRequest(HttpMethod.Get, bucket, key, []);
            if (range is { } r) request.Headers.Range = new System.Net.Http.Headers.RangeHeaderValue(r.From, r.To);
            using var headersTimeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            headersTimeout.CancelAfter(ResponseTimeout);
            response = await _http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, headersTimeout.Token).ConfigureAwait(false);
        }
        catch (Exception ex) when (IsTranslatable(ex, cancellationToken))
        {
            throw Translate(ex, bucket, key, "get");
        }
        using (response)
        {
            if (!response.IsSuccessStatusCode)
                throw await ErrorFromResponseAsync(response, bucket, key, "get", cancellationToken).ConfigureAwait(false);
            var info = InfoFromHeaders(key, response);
            Stream body;
            try
            {
                body = await response.Content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (Exception ex) when (IsTranslatable(ex, cancellationToken))
            {
                throw Translate(ex, bucket, key, "get");
            }
            await using (body.ConfigureAwait(false))
            {
                try
                {
                    await consume(new TranslatingReadStream(body, this, bucket, key), info, cancellationToken).ConfigureAwait(false);
                }
                catch (IOException ex) when (ex.InnerException is HttpRequestException or SocketException)
                {
                    throw Translate(ex, bucket, key, "get");
                }
            }
            return info;
        }
    }

    /// <summary>
    /// Uploads <paramref name="size"/> bytes from <paramref name="content"/> (multipart from
    /// <see cref="ObjectChecksum.MultipartThreshold"/> on, with Minio's part size, so that
    /// <see cref="ObjectChecksum"/> predicts the ETag) and checks the ETag the server answers against the MD5
    /// computed while sending, so a corrupted upload is reported. Every request carries the signed SHA-256 of its
    /// payload. Returns the ETag.
    /// </summary>
    public async Task<string> PutAsync(string bucket, string key, Stream content, long size, IReadOnlyDictionary<string, string>? metadata = null,
        string? contentType = null, CancellationToken cancellationToken = default)
    {
        using var hasher = new ETagHasher(size);
        var source = new HashingReadStream(content, hasher);
        var headers = (metadata ?? new Dictionary<string, string>()).Select(m => ("x-amz-meta-" + m.Key.ToLowerInvariant(), m.Value)).ToList();
        contentType ??= "application/octet-stream";
        string etag;
        try
        {
            if (ObjectChecksum.IsMultipart(size))
            {
                etag = await PutMultipartAsync(bucket, key, source, size, contentType, headers, cancellationToken).ConfigureAwait(false);
            }
            else
            {
                var body = new byte[size];
                await ReadPartAsync(source, body, bucket, key, size, cancellationToken).ConfigureAwait(false);
                using var request = SignedRequest(HttpMethod.Put, bucket, key, [], body, contentType, headers);
                using var response = await SendAsync(request, cancellationToken).ConfigureAwait(false);
                if (!response.IsSuccessStatusCode)
                    throw await ErrorFromResponseAsync(response, bucket, key, "put", cancellationToken).ConfigureAwait(false);
                etag = ObjectChecksum.Normalize(response.Headers.ETag?.Tag);
            }
        }
        catch (Exception ex) when (IsTranslatable(ex, cancellationToken))
        {
            throw Translate(ex, bucket, key, "put");
        }
        // Some servers (Ceph RGW 16 among them) answer a completed multipart upload with an empty ETag;
        // the object's own ETag is then read back with one HEAD request.
        if (etag.Length == 0) etag = (await StatAsync(bucket, key, cancellationToken).ConfigureAwait(false)).ETag;
        if (hasher.BytesHashed != size)
            throw new S3Exception(S3ErrorKind.IntegrityCheckFailed, $"upload of s3://{bucket}/{key} read {hasher.BytesHashed} bytes, expected {size}: the file changed while it was being uploaded");
        var expected = hasher.Finish();
        if (etag != expected)
            throw new S3Exception(S3ErrorKind.IntegrityCheckFailed,
                $"upload of s3://{bucket}/{key} failed its integrity check: the server's ETag {etag} is not the {expected} computed from the data sent");
        return etag;
    }

    /// <summary>Initiate, upload the parts one after the other, complete; on any failure the upload is aborted.</summary>
    private async Task<string> PutMultipartAsync(string bucket, string key, Stream source, long size, string contentType,
        List<(string Name, string Value)> headers, CancellationToken cancellationToken)
    {
        string uploadId;
        using (var request = SignedRequest(HttpMethod.Post, bucket, key, [("uploads", "")], null, contentType, headers))
        using (var response = await SendAsync(request, cancellationToken).ConfigureAwait(false))
        {
            if (!response.IsSuccessStatusCode)
                throw await ErrorFromResponseAsync(response, bucket, key, "put", cancellationToken).ConfigureAwait(false);
            uploadId = XmlElements(await response.Content.ReadAsStringAsync(cancellationToken).ConfigureAwait(false), "UploadId").FirstOrDefault()
                ?? throw new S3Exception(S3ErrorKind.ServerError, $"put {Where(bucket, key)} failed: the server started a multipart upload without an UploadId");
        }
        try
        {
            var partSize = ObjectChecksum.PartSize(size);
            var buffer = new byte[Math.Min(partSize, size)];
            var complete = new System.Text.StringBuilder("<CompleteMultipartUpload>");
            long sent = 0;
            for (var number = 1; sent < size; number++)
            {
                var length = (int)Math.Min(partSize, size - sent);
                var part = buffer.AsMemory(0, length);
                await ReadPartAsync(source, part, bucket, key, size, cancellationToken).ConfigureAwait(false);
                List<(string, string)> query = [("partNumber", number.ToString(CultureInfo.InvariantCulture)), ("uploadId", uploadId)];
                using var request = SignedRequest(HttpMethod.Put, bucket, key, query, part, null, []);
                using var response = await SendAsync(request, cancellationToken).ConfigureAwait(false);
                if (!response.IsSuccessStatusCode)
                    throw await ErrorFromResponseAsync(response, bucket, key, "put", cancellationToken).ConfigureAwait(false);
                complete.Append("<Part><PartNumber>").Append(number.ToString(CultureInfo.InvariantCulture)).Append("</PartNumber><ETag>")
                    .Append(XmlEscape(response.Headers.ETag?.Tag ?? "")).Append("</ETag></Part>");
                sent += length;
            }
            complete.Append("</CompleteMultipartUpload>");
            using var completeRequest = SignedRequest(HttpMethod.Post, bucket, key, [("uploadId", uploadId)],
                System.Text.Encoding.UTF8.GetBytes(complete.ToString()), "application/xml", []);
            using var completeResponse = await SendAsync(completeRequest, cancellationToken).ConfigureAwait(false);
            if (!completeResponse.IsSuccessStatusCode)
                throw await ErrorFromResponseAsync(completeResponse, bucket, key, "put", cancellationToken).ConfigureAwait(false);
            // S3 may answer 200 and still fail the completion, with an Error document as the body.
            var body = await completeResponse.Content.ReadAsStringAsync(cancellationToken).ConfigureAwait(false);
            if (XmlElements(body, "Code").FirstOrDefault() is { Length: > 0 } code)
                throw FromErrorCode(code, XmlElements(body, "Message").FirstOrDefault(), bucket, key, "put", null);
            return ObjectChecksum.Normalize(XmlElements(body, "ETag").FirstOrDefault());
        }
        catch
        {
            await AbortMultipartAsync(bucket, key, uploadId).ConfigureAwait(false);
            throw;
        }
    }

    private async Task AbortMultipartAsync(string bucket, string key, string uploadId)
    {
        try
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
            using var request = SignedRequest(HttpMethod.Delete, bucket, key, [("uploadId", uploadId)]);
            using var response = await _http.SendAsync(request, timeout.Token).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is HttpRequestException or OperationCanceledException or IOException)
        {
            // Best effort: an upload that cannot be aborted is removed by the bucket's lifecycle rules, if any.
        }
    }

    /// <summary>Fills <paramref name="part"/> from the source; a source that ends early changed during the upload.</summary>
    private static async Task ReadPartAsync(Stream source, Memory<byte> part, string bucket, string key, long size, CancellationToken cancellationToken)
    {
        var filled = 0;
        while (filled < part.Length)
        {
            var read = await source.ReadAsync(part[filled..], cancellationToken).ConfigureAwait(false);
            if (read == 0)
                throw new S3Exception(S3ErrorKind.IntegrityCheckFailed, $"upload of s3://{bucket}/{key} ended before {size} bytes: the file changed while it was being uploaded");
            filled += read;
        }
    }

    public async Task DeleteAsync(string bucket, string key, CancellationToken cancellationToken = default)
    {
        try
        {
            await _minio.RemoveObjectAsync(new RemoveObjectArgs().WithBucket(bucket).WithObject(key), cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (IsTranslatable(ex, cancellationToken))
        {
            throw Translate(ex, bucket, key, "delete");
        }
    }

    /// <summary>Deletes keys with batch requests of up to 1,000 keys; returns the keys the server refused, with its reason.</summary>
    public async Task<IReadOnlyList<(string Key, string Error)>> DeleteManyAsync(string bucket, IReadOnlyList<string> keys, CancellationToken cancellationToken = default)
    {
        var failures = new List<(string, string)>();
        foreach (var batch in keys.Chunk(1000))
        {
            try
            {
                var xml = new System.Text.StringBuilder("<Delete><Quiet>true</Quiet>");
                foreach (var key in batch) xml.Append("<Object><Key>").Append(XmlEscape(key)).Append("</Key></Object>");
                var body = System.Text.Encoding.UTF8.GetBytes(xml.Append("</Delete>").ToString());
                using var request = SignedRequest(HttpMethod.Post, bucket, null, [("delete", "")], body, "application/xml",
                    [("Content-MD5", Convert.ToBase64String(System.Security.Cryptography.MD5.HashData(body)))]);
                using var response = await SendAsync(request, cancellationToken).ConfigureAwait(false);
                if (!response.IsSuccessStatusCode)
                    throw await ErrorFromResponseAsync(response, bucket, null, "delete", cancellationToken).ConfigureAwait(false);
                failures.AddRange(DeleteErrors(await response.Content.ReadAsStringAsync(cancellationToken).ConfigureAwait(false)));
            }
            catch (Exception ex) when (IsTranslatable(ex, cancellationToken))
            {
                throw Translate(ex, bucket, null, "delete");
            }
        }
        return failures;
    }

    /// <summary>The Error entries of a DeleteResult: key and "Code: Message".</summary>
    private static List<(string Key, string Error)> DeleteErrors(string body)
    {
        var errors = new List<(string, string)>();
        if (body.Length == 0) return errors;
        using var reader = XmlReader.Create(new StringReader(body), new XmlReaderSettings { DtdProcessing = DtdProcessing.Prohibit });
        while (!reader.EOF)
        {
            if (reader.NodeType == XmlNodeType.Element && reader.LocalName == "Error" && reader.Depth > 0 && !reader.IsEmptyElement)
            {
                string key = "", code = "", message = "";
                var depth = reader.Depth;
                reader.Read();
                while (!reader.EOF && !(reader.NodeType == XmlNodeType.EndElement && reader.Depth == depth))
                {
                    if (reader.NodeType == XmlNodeType.Element)
                    {
                        switch (reader.LocalName)
                        {
                            case "Key": key = reader.ReadElementContentAsString(); continue;
                            case "Code": code = reader.ReadElementContentAsString(); continue;
                            case "Message": message = reader.ReadElementContentAsString(); continue;
                        }
                    }
                    reader.Read();
                }
                errors.Add((key, $"{code}: {message}"));
            }
            reader.Read();
        }
        return errors;
    }

    /// <summary>The text of every element named <paramref name="name"/> in a small XML document.</summary>
    private static List<string> XmlElements(string xml, string name)
    {
        var values = new List<string>();
        if (xml.Length == 0) return values;
        using var reader = XmlReader.Create(new StringReader(xml), new XmlReaderSettings { DtdProcessing = DtdProcessing.Prohibit });
        while (!reader.EOF)
        {
            if (reader.NodeType == XmlNodeType.Element && reader.LocalName == name) values.Add(reader.ReadElementContentAsString());
            else reader.Read();
        }
        return values;
    }

    private static string XmlEscape(string text) => text.Replace("&", "&amp;").Replace("<", "&lt;").Replace(">", "&gt;").Replace("\"", "&quot;").Replace("'", "&apos;");

    /// <summary>Sends a request, waiting at most <see cref="ResponseTimeout"/> for the whole response.</summary>
    private async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(ResponseTimeout);
        return await _http.SendAsync(request, HttpCompletionOption.ResponseContentRead, timeout.Token).ConfigureAwait(false);
    }

    /// <summary>
    /// A path-style request signed with AWS Signature V4 in the Authorization header, with the SHA-256 of its
    /// payload. With virtual-host addressing <see cref="S3HttpHandler"/> moves the bucket into the host name and
    /// re-signs, as for Minio's requests.
    /// </summary>
    private HttpRequestMessage SignedRequest(HttpMethod method, string bucket, string? key, IReadOnlyList<(string Name, string Value)> query,
        ReadOnlyMemory<byte>? body = null, string? contentType = null, IReadOnlyList<(string Name, string Value)>? headers = null)
    {
        var path = "/" + SigV4.EncodePath(bucket) + (key is null ? "" : "/" + SigV4.EncodePath(key));
        var queryString = string.Join('&', query.Select(q => $"{SigV4.Encode(q.Name)}={SigV4.Encode(q.Value)}"));
        var uri = new Uri($"{Settings.Endpoint.Scheme}://{Settings.HostAndPort}{path}{(queryString.Length > 0 ? "?" + queryString : "")}");
        var request = new HttpRequestMessage(method, uri);
        if (body is { } payload || contentType is not null)
        {
            request.Content = new ReadOnlyMemoryContent(body ?? ReadOnlyMemory<byte>.Empty);
            if (contentType is not null) request.Content.Headers.TryAddWithoutValidation("Content-Type", contentType);
        }
        foreach (var (name, value) in headers ?? [])
        {
            if (name.Equals("Content-MD5", StringComparison.OrdinalIgnoreCase)) request.Content?.Headers.TryAddWithoutValidation(name, value);
            else request.Headers.TryAddWithoutValidation(name, value);
        }
        var payloadHash = body is { } bytes ? Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(bytes.Span)) : SigV4.EmptyPayloadHash;
        SigV4.SignHeaders(request, Settings.AccessKey.Reveal(), Settings.SecretKey.Reveal(), Settings.SessionToken?.Reveal(), Settings.Region,
            DateTimeOffset.UtcNow, payloadHash);
        return request;
    }

    /// <summary>The objects, truncation flag and continuation token of one ListObjectsV2 page (keys URL-decoded).</summary>
    private sealed record ListPage(List<S3Object> Objects, bool IsTruncated, string? NextContinuationToken)
    {
        public static ListPage Read(Stream body)
        {
            var objects = new List<S3Object>();
            var truncated = false;
            string? next = null;
            using var reader = XmlReader.Create(body, new XmlReaderSettings { DtdProcessing = DtdProcessing.Prohibit, IgnoreComments = true, IgnoreWhitespace = true });
            reader.MoveToContent();
            var root = reader.Depth;
            reader.Read();
            while (!reader.EOF)
            {
                if (reader.NodeType == XmlNodeType.Element && reader.Depth == root + 1)
                {
                    switch (reader.LocalName)
                    {
                        case "Contents":
                            objects.Add(ReadContents(reader));
                            continue;
                        case "IsTruncated":
                            truncated = reader.ReadElementContentAsString() == "true";
                            continue;
                        case "NextContinuationToken":
                            next = reader.ReadElementContentAsString();
                            continue;
                    }
                }
                reader.Read();
            }
            return new ListPage(objects, truncated, next);
        }

        /// <summary>Reads one Contents element and leaves the reader after its end.</summary>
        private static S3Object ReadContents(XmlReader reader)
        {
            string key = "", etag = "";
            string? lastModified = null;
            long size = 0;
            var depth = reader.Depth;
            if (reader.IsEmptyElement)
            {
                reader.Read();
                return new S3Object(key, size, etag, DateTimeOffset.UnixEpoch);
            }
            reader.Read();
            while (!reader.EOF && !(reader.NodeType == XmlNodeType.EndElement && reader.Depth == depth))
            {
                if (reader.NodeType == XmlNodeType.Element && reader.Depth == depth + 1)
                {
                    switch (reader.LocalName)
                    {
                        case "Key":
                            key = WebUtility.UrlDecode(reader.ReadElementContentAsString());
                            continue;
                        case "ETag":
                            etag = ObjectChecksum.Normalize(reader.ReadElementContentAsString());
                            continue;
                        case "Size":
                            size = long.Parse(reader.ReadElementContentAsString(), NumberStyles.None, CultureInfo.InvariantCulture);
                            continue;
                        case "LastModified":
                            lastModified = reader.ReadElementContentAsString();
                            continue;
                    }
                }
                reader.Read();
            }
            reader.Read(); // past </Contents>
            return new S3Object(key, size, etag, ParseTimestamp(lastModified));
        }
    }

    public void Dispose()
    {
        _minio.Dispose();
        _http.Dispose();
    }

    private static S3ObjectInfo InfoFromHeaders(string key, HttpResponseMessage response)
    {
        var content = response.Content.Headers;
        var size = response.StatusCode == HttpStatusCode.PartialContent && content.ContentRange?.Length is { } total
            ? total
            : content.ContentLength ?? 0;
        var metadata = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        foreach (var header in response.Headers)
            if (header.Key.StartsWith("x-amz-meta-", StringComparison.OrdinalIgnoreCase))
                metadata[header.Key["x-amz-meta-".Length..].ToLowerInvariant()] = string.Join(',', header.Value);
        return new S3ObjectInfo(key, size, ObjectChecksum.Normalize(response.Headers.ETag?.Tag),
            content.LastModified ?? DateTimeOffset.UnixEpoch, content.ContentType?.ToString(), metadata);
    }

    private static DateTimeOffset ParseTimestamp(string? text) =>
        DateTimeOffset.TryParse(text, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal, out var value)
            ? value
            : DateTimeOffset.UnixEpoch;

    private static bool IsTranslatable(Exception ex, CancellationToken cancellationToken) =>
        ex is not S3Exception && !(ex is OperationCanceledException && cancellationToken.IsCancellationRequested);

    private string Where(string bucket, string? key) => key is null ? $"s3://{bucket}" : $"s3://{bucket}/{key}";

    /// <summary>Turns whatever Minio or HttpClient threw into one clear <see cref="S3Exception"/>.</summary>
    internal S3Exception Translate(Exception ex, string bucket, string? key, string operation)
    {
        var endpoint = Settings.Endpoint.ToString().TrimEnd('/');
        var where = Where(bucket, key);
        switch (ex)
        {
            case HttpRequestException or SocketException or ConnectionException or AuthenticationException
                or OperationCanceledException or IOException:
                var reason = Innermost(ex).Message.TrimEnd('.');
                if (ex is OperationCanceledException) reason = $"no answer within {ResponseTimeout.TotalSeconds:0} s";
                return new S3Exception(S3ErrorKind.Unreachable,
                    $"cannot reach the S3 endpoint {endpoint} ({reason}): check S3_ENDPOINT and that the server is up", ex);
            case BucketNotFoundException:
                return new S3Exception(S3ErrorKind.BucketNotFound,
                    $"bucket '{bucket}' does not exist at {endpoint}: check the bucket name in the s3:// URL, or create the bucket", ex);
            case ObjectNotFoundException:
                return new S3Exception(S3ErrorKind.ObjectNotFound, $"{where} does not exist", ex);
            case AuthorizationException:
                return new S3Exception(S3ErrorKind.AuthenticationFailed,
                    $"the S3 server at {endpoint} rejected the credentials ({ErrorCodeOf(ex) ?? "signature mismatch"}): check S3_ACCESS_KEY and S3_SECRET_KEY", ex);
            case AccessDeniedException:
                return new S3Exception(S3ErrorKind.AccessDenied,
                    $"access denied to {where} on {operation}: check S3_ACCESS_KEY/S3_SECRET_KEY and that they may {operation} in this bucket", ex);
            case MinioException minio when minio.Response?.Code is { Length: > 0 } code:
                return FromErrorCode(code, minio.Response.Message, bucket, key, operation, ex);
            default:
                return new S3Exception(S3ErrorKind.ServerError, $"{operation} {where} failed: {Innermost(ex).Message}", ex);
        }
    }

    private S3Exception FromErrorCode(string code, string? message, string bucket, string? key, string operation, Exception? inner)
    {
        var endpoint = Settings.Endpoint.ToString().TrimEnd('/');
        var where = Where(bucket, key);
        return code switch
        {
            "NoSuchBucket" => new S3Exception(S3ErrorKind.BucketNotFound,
                $"bucket '{bucket}' does not exist at {endpoint}: check the bucket name in the s3:// URL, or create the bucket", inner),
            "NoSuchKey" => new S3Exception(S3ErrorKind.ObjectNotFound, $"{where} does not exist", inner),
            "SignatureDoesNotMatch" or "InvalidAccessKeyId" or "InvalidToken" or "ExpiredToken" or "TokenRefreshRequired" => new S3Exception(
                S3ErrorKind.AuthenticationFailed,
                $"the S3 server at {endpoint} rejected the credentials ({code}): check S3_ACCESS_KEY and S3_SECRET_KEY", inner),
            "AccessDenied" or "AllAccessDisabled" => new S3Exception(S3ErrorKind.AccessDenied,
                $"access denied to {where} on {operation}: the credentials are valid but may not {operation} here", inner),
            _ => new S3Exception(S3ErrorKind.ServerError, $"{operation} {where} failed: the server answered {code}{(string.IsNullOrEmpty(message) ? "" : $" ({message.TrimEnd('.')})")}", inner),
        };
    }

    private async Task<S3Exception> ErrorFromResponseAsync(HttpResponseMessage response, string bucket, string? key, string operation, CancellationToken cancellationToken)
    {
        string? code = null, message = null;
        try
        {
            var body = await response.Content.ReadAsStringAsync(cancellationToken).ConfigureAwait(false);
            if (body.Length > 0)
            {
                using var reader = XmlReader.Create(new StringReader(body), new XmlReaderSettings { DtdProcessing = DtdProcessing.Prohibit });
                while (reader.Read())
                {
                    if (reader.NodeType != XmlNodeType.Element) continue;
                    if (reader.LocalName == "Code") code = reader.ReadElementContentAsString();
                    else if (reader.LocalName == "Message") message = reader.ReadElementContentAsString();
                }
            }
        }
        catch (Exception ex) when (ex is XmlException or HttpRequestException or IOException)
        {
            // No readable error body: fall back to the status code below.
        }
        if (code is null && response.StatusCode == HttpStatusCode.Forbidden) // a HEAD, or a server that gave no reason
            return new S3Exception(S3ErrorKind.AccessDenied,
                $"access denied to {Where(bucket, key)} on {operation}: check S3_ACCESS_KEY/S3_SECRET_KEY and that they may {operation} in this bucket");
        code ??= response.StatusCode switch
        {
            HttpStatusCode.NotFound => key is null ? "NoSuchBucket" : "NoSuchKey",
            _ => $"HTTP {(int)response.StatusCode}",
        };
        return FromErrorCode(code, message, bucket, key, operation, null);
    }

    private static string? ErrorCodeOf(Exception ex) => ex is MinioException { Response.Code: { Length: > 0 } code } ? code : null;

    private static Exception Innermost(Exception ex)
    {
        while (ex.InnerException is not null) ex = ex.InnerException;
        return ex;
    }

    /// <summary>Turns network failures while reading a response body into <see cref="S3Exception"/>s.</summary>
    private sealed class TranslatingReadStream(Stream inner, S3Client client, string bucket, string key) : ReadOnlyStreamWrapper(inner)
    {
        public override int Read(Span<byte> buffer)
        {
            try { return Inner.Read(buffer); }
            catch (Exception ex) when (ex is IOException or HttpRequestException) { throw client.Translate(ex, bucket, key, "get"); }
        }

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            try { return await Inner.ReadAsync(buffer, cancellationToken).ConfigureAwait(false); }
            catch (Exception ex) when (ex is IOException or HttpRequestException) { throw client.Translate(ex, bucket, key, "get"); }
        }
    }
}
