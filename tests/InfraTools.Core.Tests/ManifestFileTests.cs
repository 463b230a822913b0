using InfraTools.Sync;

namespace InfraTools.Tests;

/// <summary>The manifest's file: what is saved loads back; a file that is not one, or lines that are not entries, load as nothing.</summary>
public class ManifestFileTests
{
    private const string Header = "# infra-tools mirror manifest v1: relative path, size, etag, local mtime (ticks, UTC)";

    [Fact]
    public async Task What_is_saved_loads_back_entry_for_entry()
    {
        using var dir = new TempDir();
        var path = Path.Combine(dir.Path, "m.tsv");
        var saved = new Manifest();
        var expected = Enumerable.Range(0, 3000).Select(i => ($"d{i % 7}/f{i:D5}.html", new ManifestEntry(i, $"etag{i}", new DateTime(638000000000000000L + i, DateTimeKind.Utc)))).ToList();
        Assert.NotEmpty(expected);
        foreach (var (p, e) in expected) saved.Set(p, e);
        await saved.SaveAsync(path);

        var loaded = Manifest.Load(path);
        Assert.Equal(expected.Count, loaded.Count);
        foreach (var (p, e) in expected)
        {
            Assert.True(loaded.TryGet(p, out var entry), p);
            Assert.Equal(e, entry);
        }
        Assert.False(loaded.Changed);
    }

    [Theory]
    [InlineData("", 0)] // empty file
    [InlineData("# another header\na\t1\te\t2\n", 0)] // not a manifest of ours: nothing of it is trusted
    [InlineData(Header + "\n", 0)]
    [InlineData(Header + "\na\t1\te\t2", 1)] // no newline at the end
    [InlineData(Header + "\na\t1\te\t2\nb\t1\te\n\nc\tx\te\t2\nd\t1\te\t2\t9\ne\t3\tf\t4\n", 2)] // short, empty, bad size, extra field
    public void Lines_that_are_not_entries_are_left_out(string text, int entries)
    {
        using var dir = new TempDir();
        var path = Path.Combine(dir.Path, "m.tsv");
        File.WriteAllText(path, text);
        var loaded = Manifest.Load(path);
        Assert.Equal(entries, loaded.Count);
        if (entries > 0) Assert.True(loaded.TryGet("a", out var a) && a == new ManifestEntry(1, "e", new DateTime(2, DateTimeKind.Utc)));
    }

    [Fact]
    public void A_missing_file_is_an_empty_manifest()
    {
        using var dir = new TempDir();
        Assert.Equal(0, Manifest.Load(Path.Combine(dir.Path, "none", "m.tsv")).Count);
    }
}
