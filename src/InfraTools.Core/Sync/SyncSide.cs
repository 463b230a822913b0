// The sync engine's sides: the side interface and its entries (SyncSide), the bucket side (BucketSide), and the
// check of which relative paths are safe below a directory (KeyPaths). The local side is in LocalSide.cs.
using System.Text;
using InfraTools.Files;
using InfraTools.Storage;

namespace InfraTools.Sync;

/// <summary>
/// A file on either side of a sync, by its '/'-separated path relative to the side's root. A local file has its
/// mtime (<see cref="LocalLastWriteUtc"/>) and no ETag until one is computed; an object has its ETag and key.
/// <see cref="Modified"/> is the object's Last-Modified, or the local file's mtime. An object's key is
/// <see cref="KeyPrefix"/> + <see cref="Path"/>, or <see cref="Key"/> where it is not (an encrypted object's suffix):
/// at 100,000 objects a key string of each would be ~8 MB held only to name the few that a message mentions.
/// A run holds one per file and side, so the two times are kept as UTC ticks (8 bytes each instead of the 16 of
/// a <c>DateTime?</c> and of a <c>DateTimeOffset</c>): the same instants, the offset of <see cref="Modified"/> is
/// always zero and <see cref="LocalLastWriteUtc"/> is of kind UTC.
/// </summary>
public sealed record SyncFile(string Path, long Size, string? ETag, DateTime? LocalLastWriteUtc, DateTimeOffset Modified, string? Key = null)
{
    private const long NoLocalTime = -1;
    private readonly long _localLastWriteTicks = LocalLastWriteUtc?.Ticks ?? NoLocalTime;
    private readonly long _modifiedUtcTicks = Modified.UtcTicks;

    /// <summary>The local file's mtime; null for an object.</summary>
    public DateTime? LocalLastWriteUtc
    {
        get => _localLastWriteTicks == NoLocalTime ? null : new DateTime(_localLastWriteTicks, DateTimeKind.Utc);
        init => _localLastWriteTicks = value?.Ticks ?? NoLocalTime;
    }

    /// <summary>The object's Last-Modified, or the local file's mtime.</summary>
    public DateTimeOffset Modified
    {
        get => new(_modifiedUtcTicks, TimeSpan.Zero);
        init => _modifiedUtcTicks = value.UtcTicks;
    }

