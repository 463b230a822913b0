// What a sync keeps between runs: the manifest (Manifest), and its state directory with the lock and the tag of
// temporary files (SyncState).
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using InfraTools.Files;
using InfraTools.Interop;
using Serilog;

namespace InfraTools.Sync;

/// <summary>What one path was when its two sides were last known equal: the size, the object's ETag and the local file's mtime.</summary>
public readonly record struct ManifestEntry(long Size, string ETag, DateTime LocalLastWriteUtc);

/// <summary>The manifest as the planner sees it.</summary>
public interface IReadOnlyManifest
{
    bool TryGet(string relativePath, out ManifestEntry entry);

    /// <summary>
    /// The manifest's own string for <paramref name="relativePath"/> and its entry, if it has one: the listings of a
    /// run hold that string (and the entry's ETag when the object's is the same) instead of copies of their own,
    /// so that 100,000 paths are held once, not three times.
    /// </summary>
    bool TryShare(ReadOnlySpan<char> relativePath, out string path, out ManifestEntry entry)
    {
        (path, entry) = (null!, default);
        return false;
    }

    /// <summary>Every path it has an entry for, in no order (a copy).</summary>
    string[] Paths() => [];

    /// <summary>How many entries it has: the listings of a run are sized by it (a dictionary grown by doubling from empty is ~40 % empty slots at 100,000 entries, and leaves the smaller ones behind as garbage).</summary>
    int Count => 0;
}

/// <summary>How the sides use a manifest's strings (<see cref="IReadOnlyManifest.TryShare"/>).</summary>
public static class SharedStrings
{
    /// <summary>The manifest's string equal to <paramref name="path"/>, or <paramref name="path"/>.</summary>
    public static string Share(this IReadOnlyManifest? known, string path) =>
        known is not null && known.TryShare(path, out var shared, out _) ? shared : path;
}

/// <summary>
/// The record of the last run, kept in the state directory (outside any synced tree): relative path → size,
/// ETag and local mtime. A pair whose local size and mtime and whose object's size and ETag still match its
/// entry is known to be equal without reading it or asking the server about it (<see cref="ChangeDetector"/>).
/// Owned by <see cref="SyncState"/>, which locks, loads, records, prunes and saves it. Stored as a small TSV file
/// (keys with tabs or newlines are refused as unsafe before they get here), written atomically, and only when a
/// run changed it: on a no-change run nothing is recorded or pruned, and the file that vouched for every pair is
/// left as it is (at 100,000 objects its rewrite, ~10 MB sorted, written and fsynced, was most of such a run's
/// local work; bench/RESULTS.md).
/// </summary>
public sealed class Manifest : IReadOnlyManifest
{
    private const string Header = "# infra-tools mirror manifest v1: relative path, size, etag, local mtime (ticks, UTC)";
    private readonly Dictionary<string, ManifestEntry> _entries;

    /// <summary>True when the entries differ from what was loaded (a new manifest: when it has any entry).</summary>
    private bool _changed;

    /// <summary>Whether <see cref="SaveAsync"/> has anything to write that the file does not already say.</summary>
    internal bool Changed
    {
        get { lock (_entries) return _changed; }
    }

    public Manifest() : this(new Dictionary<string, ManifestEntry>(StringComparer.Ordinal)) { }

    private Manifest(Dictionary<string, ManifestEntry> entries) => _entries = entries;

    public bool TryGet(string relativePath, out ManifestEntry entry)
    {
        lock (_entries) return _entries.TryGetValue(relativePath, out entry);
    }

    public bool TryShare(ReadOnlySpan<char> relativePath, out string path, out ManifestEntry entry)
    {
        lock (_entries)
        {
            if (_entries.GetAlternateLookup<ReadOnlySpan<char>>().TryGetValue(relativePath, out path!, out entry)) return true;
            (path, entry) = (null!, default);
            return false;
        }
    }

    public string[] Paths()
    {
        lock (_entries) return [.. _entries.Keys];
    }

    public int Count
    {
        get { lock (_entries) return _entries.Count; }
    }

    internal void Set(string relativePath, ManifestEntry entry)
    {
        lock (_entries)
        {
            if (_entries.TryGetValue(relativePath, out var known) && known == entry) return;
            _entries[relativePath] = entry;
            _changed = true;
        }
    }

    internal void Remove(string relativePath)
    {
        lock (_entries) _changed |= _entries.Remove(relativePath);
    }

    /// <summary>Keeps only the entries of <paramref name="paths"/>.</summary>
    internal void KeepOnly(IReadOnlySet<string> paths)
    {
        lock (_entries)
            foreach (var path in _entries.Keys.Where(p => !paths.Contains(p)).ToList()) _changed |= _entries.Remove(path);
    }

