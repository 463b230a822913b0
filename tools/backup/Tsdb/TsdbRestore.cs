using System.Buffers;
using System.Collections.Concurrent;
using System.Security.Cryptography;
using InfraTools.Cli;
using InfraTools.Files;
using Serilog;

namespace InfraTools.Backup.Tsdb;

public sealed record TsdbRestoreOptions
{
    /// <summary>A snapshot name, "latest", or null (the latest complete snapshot of either kind).</summary>
    public string? Snapshot { get; init; }
    /// <summary>Restore into a non-empty DEST, overwriting the files of the snapshot (other files are kept).</summary>
    public bool Force { get; init; }
    public FileModes Modes { get; init; } = FileModes.Private;
    public int Parallel { get; init; } = 16;
}

public sealed record TsdbRestoreResult(SnapshotRef Snapshot, long Files, long Bytes, long Failed);

/// <summary>One object to write into DEST. <see cref="Group"/> is its block directory; <see cref="Last"/> marks meta.json, written after the rest of its block.</summary>
public sealed record RestoreItem(string Key, string RelativePath, long Size, string ETag, DateTimeOffset LastModified, string Group, bool Last);

/// <summary>A downloaded object whose bytes do not match the size or ETag it must have.</summary>
public sealed class TsdbIntegrityException(string message) : ToolException(ExitCodes.S3Error, message);

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
    public static async Task<(SnapshotRef Snapshot, List<RestoreItem> Items, SnapshotManifest? Manifest)> ChooseAsync(ITsdbStore store, IReadOnlyList<StoredObject> listing,
        string? requested, ILogger log, CancellationToken cancellationToken)
    {
        var objects = Catalog.Index(listing);
        var found = Catalog.List(listing);
        if (requested is null || requested == "latest")
        {
            foreach (var candidate in Enumerable.Reverse(found))
            {
                if (!candidate.Complete) continue;
                if (candidate.Kind == SnapshotKind.FullCopy) return (candidate, FullCopyItems(candidate, listing), null);
                var (manifest, error) = await TsdbBackup.TryLoadManifestAsync(store, candidate.Name, cancellationToken).ConfigureAwait(false);
                var problems = manifest is null ? [error!] : Catalog.Check(manifest, objects);
                if (problems.Count == 0) return (candidate, ManifestItems(manifest!, objects), manifest);
                log.Warning("snapshot {Snapshot} cannot be restored ({Count} problem(s), e.g. {Problem}); trying the one before it", candidate.ToString(), problems.Count, problems[0]);
            }
            var incomplete = found.Count(s => !s.Complete);
            throw new ToolException(ExitCodes.S3ObjectNotFound, $"no complete snapshot under {store.Location}" +
                (found.Count > 0 ? $" ({found.Count} snapshot(s), none restorable: {incomplete} interrupted, the others damaged)" : ""));
        }
        if (!Snapshots.IsName(requested)) throw new UsageException($"--snapshot '{requested}' is neither latest nor a snapshot name like 20261124T201502Z");
        var named = found.Where(s => s.Name == requested).ToList();
        if (named.Count == 0) throw new ToolException(ExitCodes.S3ObjectNotFound, $"there is no snapshot {requested} under {store.Location}");
        var chosen = named.FirstOrDefault(s => s.Kind == SnapshotKind.Incremental) ?? named[0];
        if (chosen.Kind == SnapshotKind.FullCopy)
        {
            if (!chosen.Complete) throw new ToolException(ExitCodes.Refused, $"snapshot {requested} under {store.Location} is incomplete (an interrupted push): not restoring it");
            return (chosen, FullCopyItems(chosen, listing), null);
        }
        var loaded = await TsdbBackup.LoadManifestAsync(store, requested, cancellationToken).ConfigureAwait(false);
        var damage = Catalog.Check(loaded, objects);
        if (damage.Count > 0)
            throw new ToolException(ExitCodes.Refused, $"snapshot {requested} under {store.Location} cannot be restored: {damage.Count} object(s) missing or changed, e.g. {damage[0]}; nothing was restored");
        return (chosen, ManifestItems(loaded, objects), loaded);
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
    public static async Task<TsdbRestoreResult> RestoreAsync(ITsdbStore store, string destination, TsdbRestoreOptions options, ILogger log, CancellationToken cancellationToken)
    {
        var dest = Path.TrimEndingDirectorySeparator(LocalPaths.Resolve(destination));
        if (dest == "/") throw new UsageException("DEST '/' is not allowed: give the directory to restore into");
        if (File.Exists(dest)) throw new UsageException($"DEST '{dest}' is a file; a snapshot is restored into a directory");
        var listing = await store.ListAsync("", cancellationToken).ConfigureAwait(false);
        var (snapshot, items, manifest) = await ChooseAsync(store, listing, options.Snapshot, log, cancellationToken).ConfigureAwait(false);
        if (items.Count == 0) throw new ToolException(ExitCodes.S3ObjectNotFound, $"snapshot {snapshot} under {store.Location} holds no files: nothing to restore");
        if (!options.Force && Directory.Exists(dest) && Directory.EnumerateFileSystemEntries(dest).Any())
            throw new ToolException(ExitCodes.Refused, $"DEST '{dest}' is not empty: nothing was restored. Restore into an empty directory, or use --force to overwrite.");

        Directories.Create(dest, options.Modes.Directory);
        using var destinationLock = FileLock.TryAcquireDirectory(dest)
            ?? throw new ToolException(ExitCodes.Refused, $"another run is already writing {dest} (it holds the lock on that directory): nothing was restored");
        log.Information("restoring snapshot {Snapshot} of {Location} into {Destination}: {Files} files, {Bytes} bytes", snapshot.ToString(), store.Location, dest, items.Count, items.Sum(i => i.Size));
        var writer = new Writer(store, dest, options.Modes, log);
        if (manifest is not null)
            foreach (var block in manifest.Blocks) writer.EnsureDirectory($"{block.Ulid}/chunks"); // Prometheus needs chunks/ even when it is empty

        var unsafePaths = items.Where(i => BucketLayout.PathProblem(i.RelativePath) is not null).ToList();
        foreach (var item in unsafePaths)
        {
            log.Error("not restoring {Key}: its path {Problem}", item.Key, BucketLayout.PathProblem(item.RelativePath));
            writer.Fail(item);
        }
        var safe = items.Except(unsafePaths).ToList();
        await writer.RunAsync(safe.Where(i => !i.Last), options.Parallel, cancellationToken).ConfigureAwait(false);
        var lasts = safe.Where(i => i.Last).ToList();
        foreach (var held in lasts.Where(i => writer.FailedGroups.ContainsKey(i.Group)))
        {
            log.Error("not writing {Path}: other files of block {Block} failed, so Prometheus is not shown a half block", held.RelativePath, held.Group);
            writer.Fail(held);
        }
        await writer.RunAsync(lasts.Where(i => !writer.FailedGroups.ContainsKey(i.Group)), options.Parallel, cancellationToken).ConfigureAwait(false);
        foreach (var directory in writer.Directories) AtomicFile.SyncDirectory(directory);
        AtomicFile.SyncDirectory(dest);
        log.Information("restored snapshot {Snapshot} into {Destination}: {Files} files ({Bytes} bytes), {Failed} failed", snapshot.ToString(), dest, writer.Files, writer.Bytes, writer.Failed);
        return new TsdbRestoreResult(snapshot, writer.Files, writer.Bytes, writer.Failed);
    }

    private sealed class Writer(ITsdbStore store, string root, FileModes modes, ILogger log)
    {
        private readonly ConcurrentDictionary<string, bool> _ready = new(StringComparer.Ordinal);
        private long _files, _bytes, _failed;

        public ConcurrentDictionary<string, bool> FailedGroups { get; } = new(StringComparer.Ordinal);
        public long Files => Interlocked.Read(ref _files);
        public long Bytes => Interlocked.Read(ref _bytes);
        public long Failed => Interlocked.Read(ref _failed);
        public IEnumerable<string> Directories => _ready.Keys.Select(Local);

        public void Fail(RestoreItem item)
        {
            Interlocked.Increment(ref _failed);
            FailedGroups[item.Group] = true;
        }

        public Task RunAsync(IEnumerable<RestoreItem> items, int parallel, CancellationToken cancellationToken) =>
            Transfers.RunAsync(items, parallel, store, WriteAsync, (item, ex) =>
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
            using var etag = multipart ? store.CreateETagHasher(item.Size) : null;
            var buffer = ArrayPool<byte>.Shared.Rent(128 * 1024);
            long total = 0;
            try
            {
                int read;
                while ((read = await body.ReadAsync(buffer, cancellationToken).ConfigureAwait(false)) > 0)
                {
                    total += read;
                    if (total > item.Size) throw new TsdbIntegrityException($"download of {item.Key} is longer than its {item.Size} bytes");
                    md5?.AppendData(buffer, 0, read);
                    etag?.Append(buffer.AsSpan(0, read));
                    await output.WriteAsync(buffer.AsMemory(0, read), cancellationToken).ConfigureAwait(false);
                }
            }
            finally
            {
                ArrayPool<byte>.Shared.Return(buffer);
            }
            if (total != item.Size) throw new TsdbIntegrityException($"download of {item.Key} got {total} bytes, expected {item.Size}");
            var computed = md5 is not null ? Convert.ToHexStringLower(md5.GetHashAndReset()) : etag!.Finish();
            if (computed == item.ETag) return;
            if (multipart && PartCount(computed) != PartCount(item.ETag))
            {
                log.Debug("{Key}: its multipart ETag {ETag} has another part size than this store's uploads; only its length was checked", item.Key, item.ETag);
                return;
            }
            throw new TsdbIntegrityException($"download of {item.Key} does not match its ETag {item.ETag} (got {computed})");
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
            _ready[relative] = true;
        }

        private string Local(string relative) => Path.Join(root, relative);
    }
}
