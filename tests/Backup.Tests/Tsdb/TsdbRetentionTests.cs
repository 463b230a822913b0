using InfraTools.Storage;
using System.Globalization;
using InfraTools.Backup;
using InfraTools.Backup.Tsdb;
using InfraTools.Cli;

namespace InfraTools.Tests.Tsdb;

/// <summary>GFS retention and block collection, in-process, as tables.</summary>
public class TsdbRetentionTests
{
    /// <summary>
    /// "2026-12-01 03:00" (an incremental snapshot, complete, named by that time), with suffixes: " F" a full copy,
    /// " -" incomplete (an interrupted full copy, a manifest whose objects are gone), " ?" an unreadable manifest,
    /// " name=20991231T000000Z" a name from a host whose clock was off (the time is always the server's).
    /// </summary>
    private static SnapshotRef Parse(string spec)
    {
        var parts = spec.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        var time = DateTimeOffset.ParseExact(parts[0] + " " + parts[1], "yyyy-MM-dd HH:mm", CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal);
        var name = parts.FirstOrDefault(p => p.StartsWith("name=", StringComparison.Ordinal))?[5..] ?? Snapshots.NewName(time);
        return new SnapshotRef(name, parts.Contains("F") ? SnapshotKind.FullCopy : SnapshotKind.Incremental, time, !parts.Contains("-"), parts.Contains("?"));
    }

    private static string Day(int day, string time = "03:00") => new DateTime(2026, 11, 1).AddDays(day - 1).ToString("yyyy-MM-dd", CultureInfo.InvariantCulture) + " " + time;

    private static string[] Daily(int from, int to, string suffix = "") => Enumerable.Range(from, to - from + 1).Select(d => Day(d) + suffix).ToArray();

    private static string Name(string spec) => Parse(spec).Name;

