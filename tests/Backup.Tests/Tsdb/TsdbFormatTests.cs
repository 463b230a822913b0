using System.Text;
using InfraTools.Backup.Tsdb;
using InfraTools.Cli;

namespace InfraTools.Tests.Tsdb;

/// <summary>meta.json, ULIDs and the snapshot manifest, in-process.</summary>
public class TsdbFormatTests
{
    /// <summary>A level-2 block's meta.json as Prometheus 2.42 writes it (tsdb/block.go writeMetaFile: tab-indented).</summary>
    private const string CompactedMeta = """
        {
        	"ulid": "01HQK3Z6M0V7Y1Q7W9X2N4B5C6",
        	"minTime": 1700000000000,
        	"maxTime": 1700021600000,
        	"stats": {
        		"numSamples": 2160000,
        		"numSeries": 1000,
        		"numChunks": 18000
        	},
        	"compaction": {
        		"level": 2,
        		"sources": ["01HQK0000000000000000000A1", "01HQK0000000000000000000A2", "01HQK0000000000000000000A3"],
        		"parents": [
        			{"ulid": "01HQK0000000000000000000A1", "minTime": 1700000000000, "maxTime": 1700007200000},
        			{"ulid": "01HQK0000000000000000000A2", "minTime": 1700007200000, "maxTime": 1700014400000},
        			{"ulid": "01HQK0000000000000000000A3", "minTime": 1700014400000, "maxTime": 1700021600000}
        		]
        	},
        	"version": 1
        }
        """;

    [Fact]
    public void A_compacted_blocks_meta_json_gives_its_ulid_time_range_level_and_parents()
    {
        var meta = BlockMeta.Parse(Encoding.UTF8.GetBytes(CompactedMeta), "meta.json");
        Assert.Equal("01HQK3Z6M0V7Y1Q7W9X2N4B5C6", meta.Ulid);
        Assert.Equal((1700000000000L, 1700021600000L, 2), (meta.MinTime, meta.MaxTime, meta.Level));
        Assert.Equal(["01HQK0000000000000000000A1", "01HQK0000000000000000000A2", "01HQK0000000000000000000A3"], meta.Parents);
    }

    [Theory]
    [InlineData("""{"ulid":"01HQK3Z6M0V7Y1Q7W9X2N4B5C6","minTime":1,"maxTime":2,"compaction":{"level":1},"version":2}""", "meta version 2")]
    [InlineData("""{"ulid":"01HQK3Z6M0V7Y1Q7W9X2N4B5C6","minTime":1,"maxTime":2,"compaction":{"level":1}}""", "meta version (none)")]
    [InlineData("""{"ulid":"nope","minTime":1,"maxTime":2,"version":1}""", "no valid ulid")]
    [InlineData("""{"ulid":"01HQK3Z6M0V7Y1Q7W9X2N4B5C6","maxTime":2,"version":1}""", "no valid minTime/maxTime")]
    [InlineData("""{"ulid":"01HQK3Z6M0V7Y1Q7W9X2N4B5C6","minTime":3,"maxTime":2,"version":1}""", "no valid minTime/maxTime")]
    [InlineData("""{"ulid":"01HQK3Z6M0V7Y1Q7W9X2N4B5C6",""", "not valid JSON")]
    [InlineData("[1]", "not a JSON object")]
    [InlineData("", "not valid JSON")]
    public void A_bad_meta_json_is_refused_with_one_clear_line(string json, string expected)
    {
        var ex = Assert.Throws<TsdbFormatException>(() => BlockMeta.Parse(Encoding.UTF8.GetBytes(json), "b/meta.json"));
        Assert.Contains(expected, ex.Message);
        Assert.StartsWith("b/meta.json", ex.Message);
        Assert.DoesNotContain('\n', ex.Message);
        Assert.Equal(ExitCodes.Refused, ex.ExitCode);
    }

    [Theory]
    [InlineData("01HQK3Z6M0V7Y1Q7W9X2N4B5C6", true)]
    [InlineData("7ZZZZZZZZZZZZZZZZZZZZZZZZZ", true)]
    [InlineData("8ZZZZZZZZZZZZZZZZZZZZZZZZZ", false)] // overflows 128 bits
    [InlineData("01hqk3z6m0v7y1q7w9x2n4b5c6", false)] // Prometheus names blocks in upper case
    [InlineData("01HQK3Z6M0V7Y1Q7W9X2N4B5CI", false)] // I is not Crockford base32
    [InlineData("01HQK3Z6M0V7Y1Q7W9X2N4B5C", false)]
    [InlineData("01HQK3Z6M0V7Y1Q7W9X2N4B5C6.tmp-for-creation", false)]
    [InlineData("wal", false)]
    public void Block_names_are_ULIDs_as_Prometheus_writes_them(string name, bool valid) => Assert.Equal(valid, BlockUlid.IsValid(name));

    private static SnapshotManifest Sample() => new("20261201T031500Z", new DateTimeOffset(2026, 12, 1, 3, 15, 0, 123, TimeSpan.Zero), "20261201T031459Z-0123456789abcdef",
    [
        new ManifestBlock("01HQK3Z6M0V7Y1Q7W9X2N4B5C6", 1700000000000, 1700021600000, 2,
        [
            new ManifestFile("meta.json", "blocks/01HQK3Z6M0V7Y1Q7W9X2N4B5C6/meta.json.0cc175b9c0f1b6a831c399e269772661", 612, "0cc175b9c0f1b6a831c399e269772661"),
            new ManifestFile("index", "blocks/01HQK3Z6M0V7Y1Q7W9X2N4B5C6/index", 123456, "92eb5ffee6ae2fec3ad71c777531578f"),
            new ManifestFile("chunks/000001", "blocks/01HQK3Z6M0V7Y1Q7W9X2N4B5C6/chunks/000001", 9_000_000, "4a8a08f09d37b73795649038408b5f33-2"),
        ]),
        new ManifestBlock("01HQK40000000000000000HEAD", 1700021600000, 1700022000001, 1,
            [new ManifestFile("meta.json", "blocks/01HQK40000000000000000HEAD/meta.json", 300, "8277e0910d750195b448797616e091ad")]),
    ]);

