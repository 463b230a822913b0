using System.Globalization;
using System.Net;
using System.Runtime.CompilerServices;
using InfraTools.Storage;
using Minio;
using Minio.DataModel.Args;

namespace InfraTools.S3;

/// <summary>
/// The object-store port on S3, with the Minio SDK: the one adapter, and the one place that knows about Minio.
/// It holds every workaround the tools need (docs/s3-client.md has the reasons): the AOT roots for Minio's XML
/// model (<see cref="MinioTrimming"/>), one presigned GET per download, its own listings (presigned ListObjectsV2
/// pages read and checked by <see cref="ListingPage"/>), virtual-host re-signing, error answers turned into
/// <see cref="StoreException"/>s once (<see cref="S3HttpHandler"/>, <see cref="S3Errors"/>), quick ACKs and the I/O timeout (<see cref="QuickAckConnection"/>), and the ETag check
/// of every upload.
/// </summary>
public sealed partial class S3Store : IObjectStore
{
    private static readonly TimeSpan ConnectTimeout = TimeSpan.FromSeconds(10);

    private readonly IMinioClient _minio;
    private readonly HttpClient _http;
    private readonly S3HttpHandler _handler;

    public S3Settings Settings { get; }

    public string Endpoint => Settings.EndpointText;

    /// <summary>HTTP requests that went out on the network so far (after bucket-exists caching).</summary>
    public long RequestsSent => _handler.RequestsSent;

    public S3Store(S3Settings settings, int maxConnections = 16)
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

    /// <summary>Whether a bucket exists (tests and the demo; the tools never ask).</summary>
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

    /// <summary>
    /// The chained listing: ListObjectsV2 pages of 1,000 keys, each naming the next, read by the same code as the
    /// ranged listing (<see cref="ListPageAsync"/>: a presigned request, the page in a buffer of this listing's
    /// pool, checked to be a whole listing in the walk that reads it). The next page is asked for as soon as a page arrives, so it is on
    /// its way while the caller works on this one; a caller that stops early stops the listing, and an error reaches
    /// the caller where the listing stopped.
    /// </summary>
    public async IAsyncEnumerable<StoredObject> ListAsync(string bucket, string prefix, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var pages = NewPagePool(2);
        Task<ListingPage>? next = null;
        try
        {
            var page = await ListPageAsync(bucket, prefix, null, null, pages, stop.Token).ConfigureAwait(false);
            while (true)
            {
                var token = page.NextToken;
                next = token is null ? null : Task.Run(() => ListPageAsync(bucket, prefix, null, token, pages, stop.Token), CancellationToken.None);
                foreach (var item in page.Objects) yield return item;
                if (next is null) yield break;
                page = await next.ConfigureAwait(false);
                next = null;
            }
        }
        finally
        {
            await stop.CancelAsync().ConfigureAwait(false);
            if (next is not null)
            {
                try { await next.ConfigureAwait(false); }
                catch (Exception) { /* the caller stopped reading, or the listing already failed: the page ahead does not matter */ }
            }
        }
    }

    public async Task<ObjectInfo> StatAsync(string bucket, string key, CancellationToken cancellationToken = default)
    {
        try
        {
            var stat = await _minio.StatObjectAsync(new StatObjectArgs().WithBucket(bucket).WithObject(key), cancellationToken).ConfigureAwait(false);
            var metadata = stat.MetaData
                .Where(m => !string.Equals(m.Key, "Content-Type", StringComparison.OrdinalIgnoreCase))
                .ToDictionary(m => m.Key.ToLowerInvariant(), m => m.Value, StringComparer.OrdinalIgnoreCase);
            return new ObjectInfo(key, stat.Size, ObjectChecksum.Normalize(stat.ETag),
                new DateTimeOffset(DateTime.SpecifyKind(stat.LastModified.ToUniversalTime(), DateTimeKind.Utc)), stat.ContentType, metadata);
        }
        catch (Exception ex) when (IsTranslatable(ex, cancellationToken))
        {
            throw Translate(ex, bucket, key, "stat");
        }
    }

