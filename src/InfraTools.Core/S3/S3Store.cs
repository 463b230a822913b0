// The S3 adapter of the object-store port: S3Store (requests through Minio, downloads, uploads, listings in
// ranges), its settings (S3Settings) and the ETag rule of what it uploads (ObjectChecksum).
using System.Buffers;
using System.Globalization;
using System.Net;
using System.Runtime.CompilerServices;
using System.Security.Cryptography;
using System.Text;
using InfraTools.Files;
using InfraTools.Secrets;
using InfraTools.Storage;
using Minio;
using Minio.DataModel.Args;
using Minio.Helper;

namespace InfraTools.S3;

/// <summary>
/// The object-store port on S3, with the Minio SDK: the one adapter, and the one place that knows about Minio.
/// It holds every workaround the tools need (docs/s3-client.md has the reasons): the AOT roots for Minio's XML
/// model (<see cref="MinioTrimming"/>), one presigned GET per download, its own listings (presigned ListObjectsV2
/// pages read and checked by <see cref="ListingPage"/>), virtual-host re-signing, error answers turned into
/// <see cref="StoreException"/>s once (<see cref="S3HttpHandler"/>, <see cref="S3Errors"/>), quick ACKs and the I/O timeout (<see cref="QuickAckConnection"/>), and the ETag check
/// of every upload.
/// </summary>
public sealed class S3Store : IObjectStore
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

    // Listing in ranges: a listing is a chain of pages, each naming the next, so 100 pages cost 100 round trips and
    // 100 server answers one after the other. With the paths a caller saw before, the key space is cut every
    // RangeKeys known keys, and each range is listed on its own from its first key (ListObjectsV2
    // start-after, which Minio 7 cannot send: these requests are presigned here), RangesInFlight
    // at a time, and handed on in order. A range ends at its last known key; keys added since make it a page
    // longer, keys deleted make the next range's keys appear, which are dropped. When nothing changed this sends the
    // same number of requests as the chain (one page of 1,000 keys per range); what comes back is the same in every
    // case: every key once, in key order, or the listing's error.

    /// <summary>Keys per listing page (the S3 maximum) and, by default, known keys per range.</summary>
    internal const int PageSize = 1000;

    private const int RangesInFlight = 8;

    /// <summary>Known keys per range, and keys per page of a ranged listing (tests set fewer, to cut a small bucket into several ranges).</summary>
    public int RangeKeys { get; init; } = PageSize;

    /// <summary>Keys asked for per page of a ranged listing: <see cref="RangeKeys"/>, within what S3 allows.</summary>
    private int PageKeys => Math.Clamp(RangeKeys, 1, PageSize);

    /// <summary>Requests sent as ranges (not chained pages), for tests.</summary>
    internal long RangeRequests => Interlocked.Read(ref _rangeRequests);
    private long _rangeRequests;

    public IAsyncEnumerable<StoredObject> ListAsync(string bucket, string prefix, IReadOnlyCollection<string> knownPaths, CancellationToken cancellationToken = default)
    {
        var bounds = RangeBounds(prefix, knownPaths, RangeKeys);
        return bounds.Count == 0 ? ListAsync(bucket, prefix, cancellationToken) : ListRangesAsync(bucket, prefix, bounds, cancellationToken);
    }

    /// <summary>The last key of each range but the last: every <paramref name="rangeKeys"/>-th known key in key order; none below two ranges' worth.</summary>
    internal static List<string> RangeBounds(string prefix, IReadOnlyCollection<string> knownPaths, int rangeKeys)
    {
        var bounds = new List<string>();
        if (rangeKeys < 1 || knownPaths.Count < 2 * rangeKeys) return bounds;
        var sorted = knownPaths.ToArray();
        Array.Sort(sorted, KeyOrder.Instance);
        for (var i = rangeKeys - 1; i < sorted.Length - 1; i += rangeKeys) bounds.Add(prefix + sorted[i]);
        return bounds;
    }

    private async IAsyncEnumerable<StoredObject> ListRangesAsync(string bucket, string prefix, List<string> bounds, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var ranges = new Task<List<StoredObject>>?[bounds.Count + 1];
        var pages = NewPagePool(RangesInFlight);
        try
        {
            for (var i = 0; i < ranges.Length; i++)
            {
                for (var j = i; j < Math.Min(ranges.Length, i + RangesInFlight); j++)
                {
                    var (after, last) = (j == 0 ? null : bounds[j - 1], j < bounds.Count ? bounds[j] : null);
                    ranges[j] ??= Task.Run(() => ListRangeAsync(bucket, prefix, after, last, pages, stop.Token), CancellationToken.None);
                }
                var items = await ranges[i]!.ConfigureAwait(false); // the first range that failed, in key order, is the error
                ranges[i] = null;
                foreach (var item in items) yield return item;
            }
        }
        finally
        {
            await stop.CancelAsync().ConfigureAwait(false); // a caller that stopped early, or a failed range: nothing more is asked for
            foreach (var range in ranges)
            {
                if (range is null) continue;
                try { await range.ConfigureAwait(false); }
                catch (Exception) { /* the listing already ended; what a range ahead met does not matter */ }
            }
        }
    }

    /// <summary>The keys after <paramref name="after"/> up to and including <paramref name="last"/> (null: from the start, to the end).</summary>
    private async Task<List<StoredObject>> ListRangeAsync(string bucket, string prefix, string? after, string? last, ArrayPool<byte> pages, CancellationToken cancellationToken)
    {
        var items = new List<StoredObject>(PageKeys);
        string? token = null;
        while (true)
        {
            var page = await ListPageAsync(bucket, prefix, after, token, pages, cancellationToken).ConfigureAwait(false);
            foreach (var item in page.Objects)
            {
                // A server that ignored start-after listed from the start: those keys are earlier ranges'.
                if (after is not null && KeyOrder.Instance.Compare(item.Key, after) <= 0) continue;
                if (last is not null && KeyOrder.Instance.Compare(item.Key, last) > 0) return items;
                items.Add(item);
            }
            if (page.NextToken is null) return items;
            if (last is not null && items.Count > 0 && items[^1].Key == last) return items;
            token = page.NextToken;
        }
    }

    /// <summary>One ListObjectsV2 page: from the start of the prefix, after <paramref name="startAfter"/>, or where <paramref name="token"/> says.</summary>
    private async Task<ListingPage> ListPageAsync(string bucket, string prefix, string? startAfter, string? token, ArrayPool<byte> pages, CancellationToken cancellationToken)
    {
        var query = new StringBuilder("list-type=2&encoding-type=url&max-keys=").Append(PageKeys.ToString(CultureInfo.InvariantCulture))
            .Append("&prefix=").Append(Uri.EscapeDataString(prefix));
        if (token is not null) query.Append("&continuation-token=").Append(Uri.EscapeDataString(token));
        else if (startAfter is not null) query.Append("&start-after=").Append(Uri.EscapeDataString(startAfter));
        var uri = new UriBuilder(Settings.Endpoint) { Path = "/" + bucket, Query = query.ToString() }.Uri;
        try
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, SigV4.Presign(HttpMethod.Get, uri, Settings, DateTime.UtcNow, TimeSpan.FromHours(1)));
            // S3HttpHandler turns error answers into StoreExceptions; whether the page is a whole listing is
            // checked by ListingPage, in the walk that reads its objects.
            Interlocked.Increment(ref _rangeRequests);
            using var response = await _http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancellationToken).ConfigureAwait(false);
            var (buffer, length) = await ReadPageAsync(response.Content, bucket, prefix, pages, cancellationToken).ConfigureAwait(false);
            try
            {
                return ListingPage.Read(new MemoryStream(buffer, 0, length, writable: false), response.Content.Headers.ContentType?.MediaType, token,
                    $"s3://{bucket}/{prefix}", Settings.EndpointText);
            }
            finally
            {
                pages.Return(buffer);
            }
        }
        catch (Exception ex) when (IsTranslatable(ex, cancellationToken))
        {
            throw Translate(ex, bucket, prefix, "list");
        }
    }

    /// <summary>The most a listing page may hold: a page of 1,000 keys of 1,024 bytes each, URL-encoded, with room to spare.</summary>
    private const int MaxPageBytes = 16 * 1024 * 1024;

    /// <summary>
    /// The buffers of one listing's pages: a page of 1,000 keys is a few hundred KB, so a new array for each, as
    /// HttpClient's own buffering makes, is a large-object-heap allocation that only a full collection frees (at
    /// 100,000 keys those were most of the run's heap fragmentation, bench/RESULTS.md). The pool is the listing's,
    /// not the process's shared one: the shared pool keeps what it was given until a full collection trims it,
    /// which an idle watcher never has, so its pages stayed resident between pulls.
    /// </summary>
    private static ArrayPool<byte> NewPagePool(int pagesAtOnce) => ArrayPool<byte>.Create(MaxPageBytes, pagesAtOnce + 1);

    /// <summary>A page's body, whole, in a buffer of <paramref name="pages"/> (the caller returns it).</summary>
    private async Task<(byte[] Buffer, int Length)> ReadPageAsync(HttpContent content, string bucket, string prefix, ArrayPool<byte> pages, CancellationToken cancellationToken)
    {
        var announced = content.Headers.ContentLength;
        var buffer = pages.Rent(announced is > 0 and < MaxPageBytes ? (int)announced + 1 : 256 * 1024);
        var length = 0;
        try
        {
            await using var stream = await content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false);
            for (int read; (read = await stream.ReadAsync(buffer.AsMemory(length), cancellationToken).ConfigureAwait(false)) > 0;)
            {
                length += read;
                if (length < buffer.Length) continue;
                if (buffer.Length >= MaxPageBytes)
                    throw new StoreException(StoreErrorKind.UnexpectedAnswer,
                        $"the listing of s3://{bucket}/{prefix} from {Settings.EndpointText} has a page larger than {MaxPageBytes / (1024 * 1024)} MB, which no S3 listing page is: check that S3_ENDPOINT is the S3 service's URL; an incomplete listing is never used (nothing was deleted)");
                var larger = pages.Rent(buffer.Length * 2);
                buffer.AsSpan(0, length).CopyTo(larger);
                pages.Return(buffer);
                buffer = larger;
            }
            return (buffer, length);
        }
        catch (Exception ex)
        {
            pages.Return(buffer);
            if (ex is IOException or HttpRequestException && !cancellationToken.IsCancellationRequested)
                throw S3Errors.FromNetwork(ex, new S3Request("list", bucket, prefix), Settings.EndpointText, duringBody: true, Settings.IoTimeout);
            throw;
        }
    }
}