    public bool IsLocal => _localLastWriteTicks != NoLocalTime;

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

/// <summary>
/// A prefix in a bucket as a sync side, through the object-store port. Keys map to paths by dropping the prefix;
/// a key ending in '/' is a folder marker (a directory of its own). Whether a key is a safe local path is the
/// planner's business, not the listing's, so that a push can also delete objects no local name could have.
/// </summary>
/// <remarks>
/// <paramref name="listed"/>, when given, is a listing of the prefix the caller already has (restores), so it is not listed twice;
/// <paramref name="known"/> (the last run's manifest) lets the store list ranges of a large prefix at the same time
/// (its paths are the hint), and the listing holds its path and ETag strings instead of copies.
/// With a <paramref name="transform"/> (encryption), an object PATH + its suffix holds the file PATH encoded: the
/// listing shows the file's path and content size, reads decode and writes encode. A writing transform (a push)
/// leaves objects without the suffix alone (listed as skipped: a plaintext copy from an earlier push is not
/// replaced, compared or deleted); a reading one (a restore) reads them as they are, and prefers PATH + suffix
/// when both exist.
/// </remarks>
public sealed class BucketSide(IObjectStore store, string bucket, string prefix, GlobFilter exclude, IReadOnlySet<string>? ignoreKeys = null,
    IReadOnlyList<StoredObject>? listed = null, IObjectTransform? transform = null, IReadOnlyManifest? known = null) : ISyncSide
{
    /// <summary>What a written or deleted path's key ends with: the transform's suffix when this side encodes.</summary>
    private readonly string _writeSuffix = transform is { CanEncode: true } t ? t.KeySuffix : "";

    public bool IsTree => false;
    public string ReceiveVerb => "upload";

    public string Describe(string path) => $"s3://{bucket}/{prefix}{path}{_writeSuffix}";
    public string NameOf(string path) => prefix + path + _writeSuffix;
    public string ExplainUnsafe(string problem) => $"unsafe key: it {problem}";

    public async Task<SideListing> ListAsync(CancellationToken cancellationToken)
    {
        var listing = new SideListing(known?.Count ?? 0);
        var items = listed?.ToAsyncEnumerable()
            ?? (known is null ? store.ListAsync(bucket, prefix, cancellationToken) : store.ListAsync(bucket, prefix, known.Paths(), cancellationToken));
        await foreach (var item in items.ConfigureAwait(false))
        {
            if (!item.Key.StartsWith(prefix, StringComparison.Ordinal) || ignoreKeys?.Contains(item.Key) == true) continue;
            var relative = item.Key[prefix.Length..];
            if (relative.Length == 0) continue; // the marker of the prefix itself
            if (relative.EndsWith('/'))
            {
                var directory = relative[..^1];
                if (directory.Length > 0 && exclude.Excludes(directory)) continue;
                listing.Directories.Add(directory);
                continue;
            }
            if (transform is not null)
            {
                AddTransformed(listing, transform, item, relative);
                continue;
            }
            if (exclude.Excludes(relative)) continue;
            var etag = item.ETag;
            if (known is not null && known.TryShare(relative, out var shared, out var entry))
                (relative, etag) = (shared, entry.ETag == etag ? entry.ETag : etag);
            listing.Files[relative] = new SyncFile(relative, item.Size, etag, null, item.LastModified) { KeyPrefix = prefix };
        }
        return listing;
    }

    private void AddTransformed(SideListing listing, IObjectTransform codec, StoredObject item, string relative)
    {
        var encoded = relative.EndsWith(codec.KeySuffix, StringComparison.Ordinal) && relative.Length > codec.KeySuffix.Length;
        var path = encoded ? relative[..^codec.KeySuffix.Length] : relative;
        if (exclude.Excludes(path)) return;
        if (!encoded && codec.CanEncode)
        {
            listing.Skipped.Add(new SkippedKey(item.Key, $"it is not encrypted (pushed without encryption?): left as it is, neither replaced nor deleted; delete it once {prefix + path + codec.KeySuffix} is there"));
            return;
        }
        if (listing.Files.TryGetValue(path, out var other))
        {
            // PATH and PATH + suffix: the encoded one is the file; the other is reported and not read.
            var plain = encoded ? other.Key! : item.Key;
            listing.Skipped.Add(new SkippedKey(plain, $"both {plain} and {prefix + path + codec.KeySuffix} exist: {prefix + path + codec.KeySuffix} is the one restored"));
            if (!encoded) return;
        }
        listing.Files[path] = encoded
            ? new SyncFile(path, codec.ContentSize(item.Size), item.ETag, null, item.LastModified, item.Key)
            : new SyncFile(path, item.Size, item.ETag, null, item.LastModified, item.Key);
    }

    /// <summary>With a transform, every key that ends in its suffix is encoded (the suffix is the mark).</summary>
    private bool IsEncoded(string key) => transform is not null && key.EndsWith(transform.KeySuffix, StringComparison.Ordinal);

    public async Task ReadAsync(SyncFile file, Func<Stream, SourceInfo, CancellationToken, Task> consume, CancellationToken cancellationToken)
    {
        var key = file.Key ?? prefix + file.Path + _writeSuffix;
        var encoded = IsEncoded(key);
        await store.GetAsync(bucket, key, (body, info, ct) =>
        {
            var modified = info.LastModified == DateTimeOffset.UnixEpoch ? file.Modified : info.LastModified;
            return encoded
                ? transform!.DecodeAsync(body, $"s3://{bucket}/{key}", (content, c) => consume(content, new SourceInfo(-1, null, modified, Authenticated: true), c), ct)
                : consume(body, new SourceInfo(info.Size, info.ETag.Length > 0 ? info.ETag : null, modified), ct);
        }, cancellationToken: cancellationToken).ConfigureAwait(false);
    }

    public async Task<Written> WriteAsync(SyncFile source, Stream content, SourceInfo info, CancellationToken cancellationToken)
    {
        var size = info.Size >= 0 ? info.Size : content.Length;
        if (_writeSuffix.Length == 0)
            return new Written(size, await store.PutAsync(bucket, prefix + source.Path, content, size, cancellationToken: cancellationToken).ConfigureAwait(false), null);
        // The manifest records the content's size (what the listing shows for the object) with the object's ETag.
        await using var encoded = transform!.Encode(content, size);
        var etag = await store.PutAsync(bucket, prefix + source.Path + _writeSuffix, encoded, transform.StoredSize(size), cancellationToken: cancellationToken).ConfigureAwait(false);
        return new Written(size, etag, null);
    }

    public Task<string> ChecksumAsync(SyncFile file, CancellationToken cancellationToken) => Task.FromResult(file.ETag ?? "");

    public Written Adopt(SyncFile source, SyncFile here) => new(here.Size, here.ETag, null);

    public async Task<IReadOnlyList<(string Path, string Error)>> DeleteFilesAsync(IReadOnlyList<string> paths, CancellationToken cancellationToken)
    {
        if (paths.Count == 0) return [];
        var failures = await store.DeleteManyAsync(bucket, paths.Select(p => prefix + p + _writeSuffix).ToList(), cancellationToken).ConfigureAwait(false);
        return failures.Select(f => (f.Key[prefix.Length..^_writeSuffix.Length], f.Error)).ToList();
    }

    public async Task<IReadOnlyList<(string Path, string? Error)>> DeleteDirectoriesAsync(IReadOnlyList<string> paths, CancellationToken cancellationToken)
    {
        if (paths.Count == 0) return [];
        var failures = await store.DeleteManyAsync(bucket, paths.Select(p => prefix + p + "/").ToList(), cancellationToken).ConfigureAwait(false);
        var failed = failures.ToDictionary(f => f.Key[prefix.Length..^1], f => f.Error, StringComparer.Ordinal);
        return paths.Select(p => (p, failed.TryGetValue(p, out var error) ? error : null)).ToList();
    }

    public IReadOnlyList<(string Path, string Error)> DeleteUndecodable(IReadOnlyList<UndecodableEntry> entries) => [];

    public IReadOnlyList<(string Path, string Error)> CreateDirectories(IReadOnlyList<string> paths) => [];

    public void RemoveLeftovers(IReadOnlyList<string> paths) { }
}

/// <summary>
/// Which relative paths (object keys without their prefix, local names) are safe below a directory: none that
/// could write outside it or cannot be represented as a file (absolute paths, "." and ".." segments, empty
/// segments, backslashes, NUL and other control characters, names longer than the file system allows).
/// </summary>
public static class KeyPaths
{
    /// <summary>Longest file name Linux file systems accept, in bytes (NAME_MAX).</summary>
    public const int MaxNameBytes = FileNames.MaxNameBytes;
    /// <summary>Longest relative path accepted, in bytes; PATH_MAX is 4096 including the destination.</summary>
    public const int MaxPathBytes = 3800;

    /// <summary>Null if <paramref name="relative"/> ('/'-separated) is a safe path below a directory, else the reason.</summary>
    public static string? CheckRelativePath(string relative)
    {
        if (relative.StartsWith('/')) return "is an absolute path";
        if (relative.Contains('\\')) return "contains a backslash";
        foreach (var c in relative)
            if (char.IsControl(c)) return c == '\0' ? "contains a NUL character" : "contains a control character";
        if (Encoding.UTF8.GetByteCount(relative) > MaxPathBytes) return $"is longer than {MaxPathBytes} bytes";
        foreach (var segment in relative.Split('/'))
        {
            if (segment.Length == 0) return "has an empty path segment";
            if (segment is "." or "..") return $"has a '{segment}' path segment";
            if (Encoding.UTF8.GetByteCount(segment) > MaxNameBytes) return $"has a name longer than {MaxNameBytes} bytes";
        }
        return null;
    }

    /// <summary>The absolute local path of a relative path that passed <see cref="CheckRelativePath"/>.</summary>
    public static string LocalPath(string root, string relative) => Path.Join(root, relative);
}
