using InfraTools.S3;
using InfraTools.Storage;
using InfraTools.Sync;
using System.Buffers;
using System.Collections.Concurrent;
using System.Security.Cryptography;
using InfraTools.Cli;
using InfraTools.Files;
using Serilog;

namespace InfraTools.Backup.Tsdb;

public sealed class TsdbRestoreOptions
{
    /// <summary>A snapshot name, "latest", or null (the latest complete snapshot of either kind).</summary>
    public string? Snapshot { get; init; }
    /// <summary>Restore into a non-empty DEST, overwriting the files of the snapshot (other files are kept).</summary>
    public bool Force { get; init; }
    public FileModes Modes { get; init; } = FileModes.Private;
    public int Parallel { get; init; } = 16;
}

public sealed class TsdbRestoreResult(SnapshotRef snapshot, long files, long bytes, long failed)
{
    public SnapshotRef Snapshot { get; } = snapshot;
    public long Files { get; } = files;
    public long Bytes { get; } = bytes;
    /// <summary>Files not written (exit 4 when above 0).</summary>
    public long Failed { get; } = failed;
}

/// <summary>One object to write into DEST. <see cref="Group"/> is its block directory; <see cref="Last"/> marks meta.json, written after the rest of its block.</summary>
public sealed class RestoreItem(string key, string relativePath, long size, string etag, DateTimeOffset lastModified, string group, bool last)
{
    public string Key { get; } = key;
    public string RelativePath { get; } = relativePath;
    public long Size { get; } = size;
    public string ETag { get; } = etag;
    public DateTimeOffset LastModified { get; } = lastModified;
    public string Group { get; } = group;
    public bool Last { get; } = last;
}

/// <summary>The snapshot to restore and its objects.</summary>
public sealed class RestoreChoice(SnapshotRef snapshot, List<RestoreItem> items, SnapshotManifest? manifest)
{
    public SnapshotRef Snapshot { get; } = snapshot;
    public List<RestoreItem> Items { get; } = items;
    /// <summary>The manifest, for an incremental snapshot.</summary>
    public SnapshotManifest? Manifest { get; } = manifest;
}

/// <summary>
/// Restores a snapshot, incremental or full copy, into an empty DEST: the newest complete one by the server's
/// time, or the one named. Every file is written atomically (hidden temporary file in its directory, fsynced,
/// renamed) with the given modes (0600/0700 by default) and the object's Last-Modified as mtime, after its
/// length and ETag were checked against the manifest (or, for a full copy, the listing). A block's meta.json is
/// written last, and only when every other file of that block was written: Prometheus skips a block directory
/// without meta.json, so an interrupted restore never shows it a half block.
/// </summary>
public static class TsdbRestore
{
    /// <summary>
    /// Chooses the snapshot and the objects to restore. Latest: newest first by the server's time, the first
    /// complete one (a full copy with its marker, or a manifest that reads and whose objects are all there; a
    /// damaged newer one is skipped with a warning). A named one must exist and be complete.
    /// </summary>
    public static async Task<RestoreChoice> ChooseAsync(TsdbStore store, IReadOnlyList<StoredObject> listing,
        string? requested, ILogger log, CancellationToken cancellationToken)
    {
        var chooser = new Chooser(store, listing, requested, log);
        foreach (var candidate in chooser.Candidates)
        {
            if (candidate.Kind == SnapshotKind.FullCopy) return chooser.FullCopy(candidate);
            if (chooser.Incremental(candidate, await TsdbBackup.TryLoadManifestAsync(store, candidate.Name, cancellationToken).ConfigureAwait(false)) is { } choice) return choice;
        }
        throw chooser.NothingToRestore();
    }

    private sealed class Chooser
    {
        private readonly TsdbStore _store;
        private readonly IReadOnlyList<StoredObject> _listing;
        private readonly string? _requested;
        private readonly ILogger _log;
        private readonly Dictionary<string, StoredObject> _objects;
        private readonly List<SnapshotRef> _found;

        /// <summary>The snapshots to try, in order: the complete ones newest first, or the one requested.</summary>
        public List<SnapshotRef> Candidates { get; }