/// <summary>How bucket names go into request URLs.</summary>
public enum S3Addressing
{
    /// <summary>http://endpoint/bucket/key (Ceph, MinIO, most self-hosted servers).</summary>
    Path,
    /// <summary>http://bucket.endpoint/key (AWS, Exoscale, R2 and other hosted services).</summary>
    VirtualHost,
}

/// <summary>Everything needed to talk to one S3 endpoint. Read by <see cref="S3SettingsReader"/>.</summary>
public sealed record S3Settings(Uri Endpoint, Secret AccessKey, Secret SecretKey, Secret? SessionToken, string Region, S3Addressing Addressing)
{
    public static readonly TimeSpan DefaultIoTimeout = TimeSpan.FromSeconds(60);

    /// <summary>How long a connection may go without a byte received or sent before that request fails (S3_IO_TIMEOUT).</summary>
    public TimeSpan IoTimeout { get; init; } = DefaultIoTimeout;

    public bool Secure => Endpoint.Scheme == Uri.UriSchemeHttps;

    /// <summary>host[:port] of the endpoint, as Minio wants it.</summary>
    public string HostAndPort => Endpoint.IsDefaultPort ? Endpoint.Host : $"{Endpoint.Host}:{Endpoint.Port}";

    /// <summary>The endpoint as messages show it (no trailing slash).</summary>
    public string EndpointText => Endpoint.ToString().TrimEnd('/');

