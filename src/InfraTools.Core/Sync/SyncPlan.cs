namespace InfraTools.Sync;

public enum TransferReason
{
    /// <summary>The target has no file there yet.</summary>
    New,
    /// <summary>The file changed since it was last synced (size, or the object's ETag per the manifest).</summary>
    Changed,
    /// <summary>An entry of another type (a directory where a file goes, a file where a directory is needed) is in the way; waits for the deletes.</summary>
    AfterDeletes,
}

public sealed record Transfer(SyncFile Source, TransferReason Reason);

/// <summary>A same-size pair whose checksums decide: transfer if they differ.</summary>
public sealed record Check(SyncFile Source, SyncFile Target);

/// <summary>
/// What a run will do, decided from the two listings and the manifest alone (no I/O): transfers, checks,
/// unchanged files, deletes, directories, and the source entries skipped. Immutable once planned.
/// </summary>
public sealed class SyncPlan
{
    public required IReadOnlyList<Transfer> Transfers { get; init; }
    public required IReadOnlyList<Check> Checks { get; init; }
    public required IReadOnlyList<SyncFile> Unchanged { get; init; }
    /// <summary>Directories the source defines (folder markers and parents of files), shallowest first: created in a tree target.</summary>
    public required IReadOnlyList<string> Directories { get; init; }
    /// <summary>Target files (and local links, FIFOs...) no longer in the source (only with delete).</summary>
    public required IReadOnlyList<string> DeleteFiles { get; init; }
    /// <summary>Target directories no longer in the source, deepest first (only with delete).</summary>
    public required IReadOnlyList<string> DeleteDirectories { get; init; }
    /// <summary>Target names that are not UTF-8, so in no source (only with delete).</summary>
    public required IReadOnlyList<UndecodableEntry> DeleteUndecodable { get; init; }
    public required IReadOnlyList<SkippedKey> Skipped { get; init; }
    /// <summary>Temporary files of an interrupted run of ours, removed first.</summary>
    public required IReadOnlyList<string> Leftovers { get; init; }
    /// <summary>Local directories that could not be read: nothing below them is synced, and the run is incomplete.</summary>
    public required IReadOnlyList<(string Path, string Reason)> Unreadable { get; init; }
    /// <summary>Source entries (files and folder markers) after exclusions: zero means the source is empty.</summary>
    public required int SourceEntries { get; init; }
    /// <summary>Files the target holds (before the run).</summary>
    public required int TargetFiles { get; init; }
    /// <summary>The source's file paths: the only paths a manifest needs to remember.</summary>
    public required IReadOnlySet<string> SourceFiles { get; init; }

    public IEnumerable<Transfer> TransfersNow => Transfers.Where(t => t.Reason != TransferReason.AfterDeletes);
    public IEnumerable<Transfer> TransfersAfterDeletes => Transfers.Where(t => t.Reason == TransferReason.AfterDeletes);
    public int DeleteCount => DeleteFiles.Count + DeleteUndecodable.Count;
    public bool HasDeletes => DeleteFiles.Count + DeleteDirectories.Count + DeleteUndecodable.Count > 0;
    /// <summary>Files the run goes through (to transfer, to check, unchanged), for progress output.</summary>
    public int FileCount => Transfers.Count + Checks.Count + Unchanged.Count;
}