        public Chooser(TsdbStore store, IReadOnlyList<StoredObject> listing, string? requested, ILogger log)
        {
            (_store, _listing, _requested, _log) = (store, listing, requested is "latest" ? null : requested, log);
            _objects = Catalog.Index(listing);
            _found = Catalog.List(listing);
            if (_requested is null)
            {
                Candidates = Enumerable.Reverse(_found).Where(s => s.Complete).ToList();
                return;
            }
            if (!Snapshots.IsName(_requested)) throw new UsageException($"--snapshot '{_requested}' is neither latest nor a snapshot name like 20261124T201502Z");
            var named = _found.Where(s => s.Name == _requested).ToList();
            if (named.Count == 0) throw new StoreException(StoreErrorKind.ObjectNotFound, $"there is no snapshot {_requested} under {store.Location}");
            var chosen = named.Find(s => s.Kind == SnapshotKind.Incremental) ?? named[0];
            if (!chosen.Complete) throw new ToolException(ExitCodes.Refused, $"snapshot {_requested} under {store.Location} is incomplete (an interrupted push): not restoring it");
            Candidates = [chosen];
        }

        public RestoreChoice FullCopy(SnapshotRef snapshot) => new(snapshot, FullCopyItems(snapshot, _listing), null);

        /// <summary>The choice, or null (logged) when the manifest cannot be read or names objects that are gone; a requested snapshot is refused then.</summary>
        public RestoreChoice? Incremental(SnapshotRef snapshot, TsdbBackup.ManifestLoad loaded)
        {
            var problems = loaded.Manifest is { } manifest ? Catalog.Check(manifest, _objects) : [$"its manifest cannot be read: {loaded.Error}"];
            if (problems.Count == 0) return new RestoreChoice(snapshot, ManifestItems(loaded.Manifest!, _objects), loaded.Manifest);
            if (_requested is not null)
                throw new ToolException(ExitCodes.Refused, $"snapshot {_requested} under {_store.Location} cannot be restored: {problems.Count} problem(s), e.g. {problems[0]}; nothing was restored");
            _log.Warning("snapshot {Snapshot} cannot be restored ({Count} problem(s), e.g. {Problem}); trying the one before it", snapshot.ToString(), problems.Count, problems[0]);
            return null;
        }

        public StoreException NothingToRestore() =>
            new(StoreErrorKind.ObjectNotFound, $"no complete snapshot under {_store.Location}" +
                (_found.Count > 0 ? $" ({_found.Count} snapshot(s), none restorable: {_found.Count(s => !s.Complete)} interrupted, the others damaged)" : ""));
    }

    /// <summary>The files of an incremental snapshot: ULID/PATH from each manifest entry.</summary>
    public static List<RestoreItem> ManifestItems(SnapshotManifest manifest, IReadOnlyDictionary<string, StoredObject> objects) =>
        manifest.Blocks.SelectMany(b => b.Files.Select(f => new RestoreItem(f.Key, $"{b.Ulid}/{f.Path}", f.Size, f.ETag,
            objects.TryGetValue(f.Key, out var o) ? o.LastModified : manifest.Created, b.Ulid, f.Path == "meta.json"))).ToList();

    /// <summary>The files of a full copy: every object under NAME/ but the marker and folder markers.</summary>
    public static List<RestoreItem> FullCopyItems(SnapshotRef snapshot, IReadOnlyList<StoredObject> listing)
    {
        var prefix = snapshot.Name + "/";
        var items = new List<RestoreItem>();
        foreach (var o in listing)
        {
            if (!o.Key.StartsWith(prefix, StringComparison.Ordinal) || o.Key.EndsWith('/')) continue;
            var relative = o.Key[prefix.Length..];
            if (relative == Snapshots.CompleteMarker) continue;
            var slash = relative.IndexOf('/');
            var group = slash < 0 ? "" : relative[..slash];
            items.Add(new RestoreItem(o.Key, relative, o.Size, o.ETag, o.LastModified, group, group.Length > 0 && relative == group + "/meta.json"));
        }
        return items;
    }