    /// <summary>
    /// One presigned GET (Minio's GetObjectAsync would first send a bucket-exists HEAD and a stat HEAD, and it
    /// cannot read ranged answers). Error answers were turned into StoreExceptions by S3HttpHandler; a failure
    /// while the body is read is <see cref="StoreErrorKind.Interrupted"/>.
    /// </summary>
    public async Task<ObjectInfo> GetAsync(string bucket, string key, Func<Stream, ObjectInfo, CancellationToken, Task> consume, GetOptions? options = null,
        CancellationToken cancellationToken = default)
    {
        HttpResponseMessage response;
        try
        {
            var url = await _minio.PresignedGetObjectAsync(new PresignedGetObjectArgs().WithBucket(bucket).WithObject(key).WithExpiry(3600)).ConfigureAwait(false);
            using var request = new HttpRequestMessage(HttpMethod.Get, url);
            if (options?.Range is { } r) request.Headers.Range = new System.Net.Http.Headers.RangeHeaderValue(r.From, r.To);
            if (options?.IfNoneMatch is { } etag) request.Headers.TryAddWithoutValidation("If-None-Match", $"\"{ObjectChecksum.Normalize(etag)}\"");
            // No answer at all within the I/O timeout ends the request (QuickAckConnection): S3_IO_TIMEOUT.
            response = await _http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (IsTranslatable(ex, cancellationToken))
        {
            throw Translate(ex, bucket, key, "get");
        }
        using (response)
        {
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
                catch (IOException ex) when (ex.InnerException is HttpRequestException or System.Net.Sockets.SocketException or TimeoutException)
                {
                    throw BodyFailed(ex, bucket, key);
                }
            }
            return info;
        }
    }

    /// <summary>
    /// Uploads <paramref name="size"/> bytes (multipart from <see cref="ObjectChecksum.MultipartThreshold"/> on) and
    /// checks the ETag the server answers against the MD5 computed while sending, so a corrupted upload is reported.
    /// </summary>
    public async Task<string> PutAsync(string bucket, string key, Stream content, long size, PutOptions? options = null, CancellationToken cancellationToken = default)
    {
        using var hasher = new ETagHasher(size);
        string etag;
        try
        {
            var args = new PutObjectArgs().WithBucket(bucket).WithObject(key)
                .WithStreamData(new HashingReadStream(content, hasher)).WithObjectSize(size)
                .WithContentType(options?.ContentType ?? "application/octet-stream");
            if (options?.Metadata is { Count: > 0 } metadata)
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
            throw new StoreException(StoreErrorKind.IntegrityCheckFailed, $"upload of s3://{bucket}/{key} read {hasher.BytesHashed} bytes, expected {size}: the file changed while it was being uploaded");
        var expected = hasher.Finish();
        if (etag != expected)
            throw new StoreException(StoreErrorKind.IntegrityCheckFailed,
                $"upload of s3://{bucket}/{key} failed its integrity check: the server's ETag {etag} is not the {expected} computed from the data sent");
        return etag;
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

    private static ObjectInfo InfoFromHeaders(string key, HttpResponseMessage response)
    {
        var content = response.Content.Headers;
        var size = response.StatusCode == HttpStatusCode.PartialContent && content.ContentRange?.Length is { } total
            ? total
            : content.ContentLength ?? -1;
        var metadata = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        foreach (var header in response.Headers)
            if (header.Key.StartsWith("x-amz-meta-", StringComparison.OrdinalIgnoreCase))
                metadata[header.Key["x-amz-meta-".Length..].ToLowerInvariant()] = string.Join(',', header.Value);
        return new ObjectInfo(key, size, ObjectChecksum.Normalize(response.Headers.ETag?.Tag),
            content.LastModified ?? DateTimeOffset.UnixEpoch, content.ContentType?.ToString(), metadata);
    }

    private static bool IsTranslatable(Exception ex, CancellationToken cancellationToken) =>
        ex is not StoreException && !(ex is OperationCanceledException && cancellationToken.IsCancellationRequested);

    /// <summary>Turns whatever Minio or HttpClient threw into one clear <see cref="StoreException"/>.</summary>
    private StoreException Translate(Exception ex, string bucket, string? key, string operation) =>
        S3Errors.FromException(ex, new S3Request(operation, bucket, key), Settings.EndpointText, Settings.IoTimeout);

    /// <summary>A failure while the body of a get was read: that transfer failed (others may go on).</summary>
    private StoreException BodyFailed(Exception ex, string bucket, string key) =>
        ex as StoreException ?? S3Errors.FromNetwork(ex, new S3Request("get", bucket, key), Settings.EndpointText, duringBody: true, Settings.IoTimeout);

    /// <summary>Turns network failures while reading a response body into <see cref="StoreException"/>s.</summary>
    private sealed class TranslatingReadStream(Stream inner, S3Store store, string bucket, string key) : ReadOnlyStreamWrapper(inner)
    {
        public override int Read(Span<byte> buffer)
        {
            try { return Inner.Read(buffer); }
            catch (Exception ex) when (ex is IOException or HttpRequestException) { throw store.BodyFailed(ex, bucket, key); }
        }

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            try { return await Inner.ReadAsync(buffer, cancellationToken).ConfigureAwait(false); }
            catch (Exception ex) when (ex is IOException or HttpRequestException) { throw store.BodyFailed(ex, bucket, key); }
        }
    }
}