    /// <summary>The manifest file for one (endpoint, bucket, prefix, destination) inside the state directory; <paramref name="destination"/> is resolved (<see cref="LocalPaths.Resolve"/>).</summary>
    /// <remarks><paramref name="variant"/> is what else decides the objects' bytes (the encryption recipients): another variant, another manifest.</remarks>
    public static string PathFor(string stateDirectory, string endpoint, string bucket, string prefix, string destination, string variant = "")
    {
        var identity = $"{endpoint}\n{bucket}\n{prefix}\n{destination}" + (variant.Length > 0 ? $"\n{variant}" : "");
        var hash = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(identity)))[..16];
        var readable = new string(bucket.Select(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '.' ? c : '_').ToArray());
        return Path.Combine(stateDirectory, $"mirror-{readable}-{hash}.tsv");
    }

    /// <summary>Loads a manifest; a missing or unreadable one is empty (every file is then checked by content).</summary>
    /// <remarks>
    /// Read line by line, each line cut into its fields without splitting it: only the path and the ETag become
    /// strings. (All lines at once, each split in four, held ~300 bytes per entry more at the peak of a run.)
    /// </remarks>
    internal static Manifest Load(string path)
    {
        FileStream file;
        try
        {
            file = new FileStream(path, new FileStreamOptions { BufferSize = 0 });
        }
        catch (Exception ex) when (ex is FileNotFoundException or DirectoryNotFoundException)
        {
            return new Manifest();
        }
        using var reader = new StreamReader(file, Encoding.UTF8, detectEncodingFromByteOrderMarks: true, 64 * 1024);
        // Sized by a count of its lines first: one pass over bytes that are then in the page cache anyway.
        var lines = CountLines(file);
        if (reader.ReadLine() != Header) return new Manifest();
        var entries = new Dictionary<string, ManifestEntry>(lines, StringComparer.Ordinal);
        while (reader.ReadLine() is { } line)
        {
            var rest = line.AsSpan();
            if (!NextField(ref rest, out var relative) || !NextField(ref rest, out var sizeText) || !NextField(ref rest, out var etag)
                || rest.Contains('\t')
                || !long.TryParse(sizeText, NumberStyles.None, CultureInfo.InvariantCulture, out var size)
                || !long.TryParse(rest, NumberStyles.None, CultureInfo.InvariantCulture, out var ticks))
                continue;
            entries[relative.ToString()] = new ManifestEntry(size, etag.ToString(), new DateTime(ticks, DateTimeKind.Utc));
        }
        return new Manifest(entries);
    }

    /// <summary>The number of line ends in <paramref name="file"/>, which is left at its start.</summary>
    private static int CountLines(FileStream file)
    {
        var buffer = System.Buffers.ArrayPool<byte>.Shared.Rent(64 * 1024);
        try
        {
            var lines = 0;
            for (int read; (read = file.Read(buffer, 0, buffer.Length)) > 0;) lines += buffer.AsSpan(0, read).Count((byte)'\n');
            file.Position = 0;
            return lines;
        }
        finally
        {
            System.Buffers.ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary>The text up to the next tab, and <paramref name="rest"/> after it; false when there is no tab.</summary>
    private static bool NextField(ref ReadOnlySpan<char> rest, out ReadOnlySpan<char> field)
    {
        var tab = rest.IndexOf('\t');
        if (tab < 0)
        {
            field = default;
            return false;
        }
        field = rest[..tab];
        rest = rest[(tab + 1)..];
        return true;
    }

    internal async Task SaveAsync(string path, TempNames? names = null, CancellationToken cancellationToken = default)
    {
        KeyValuePair<string, ManifestEntry>[] sorted;
        lock (_entries) sorted = _entries.OrderBy(e => e.Key, StringComparer.Ordinal).ToArray();
        // Written as it is formatted (not built whole first: ~30 MB at 100,000 entries).
        await AtomicFile.WriteAsync(path, async stream =>
        {
            await using var writer = new StreamWriter(stream, new UTF8Encoding(encoderShouldEmitUTF8Identifier: false), 64 * 1024, leaveOpen: true);
            writer.NewLine = "\n";
            writer.WriteLine(Header);
            foreach (var (relative, entry) in sorted)
            {
                writer.Write(relative);
                writer.Write('\t');
                writer.Write(entry.Size.ToString(CultureInfo.InvariantCulture));
                writer.Write('\t');
                writer.Write(entry.ETag);
                writer.Write('\t');
                writer.WriteLine(entry.LocalLastWriteUtc.Ticks.ToString(CultureInfo.InvariantCulture));
            }
            await writer.FlushAsync(cancellationToken).ConfigureAwait(false);
        }, AtomicFile.OwnerOnly, null, names, cancellationToken).ConfigureAwait(false);
        lock (_entries) _changed = false;
    }
}

/// <summary>
/// The state a sync keeps between runs in its state directory: the manifest, the tag of its temporary files
/// (so the next run can tell its own leftovers from a user's files), and a lock that keeps two runs of the same
/// (endpoint, bucket, prefix, local path) from working at once. A run that writes a local directory also locks
/// that directory itself, so two runs cannot write it at once however it is spelled (a symbolic link, another
/// endpoint spelling, another state directory). If the state directory cannot be written (permission, read-only
/// file system, full disk) the sync still works with an empty manifest, comparing by checksum, and says so.
/// </summary>
public sealed class SyncState : IDisposable
{
    private readonly FileLock? _lock;
    private readonly FileLock? _localLock;
    private readonly string? _manifestPath;
    private readonly ILogger _log;

    /// <summary>The manifest, for the planner; the runner records into it through <see cref="Record"/> and <see cref="Forget"/>.</summary>
    public IReadOnlyManifest Manifest => _manifest;
    private readonly Sync.Manifest _manifest;

    /// <summary>The names of this run's temporary files; recorded in the state directory when it is writable.</summary>
    public TempNames TempNames { get; }

    /// <summary>True when the manifest and the temporary-file tag are kept between runs.</summary>
    public bool Persistent => _manifestPath is not null;

    private SyncState(Sync.Manifest manifest, string? manifestPath, FileLock? lockFile, FileLock? localLock, TempNames names, ILogger log)
    {
        _manifest = manifest;
        _manifestPath = manifestPath;
        _lock = lockFile;
        _localLock = localLock;
        TempNames = names;
        _log = log;
    }

    /// <summary>
    /// Loads the manifest and takes the locks. <paramref name="localPath"/> must be resolved
    /// (<see cref="LocalPaths.Resolve"/>). With <paramref name="lockLocal"/> the local directory (which must
    /// exist) is locked too. With <paramref name="readOnly"/> (dry runs) nothing is created or locked.
    /// <paramref name="variant"/> (<see cref="IObjectTransform.Variant"/>) selects another manifest for other encryption recipients.
    /// </summary>
    public static SyncState Open(string directory, string tool, string endpoint, string bucket, string prefix, string localPath, bool readOnly,
        bool lockLocal, ILogger log, string variant = "")
    {
        var manifestPath = Sync.Manifest.PathFor(directory, endpoint, bucket, prefix, localPath, variant);
        if (readOnly) return new SyncState(Sync.Manifest.Load(manifestPath), null, null, null, TempNames.Random(), log);

        var localLock = lockLocal
            ? FileLock.TryAcquireDirectory(localPath)
              ?? throw new RefusedException($"another run is already writing {localPath} (it holds the lock on that directory): not starting a second one")
            : null;
        try
        {
            FileLock? lockFile = null;
            string? tag;
            try
            {
                Directories.Create(directory, FileModes.Private.Directory);
                lockFile = FileLock.TryAcquire(manifestPath + ".lock")
                    ?? throw new RefusedException($"another {tool} is already working on {localPath} (lock {manifestPath}.lock): not starting a second one");
                tag = ReadOrCreateTag(lockFile);
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                lockFile?.Dispose();
                log.Warning("state directory {Directory} cannot be written ({Reason}): files are compared by checksum instead of by the manifest, and temporary files of interrupted runs are not cleaned up; set --state-dir to a writable directory",
                    directory, ex.Message);
                return new SyncState(new Sync.Manifest(), null, null, localLock, TempNames.Random(), log);
            }
            return new SyncState(Sync.Manifest.Load(manifestPath), manifestPath, lockFile, localLock, new TempNames(tag), log);
        }
        catch
        {
            localLock?.Dispose();
            throw;
        }
    }

    /// <summary>The tag recorded in the lock file, or a new one written there before any temporary file exists.</summary>
    private static string ReadOrCreateTag(FileLock lockFile)
    {
        var existing = lockFile.ReadContent().Trim();
        if (existing.Length == 16 && existing.All(char.IsAsciiHexDigitLower)) return existing;
        var tag = TempNames.Random().Tag;
        lockFile.WriteContent(tag + "\n");
        return tag;
    }

    /// <summary>State that is not kept between runs (restores, snapshots): an empty manifest, nothing locked or saved.</summary>
    public static SyncState Ephemeral(ILogger log) => new(new Sync.Manifest(), null, null, null, TempNames.Process, log);

    /// <summary>Records a pair known equal.</summary>
    public void Record(string path, ManifestEntry entry) => _manifest.Set(path, entry);

    /// <summary>Forgets a path whose target file was deleted.</summary>
    public void Forget(string path) => _manifest.Remove(path);

    /// <summary>
    /// Keeps only the entries of the source's files and saves the manifest, unless that changed nothing (a
    /// no-change run: the file already says it all). A state directory that cannot take it (full, read-only) is a
    /// warning: the manifest is a cache.
    /// </summary>
    public async Task SaveAsync(IReadOnlySet<string> sourceFiles)
    {
        _manifest.KeepOnly(sourceFiles);
        if (_manifestPath is null || !_manifest.Changed) return;
        try
        {
            await _manifest.SaveAsync(_manifestPath, TempNames).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            _log.Warning("cannot save the manifest {Path} ({Reason}): the next run compares changed files by checksum", _manifestPath, ex.Message);
        }
    }

    public void Dispose()
    {
        _lock?.Dispose();
        _localLock?.Dispose();
    }
}