    public static TheoryData<string, string[], (int Last, int Daily, int Weekly, int Monthly), string?, string[]> Cases()
    {
        var data = new TheoryData<string, string[], (int, int, int, int), string?, string[]>
        {
            { "keep-last alone keeps the N newest", Daily(1, 5), (3, 0, 0, 0), null, [Day(1), Day(2)] },
            { "more kept than there are: nothing goes", Daily(1, 5), (10, 0, 0, 0), null, [] },
            { "daily snapshots, keep-daily 7: the 7 newest days stay", Daily(1, 10), (1, 7, 0, 0), null, [Day(1), Day(2), Day(3)] },
            {
                // offen/docker-volume-backup #631: pruning by calendar days after a gap left one backup
                "a gap of 10 missed days does not use up the daily slots: the 3 newest days that have a snapshot stay",
                [Day(1), Day(2), Day(3), Day(14)], (1, 3, 0, 0), null, [Day(1)]
            },
            {
                "after a gap longer than the policy the floor still keeps the newest 3",
                [Day(1), Day(2), Day(3), Day(30)], (3, 1, 0, 0), null, [Day(1)]
            },
            {
                "several pushes a day: the newest of each day counts for the day",
                [Day(1, "01:00"), Day(1, "13:00"), Day(1, "23:00"), Day(2, "01:00"), Day(2, "13:00"), Day(3, "01:00"), Day(3, "13:00")], (1, 3, 0, 0), null,
                [Day(1, "01:00"), Day(1, "13:00"), Day(2, "01:00"), Day(3, "01:00")]
            },
            {
                "the floor is kept whatever the policy says: three pushes today, keep-daily 1",
                [Day(5, "01:00"), Day(5, "02:00"), Day(5, "03:00"), Day(4)], (3, 1, 0, 0), null, [Day(4)]
            },
            {
                // 2026-11-01 is a Sunday: ISO weeks start on Mondays (2, 9, 16, 23, 30 November)
                "weekly: the newest of each of the 4 most recent ISO weeks, beside the dailies",
                Daily(1, 35), (1, 7, 4, 0), null,
                Daily(1, 35).Except(Daily(29, 35)).Except([Day(22), Day(15)]).ToArray()
            },
            {
                "monthly: the newest of each of the 3 most recent months that have one",
                Daily(1, 100), (1, 0, 0, 3), null,
                // days 1-100 from 1 November: the newest (100, in February), the last days of January (92) and December (61); November goes
                Daily(1, 100).Except([Day(61), Day(92), Day(100)]).ToArray()
            },
            {
                "monthly with a month missing: the months that have snapshots count, not the calendar",
                [Day(1), Day(2), Day(62), Day(63), Day(95)], (1, 0, 0, 3), null, [Day(1), Day(62)]
            },
            {
                "GFS together: 7 daily, 4 weekly, 6 monthly over a year of daily pushes keeps 7 + 3 + 5",
                Daily(1, 365), (1, 7, 4, 6), null,
                Daily(1, 365).Except(Daily(359, 365)).Except([Day(358), Day(351), Day(344)])
                    .Except([Day(334), Day(304), Day(273), Day(242), Day(212)]).ToArray()
            },
            {
                "weekly across the new year: 28 December 2026 to 3 January 2027 are one ISO week (2026-W53)",
                ["2026-12-27 03:00", "2026-12-28 03:00", "2026-12-31 03:00", "2027-01-02 03:00", "2027-01-04 03:00"], (1, 0, 2, 0), null,
                ["2026-12-27 03:00", "2026-12-28 03:00", "2026-12-31 03:00"]
            },
            {
                "a run of failed pushes (interrupted full copies, damaged manifests) never pushes the good ones out",
                [.. Daily(1, 3), .. Daily(4, 10, " -")], (2, 2, 0, 0), null, [Day(1)]
            },
            {
                "failed pushes of incremental snapshots leave no manifest: just a gap",
                [Day(1), Day(2), Day(3)], (2, 0, 0, 0), null, [Day(1)]
            },
            {
                "incomplete leftovers older than the newest complete snapshot go, newer ones (a push under way) stay",
                [Day(1, "03:00") + " F -", Day(2), Day(3), Day(3, "04:00") + " F -"], (2, 0, 0, 0), null, [Day(1, "03:00") + " F -"]
            },
            {
                "nothing is complete: nothing is pruned",
                [Day(1) + " -", Day(2) + " F -"], (1, 0, 0, 0), null, []
            },
            {
                "an unreadable manifest (damaged, or from a newer version) is never pruned and does not count",
                [Day(1) + " ?", Day(2), Day(3)], (1, 0, 0, 0), null, [Day(2)]
            },
            {
                "full copies and incremental snapshots are one series: old full copies are pruned like any snapshot",
                [.. Daily(1, 4, " F"), .. Daily(5, 7)], (4, 0, 0, 0), null, [Day(1) + " F", Day(2) + " F", Day(3) + " F"]
            },
            {
                "ordered by the server's time, not by names: a snapshot named far in the future is old if the server says so",
                [Day(1) + " name=20991231T000000Z", Day(2), Day(3)], (2, 0, 0, 0), null, [Day(1) + " name=20991231T000000Z"]
            },
            {
                "the snapshot just written is always kept, even when the server's clock puts it before others",
                [Day(1), Day(2), Day(3)], (1, 0, 0, 0), Snapshots.NewName(DateTimeOffset.Parse(Day(1), CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal)), [Day(2)]
            },
        };
        return data;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Retention_prunes_what_the_policy_does_not_keep(string description, string[] snapshots, (int Last, int Daily, int Weekly, int Monthly) keep,
        string? justWritten, string[] pruned)
    {
        Assert.NotEmpty(snapshots);
        var refs = snapshots.Select(Parse).ToList();
        var policy = new RetentionPolicy(keep.Last, keep.Daily, keep.Weekly, keep.Monthly);

        var decision = Retention.Decide(refs, policy, justWritten);

        Assert.True(pruned.Select(Parse).Select(s => (s.Name, s.Kind)).SequenceEqual(decision.Prune.Select(s => (s.Name, s.Kind))),
            $"{description}: pruned {string.Join(", ", decision.Prune)}");
        // Every snapshot is either kept or pruned or neither (incomplete/unreadable ones that stay), never both.
        Assert.Empty(decision.Keep.Select(k => k.Snapshot).Intersect(decision.Prune));
        var complete = refs.Where(s => s.Complete && !s.Unreadable).OrderByDescending(s => s.Time).ToList();
        Assert.All(complete.Take(keep.Last), s => Assert.Contains(s, decision.Keep.Select(k => k.Snapshot)));
        Assert.DoesNotContain(decision.Prune, s => s.Unreadable);
        if (complete.Count > 0) Assert.Contains(complete[0], decision.Keep.Select(k => k.Snapshot)); // the newest good copy
    }

    [Fact]
    public void Kept_snapshots_say_why()
    {
        var refs = Daily(1, 10).Select(Parse).ToList();
        var decision = Retention.Decide(refs, new RetentionPolicy(2, 2, 2, 0), refs[^1].Name);
        var reasons = decision.Keep.ToDictionary(k => k.Snapshot.Name, k => string.Join(",", k.Reasons));
        Assert.Equal("last,daily,weekly,just written", reasons[Name(Day(10))]);
        Assert.Equal("last,daily", reasons[Name(Day(9))]);
        Assert.Equal("weekly", reasons[Name(Day(8))]); // Sunday 8 November, the newest of the ISO week before
        Assert.Equal(3, reasons.Count);
    }

    [Theory]
    [InlineData(null, null, null, null, null)]
    [InlineData(7, null, null, null, "keep-last 7, keep-daily 0, keep-weekly 0, keep-monthly 0")]
    [InlineData(null, 7, 4, 6, "keep-last 3, keep-daily 7, keep-weekly 4, keep-monthly 6")]
    [InlineData(1, 7, null, null, "keep-last 1, keep-daily 7, keep-weekly 0, keep-monthly 0")]
    [InlineData(null, 0, null, null, "keep-last 3, keep-daily 0, keep-weekly 0, keep-monthly 0")]
    public void Retention_flags_make_a_policy(int? last, int? daily, int? weekly, int? monthly, string? expected) =>
        Assert.Equal(expected, RetentionPolicy.FromOptions(last, daily, weekly, monthly)?.ToString());

    [Theory]
    [InlineData(0, null, "--keep-last 0 must be at least 1")]
    [InlineData(-2, 7, "--keep-last -2 must be at least 1")]
    [InlineData(null, -1, "--keep-daily -1 must be 0 or more")]
    public void Bad_retention_flags_are_usage_errors(int? last, int? daily, string expected)
    {
        var ex = Assert.Throws<UsageException>(() => RetentionPolicy.FromOptions(last, daily, null, null));
        Assert.Contains(expected, ex.Message);
        Assert.Equal(ExitCodes.Usage, ex.ExitCode);
    }

    private static readonly DateTimeOffset Newest = new(2026, 12, 1, 3, 0, 0, TimeSpan.Zero);

    private static SnapshotManifest Manifest(params string[] keys) => new("20261201T030000Z", Newest, null,
        keys.GroupBy(k => k.Split('/')[1]).Select(g => new ManifestBlock(g.Key, 0, 1, 1, g.Select(k => new ManifestFile(k.Split('/', 3)[2], k, 1, "e")).ToList())).ToList());

    public static TheoryData<string, string[], string[], int, int?, string[], string[]> BlockCases => new()
    {
        // description, objects "key@hoursBeforeNewestManifest", kept manifest keys, unreadable manifests, grace hours (null: no manifest), deleted, too young
        {
            "a block only pruned snapshots named goes; the blocks kept snapshots name stay",
            ["blocks/A/index@200", "blocks/A/meta.json@200", "blocks/B/index@100", "blocks/B/meta.json@100"], ["blocks/B/index", "blocks/B/meta.json"], 0, 24,
            ["blocks/A/index", "blocks/A/meta.json"], []
        },
        {
            "an object a kept snapshot names is never deleted, however old",
            ["blocks/A/index@10000"], ["blocks/A/index"], 0, 24, [], []
        },
        {
            "an unreferenced object newer than the grace period (a push under way) stays",
            ["blocks/P/index@2", "blocks/Q/index@-1", "blocks/R/index@30"], [], 0, 24, ["blocks/R/index"], ["blocks/P/index", "blocks/Q/index"]
        },
        {
            "grace 0: everything unreferenced written before the newest manifest goes; written after it, it stays",
            ["blocks/P/index@1", "blocks/Q/index@-1"], [], 0, 0, ["blocks/P/index"], ["blocks/Q/index"]
        },
        {
            "the first version of a rewritten meta.json goes once no kept snapshot names it; the variant stays",
            ["blocks/A/meta.json@300", "blocks/A/meta.json.m9@50", "blocks/A/index@300"], ["blocks/A/meta.json.m9", "blocks/A/index"], 0, 24, ["blocks/A/meta.json"], []
        },
        {
            "full copies, manifests and anything outside blocks/ are never touched by block collection",
            ["20261101T030000Z/x@500", "snapshots/20261101T030000Z.json@500", "blocksX/y@500", "blocks/A/index@500"], [], 0, 24, ["blocks/A/index"], []
        },
        {
            "while a manifest cannot be read, no block is deleted",
            ["blocks/A/index@500"], [], 1, 24, [], []
        },
        {
            "with no manifest at all (only interrupted first pushes), no block is deleted",
            ["blocks/A/index@500"], [], 0, null, [], []
        },
    };

    [Theory]
    [MemberData(nameof(BlockCases))]
    public void Blocks_are_deleted_only_when_no_kept_snapshot_names_them(string description, string[] objects, string[] referenced, int unreadable, int? graceHours,
        string[] deleted, string[] tooYoung)
    {
        Assert.NotEmpty(objects);
        var listing = objects.Select(o => o.Split('@')).Select(p => new StoredObject(p[0], 1, "e", Newest.AddHours(-int.Parse(p[1])))).ToList();
        var kept = referenced.Length > 0 ? [Manifest(referenced)] : new List<SnapshotManifest>();

        var collection = Retention.CollectBlocks(listing, kept, unreadable, graceHours is null ? null : Newest, TimeSpan.FromHours(graceHours ?? 0));

        Assert.True(deleted.SequenceEqual(collection.Delete.Select(o => o.Key)), $"{description}: deleted {string.Join(", ", collection.Delete.Select(o => o.Key))}");
        Assert.Equal(tooYoung, collection.TooYoung.Select(o => o.Key));
        Assert.DoesNotContain(collection.Delete, o => referenced.Contains(o.Key));
        Assert.Equal(unreadable > 0 || graceHours is null, collection.SkippedBecause is not null);
    }
}
