using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Runtime.CompilerServices;
using System.Security.Authentication;
using Minio;
using Minio.DataModel.Args;
using Minio.Exceptions;

namespace InfraTools.S3;

/// <summary>One object in a listing.</summary>
public sealed record S3Object(string Key, long Size, string ETag, DateTimeOffset LastModified);

/// <summary>What a stat or get tells about an object. Metadata keys are the x-amz-meta-* names without the prefix.
/// Size is -1 when a get's answer announced no length (a chunked body).</summary>
public sealed record S3ObjectInfo(string Key, long Size, string ETag, DateTimeOffset LastModified, string? ContentType,
    IReadOnlyDictionary<string, string> Metadata);

/// <summary>
/// The S3 operations the tools use, on the Minio SDK, working the same under JIT and in the Native AOT binary.
/// Every failure comes out as an <see cref="S3Exception"/> with a clear message and exit code.
/// Design notes: gets use one presigned GET each (Minio's GetObjectAsync would first send a bucket-exists HEAD
/// and a stat HEAD, and it cannot read ranged responses); the bucket-exists HEAD Minio sends before a stat is
/// answered from memory after the first success (<see cref="S3HttpHandler"/>).
/// </summary>
public sealed class S3Client : IDisposable
{
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
            ConnectCallback = (context, ct) => QuickAckConnection.ConnectAsync(context.DnsEndPoint, settings.IoTimeout, ct),
        };
        _handler = new S3HttpHandler(settings, sockets);
        _http = new HttpClient(_handler) { Timeout = Timeout.InfiniteTimeSpan };
        var builder = new MinioClient()
            .WithEndpoint(settings.HostAndPort)
            .WithSSL(settings.Secure)
            .WithRegion(settings.Region)
            .WithCredentials(settings.AccessKey.Reveal(), settings.SecretKey.Reveal())
            .WithHttpClient(_http, disposeHttpClient: false);
        if (settings.SessionToken is { } token) builder = builder.WithSessionToken(token.Reveal());
        _minio = builder.Build();
    }

    public async Task<bool> BucketExistsAsync(string bucket, CancellationToken cancellationToken = default)
    {
        try
        {
            return await _minio.BucketExistsAsync(new BucketExistsArgs().WithBucket(bucket), cancellationToken).ConfigureAwait(false);
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
        var args = new ListObjectsArgs().WithBucket(bucket).WithPrefix(prefix).WithRecursive(true);
        await using var items = _minio.ListObjectsEnumAsync(args, cancellationToken).GetAsyncEnumerator(cancellationToken);
        while (true)
        {
            Minio.DataModel.Item item;
            try
            {
                if (!await items.MoveNextAsync().ConfigureAwait(false)) yield break;
                item = items.Current;
            }
            catch (Exception ex) when (IsTranslatable(ex, cancellationToken))
            {
                throw Translate(ex, bucket, null, "list");
            }
            if (item.IsDir) continue;
            yield return new S3Object(item.Key, (long)item.Size, ObjectChecksum.Normalize(item.ETag), ParseTimestamp(item.LastModified));
        }
    }

    public async Task<S3ObjectInfo> StatAsync(string bucket, string key, CancellationToken cancellationToken = default)
    {
        try
        {
            var stat = await _minio.StatObjectAsync(new StatObjectArgs().WithBucket(bucket).WithObject(key), cancellationToken).ConfigureAwait(false);
            var metadata = stat.MetaData
                .Where(m => !string.Equals(m.Key, "Content-Type", StringComparison.OrdinalIgnoreCase))
                .ToDictionary(m => m.Key.ToLowerInvariant(), m => m.Value, StringComparer.OrdinalIgnoreCase);
            return new S3ObjectInfo(key, stat.Size, ObjectChecksum.Normalize(stat.ETag),
                new DateTimeOffset(DateTime.SpecifyKind(stat.LastModified.ToUniversalTime(), DateTimeKind.Utc)), stat.ContentType, metadata);
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
            var url = await _minio.PresignedGetObjectAsync(new PresignedGetObjectArgs().WithBucket(bucket).WithObject(key).WithExpiry(3600)).ConfigureAwait(false);
            using var request = new HttpRequestMessage(HttpMethod.Get, url);
            if (range is { } r) request.Headers.Range = new System.Net.Http.Headers.RangeHeaderValue(r.From, r.To);
            // No answer at all within the I/O timeout ends the request (QuickAckConnection): S3_IO_TIMEOUT.
            response = await _http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (IsTranslatable(ex, cancellationToken))
        {
            throw Translate(ex, bucket, key, "get");
        }
        using (response)
        {
            // Error answers were turned into S3Exceptions by S3HttpHandler.
            var info = InfoFromHeaders(key, response);
            Stream body;
            try
            {
                body = await response.Content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (Exception ex) when (IsTranslatable(ex, cancellationToken))
            {
                throw BodyFailed(ex, bucket, key);
            }
            await using (body.ConfigureAwait(false))
            {
                try
                {
                    await consume(new TranslatingReadStream(body, this, bucket, key), info, cancellationToken).ConfigureAwait(false);
                }
                catch (IOException ex) when (ex.InnerException is HttpRequestException or SocketException or TimeoutException)
                {
                    throw BodyFailed(ex, bucket, key);
                }
            }
            return info;
        }
    }

    /// <summary>
    /// Uploads <paramref name="size"/> bytes from <paramref name="content"/> (multipart from
    /// <see cref="ObjectChecksum.MultipartThreshold"/> on) and checks the ETag the server answers against the MD5
    /// computed while sending, so a corrupted upload is reported. Returns the ETag.
    /// </summary>
    public async Task<string> PutAsync(string bucket, string key, Stream content, long size, IReadOnlyDictionary<string, string>? metadata = null,
        string? contentType = null, CancellationToken cancellationToken = default)
    {
        using var hasher = new ETagHasher(size);
        string etag;
        try
        {
            var args = new PutObjectArgs().WithBucket(bucket).WithObject(key)
                .WithStreamData(new HashingReadStream(content, hasher)).WithObjectSize(size)
                .WithContentType(contentType ?? "application/octet-stream");
            if (metadata is { Count: > 0 })
                args = args.WithHeaders(metadata.ToDictionary(m => "x-amz-meta-" + m.Key.ToLowerInvariant(), m => m.Value, StringComparer.OrdinalIgnoreCase));
            var response = await _minio.PutObjectAsync(args, cancellationToken).ConfigureAwait(false);
            etag = ObjectChecksum.Normalize(response.Etag);
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
                var errors = await _minio.RemoveObjectsAsync(new RemoveObjectsArgs().WithBucket(bucket).WithObjects(batch.ToList()), cancellationToken).ConfigureAwait(false);
                failures.AddRange(errors.Select(e => (e.Key, $"{e.Code}: {e.Message}")));
            }
            catch (Exception ex) when (IsTranslatable(ex, cancellationToken))
            {
                throw Translate(ex, bucket, null, "delete");
            }
        }
        return failures;
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
            : content.ContentLength ?? -1;
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

    /// <summary>Turns whatever Minio or HttpClient threw into one clear <see cref="S3Exception"/>.</summary>
    internal S3Exception Translate(Exception ex, string bucket, string? key, string operation) =>
        S3Errors.FromException(ex, new S3Request(operation, bucket, key), Settings.EndpointText, Settings.IoTimeout);

    /// <summary>A failure while the body of a get was read: that transfer failed (others may go on).</summary>
    internal S3Exception BodyFailed(Exception ex, string bucket, string key) =>
        ex as S3Exception ?? S3Errors.FromNetwork(ex, new S3Request("get", bucket, key), Settings.EndpointText, duringBody: true, Settings.IoTimeout);

    /// <summary>Turns network failures while reading a response body into <see cref="S3Exception"/>s.</summary>
    private sealed class TranslatingReadStream(Stream inner, S3Client client, string bucket, string key) : ReadOnlyStreamWrapper(inner)
    {
        public override int Read(Span<byte> buffer)
        {
            try { return Inner.Read(buffer); }
            catch (Exception ex) when (ex is IOException or HttpRequestException) { throw client.BodyFailed(ex, bucket, key); }
        }

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            try { return await Inner.ReadAsync(buffer, cancellationToken).ConfigureAwait(false); }
            catch (Exception ex) when (ex is IOException or HttpRequestException) { throw client.BodyFailed(ex, bucket, key); }
        }
    }
}
