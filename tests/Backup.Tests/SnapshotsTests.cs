using InfraTools.Backup.Tsdb;
using InfraTools.Backup;
using InfraTools.Storage;

namespace InfraTools.Tests;

/// <summary>Snapshot choice and pruning, in-process: ordered by the server's clock, never by the names hosts give them.</summary>
public class SnapshotsTests
{
    private static readonly DateTimeOffset T0 = new(2026, 12, 1, 3, 15, 0, TimeSpan.Zero);

    private static IEnumerable<StoredObject> Snapshot(string name, int minutes, bool complete = true)
    {
        yield return new StoredObject($"p/{name}/data", 1, "e", T0.AddMinutes(minutes));
        if (complete) yield return new StoredObject($"p/{name}/{Snapshots.CompleteMarker}", 1, "e", T0.AddMinutes(minutes));
    }

    [Fact]
    public void Snapshots_are_ordered_by_the_time_the_server_recorded_their_marker()
    {
        var listing = Snapshot("20991231T000000Z", 0).Concat(Snapshot("20261201T031500Z", 10)).Concat(Snapshot("20261201T032000Z", 5, complete: false));

        var found = Snapshots.Find(listing, "p/");

        Assert.Equal(["20991231T000000Z", "20261201T032000Z", "20261201T031500Z"], found.Select(s => s.Name));
        Assert.Equal([true, false, true], found.Select(s => s.Complete));
    }

    public static TheoryData<string[], int, string?, string[]> PruneCases => new()
    {
        // names with minutes (+ = complete, - = incomplete), keep, just written, expected to be pruned
        { ["a:0+", "b:1+", "c:2+"], 2, "c", ["a"] },
        { ["a:0+", "b:1+", "c:2+"], 5, "c", [] },
        // a future-named snapshot is old by the server's clock: pruned, never the new one
        { ["z:0+", "a:1+"], 1, "a", ["z"] },
        // the snapshot just written is never pruned, even if the server's clock says it is not the newest
        { ["a:5+", "b:1+"], 1, "b", [] },
        // incomplete leftovers older than the newest complete one go; newer ones (a push under way) stay
        { ["a:0-", "b:1+", "c:3-"], 1, "b", ["a"] },
        { ["a:0-"], 1, null, [] },
        // a run of failed pushes (incomplete) never eats the last good copy
        { ["good:0+", "f1:1-", "f2:2-", "f3:3-"], 1, null, [] },
    };

    [Theory]
    [MemberData(nameof(PruneCases))]
    public void Pruning_keeps_the_newest_by_server_time_and_never_the_one_just_written(string[] snapshots, int keep, string? justWritten, string[] expected)
    {
        Assert.NotEmpty(snapshots);
        var infos = snapshots.Select(s =>
        {
            var parts = s.Split(':');
            return new SnapshotRef(parts[0], SnapshotKind.FullCopy, T0.AddMinutes(int.Parse(parts[1][..^1])), parts[1].EndsWith('+'));
        }).OrderBy(s => s.Time).ToList();

        // --keep-last alone: the one retention policy behaves as the old keep-N pruning did.
        var decision = Retention.Decide(infos, new RetentionPolicy(keep), justWritten);
        Assert.Equal(expected, decision.Prune.Select(s => s.Name).Order(StringComparer.Ordinal));
    }
}
