using InfraTools.S3;
using InfraTools.Storage;

namespace InfraTools.Tests;

/// <summary>
/// S3Store's listing in ranges (start-after, several at a time) against the real S3 server: whatever the hint says,
/// the result is the chained listing's, key for key and field for field; when the hint is right it sends one
/// request per range; errors are the listing's.
/// </summary>
public class RangedListingTests
{
    private static readonly S3Server Server = S3Server.Shared;

    /// <summary>Keys that sort differently in UTF-16 and UTF-8 (U+E000 against U+1F600), need URL encoding, or are folder markers.</summary>
    private static readonly string[] OddKeys =
        ["d/\uE000private", "d/\U0001F600smile", "d/sp ace", "d/plus+sign", "d/per%cent", "d/amp&lt", "d/marker/", "d/ü-umlaut", "d/~tilde"];

    private static List<string> Keys(int count) => [.. Enumerable.Range(0, count).Select(i => $"d/{i % 3}/f{i:D3}"), .. OddKeys];

    private static async Task<string> BucketWithAsync(IEnumerable<string> keys, string purpose)
    {
        var bucket = await Server.NewBucketAsync(purpose);
        using var client = Server.Client();
        await Parallel.ForEachAsync(keys, new ParallelOptions { MaxDegreeOfParallelism = 16 }, async (key, ct) =>
        {
            var body = System.Text.Encoding.UTF8.GetBytes(key);
            await client.PutAsync(bucket, key, new MemoryStream(body), body.Length, cancellationToken: ct);
        });
        return bucket;
    }

    private static S3Store Client(int rangeKeys, string? endpoint = null) => new(Server.ClientSettings(endpoint)) { RangeKeys = rangeKeys };

    /// <summary>A bucket with <see cref="Keys"/>(<paramref name="count"/>) under d/, and its chained listing (checked to hold them all).</summary>
    private static async Task<(List<string> Keys, string Bucket, List<StoredObject> Chained)> BucketAndChainedAsync(int count, string purpose)
    {
        var keys = Keys(count);
        var bucket = await BucketWithAsync(keys, purpose);
        using var client = Server.Client();
        var chained = await client.ListAsync(bucket, "d/").ToListAsync();
        Assert.Equal(keys.Count, chained.Count);
        return (keys, bucket, chained);
    }

    /// <summary>The keys as paths under d/, the hint a run would give.</summary>
    private static List<string> Known(IEnumerable<string> keys) => [.. keys.Select(k => k["d/".Length..])];

    [Fact]
    public void Key_order_is_the_order_of_UTF8_bytes()
    {
        string[] keys = ["a", "a/b", "a0", "\uE000", "\U0001F600", "\uFFFD", "z", "", "é", "\U0001F601"];
        var byBytes = keys.OrderBy(k => k, Comparer<string>.Create((x, y) =>
            System.Text.Encoding.UTF8.GetBytes(x).AsSpan().SequenceCompareTo(System.Text.Encoding.UTF8.GetBytes(y)))).ToList();
        Assert.Equal(byBytes, keys.Order(KeyOrder.Instance).ToList());
        // The case that differs from ordinal order, so that the check above can fail.
        Assert.True(string.CompareOrdinal("\uE000", "\U0001F600") > 0);
        Assert.True(KeyOrder.Instance.Compare("\uE000", "\U0001F600") < 0);
    }

    [Fact]
    public void Ranges_are_cut_every_range_keys_known_keys_in_key_order_and_not_below_two_ranges()
    {
        Assert.Empty(S3Store.RangeBounds("p/", [.. Enumerable.Range(0, 1999).Select(i => $"{i:D4}")], 1000));
        Assert.Equal(["p/0999"], S3Store.RangeBounds("p/", [.. Enumerable.Range(0, 2000).Select(i => $"{i:D4}")], 1000));
        Assert.Equal(["p/0999", "p/1999"], S3Store.RangeBounds("p/", [.. Enumerable.Range(0, 3000).Reverse().Select(i => $"{i:D4}")], 1000));
        // In UTF-8 order U+E000 and U+FFFD come before U+1F600 (in ordinal order, after it).
        Assert.Equal(["b", "\uE000"], S3Store.RangeBounds("", ["\U0001F600", "a", "\uE000", "b", "\uFFFD", "c"], 2));
    }

