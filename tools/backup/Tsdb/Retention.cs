using InfraTools.Storage;
using System.Globalization;
using InfraTools.Cli;

namespace InfraTools.Backup.Tsdb;

/// <summary>
/// Which snapshots to keep: the <see cref="KeepLast"/> newest complete ones always (the floor), and
/// grandfather-father-son: the newest snapshot of each of the <see cref="KeepDaily"/> most recent days that have
/// a snapshot, of each of the <see cref="KeepWeekly"/> most recent ISO weeks that have one, of each of the
/// <see cref="KeepMonthly"/> most recent months that have one. Days, weeks and months are UTC, by the server's
/// time of each snapshot, and are counted in snapshots: a day without a snapshot (a missed run, a failed push)
/// does not use up one of the N days. Unreferenced block objects are deleted only when written more than
/// <see cref="BlockGrace"/> before the newest manifest.
/// </summary>
public sealed class RetentionPolicy(int KeepLast, int KeepDaily = 0, int KeepWeekly = 0, int KeepMonthly = 0, TimeSpan? BlockGrace = null)
{
    public int KeepLast { get; } = KeepLast;
    public int KeepDaily { get; } = KeepDaily;
    public int KeepWeekly { get; } = KeepWeekly;
    public int KeepMonthly { get; } = KeepMonthly;

    /// <summary>--keep-last when only --keep-daily/--keep-weekly/--keep-monthly are given.</summary>
    public const int DefaultKeepLast = 3;

    public static readonly TimeSpan DefaultBlockGrace = TimeSpan.FromHours(24);

    /// <summary>How long before the newest manifest an unreferenced block object must have been written to be deleted.</summary>
    public TimeSpan Grace { get; } = BlockGrace ?? DefaultBlockGrace;

    /// <summary>
    /// The policy of the command-line flags, or null when none is given (nothing is pruned). --keep-last alone
    /// keeps the N newest (as before); with any of the GFS flags it is the floor, <see cref="DefaultKeepLast"/> unless given.
    /// </summary>
    public static RetentionPolicy? FromOptions(int? keepLast, int? keepDaily, int? keepWeekly, int? keepMonthly)
    {
        if (keepLast is null && keepDaily is null && keepWeekly is null && keepMonthly is null) return null;
        if (keepLast is < 1) throw new UsageException($"--keep-last {keepLast} must be at least 1: the newest complete snapshot is never deleted");
        foreach (var (flag, value) in new[] { ("--keep-daily", keepDaily), ("--keep-weekly", keepWeekly), ("--keep-monthly", keepMonthly) })
            if (value is < 0) throw new UsageException($"{flag} {value} must be 0 or more");
        return new RetentionPolicy(keepLast ?? DefaultKeepLast, keepDaily ?? 0, keepWeekly ?? 0, keepMonthly ?? 0);
    }

    public override string ToString() =>
        $"keep-last {KeepLast}, keep-daily {KeepDaily}, keep-weekly {KeepWeekly}, keep-monthly {KeepMonthly}";
}

/// <summary>One kept snapshot and why.</summary>
public sealed class KeptSnapshot(SnapshotRef snapshot, IReadOnlyList<string> reasons)
{
    public SnapshotRef Snapshot { get; } = snapshot;
    public IReadOnlyList<string> Reasons { get; } = reasons;
}

public sealed class RetentionDecision(IReadOnlyList<KeptSnapshot> keep, IReadOnlyList<SnapshotRef> prune)
{
    public IReadOnlyList<KeptSnapshot> Keep { get; } = keep;
    public IReadOnlyList<SnapshotRef> Prune { get; } = prune;
}

/// <summary>What block garbage collection deletes, and what it keeps back and why.</summary>
public sealed class BlockCollection(IReadOnlyList<StoredObject> delete, int referenced, IReadOnlyList<StoredObject> tooYoung, string? skippedBecause)
{
    public IReadOnlyList<StoredObject> Delete { get; } = delete;
    public int Referenced { get; } = referenced;
    public IReadOnlyList<StoredObject> TooYoung { get; } = tooYoung;
    public string? SkippedBecause { get; } = skippedBecause;

    public long DeleteBytes => Delete.Sum(o => o.Size);
}

