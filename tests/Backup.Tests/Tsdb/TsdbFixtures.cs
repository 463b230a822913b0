using System.Text;
using InfraTools.Backup.Tsdb;
using Serilog;
using Serilog.Core;
using Serilog.Events;

namespace InfraTools.Tests.Tsdb;

/// <summary>Synthetic TSDB snapshot directories (real files laid out as Prometheus does), stores on the real S3 server, a logger that keeps its lines.</summary>
public static class TsdbFixtures
{
    private const string Alphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    /// <summary>A fresh, valid ULID.</summary>
    public static string NewUlid() => "01" + new string(Enumerable.Range(0, 24).Select(_ => Alphabet[Random.Shared.Next(Alphabet.Length)]).ToArray());

    /// <summary>Writes block directory ULID under <paramref name="snapshot"/>: meta.json, index, tombstones, chunks/000001.. with seeded random content.</summary>
    public static string WriteBlock(string snapshot, string ulid, int seed, int chunkBytes = 20_000, int chunkFiles = 1, int level = 1, string tombstones = "")
    {
        var dir = Path.Combine(snapshot, ulid);
        Directory.CreateDirectory(Path.Combine(dir, "chunks"));
        var random = new Random(seed);
        byte[] Bytes(int n) { var b = new byte[n]; random.NextBytes(b); return b; }
        WriteMeta(dir, ulid, level, tombstones.Length > 0 ? 1 : 0);
        File.WriteAllBytes(Path.Combine(dir, "index"), Bytes(3000 + seed % 1000));
        File.WriteAllBytes(Path.Combine(dir, "tombstones"), [0x01, 0x30, 0xBA, 0x30, 0x01, .. Encoding.UTF8.GetBytes(tombstones), 0, 0, 0, 0]);
        for (var i = 1; i <= chunkFiles; i++) File.WriteAllBytes(Path.Combine(dir, "chunks", i.ToString("000000")), Bytes(chunkBytes));
        return dir;
    }

    /// <summary>Rewrites a block's meta.json and tombstones in place, as deleting series does.</summary>
    public static void DeleteSeries(string blockDir, string what)
    {
        var ulid = Path.GetFileName(blockDir);
        WriteMeta(blockDir, ulid, 1, 1);
        File.WriteAllBytes(Path.Combine(blockDir, "tombstones"), [0x01, 0x30, 0xBA, 0x30, 0x01, .. Encoding.UTF8.GetBytes(what), 0, 0, 0, 0]);
    }

    private static void WriteMeta(string dir, string ulid, int level, int tombstones) =>
        File.WriteAllText(Path.Combine(dir, "meta.json"), $$"""
            {
            	"ulid": "{{ulid}}",
            	"minTime": 1700000000000,
            	"maxTime": 1700007200000,
            	"stats": {"numSamples": 360, "numSeries": 3, "numChunks": 3, "numTombstones": {{tombstones}}},
            	"compaction": {"level": {{level}}, "sources": ["{{ulid}}"]},
            	"version": 1
            }
            """);

    /// <summary>Copies a block into another snapshot directory (Prometheus hard-links it; the content is the same).</summary>
    public static void CopyBlock(string fromSnapshot, string toSnapshot, string ulid)
    {
        foreach (var file in Directory.EnumerateFiles(Path.Combine(fromSnapshot, ulid), "*", SearchOption.AllDirectories))
        {
            var target = Path.Combine(toSnapshot, Path.GetRelativePath(fromSnapshot, file));
            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            File.Copy(file, target);
        }
        Directory.CreateDirectory(Path.Combine(toSnapshot, ulid, "chunks"));
    }

    public static Dictionary<string, byte[]> Tree(string root) =>
        Directory.EnumerateFiles(root, "*", SearchOption.AllDirectories)
            .ToDictionary(f => Path.GetRelativePath(root, f), File.ReadAllBytes, StringComparer.Ordinal);

    public static void AssertSameTree(string expectedRoot, string actualRoot)
    {
        var expected = Tree(expectedRoot);
        var actual = Tree(actualRoot);
        Assert.NotEmpty(expected);
        Assert.Equal(expected.Keys.Order(StringComparer.Ordinal), actual.Keys.Order(StringComparer.Ordinal));
        foreach (var (path, content) in expected) Assert.True(content.AsSpan().SequenceEqual(actual[path]), $"{path} differs");
    }

    /// <summary>All files of the blocks of a snapshot directory, as keys relative to the prefix.</summary>
    public static List<string> Keys(string snapshot, params string[] ulids) =>
        ulids.SelectMany(u => Directory.EnumerateFiles(Path.Combine(snapshot, u), "*", SearchOption.AllDirectories)
            .Select(f => $"blocks/{u}/{Path.GetRelativePath(Path.Combine(snapshot, u), f)}")).Order(StringComparer.Ordinal).ToList();

    public static long Bytes(string snapshot, params string[] ulids) =>
        ulids.Sum(u => Directory.EnumerateFiles(Path.Combine(snapshot, u), "*", SearchOption.AllDirectories).Sum(f => new FileInfo(f).Length));

    public static async Task<(CountingStore Store, InfraTools.S3.S3Store Client, string Bucket)> NewStoreAsync(string purpose, string prefix = "prometheus/")
    {
        var bucket = await S3Server.Shared.NewBucketAsync(purpose);
        var client = S3Server.Shared.Client();
        return (new CountingStore(client, bucket, prefix), client, bucket);
    }

    public static (ILogger Log, LogLines Lines) Logger()
    {
        var lines = new LogLines();
        return (new LoggerConfiguration().MinimumLevel.Debug().WriteTo.Sink(lines).CreateLogger(), lines);
    }
}

/// <summary>Keeps every rendered log line with its level.</summary>
public sealed class LogLines : ILogEventSink
{
    private readonly List<(LogEventLevel Level, string Text)> _lines = [];

    public void Emit(LogEvent logEvent)
    {
        lock (_lines) _lines.Add((logEvent.Level, logEvent.RenderMessage()));
    }

    public List<string> At(LogEventLevel level) { lock (_lines) return _lines.Where(l => l.Level == level).Select(l => l.Text).ToList(); }

    public override string ToString() { lock (_lines) return string.Join('\n', _lines.Select(l => $"{l.Level}: {l.Text}")); }
}