    /// <summary>Lists the prefix, chooses the snapshot and restores it into <paramref name="destination"/>.</summary>
    public static async Task<TsdbRestoreResult> RestoreAsync(TsdbStore store, string destination, TsdbRestoreOptions options, ILogger log, CancellationToken cancellationToken)
    {
        var dest = CheckDestination(destination);
        var choice = await ChooseAsync(store, await store.ListAsync("", cancellationToken).ConfigureAwait(false), options.Snapshot, log, cancellationToken).ConfigureAwait(false);
        using var writer = new Writer(store, dest, choice, options, log);
        await writer.RunAsync(writer.Phase1(), options.Parallel, cancellationToken).ConfigureAwait(false);
        await writer.RunAsync(writer.Phase2(), options.Parallel, cancellationToken).ConfigureAwait(false);
        return writer.Finish();
    }

    private static string CheckDestination(string destination)
    {
        var dest = Path.TrimEndingDirectorySeparator(LocalPaths.Resolve(destination));
        if (dest == "/") throw new UsageException("DEST '/' is not allowed: give the directory to restore into");
        if (File.Exists(dest)) throw new UsageException($"DEST '{dest}' is a file; a snapshot is restored into a directory");
        return dest;
    }

    /// <summary>Writes the chosen snapshot's files into DEST: every file but the meta.json files first, then the meta.json of each block none of whose files failed.</summary>
    private sealed class Writer : IDisposable
    {
        private readonly ConcurrentDictionary<string, string> _ready = new(StringComparer.Ordinal);
        private readonly TsdbStore store;
        private readonly string root;
        private readonly FileModes modes;
        private readonly ILogger log;
        private readonly RestoreChoice _choice;
        private readonly FileLock _lock;
        private readonly List<RestoreItem> _safe;
        private long _files, _bytes, _failed;

        public ConcurrentDictionary<string, string> FailedGroups { get; } = new(StringComparer.Ordinal);
        public long Failed => Interlocked.Read(ref _failed);

        public Writer(TsdbStore store, string dest, RestoreChoice choice, TsdbRestoreOptions options, ILogger log)
        {
            (this.store, root, modes, this.log, _choice) = (store, dest, options.Modes, log, choice);
            var items = choice.Items;
            if (items.Count == 0) throw new StoreException(StoreErrorKind.ObjectNotFound, $"snapshot {choice.Snapshot} under {store.Location} holds no files: nothing to restore");
            if (!options.Force && Directory.Exists(dest) && Directory.EnumerateFileSystemEntries(dest).Any())
                throw new ToolException(ExitCodes.Refused, $"DEST '{dest}' is not empty: nothing was restored. Restore into an empty directory, or use --force to overwrite.");
            InfraTools.Files.Directories.Create(dest, modes.Directory);
            _lock = FileLock.TryAcquireDirectory(dest)
                ?? throw new ToolException(ExitCodes.Refused, $"another run is already writing {dest} (it holds the lock on that directory): nothing was restored");
            log.Information("restoring snapshot {Snapshot} of {Location} into {Destination}: {Files} files, {Bytes} bytes", choice.Snapshot.ToString(), store.Location, dest, items.Count, items.Sum(i => i.Size));
            if (choice.Manifest is { } manifest)
                foreach (var block in manifest.Blocks) EnsureDirectory($"{block.Ulid}/chunks"); // Prometheus needs chunks/ even when it is empty
            _safe = [];
            foreach (var item in items)
            {
                if (BucketLayout.PathProblem(item.RelativePath) is not { } problem) _safe.Add(item);
                else
                {
                    log.Error("not restoring {Key}: its path {Problem}", item.Key, problem);
                    Fail(item);
                }
            }
        }

        public List<RestoreItem> Phase1() => _safe.Where(i => !i.Last).ToList();

        public List<RestoreItem> Phase2()
        {
            var lasts = _safe.Where(i => i.Last).ToList();
            foreach (var held in lasts.Where(i => FailedGroups.ContainsKey(i.Group)))
            {
                log.Error("not writing {Path}: other files of block {Block} failed, so Prometheus is not shown a half block", held.RelativePath, held.Group);
                Fail(held);
            }
            return lasts.Where(i => !FailedGroups.ContainsKey(i.Group)).ToList();
        }

        public TsdbRestoreResult Finish()
        {
            foreach (var directory in _ready.Keys) AtomicFile.SyncDirectory(Local(directory));
            AtomicFile.SyncDirectory(root);
            log.Information("restored snapshot {Snapshot} into {Destination}: {Files} files ({Bytes} bytes), {Failed} failed", _choice.Snapshot.ToString(), root, _files, _bytes, Failed);
            return new TsdbRestoreResult(_choice.Snapshot, _files, _bytes, Failed);
        }

