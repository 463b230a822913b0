using InfraTools.Cli;
using InfraTools.Files;

namespace InfraTools.Releases;

/// <summary>
/// A release DEST that cannot be used as it is (a <c>current</c> or <c>releases</c> that is not ours, no release
/// to roll back to), a hard link that the file system refuses, or a release that cannot be made durable. The
/// message says what is wrong and what to do; <see cref="ToolException.ExitCode"/> is 5 (refused, nothing
/// changed) for a DEST or a request that does not fit, 12 (local I/O) for a file system that cannot do it.
/// </summary>
public sealed class ReleaseException(int exitCode, string message) : ToolException(exitCode, message);

/// <summary>How a <see cref="ReleaseDirectory"/> builds, keeps and removes releases.</summary>
public sealed record ReleaseOptions
{
    /// <summary>Modes of the directories created in a release (and of <c>releases/</c>); files keep theirs (links share them).</summary>
    public FileModes Modes { get; init; } = FileModes.WebReadable;

    /// <summary>--keep-releases: the newest N releases (by id) are never deleted; at least 1.</summary>
    public int KeepReleases { get; init; } = 3;

    /// <summary>A release that stopped being current less than this long ago is never deleted.</summary>
    public TimeSpan Grace { get; init; } = TimeSpan.FromMinutes(5);

    /// <summary>--keep-assets GLOB (repeatable): files carried from earlier releases into a new one that lacks them.</summary>
    public IReadOnlyList<string> KeepAssets { get; init; } = [];

    /// <summary>--keep-assets-for: how long after its release stopped being current a file is carried.</summary>
    public TimeSpan KeepAssetsFor { get; init; } = TimeSpan.FromDays(1);

    /// <summary>The clock (tests move it).</summary>
    public TimeProvider Time { get; init; } = TimeProvider.System;

    /// <summary>
    /// Test seam, null in the tools: called at each named step of a run with a running count (links made,
    /// entries deleted) so a crash test can stop the process exactly there. Steps: staging-created, link,
    /// carry, synced, sidecar-renamed, release-renamed, stamped, temp-link, swapped, cleanup-renamed, delete,
    /// leftover-delete.
    /// </summary>
    public Action<string, long>? Step { get; init; }

    internal void Validate()
    {
        if (KeepReleases < 1) throw new UsageException($"--keep-releases {KeepReleases}: at least 1 (the current release) is kept");
        if (Grace < TimeSpan.Zero) throw new UsageException("the grace period cannot be negative");
        if (KeepAssetsFor < TimeSpan.Zero) throw new UsageException("--keep-assets-for cannot be negative");
    }
}

/// <summary>One release in DEST/releases.</summary>
/// <param name="Id">its id (<see cref="ReleaseIds"/>)</param>
/// <param name="CreatedUtc">when it was published (from the id)</param>
/// <param name="Files">regular files in it (null when sizes were not asked for)</param>
/// <param name="Bytes">their total size; files shared with other releases count in each</param>
/// <param name="IsCurrent">DEST/current points to it</param>
/// <param name="CarriedFiles">files carried into it from earlier releases (--keep-assets)</param>
/// <param name="LastCurrentUtc">for a release that is not current: when it stopped being current (or, for one that never was, when it was built)</param>
public sealed record ReleaseInfo(string Id, DateTime CreatedUtc, long? Files, long? Bytes, bool IsCurrent, int CarriedFiles, DateTime LastCurrentUtc);

/// <summary>What linking unchanged files from the current release did.</summary>
/// <param name="Linked">files linked</param>
/// <param name="Bytes">their total size</param>
/// <param name="Missing">paths that are not a regular file in the current release (gone, or another type): the engine downloads them</param>
public sealed record LinkResult(long Linked, long Bytes, IReadOnlyList<string> Missing);

/// <summary>What a publish did.</summary>
/// <param name="Id">the new current release</param>
/// <param name="PreviousId">the release current pointed to before (null for the first one)</param>
/// <param name="Linked">files hard-linked from the current release</param>
/// <param name="Carried">files carried from earlier releases (--keep-assets)</param>
/// <param name="SyncDuration">the syncfs</param>
/// <param name="SwapDuration">symlink and rename of current, and the fsync of DEST</param>
public sealed record PublishResult(string Id, string? PreviousId, long Linked, int Carried, TimeSpan SyncDuration, TimeSpan SwapDuration);

/// <summary>A change of DEST/current by a rollback.</summary>
/// <param name="From">the release current pointed to</param>
/// <param name="To">the release it points to now (equal to From when it already was current)</param>
public sealed record SwapResult(string From, string To)
{
    public bool Changed => From != To;
}

/// <summary>What a cleanup removed.</summary>
/// <param name="Deleted">releases deleted (oldest first)</param>
/// <param name="Kept">releases kept</param>
/// <param name="Entries">files and directories removed, also of deletions an earlier run had begun</param>
public sealed record CleanupResult(IReadOnlyList<string> Deleted, IReadOnlyList<string> Kept, long Entries, TimeSpan Duration);

/// <summary>What a crashed or killed earlier run left and <see cref="ReleaseDirectory.RemoveLeftovers"/> removed.</summary>
/// <param name="StagingDirectories">unfinished releases (releases/.staging-*)</param>
/// <param name="TemporaryLinks">DEST/.current-* links of an interrupted swap</param>
/// <param name="OrphanFiles">releases/&lt;id&gt;.carried lists whose release is gone</param>
/// <param name="Entries">files and directories removed in all</param>
public sealed record LeftoverResult(int StagingDirectories, int TemporaryLinks, int OrphanFiles, long Entries, TimeSpan Duration);