    [Fact]
    public void A_manifest_survives_a_round_trip_and_says_what_it_holds()
    {
        var manifest = Sample();
        var bytes = manifest.Serialize();
        var text = Encoding.UTF8.GetString(bytes);
        Assert.Contains("\"format\": \"infratools-tsdb-snapshot\"", text);
        Assert.Contains("\"version\": 1", text);
        Assert.Contains("\"bytes\": 9124368", text);

        var back = SnapshotManifest.Parse(bytes, "20261201T031500Z");

        Assert.Equal(manifest.Name, back.Name);
        Assert.Equal(manifest.Created, back.Created);
        Assert.Equal(manifest.Source, back.Source);
        Assert.Equal(manifest.Blocks.Count, back.Blocks.Count);
        static object Block(ManifestBlock b) => (b.Ulid, b.MinTime, b.MaxTime, b.Level, string.Join(";", b.Files.Select(f => $"{f.Path}|{f.Key}|{f.Size}|{f.ETag}")));
        Assert.Equal(manifest.Blocks.Select(Block), back.Blocks.Select(Block));
    }

    [Fact]
    public void Unknown_properties_of_a_version_1_manifest_are_ignored()
    {
        var text = Encoding.UTF8.GetString(Sample().Serialize()).Replace("\"version\": 1,", "\"version\": 1, \"later\": {\"x\": [1, 2]},");
        Assert.Equal(2, SnapshotManifest.Parse(Encoding.UTF8.GetBytes(text), "20261201T031500Z").Blocks.Count);
    }

    public static TheoryData<string, string, string> BadManifests => new()
    {
        { "\"version\": 1", "\"version\": 2", "format version 2, written by a newer backup" },
        { "\"version\": 1,", "", "no format version" },
        { "infratools-tsdb-snapshot", "something-else", "is not an incremental TSDB snapshot manifest" },
        { "\"name\": \"20261201T031500Z\"", "\"name\": \"20261202T000000Z\"", "names snapshot '20261202T000000Z'" },
        { "blocks/01HQK3Z6M0V7Y1Q7W9X2N4B5C6/index", "blocks/01HQK40000000000000000HEAD/index", "names an object outside its block" },
        { "blocks/01HQK3Z6M0V7Y1Q7W9X2N4B5C6/index", "blocks/01HQK3Z6M0V7Y1Q7W9X2N4B5C6/../../secret", "names an object outside its block" },
        { "\"path\": \"index\"", "\"path\": \"../index\"", "has a file path that has a '..' path segment" },
        { "\"path\": \"index\"", "\"path\": \"/etc/passwd\"", "has a file path that is an absolute path" },
        { "\"path\": \"index\"", "\"path\": \"meta.json\"", "lists meta.json twice" },
        { "01HQK40000000000000000HEAD", "01HQK3Z6M0V7Y1Q7W9X2N4B5C6", "lists block 01HQK3Z6M0V7Y1Q7W9X2N4B5C6 twice" },
        { "\"path\": \"meta.json\", \"key\": \"blocks/01HQK40000000000000000HEAD/meta.json\"", "\"path\": \"index\", \"key\": \"blocks/01HQK40000000000000000HEAD/index\"", "has no meta.json" },
        { "\"ulid\": \"01HQK40000000000000000HEAD\"", "\"ulid\": \"head\"", "a block without a valid ulid" },
        { "\"size\": 123456", "\"size\": -1", "has no valid size and ETag" },
        { "\"created\"", "\"made\"", "no valid 'created' time" },
        { "{", "[", "is not a JSON object" },
        { "\"blocks\": [", "\"blocks\": [ nonsense", "is not valid JSON" },
    };

    [Theory]
    [MemberData(nameof(BadManifests))]
    public void A_damaged_foreign_or_newer_manifest_is_refused(string find, string replace, string expected)
    {
        var text = Encoding.UTF8.GetString(Sample().Serialize()).Replace("\n", " ");
        while (text.Contains("  ", StringComparison.Ordinal)) text = text.Replace("  ", " ");
        Assert.Contains(find, text); // the table edits something that is there
        var ex = Assert.Throws<TsdbFormatException>(() => SnapshotManifest.Parse(Encoding.UTF8.GetBytes(text.Replace(find, replace)), "20261201T031500Z"));
        Assert.Contains(expected, ex.Message);
        Assert.Contains("snapshots/20261201T031500Z.json", ex.Message);
    }

    [Theory]
    [InlineData("snapshots/20261201T031500Z.json", "20261201T031500Z")]
    [InlineData("snapshots/20261201T031500Z.json.tmp", null)]
    [InlineData("snapshots/latest.json", null)]
    [InlineData("20261201T031500Z/.backup-complete", null)]
    [InlineData("blocks/01HQK3Z6M0V7Y1Q7W9X2N4B5C6/meta.json", null)]
    public void Manifest_keys_are_recognised_by_name(string key, string? name) => Assert.Equal(name, BucketLayout.ManifestName(key));
}
