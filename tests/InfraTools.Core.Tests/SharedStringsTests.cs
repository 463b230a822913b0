using InfraTools.Files;
using InfraTools.Sync;

namespace InfraTools.Tests;

/// <summary>The listings of a run hold the manifest's path and ETag strings, not copies (memory at 100,000 files: bench/RESULTS.md).</summary>
public class SharedStringsTests
{
    [Fact]
    public async Task Both_listings_hold_the_manifests_strings_and_the_listing_is_unchanged()
    {
        using var store = new InMemoryObjectStore();
        store.Put("b", "p/a/one.html", "one"u8.ToArray());
        store.Put("b", "p/two.html", "two"u8.ToArray());
        store.Put("b", "p/new.html", "new"u8.ToArray());
        using var dir = new TempDir();
        dir.Write("a/one.html", "one");
        dir.Write("two.html", "two");

        var manifest = new Manifest();
        // Strings built at run time, as the manifest's loader builds them: equal to the listings' but not the same objects.
        var one = string.Concat("a/", "one.html");
        var two = string.Concat("two", ".html");
        var etagOne = string.Concat(InMemoryObjectStore.ETagOf("one"u8.ToArray()));
        manifest.Set(one, new ManifestEntry(3, etagOne, DateTime.UnixEpoch));
        manifest.Set(two, new ManifestEntry(3, "another etag", DateTime.UnixEpoch));

        var bucket = await new BucketSide(store, "b", "p/", new GlobFilter([]), known: manifest).ListAsync(CancellationToken.None);
        var plain = await new BucketSide(store, "b", "p/", new GlobFilter([])).ListAsync(CancellationToken.None);
        Assert.Equal(plain.Files.OrderBy(f => f.Key, StringComparer.Ordinal), bucket.Files.OrderBy(f => f.Key, StringComparer.Ordinal));
        Assert.Same(one, bucket.Files[one].Path);
        Assert.Same(etagOne, bucket.Files[one].ETag);
        Assert.Same(two, bucket.Files[two].Path);
        Assert.Equal(InMemoryObjectStore.ETagOf("two"u8.ToArray()), bucket.Files[two].ETag); // another ETag: the object's own
        Assert.NotSame(one, plain.Files[one].Path);
        // No key string per object: the side's one prefix string, and the name a message shows is still the key.
        Assert.NotEmpty(bucket.Files.Values);
        foreach (var file in bucket.Files.Values.Concat(plain.Files.Values))
        {
            Assert.Null(file.Key);
            Assert.Equal("p/", file.KeyPrefix);
            Assert.Equal("p/" + file.Path, file.Name);
        }
        Assert.Same(bucket.Files[one].KeyPrefix, bucket.Files[two].KeyPrefix);

        var local = await new LocalSide(dir.Path, FileModes.Private, new GlobFilter([]), TempNames.Process, known: manifest).ListAsync(CancellationToken.None);
        Assert.Equal(["a/one.html", "two.html"], local.Files.Keys.Order(StringComparer.Ordinal));
        Assert.Same(one, local.Files[one].Path);
        Assert.Same(two, local.Files.Keys.Single(k => k == two));
    }
}
