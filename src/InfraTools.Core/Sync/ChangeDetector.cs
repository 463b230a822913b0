namespace InfraTools.Sync;

/// <summary>What a source file needs, compared with the target's file at the same path.</summary>
public enum Change
{
    /// <summary>Known to be the same without reading anything.</summary>
    Unchanged,
    /// <summary>The target has no file there.</summary>
    New,
    /// <summary>Known to differ (size, or the object's ETag moved since the manifest recorded it).</summary>
    Changed,
    /// <summary>Same size but nothing vouches for the content: compare checksums before deciding.</summary>
    Verify,
}

/// <summary>
/// The one rule that decides whether a file changed, for every direction (as rclone's operations.Equal is).
/// The manifest records, per path, the size, the object's ETag and the local file's mtime of the last time the
/// two sides were known to be equal. A pair is unchanged without reading anything when both sides still match
/// that record; it changed when the sizes differ; otherwise its checksums decide — except when the target is
/// still what we last wrote and only an object (the source) moved on: a new ETag always means new content, so it
/// is transferred at once, while a new local mtime may not mean new content and is checked first.
/// </summary>
public static class ChangeDetector
{
    public static Change Decide(SyncFile source, SyncFile? target, ManifestEntry? known)
    {
        if (target is null) return Change.New;
        if (source.Size != target.Size) return Change.Changed;
        var (local, remote) = source.IsLocal ? (source, target) : (target, source);
        var localKnown = known is { } entry && entry.Size == local.Size && entry.LocalLastWriteUtc == local.LocalLastWriteUtc;
        var remoteKnown = known is { } record && record.Size == remote.Size && record.ETag == remote.ETag;
        if (localKnown && remoteKnown) return Change.Unchanged;
        var targetKnown = target.IsLocal ? localKnown : remoteKnown;
        return targetKnown && !source.IsLocal ? Change.Changed : Change.Verify;
    }
}
