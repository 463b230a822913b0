namespace InfraTools.Sync;

/// <summary>
/// A file on either side of a sync, by its '/'-separated path relative to the side's root. A local file has its
/// mtime (<see cref="LocalLastWriteUtc"/>) and no ETag until one is computed; an object has its ETag and key.
/// <see cref="Modified"/> is the object's Last-Modified, or the local file's mtime. An object's key is
/// <see cref="KeyPrefix"/> + <see cref="Path"/>, or <see cref="Key"/> where it is not (an encrypted object's suffix):
/// at 100,000 objects a key string of each would be ~8 MB held only to name the few that a message mentions.
/// </summary>
public sealed record SyncFile(string Path, long Size, string? ETag, DateTime? LocalLastWriteUtc, DateTimeOffset Modified, string? Key = null)
{
    public bool IsLocal => LocalLastWriteUtc is not null;

    /// <summary>An object's key without <see cref="Path"/> (the side's prefix, one string for all), when <see cref="Key"/> is not given.</summary>
    public string? KeyPrefix { get; init; }

    /// <summary>How messages name it: the object key, or the relative path.</summary>
    public string Name => Key ?? KeyPrefix + Path;
}

/// <summary>A source entry that is not synced, and why.</summary>
public sealed record SkippedKey(string Key, string Problem);

/// <summary>What one side holds, read once per run. Excluded paths never appear here.</summary>
public sealed class SideListing(int expectedFiles = 0)
{
    /// <summary>The files by path; sized for <c>expectedFiles</c> (the last run's count) so that 100,000 do not grow it by doubling.</summary>
    public Dictionary<string, SyncFile> Files { get; } = new(expectedFiles, StringComparer.Ordinal);
    /// <summary>Directories that exist on their own: local directories, or an object store's folder markers ("dir/"); parents of files are implied.</summary>
    public HashSet<string> Directories { get; } = new(StringComparer.Ordinal);
    /// <summary>Local entries that are neither regular files nor directories (links, FIFOs...), with their type: never opened.</summary>
    public Dictionary<string, string> Others { get; } = new(StringComparer.Ordinal);
    /// <summary>Local directories that could not be read, with the reason.</summary>
    public List<(string Path, string Reason)> Unreadable { get; } = [];
    /// <summary>Local names that are not UTF-8.</summary>
    public List<UndecodableEntry> Undecodable { get; } = [];
    /// <summary>Temporary files our interrupted runs left here.</summary>
    public List<string> Leftovers { get; } = [];
    /// <summary>Entries seen but not usable by this side's own rules (keys that map to no path).</summary>
    public List<SkippedKey> Skipped { get; } = [];
}

/// <summary>
/// What a read tells about the content it streams: its length (-1 if not announced), ETag (if known) and time.
/// <see cref="Authenticated"/> content was decoded and checked by the side itself (an age file's MACs cover every
/// byte and its end): no ETag or length applies to it, and a broken one fails while it is read.
/// </summary>
public sealed record SourceInfo(long Size, string? ETag, DateTimeOffset Modified, bool Authenticated = false);

/// <summary>What a write stored: size, the ETag if this side knows one, the local mtime if this side is local.</summary>
public sealed record Written(long Size, string? ETag, DateTime? LocalLastWriteUtc);

/// <summary>
/// One side of a sync: a local directory tree or a prefix in a bucket. The engine (planner, runner) only talks
/// to sides; which way a run goes (pull: bucket to local; push: local to bucket; restore: bucket to local
/// without a manifest) is only which side is the source.
/// </summary>
public interface ISyncSide
{
    /// <summary>How messages show a path of this side: /srv/www/a.html or s3://bucket/site/a.html.</summary>
    string Describe(string path);

    /// <summary>How skip messages name an entry: the object key (site/a.html) or the relative path (a.html).</summary>
    string NameOf(string path);

    /// <summary>True for a local directory tree: directories exist on their own, a file and a directory cannot share a path.</summary>
    bool IsTree { get; }

    /// <summary>The verb of a transfer into this side, for logs: "download" into a local tree, "upload" into a bucket.</summary>
    string ReceiveVerb { get; }

    /// <summary>The message for a source entry whose path this side cannot hold (a key with "..", a name a restore could not write back).</summary>
    string ExplainUnsafe(string problem);

    Task<SideListing> ListAsync(CancellationToken cancellationToken);

    /// <summary>Streams one of this side's files to <paramref name="consume"/>, which must read it before returning.</summary>
    Task ReadAsync(SyncFile file, Func<Stream, SourceInfo, CancellationToken, Task> consume, CancellationToken cancellationToken);

    /// <summary>Writes <paramref name="source"/>'s content here, checking its length and checksum as far as this side can.</summary>
    Task<Written> WriteAsync(SyncFile source, Stream content, SourceInfo info, CancellationToken cancellationToken);

    /// <summary>The ETag-style checksum of one of this side's files: a local side computes it (MD5, or multipart MD5), a bucket knows it.</summary>
    Task<string> ChecksumAsync(SyncFile file, CancellationToken cancellationToken);

    /// <summary>After a check found <paramref name="here"/> equal to <paramref name="source"/>: what the manifest records for it (a local file takes the object's time as mtime).</summary>
    Written Adopt(SyncFile source, SyncFile here);

    /// <summary>Deletes files of this side; returns the ones that could not be deleted, with the reason.</summary>
    Task<IReadOnlyList<(string Path, string Error)>> DeleteFilesAsync(IReadOnlyList<string> paths, CancellationToken cancellationToken);

    /// <summary>Deletes directories (deepest first; a local one only if empty by then): each one deleted (Error null) or failed; those left (not empty, gone) are not listed.</summary>
    Task<IReadOnlyList<(string Path, string? Error)>> DeleteDirectoriesAsync(IReadOnlyList<string> paths, CancellationToken cancellationToken);

    /// <summary>Deletes entries named by raw bytes (local names that are not UTF-8), directories with their content; returns failures.</summary>
    IReadOnlyList<(string Path, string Error)> DeleteUndecodable(IReadOnlyList<UndecodableEntry> entries);

    /// <summary>Makes sure these directories exist (a bucket needs none); returns failures.</summary>
    IReadOnlyList<(string Path, string Error)> CreateDirectories(IReadOnlyList<string> paths);

    /// <summary>Removes temporary files an interrupted run of ours left behind.</summary>
    void RemoveLeftovers(IReadOnlyList<string> paths);
}