    public override string ToString() => $"{Endpoint} region={Region} addressing={Addressing}";
}

/// <summary>
/// The ETag an S3 server gives an object uploaded by <see cref="S3Store.PutAsync"/>: the MD5 of the content for
/// a single-part upload, or MD5(part MD5s) + "-N" for a multipart upload with Minio's part size. Used to verify
/// uploads and to tell whether a local file equals a remote object without downloading it.
/// </summary>
public static class ObjectChecksum
{
    /// <summary>Minio switches to multipart uploads at this size.</summary>
    public const long MultipartThreshold = 5L * 1024 * 1024;

    /// <summary>The part size Minio uses for an object of <paramref name="size"/> bytes.</summary>
    public static long PartSize(long size) => (long)Utils.CalculateMultiPartSize(size).PartSize;

    public static bool IsMultipart(long size) => size >= MultipartThreshold;

    /// <summary>True for an ETag of a multipart upload ("hex-N"), which is not the MD5 of the content.</summary>
    public static bool IsMultipartETag(string etag) => etag.Contains('-', StringComparison.Ordinal);

    /// <summary>Normalises an ETag as servers send it (quoted, any case) to lower-case hex without quotes.</summary>
    public static string Normalize(string? etag) => (etag ?? "").Trim().Trim('"').ToLowerInvariant();

