using System.Buffers;
using System.Globalization;
using System.Runtime.CompilerServices;
using System.Text;
using InfraTools.Storage;

namespace InfraTools.S3;

/// <summary>
/// Listing in ranges: a listing is a chain of pages, each naming the next, so 100 pages cost 100 round trips and
/// 100 server answers one after the other. With the paths a caller saw before, the key space is cut every
/// <see cref="RangeKeys"/> known keys, and each range is listed on its own from its first key (ListObjectsV2
/// <c>start-after</c>, which Minio 7 cannot send: these requests are presigned here), <see cref="RangesInFlight"/>
/// at a time, and handed on in order. A range ends at its last known key; keys added since make it a page
/// longer, keys deleted make the next range's keys appear, which are dropped. When nothing changed this sends the
/// same number of requests as the chain (one page of 1,000 keys per range); what comes back is the same in every
/// case: every key once, in key order, or the listing's error.
/// </summary>
public sealed partial class S3Store
{
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