        public void Dispose() => _lock.Dispose();

        public void Fail(RestoreItem item)
        {
            Interlocked.Increment(ref _failed);
            FailedGroups[item.Group] = item.Key;
        }

        public Task RunAsync(IEnumerable<RestoreItem> items, int parallel, CancellationToken cancellationToken) =>
            ParallelTransfers.RunAsync(items, parallel, WriteAsync, (item, ex) =>
            {
                log.Error("failed to restore {Key}: {Reason}", item.Key, ex.Message);
                Fail(item);
            }, cancellationToken);

        private async Task WriteAsync(RestoreItem item, CancellationToken cancellationToken)
        {
            EnsureDirectory(Path.GetDirectoryName(item.RelativePath) ?? "");
            var path = Local(item.RelativePath);
            await store.GetAsync(item.Key, (body, ct) =>
                AtomicFile.WriteAsync(path, output => CopyCheckedAsync(body, output, item, ct), modes.File, item.LastModified, TempNames.Process, ct, modes.Directory),
                cancellationToken).ConfigureAwait(false);
            Interlocked.Increment(ref _files);
            Interlocked.Add(ref _bytes, item.Size);
            log.Debug("restored {Key} to {Path}", item.Key, item.RelativePath);
        }

        /// <summary>Copies the content, checking its length and its ETag: the MD5 for a single-part object, the store's multipart ETag otherwise (when it has the same number of parts).</summary>
        private async Task CopyCheckedAsync(Stream body, Stream output, RestoreItem item, CancellationToken cancellationToken)
        {
            var multipart = item.ETag.Contains('-', StringComparison.Ordinal);
            using var md5 = multipart ? null : IncrementalHash.CreateHash(HashAlgorithmName.MD5);
            using var etag = multipart ? new ETagHasher(item.Size) : null;
            var buffer = ArrayPool<byte>.Shared.Rent(128 * 1024);
            long total = 0;
            try
            {
                int read;
                while ((read = await body.ReadAsync(buffer, cancellationToken).ConfigureAwait(false)) > 0)
                {
                    total += read;
                    if (total > item.Size) throw new StoreException(StoreErrorKind.IntegrityCheckFailed, $"download of {item.Key} is longer than its {item.Size} bytes");
                    md5?.AppendData(buffer, 0, read);
                    etag?.Append(buffer.AsSpan(0, read));
                    await output.WriteAsync(buffer.AsMemory(0, read), cancellationToken).ConfigureAwait(false);
                }
            }
            finally
            {
                ArrayPool<byte>.Shared.Return(buffer);
            }
            if (total != item.Size) throw new StoreException(StoreErrorKind.IntegrityCheckFailed, $"download of {item.Key} got {total} bytes, expected {item.Size}");
            var computed = md5 is not null ? Convert.ToHexStringLower(md5.GetHashAndReset()) : etag!.Finish();
            if (computed == item.ETag) return;
            if (multipart && PartCount(computed) != PartCount(item.ETag))
            {
                log.Debug("{Key}: its multipart ETag {ETag} has another part size than this store's uploads; only its length was checked", item.Key, item.ETag);
                return;
            }
            throw new StoreException(StoreErrorKind.IntegrityCheckFailed, $"download of {item.Key} does not match its ETag {item.ETag} (got {computed})");
        }

        private static string PartCount(string etag) => etag.Contains('-', StringComparison.Ordinal) ? etag[(etag.LastIndexOf('-') + 1)..] : "1";

        /// <summary>Creates a directory below the root one component at a time, never passing through a symbolic link.</summary>
        public void EnsureDirectory(string relative)
        {
            if (relative.Length == 0 || _ready.ContainsKey(relative)) return;
            EnsureDirectory(Path.GetDirectoryName(relative) ?? "");
            var full = Local(relative);
            var info = new DirectoryInfo(full);
            if (info.LinkTarget is not null) throw new IOException($"'{full}' is a symbolic link; not writing through it");
            if (!info.Exists)
            {
                if (File.Exists(full)) throw new IOException($"'{full}' is a file where a directory is needed");
                InfraTools.Files.Directories.Create(full, modes.Directory);
            }
            _ready[relative] = relative;
        }

        private string Local(string relative) => Path.Join(root, relative);
    }
}