    /// <summary>Computes the expected ETag of a stream of <paramref name="size"/> bytes, reading it once.</summary>
    public static async Task<string> ComputeETagAsync(Stream content, long size, CancellationToken cancellationToken)
    {
        using var hasher = new ETagHasher(size);
        var buffer = new byte[81920];
        int read;
        while ((read = await content.ReadAsync(buffer, cancellationToken).ConfigureAwait(false)) > 0)
            hasher.Append(buffer.AsSpan(0, read));
        return hasher.Finish();
    }

    /// <summary>The expected ETag of a local regular file (never a FIFO or a link: <see cref="RegularFile"/>).</summary>
    public static async Task<string> ComputeETagAsync(string path, CancellationToken cancellationToken)
    {
        await using var file = RegularFile.OpenRead(path);
        return await ComputeETagAsync(file, file.Length, cancellationToken).ConfigureAwait(false);
    }
}

/// <summary>Incremental ETag computation over bytes fed in order (used while uploading, so the file is read once).</summary>
public sealed class ETagHasher : IDisposable
{
    private readonly long _partSize;
    private readonly bool _multipart;
    private readonly IncrementalHash _whole = IncrementalHash.CreateHash(HashAlgorithmName.MD5);
    private readonly IncrementalHash _part = IncrementalHash.CreateHash(HashAlgorithmName.MD5);
    private readonly List<byte[]> _partHashes = [];
    private long _inPart;
    private long _total;

    public ETagHasher(long size)
    {
        _multipart = ObjectChecksum.IsMultipart(size);
        _partSize = _multipart ? ObjectChecksum.PartSize(size) : long.MaxValue;
    }

    public long BytesHashed => _total;

    public void Append(ReadOnlySpan<byte> data)
    {
        _total += data.Length;
        if (!_multipart)
        {
            _whole.AppendData(data);
            return;
        }
        while (!data.IsEmpty)
        {
            var take = (int)Math.Min(data.Length, _partSize - _inPart);
            _part.AppendData(data[..take]);
            _inPart += take;
            data = data[take..];
            if (_inPart == _partSize)
            {
                _partHashes.Add(_part.GetHashAndReset());
                _inPart = 0;
            }
        }
    }

    public string Finish()
    {
        if (!_multipart) return Convert.ToHexStringLower(_whole.GetHashAndReset());
        if (_inPart > 0 || _partHashes.Count == 0) _partHashes.Add(_part.GetHashAndReset());
        var combined = IncrementalHash.CreateHash(HashAlgorithmName.MD5);
        foreach (var hash in _partHashes) combined.AppendData(hash);
        return $"{Convert.ToHexStringLower(combined.GetHashAndReset())}-{_partHashes.Count}";
    }

    public void Dispose()
    {
        _whole.Dispose();
        _part.Dispose();
    }
}

/// <summary>A read-only stream that feeds every byte it passes through to an <see cref="ETagHasher"/>.</summary>
internal sealed class HashingReadStream(Stream inner, ETagHasher hasher) : ReadOnlyStreamWrapper(inner)
{
    public override int Read(Span<byte> buffer)
    {
        var read = Inner.Read(buffer);
        hasher.Append(buffer[..read]);
        return read;
    }

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        var read = await Inner.ReadAsync(buffer, cancellationToken).ConfigureAwait(false);
        hasher.Append(buffer.Span[..read]);
        return read;
    }
}