/// <summary>Retention, pure: which snapshots go, then which block objects no kept snapshot needs.</summary>
public static class Retention
{
    /// <summary>
    /// Applies <paramref name="policy"/> to <paramref name="snapshots"/> (both kinds together). Only complete
    /// snapshots count and are kept or pruned by the policy; <paramref name="justWritten"/> is always kept;
    /// incomplete ones (an interrupted full copy, a manifest whose objects are gone) are pruned once they are
    /// older than the newest complete snapshot; unreadable manifests are never pruned. With no complete
    /// snapshot nothing is pruned.
    /// </summary>
    public static RetentionDecision Decide(IReadOnlyList<SnapshotRef> snapshots, RetentionPolicy policy, string? justWritten)
    {
        if (policy.KeepLast < 1) throw new ArgumentOutOfRangeException(nameof(policy), "keep-last is at least 1");
        var complete = snapshots.Where(s => s.Complete && !s.Unreadable)
            .OrderByDescending(s => s.Time).ThenByDescending(s => s.Name, StringComparer.Ordinal).ThenByDescending(s => (int)s.Kind).ToList();
        if (complete.Count == 0) return new RetentionDecision([], []);
        var reasons = new Dictionary<SnapshotRef, List<string>>();
        void Keep(SnapshotRef s, string reason)
        {
            if (!reasons.TryGetValue(s, out var list)) reasons[s] = list = [];
            list.Add(reason);
        }
        foreach (var s in complete.Take(policy.KeepLast)) Keep(s, "last");
        KeepNewestPerPeriod(complete, policy.KeepDaily, t => t.Year * 10000 + t.Month * 100 + t.Day, "daily", Keep);
        KeepNewestPerPeriod(complete, policy.KeepWeekly, t => ISOWeek.GetYear(t) * 100 + ISOWeek.GetWeekOfYear(t), "weekly", Keep);
        KeepNewestPerPeriod(complete, policy.KeepMonthly, t => t.Year * 100 + t.Month, "monthly", Keep);
        foreach (var s in complete.Where(s => s.Name == justWritten)) Keep(s, "just written");

        var newest = complete[0].Time;
        var prune = complete.Where(s => !reasons.ContainsKey(s))
            .Concat(snapshots.Where(s => !s.Complete && !s.Unreadable && s.Time < newest && s.Name != justWritten));
        return new RetentionDecision(
            complete.Where(reasons.ContainsKey).Select(s => new KeptSnapshot(s, reasons[s])).ToList(),
            Catalog.Order(prune));
    }

    private static void KeepNewestPerPeriod(List<SnapshotRef> newestFirst, int count, Func<DateTime, int> period, string reason, Action<SnapshotRef, string> keep)
    {
        if (count == 0) return;
        var seen = new List<int>();
        foreach (var s in newestFirst)
        {
            var key = period(s.Time.UtcDateTime);
            if (seen.Contains(key)) continue; // an older snapshot of a period already kept
            seen.Add(key);
            if (seen.Count > count) break;
            keep(s, reason);
        }
    }

    /// <summary>
    /// The block objects to delete: under blocks/, named by no kept manifest, and written more than the grace
    /// period before the newest manifest, so that the blocks a push still in progress has uploaded (and not yet
    /// named in its manifest, which comes last) are left alone. Nothing is deleted while a kept manifest cannot
    /// be read, or when there is no manifest at all.
    /// </summary>
    public static BlockCollection CollectBlocks(IReadOnlyList<StoredObject> listing, IReadOnlyList<SnapshotManifest> keptManifests, int unreadableManifests,
        DateTimeOffset? newestManifestTime, TimeSpan grace)
    {
        if (!listing.Any(o => o.Key.StartsWith(BucketLayout.BlocksPrefix, StringComparison.Ordinal)))
            return new BlockCollection([], 0, [], null); // full copies only (or a prefix of files): no block to collect
        if (unreadableManifests > 0)
            return new BlockCollection([], 0, [], $"{unreadableManifests} manifest(s) cannot be read, so which blocks they need is unknown");
        if (newestManifestTime is not { } newest) return new BlockCollection([], 0, [], "there is no manifest");
        var referenced = keptManifests.SelectMany(m => m.Keys).ToHashSet(StringComparer.Ordinal);
        var cutoff = newest - grace;
        var unreferenced = listing.Where(o => o.Key.StartsWith(BucketLayout.BlocksPrefix, StringComparison.Ordinal) && !referenced.Contains(o.Key)).ToList();
        return new BlockCollection(
            unreferenced.Where(o => o.LastModified < cutoff).ToList(),
            referenced.Count,
            unreferenced.Where(o => o.LastModified >= cutoff).ToList(),
            null);
    }
}
