using InfraTools.Storage;
using InfraTools.Backup.Tsdb;

namespace InfraTools.Tests.Tsdb;

/// <summary>Push planning, in-process: which files of a local snapshot go up, which blocks are already in the bucket.</summary>
public class TsdbPlanningTests
{
    private static readonly DateTimeOffset T0 = new(2026, 12, 1, 3, 0, 0, TimeSpan.Zero);

    /// <summary>A valid ULID for a one-letter block name in the tables.</summary>
    public static string U(char letter) => "01" + new string(letter, 24);

    /// <summary>"A meta.json:10:m1 index:100 chunks/000001:1000": block A, files path:size[:etag].</summary>
    public static LocalBlock Block(string spec)
    {
        var parts = spec.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        var ulid = U(parts[0][0]);
        var files = parts[1..].Select(p =>
        {
            var f = p.Split(':');
            return new LocalFile(f[0], $"/snap/{ulid}/{f[0]}", long.Parse(f[1]), f.Length > 2 ? f[2] : null);
        }).ToList();
        return new LocalBlock(new BlockMeta(ulid, 0, 7_200_000, 1, []), $"/snap/{ulid}", files);
    }

    /// <summary>"A/meta.json:10:m1" or "A/meta.json.m2:10:m2": an object under blocks/.</summary>
    public static StoredObject Stored(string spec, int minutes = 0)
    {
        var f = spec.Split(':');
        var slash = f[0].IndexOf('/');
        return new StoredObject($"blocks/{U(f[0][0])}{f[0][slash..]}", long.Parse(f[1]), f.Length > 2 ? f[2] : "x", T0.AddMinutes(minutes));
    }

    private static string Short(string key) => key.Replace("blocks/", "").Replace(U(key["blocks/".Length + 2]), key["blocks/".Length + 2].ToString());