    [Fact]
    public async Task With_the_right_hint_each_range_is_one_request_and_the_listing_is_the_chained_one()
    {
        var (keys, bucket, chained) = await BucketAndChainedAsync(40, "ranges");
        Assert.Equal(keys.Order(KeyOrder.Instance), chained.Select(o => o.Key));

        using var client = Client(rangeKeys: 5);
        var known = Known(keys);
        var ranged = await client.ListAsync(bucket, "d/", known).ToListAsync();
        Assert.Equal(chained, ranged);
        var ranges = S3Store.RangeBounds("d/", known, 5).Count + 1;
        Assert.True(ranges >= 8, $"{ranges} ranges");
        Assert.Equal(ranges, client.RangeRequests);
        Assert.Equal(ranges, client.RequestsSent);
    }

    [Fact]
    public async Task A_wrong_hint_costs_requests_but_never_changes_the_listing()
    {
        var (keys, bucket, chained) = await BucketAndChainedAsync(60, "ranges-wrong");

        List<string>[] hints =
        [
            // Keys added since (a third unknown): ranges run a page longer.
            Known(keys.Where((_, i) => i % 3 != 0)),
            // Keys deleted since (known, not there): the next range's keys appear and are dropped.
            [.. Known(keys), .. Enumerable.Range(0, 40).Select(i => $"{i % 4}/gone{i:D2}")],
            // Nothing right at all: before, between and after every key.
            [.. Enumerable.Range(0, 30).Select(i => $"{(char)('0' + i % 10)}{i}"), "\uFFFF", "\U0001F600zzz", "", "~"],
        ];
        foreach (var hint in hints)
        {
            Assert.True(S3Store.RangeBounds("d/", hint, 4).Count >= 2);
            using var client = Client(rangeKeys: 4);
            Assert.Equal(chained, await client.ListAsync(bucket, "d/", hint).ToListAsync());
        }
    }

    [Fact]
    public async Task A_server_that_ignores_start_after_still_gives_the_chained_listing()
    {
        var (keys, bucket, chained) = await BucketAndChainedAsync(20, "ranges-ignored");
        // Every ranged request is answered with the whole listing from the start of the prefix (what a server that
        // does not know start-after sends): each range must drop what lies before it, or keys come twice.
        var contents = string.Concat(chained.Select(o =>
            $"<Contents><Key>{System.Security.SecurityElement.Escape(o.Key)}</Key><LastModified>{o.LastModified.UtcDateTime:yyyy-MM-dd'T'HH:mm:ss.fff'Z'}</LastModified>" +
            $"<ETag>&quot;{o.ETag}&quot;</ETag><Size>{o.Size}</Size></Contents>"));
        var whole = $"""<?xml version="1.0" encoding="UTF-8"?><ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>{bucket}</Name><Prefix>d/</Prefix><KeyCount>{chained.Count}</KeyCount><MaxKeys>1000</MaxKeys><IsTruncated>false</IsTruncated>{contents}</ListBucketResult>""";
        using var proxy = FaultyS3.InFrontOf(Server);
        var rule = proxy.When(r => r.IsListing && r.QueryValue("start-after") is not null, new Fault.Answer(_ => FaultResponse.Make(200, whole)));
        using var client = Client(rangeKeys: 4, proxy.Endpoint);
        Assert.Equal(chained, await client.ListAsync(bucket, "d/", Known(keys)).ToListAsync());
        Assert.True(proxy.Hits(rule) >= 4, $"{proxy.Hits(rule)} ranged requests answered");
    }

    /// <summary>An S3 listing of <paramref name="objects"/>, not truncated, padded with a comment to at least <paramref name="minBytes"/>.</summary>
    private static string WholeListing(string bucket, IReadOnlyList<StoredObject> objects, int minBytes = 0)
    {
        var contents = string.Concat(objects.Select(o =>
            $"<Contents><Key>{System.Security.SecurityElement.Escape(o.Key)}</Key><LastModified>{o.LastModified.UtcDateTime:yyyy-MM-dd'T'HH:mm:ss.fff'Z'}</LastModified>" +
            $"<ETag>&quot;{o.ETag}&quot;</ETag><Size>{o.Size}</Size></Contents>"));
        var xml = $"""<?xml version="1.0" encoding="UTF-8"?><ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>{bucket}</Name><Prefix>d/</Prefix><KeyCount>{objects.Count}</KeyCount><MaxKeys>1000</MaxKeys><IsTruncated>false</IsTruncated>{contents}""";
        var padding = Math.Max(0, minBytes - xml.Length);
        return xml + (padding > 0 ? "<!--" + new string('x', padding) + "-->" : "") + "</ListBucketResult>";
    }

