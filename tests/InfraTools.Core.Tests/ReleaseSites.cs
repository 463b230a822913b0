using System.Text;
using InfraTools.Files;
using InfraTools.Interop;
using InfraTools.Releases;

namespace InfraTools.Tests;

/// <summary>A clock the tests move by hand.</summary>
public sealed class ManualClock(DateTimeOffset start) : TimeProvider
{
    public DateTimeOffset Now { get; set; } = start;

    public static ManualClock StartingNow() => new(DateTimeOffset.UtcNow);

    public override DateTimeOffset GetUtcNow() => Now;

    public void Advance(TimeSpan by) => Now += by;
}

/// <summary>
/// Sites as path → content maps, published the way the engine will use the module: files of the current tree
/// with the same content are linked, the others written into the staging tree (temporary name, rename).
/// </summary>
public static class ReleaseSites
{
    private static readonly TempNames Names = TempNames.Random();

    /// <summary>A site of <paramref name="count"/> files whose every file names <paramref name="version"/>.</summary>
    public static Dictionary<string, string> Versioned(int version, int count = 20, string prefix = "page") =>
        Enumerable.Range(0, count).ToDictionary(i => $"{(i % 3 == 0 ? "" : $"dir{i % 3}/")}{prefix}{i}.html", i => $"release {version} file {i}\n");

    public static void Write(ReleaseStaging staging, string path, string content)
    {
        var slash = path.LastIndexOf('/');
        if (slash > 0) staging.CreateDirectory(path[..slash]);
        var target = staging.PathOf(path);
        var temp = Names.PathFor(target);
        File.WriteAllText(temp, content);
        File.SetUnixFileMode(temp, AtomicFile.ReadableByAll);
        AtomicFile.Rename(temp, target);
    }

    /// <summary>Publishes <paramref name="site"/>: links what the current tree has with the same content, writes the rest.</summary>
    public static PublishResult Publish(ReleaseDirectory directory, IReadOnlyDictionary<string, string> site)
    {
        var current = directory.CurrentRoot is { } root ? Read(root, directory.IsLegacy) : [];
        var unchanged = site.Where(f => current.TryGetValue(f.Key, out var c) && c == f.Value).Select(f => f.Key).ToList();
        using var staging = directory.BeginStaging(unchanged);
        Assert.Empty(staging.Missing);
        foreach (var (path, content) in site)
            if (!unchanged.Contains(path)) Write(staging, path, content);
        return staging.Publish();
    }

    /// <summary>Every regular file below <paramref name="root"/>, by relative path (DEST's own entries left out for a legacy tree).</summary>
    public static Dictionary<string, string> Read(string root, bool legacy = false)
    {
        var tree = InfraTools.Sync.LocalTree.Scan(root, legacy ? new InfraTools.Sync.GlobFilter(ReleaseDirectory.LegacyExclusions) : null);
        return tree.Files.Keys.ToDictionary(k => k, k => File.ReadAllText(Path.Join(root, k)), StringComparer.Ordinal);
    }

    public static Libc.FileStatus Stat(string path)
    {
        Assert.Equal(0, Libc.Stat(path, followLinks: false, out var status));
        return status;
    }

    public static string LinkTarget(string path) => new FileInfo(path).LinkTarget ?? throw new InvalidOperationException($"{path} is not a link");

    /// <summary>Asserts that DEST/current is a complete release with exactly <paramref name="site"/> in it.</summary>
    public static void AssertServes(string dest, IReadOnlyDictionary<string, string> site)
    {
        var served = Read(Path.Join(dest, "current"));
        Assert.Empty(InfraTools.Sync.LocalTree.Scan(Path.Join(dest, "current")).Others);
        Assert.Equal(site.Keys.Order(StringComparer.Ordinal), served.Keys.Order(StringComparer.Ordinal));
        foreach (var (path, content) in site) Assert.True(served[path] == content, $"{path}: '{served[path]}' instead of '{content}'");
    }

    public static string Text(params string[] lines) => string.Join('\n', lines) + "\n";

    public static byte[] Bytes(string text) => Encoding.UTF8.GetBytes(text);
}