    public static TheoryData<string, string[], string[], string[], string[], string> Cases => new()
    {
        // description, local blocks, bucket objects, expected uploads (key reason), expected reused keys, expected "complete|new|partial"
        {
            "empty bucket: every file of every block goes up",
            ["A meta.json:10:m1 tombstones:9:t0 index:100 chunks/000001:1000", "B meta.json:10:m2 index:50"], [],
            ["A/chunks/000001 New", "A/index New", "A/meta.json New", "A/tombstones New", "B/index New", "B/meta.json New"], [], "|A,B|"
        },
        {
            "everything already up: nothing is uploaded",
            ["A meta.json:10:m1 tombstones:9:t0 index:100 chunks/000001:1000"],
            ["A/meta.json:10:m1", "A/tombstones:9:t0", "A/index:100", "A/chunks/000001:1000"],
            [], ["A/chunks/000001", "A/index", "A/meta.json", "A/tombstones"], "A||"
        },
        {
            "next day: old blocks skipped, only the new block and the head cut go up",
            ["A meta.json:10:m1 index:100 chunks/000001:1000", "N meta.json:10:mn index:60 chunks/000001:600", "H meta.json:10:mh index:5 chunks/000001:40"],
            ["A/meta.json:10:m1", "A/index:100", "A/chunks/000001:1000", "G/meta.json:10:mg", "G/index:5", "G/chunks/000001:30"],
            ["H/chunks/000001 New", "H/index New", "H/meta.json New", "N/chunks/000001 New", "N/index New", "N/meta.json New"],
            ["A/chunks/000001", "A/index", "A/meta.json"], "A|N,H|"
        },
        {
            "compaction: the new level-2 block goes up; its parents, still in the bucket, are not part of this snapshot",
            ["C meta.json:12:mc index:140 chunks/000001:1900"],
            ["A/meta.json:10:m1", "A/index:100", "A/chunks/000001:1000", "B/meta.json:10:m2", "B/index:90", "B/chunks/000001:950"],
            ["C/chunks/000001 New", "C/index New", "C/meta.json New"], [], "|C|"
        },
        {
            "series deleted: Prometheus rewrote meta.json and tombstones under the same ULID; new versions go to variant keys, index and chunks are reused",
            ["A meta.json:11:m9 tombstones:40:t9 index:100 chunks/000001:1000"],
            ["A/meta.json:10:m1", "A/tombstones:9:t0", "A/index:100", "A/chunks/000001:1000"],
            ["A/meta.json.m9 Changed", "A/tombstones.t9 Changed"], ["A/chunks/000001", "A/index"], "||A"
        },
        {
            "same size, other ETag: a rewritten meta.json of the same length is still a change",
            ["A meta.json:10:m2 index:100"], ["A/meta.json:10:m1", "A/index:100"],
            ["A/meta.json.m2 Changed"], ["A/index"], "||A"
        },
        {
            "the variant is already up (the day after the deletion): reused, nothing uploaded",
            ["A meta.json:11:m9 tombstones:40:t9 index:100"],
            ["A/meta.json:10:m1", "A/tombstones:9:t0", "A/index:100", "A/meta.json.m9:11:m9", "A/tombstones.t9:40:t9"],
            [], ["A/index", "A/meta.json.m9", "A/tombstones.t9"], "A||"
        },
        {
            "the first version was pruned, the variant stays: reused",
            ["A meta.json:11:m9 index:100"], ["A/index:100", "A/meta.json.m9:11:m9"], [], ["A/index", "A/meta.json.m9"], "A||"
        },
        {
            "an interrupted push left half a block: only the missing files go up",
            ["A meta.json:10:m1 index:100 chunks/000001:1000 chunks/000002:500"], ["A/chunks/000001:1000", "A/index:100"],
            ["A/chunks/000002 New", "A/meta.json New"], ["A/chunks/000001", "A/index"], "||A"
        },
        {
            "full checksum scan: an index with the same size but another ETag goes to its variant key",
            ["A meta.json:10:m1 index:100:i2"], ["A/meta.json:10:m1", "A/index:100:i1"], ["A/index.i2 Changed"], ["A/meta.json"], "||A"
        },
        {
            "full checksum scan: same size and ETag is reused",
            ["A meta.json:10:m1 index:100:i1"], ["A/meta.json:10:m1", "A/index:100:i1"], [], ["A/index", "A/meta.json"], "A||"
        },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void Plan_uploads_exactly_what_the_bucket_lacks(string description, string[] local, string[] bucket, string[] uploads, string[] reused, string blocks)
    {
        Assert.NotEmpty(local);
        var snapshot = new LocalSnapshot("/snap", local.Select(Block).ToList());
        var plan = PushPlanner.Plan(snapshot, bucket.Select(s => Stored(s)).ToList());

        Assert.True(plan.IsFinal, description);
        Assert.Equal(uploads.Order(StringComparer.Ordinal), plan.Uploads.Select(u => $"{Short(u.Key)} {u.Reason}").Order(StringComparer.Ordinal));
        Assert.Equal(reused.Order(StringComparer.Ordinal), plan.Reused.Select(r => Short(r.Object.Key)).Order(StringComparer.Ordinal));
        var letters = (List<string> ulids) => string.Join(',', ulids.Select(u => u[2]));
        Assert.Equal(blocks, $"{letters(plan.CompleteBlocks)}|{letters(plan.NewBlocks)}|{letters(plan.PartialBlocks)}");
        Assert.Equal(snapshot.Blocks.Sum(b => b.Files.Count), plan.Uploads.Count + plan.Reused.Count);
        Assert.Equal(plan.Uploads.Sum(u => u.File.Size), plan.UploadBytes);
    }

    [Fact]
    public void An_index_of_another_size_under_the_same_ULID_is_checksummed_first_then_goes_to_its_variant_key()
    {
        var snapshot = new LocalSnapshot("/snap", [Block("A meta.json:10:m1 index:120")]);
        var bucket = new[] { Stored("A/meta.json:10:m1"), Stored("A/index:100:i1") };

        var first = PushPlanner.Plan(snapshot, bucket);
        Assert.False(first.IsFinal);
        Assert.Equal("index", Assert.Single(first.NeedChecksum).Path);
        Assert.Throws<InvalidOperationException>(() => first.BuildManifest("20261201T030000Z", T0, null));

        var withChecksum = new LocalSnapshot("/snap", [Block("A meta.json:10:m1 index:120:i7")]);
        var second = PushPlanner.Plan(withChecksum, bucket);
        Assert.True(second.IsFinal);
        Assert.Equal($"blocks/{U('A')}/index.i7", Assert.Single(second.Uploads).Key);
    }

    [Fact]
    public void The_manifest_names_exactly_the_blocks_of_the_snapshot_with_the_objects_that_hold_them()
    {
        var snapshot = new LocalSnapshot("/snap", [Block("C meta.json:12:mc index:140 chunks/000001:1900"), Block("H meta.json:10:mh index:5")]);
        var bucket = new[]
        {
            Stored("A/meta.json:10:m1"), Stored("A/index:100"), // a parent of C, no longer in this snapshot
            Stored("C/meta.json:12:mc"), Stored("C/index:140:ic"), Stored("C/chunks/000001:1900:cc"),
            Stored("H/meta.json:10:m0"), Stored("H/meta.json.mh:10:mh"), Stored("H/index:5:ih"),
        };
        var plan = PushPlanner.Plan(snapshot, bucket);
        Assert.Empty(plan.Uploads);

        var manifest = plan.BuildManifest("20261201T030000Z", T0, "20261201T025959Z-0123456789abcdef");

        Assert.Equal([U('C'), U('H')], manifest.Blocks.Select(b => b.Ulid));
        Assert.Equal(["meta.json", "index", "chunks/000001"], manifest.Blocks[0].Files.Select(f => f.Path));
        Assert.Equal(("blocks/" + U('C') + "/index", 140L, "ic"), (manifest.Blocks[0].Files[1].Key, manifest.Blocks[0].Files[1].Size, manifest.Blocks[0].Files[1].ETag));
        Assert.Equal($"blocks/{U('H')}/meta.json.mh", manifest.Blocks[1].Files[0].Key);
        Assert.DoesNotContain(manifest.Keys, k => k.Contains(U('A'), StringComparison.Ordinal));
        Assert.Equal(12 + 140 + 1900 + 10 + 5, manifest.Bytes);
    }

    [Fact]
    public void A_name_already_taken_by_a_manifest_is_reported()
    {
        var listing = new[] { new StoredObject("snapshots/20261201T030000Z.json", 10, "e", T0) };
        Assert.Contains("already exists", PushPlanner.NameProblem(listing, "20261201T030000Z"));
        Assert.Null(PushPlanner.NameProblem(listing, "20261201T030001Z"));
    }
}