    [Fact]
    public async Task A_page_larger_than_its_first_buffer_and_without_a_length_is_read_whole()
    {
        var (keys, bucket, chained) = await BucketAndChainedAsync(20, "ranges-big-page");
        // 1.5 MB, chunked (no Content-Length): the page's buffer starts at 256 KB and has to grow three times.
        var big = WholeListing(bucket, chained, 1_500_000);
        using var proxy = FaultyS3.InFrontOf(Server);
        var rule = proxy.When(r => r.IsListing && r.QueryValue("start-after") is not null, new Fault.Answer(_ => FaultResponse.Make(200, big), new Fault.Chunked()));
        using var client = Client(rangeKeys: 4, proxy.Endpoint);
        Assert.Equal(chained, await client.ListAsync(bucket, "d/", Known(keys)).ToListAsync());
        Assert.True(proxy.Hits(rule) >= 4, $"{proxy.Hits(rule)} ranged requests answered");
    }

    [Fact]
    public async Task A_page_that_breaks_off_fails_the_listing_as_interrupted()
    {
        var (keys, bucket, _) = await BucketAndChainedAsync(20, "ranges-cut");
        using var proxy = FaultyS3.InFrontOf(Server);
        var rule = proxy.When(r => r.IsListing && r.QueryValue("start-after") is not null, new Fault.CloseAfter(300));
        using var client = Client(rangeKeys: 4, proxy.Endpoint);
        var error = await Assert.ThrowsAsync<StoreException>(async () => await client.ListAsync(bucket, "d/", Known(keys)).ToListAsync());
        Assert.True(proxy.Hits(rule) >= 1);
        Assert.Equal(StoreErrorKind.Interrupted, error.Kind);
        Assert.Contains($"s3://{bucket}/d/", error.Message);
    }

    [Fact]
    public async Task A_page_larger_than_any_listing_is_refused_not_buffered_on()
    {
        var (keys, bucket, chained) = await BucketAndChainedAsync(20, "ranges-huge");
        var huge = WholeListing(bucket, chained, 17 * 1024 * 1024);
        using var proxy = FaultyS3.InFrontOf(Server);
        proxy.When(r => r.IsListing && r.QueryValue("start-after") is not null, new Fault.Answer(_ => FaultResponse.Make(200, huge), new Fault.Chunked()));
        using var client = Client(rangeKeys: 4, proxy.Endpoint);
        var error = await Assert.ThrowsAsync<StoreException>(async () => await client.ListAsync(bucket, "d/", Known(keys)).ToListAsync());
        Assert.Equal(StoreErrorKind.UnexpectedAnswer, error.Kind);
        Assert.Contains("larger than 16 MB", error.Message);
    }

    [Fact]
    public async Task A_range_that_fails_fails_the_listing_with_the_servers_reason()
    {
        var keys = Keys(20);
        var bucket = await BucketWithAsync(keys, "ranges-fail");
        using var proxy = FaultyS3.InFrontOf(Server);
        var known = Known(keys);
        var third = S3Store.RangeBounds("d/", known, 4)[2];
        proxy.When(r => r.IsListing && r.QueryValue("start-after") == third,
            new Fault.Answer(_ => FaultResponse.Make(403, S3Xml.Error("AccessDenied", "no listing for you"))));
        using var client = Client(rangeKeys: 4, proxy.Endpoint);
        var listed = new List<string>();
        var error = await Assert.ThrowsAsync<StoreException>(async () =>
        {
            await foreach (var item in client.ListAsync(bucket, "d/", known)) listed.Add(item.Key);
        });
        Assert.Equal(StoreErrorKind.AccessDenied, error.Kind);
        // What came before the failed range, in order, and nothing after it.
        Assert.Equal(listed, listed.Order(KeyOrder.Instance));
        Assert.All(listed, key => Assert.True(KeyOrder.Instance.Compare(key, third) <= 0, key));
    }
}
