using InfraTools.S3;
using InfraTools.Storage;
using InfraTools.Sync;
using InfraTools.Cli;
using Serilog;

namespace InfraTools.Backup.Tsdb;

public sealed class TsdbPushOptions
{
    /// <summary>The snapshot's name (yyyyMMddTHHmmssZ); default: <see cref="Snapshots.NewName"/> of now.</summary>
    public string? Name { get; init; }
    /// <summary>Prometheus' name of the snapshot directory, recorded in the manifest.</summary>
    public string? Source { get; init; }
    public int Parallel { get; init; } = 8;
    /// <summary>Write a snapshot even when the local snapshot has no block (an empty TSDB).</summary>
    public bool Force { get; init; }
    /// <summary>Compare index and chunk files with the bucket by ETag too (reads every local file), not only by size.</summary>
    public bool ChecksumAll { get; init; }
    /// <summary>Counts uploaded files (transferred) and files already in the bucket (unchanged) as they go, for the summary line and metrics.</summary>
    public SyncStats? Stats { get; init; }
}

/// <summary>What a push did. <see cref="Complete"/>: the manifest was written; only then may retention run.</summary>
public sealed class TsdbPushResult
{
    public required string Name { get; init; }
    public bool Complete { get; init; }
    /// <summary>The manifest written (null when the push is incomplete).</summary>
    public SnapshotManifest? Manifest { get; init; }
    public int Blocks { get; init; }
    /// <summary>Blocks every file of which was already in the bucket.</summary>
    public int BlocksAlreadyUp { get; init; }
    public int BlocksNew { get; init; }
    /// <summary>Blocks of which only some files were uploaded (a rewritten meta.json/tombstones, an interrupted push).</summary>
    public int BlocksPartial { get; init; }
    public long UploadedFiles { get; init; }
    public long UploadedBytes { get; init; }
    public long ReusedFiles { get; init; }
    public long ReusedBytes { get; init; }
    public long FailedFiles { get; init; }
}

public sealed class TsdbPruneResult
{
    public required IReadOnlyList<SnapshotRef> Pruned { get; init; }
    public required IReadOnlyList<KeptSnapshot> Kept { get; init; }
    /// <summary>Incomplete or unreadable snapshots found (pruned or not).</summary>
    public required IReadOnlyList<SnapshotRef> Incomplete { get; init; }
    public int BlockObjectsDeleted { get; init; }
    public long BlockBytesDeleted { get; init; }
    /// <summary>Unreferenced block objects kept because they were written within the grace period.</summary>
    public int BlockObjectsTooYoung { get; init; }
    /// <summary>Why no block object was deleted at all, if so.</summary>
    public string? BlocksSkippedBecause { get; init; }
}

/// <summary>
/// Incremental Prometheus snapshots (see <see cref="BucketLayout"/> for the layout): push uploads each block once
/// and then writes the snapshot's manifest; prune applies a <see cref="RetentionPolicy"/> to the snapshots of both
/// kinds and deletes the block objects no kept snapshot names; restore is <see cref="TsdbRestore"/>.
/// </summary>
public static class TsdbBackup
{
    private const int MaxRounds = 3;

    /// <summary>
    /// Pushes the Prometheus snapshot in <paramref name="snapshotDirectory"/>: lists blocks/ and snapshots/, uploads
    /// only the files not already in the bucket, lists blocks/ again and plans again on that listing (anything that
    /// vanished meanwhile, e.g. deleted by another host's prune, is uploaded again, up to 3 rounds), and only then
    /// writes snapshots/NAME.json from what the bucket holds. If any upload failed, no manifest is written
    /// (<see cref="TsdbPushResult.Complete"/> false) and nothing may be pruned.
    /// </summary>
    public static async Task<TsdbPushResult> PushAsync(TsdbStore store, string snapshotDirectory, TsdbPushOptions options, ILogger log, CancellationToken cancellationToken)
    {
        // The async part only awaits the store; the decisions are in PushRun (smaller state machine, same behaviour).
        var run = new PushRun(store, snapshotDirectory, options, log, cancellationToken);
        run.CheckName(await store.ListAsync(BucketLayout.SnapshotsPrefix, cancellationToken).ConfigureAwait(false));
        var listing = await store.ListAsync(BucketLayout.BlocksPrefix, cancellationToken).ConfigureAwait(false);
        for (var round = 1; ; round++)
        {
            var plan = run.Plan(listing, round);
            if (plan.Uploads.Count == 0)
            {
                var manifest = plan.BuildManifest(run.Name, run.Created, options.Source);
                await store.PutBytesAsync(BucketLayout.ManifestKey(run.Name), manifest.Serialize(), "application/json", cancellationToken).ConfigureAwait(false);
                return run.Done(manifest);
            }
            await ParallelTransfers.RunAsync(plan.Uploads, options.Parallel, run.UploadAsync, run.UploadFailed, cancellationToken).ConfigureAwait(false);
            if (run.Failed > 0) return run.Done(null);
            listing = await store.ListAsync(BucketLayout.BlocksPrefix, cancellationToken).ConfigureAwait(false);
        }
    }

    private sealed class PushRun
    {
        private readonly TsdbStore _store;
        private readonly ILogger _log;
        private readonly CancellationToken _cancellationToken;
        private readonly LocalSnapshot _local;
        private readonly SyncStats? _stats;
        private PushPlan? _first;
        private long _files, _bytes, _failed;

        public string Name { get; }
        public DateTimeOffset Created { get; } = DateTimeOffset.UtcNow;
        public long Failed => Interlocked.Read(ref _failed);

        public PushRun(TsdbStore store, string snapshotDirectory, TsdbPushOptions options, ILogger log, CancellationToken cancellationToken)
        {
            (_store, _log, _cancellationToken) = (store, log, cancellationToken);
            Name = options.Name ?? Snapshots.NewName(Created);
            if (!Snapshots.IsName(Name)) throw new UsageException($"snapshot name '{Name}' is not of the form yyyyMMddTHHmmssZ");
            _stats = options.Stats;
            _local = LocalSnapshot.Scan(snapshotDirectory, options.ChecksumAll, cancellationToken);
            if (_local.Blocks.Count == 0 && !options.Force)
                throw new ToolException(ExitCodes.Refused,
                    $"the snapshot {snapshotDirectory} has no blocks (an empty TSDB?): refusing to write an empty snapshot, which would count as the newest backup; nothing was uploaded. Use --force if an empty backup is really wanted.");
        }

        public void CheckName(IReadOnlyList<StoredObject> manifests)
        {
            if (PushPlanner.NameProblem(manifests, Name) is { } problem)
                throw new ToolException(ExitCodes.Refused, $"{problem} under {_store.Location}: nothing was uploaded; push again in a second");
            var later = manifests.Select(m => BucketLayout.ManifestName(m.Key)).Where(n => n is not null && string.CompareOrdinal(n, Name) > 0).ToList();
            if (later.Count > 0)
                _log.Warning("{Count} snapshot(s) under {Target} are named after this host's time {Now}, e.g. {Name}: a host with its clock ahead pushed them. Snapshots are ordered by the server's time, so they are not taken for the newest; check the clocks (NTP)",
                    later.Count, _store.Location, Name, later[^1]);
        }

        /// <summary>Plans on a listing of blocks/; when keys hold objects of another size, computes those files' ETags and plans again.</summary>
        public PushPlan Plan(IReadOnlyList<StoredObject> listing, int round)
        {
            var plan = PushPlanner.Plan(_local, listing);
            if (!plan.IsFinal)
            {
                foreach (var file in plan.NeedChecksum) file.ETag = LocalSnapshot.ComputeETag(file, _cancellationToken);
                plan = PushPlanner.Plan(_local, listing);
            }
            if (_first is null)
            {
                _first = plan;
                _log.Information("snapshot {Name}: {Blocks} blocks; {Up} already in the bucket, {New} new, {Partial} partly there; uploading {Files} files ({Bytes} bytes), reusing {Reused} ({ReusedBytes} bytes)",
                    Name, _local.Blocks.Count, plan.CompleteBlocks.Count, plan.NewBlocks.Count, plan.PartialBlocks.Count, plan.Uploads.Count, plan.UploadBytes, plan.Reused.Count, plan.ReusedBytes);
            }
            else if (plan.Uploads.Count > 0)
            {
                _log.Warning("{Count} object(s) of snapshot {Name} vanished or changed in the bucket while it was pushed (another host pruning?), e.g. {Key}: uploading them again",
                    plan.Uploads.Count, Name, plan.Uploads[0].Key);
                if (round > MaxRounds)
                    throw new StoreException(StoreErrorKind.ServerError, $"objects of snapshot {Name} keep vanishing from {_store.Location} while it is pushed (e.g. {plan.Uploads[0].Key}): no manifest written; is another host pruning this prefix?");
            }
            return plan;
        }

        public async Task UploadAsync(PlannedUpload upload, CancellationToken cancellationToken)
        {
            await _store.PutFileAsync(upload.Key, upload.File.FullPath, upload.File.Size, cancellationToken).ConfigureAwait(false);
            Interlocked.Increment(ref _files);
            Interlocked.Add(ref _bytes, upload.File.Size);
            _stats?.AddTransferred(upload.File.Size);
            _log.Debug("uploaded {Key} ({Bytes} bytes, {Reason})", upload.Key, upload.File.Size, upload.Reason);
        }

        public void UploadFailed(PlannedUpload upload, Exception ex)
        {
            Interlocked.Increment(ref _failed);
            _stats?.AddFailed();
            _log.Error("failed to upload {Path} to {Key}: {Reason}", upload.File.FullPath, upload.Key, ex.Message);
        }

        public TsdbPushResult Done(SnapshotManifest? manifest)
        {
            if (manifest is not null) _stats?.AddUnchanged(manifest.FileCount - _files);
            if (manifest is null) _log.Error("snapshot {Name} is incomplete: {Failed} upload(s) failed; no manifest written, nothing pruned", Name, Failed);
            else
                _log.Information("wrote {Key}: snapshot {Name} is complete ({Blocks} blocks, {Files} files, {Bytes} bytes)", BucketLayout.ManifestKey(Name), Name,
                    manifest.Blocks.Count, manifest.FileCount, manifest.Bytes);
            var first = _first!;
            return new TsdbPushResult
            {
                Name = Name,
                Complete = manifest is not null,
                Manifest = manifest,
                Blocks = _local.Blocks.Count,
                BlocksAlreadyUp = first.CompleteBlocks.Count,
                BlocksNew = first.NewBlocks.Count,
                BlocksPartial = first.PartialBlocks.Count,
                UploadedFiles = _files,
                UploadedBytes = _bytes,
                ReusedFiles = manifest is not null ? manifest.FileCount - _files : first.Reused.Count,
                ReusedBytes = manifest is not null ? manifest.Bytes - _bytes : first.ReusedBytes,
                FailedFiles = Failed,
            };
        }
    }

    /// <summary>Prunes after a push: only when that push is complete (a failed push never prunes); null otherwise.</summary>
    public static Task<TsdbPruneResult?> PruneAfterPushAsync(TsdbStore store, RetentionPolicy policy, TsdbPushResult pushed, ILogger log, CancellationToken cancellationToken)
    {
        if (pushed.Complete) return PruneAsync(store, policy, pushed.Name, log, cancellationToken)!;
        log.Warning("not pruning: snapshot {Name} is incomplete", pushed.Name);
        return Task.FromResult<TsdbPruneResult?>(null);
    }

    /// <summary>
    /// Applies <paramref name="policy"/> to every snapshot under the prefix (full copies and incremental ones
    /// together, by the server's time), deletes the pruned ones (a full copy's objects, an incremental
    /// snapshot's manifest), then the block objects no remaining manifest names (<see cref="Retention.CollectBlocks"/>).
    /// If deleting a snapshot fails, no block is deleted.
    /// </summary>
    public static async Task<TsdbPruneResult> PruneAsync(TsdbStore store, RetentionPolicy policy, string? justWritten, ILogger log, CancellationToken cancellationToken)
    {
        var run = new PruneRun(store, await store.ListAsync("", cancellationToken).ConfigureAwait(false), log);
        foreach (var name in run.ManifestNames) run.Loaded(name, await TryLoadManifestAsync(store, name, cancellationToken).ConfigureAwait(false));
        var snapshotKeys = run.Decide(policy, justWritten);
        if (snapshotKeys.Count > 0) run.SnapshotsDeleted(await store.DeleteAsync(snapshotKeys, cancellationToken).ConfigureAwait(false));
        var blockKeys = run.CollectBlocks(policy.Grace);
        if (blockKeys.Count > 0) run.BlocksDeleted(await store.DeleteAsync(blockKeys, cancellationToken).ConfigureAwait(false));
        return run.Result();
    }

    private sealed class PruneRun(TsdbStore store, IReadOnlyList<StoredObject> listing, ILogger log)
    {
        private readonly Dictionary<string, StoredObject> _objects = Catalog.Index(listing);
        private readonly List<SnapshotRef> _found = Catalog.List(listing);
        private readonly Dictionary<string, SnapshotManifest> _manifests = new(StringComparer.Ordinal);
        private readonly Dictionary<string, SnapshotRef> _damaged = new(StringComparer.Ordinal);
        private RetentionDecision? _decision;
        private BlockCollection? _collection;
        private List<SnapshotRef> _snapshots = [];

        public List<string> ManifestNames => _found.Where(s => s.Kind == SnapshotKind.Incremental).Select(s => s.Name).ToList();

        public void Loaded(string name, ManifestLoad loaded)
        {
            var found = _found.First(s => s.Kind == SnapshotKind.Incremental && s.Name == name);
            if (loaded.Manifest is not { } manifest)
            {
                log.Warning("cannot read {Key} ({Reason}): it is kept, and no block is deleted until it is readable (or deleted by hand)", BucketLayout.ManifestKey(name), loaded.Error);
                _damaged[name] = found.Damaged(unreadable: true, loaded.Error!);
                return;
            }
            _manifests[name] = manifest;
            var problems = Catalog.Check(manifest, _objects);
            if (problems.Count > 0) _damaged[name] = found.Damaged(unreadable: false, $"{problems.Count} object(s) missing or changed, e.g. {problems[0]}");
        }

        /// <summary>The keys of the snapshots to prune: a full copy's objects, an incremental snapshot's manifest.</summary>
        public List<string> Decide(RetentionPolicy policy, string? justWritten)
        {
            _snapshots = _found.Select(s => s.Kind == SnapshotKind.Incremental && _damaged.TryGetValue(s.Name, out var d) ? d : s).ToList();
            _decision = Retention.Decide(_snapshots, policy, justWritten);
            foreach (var kept in _decision.Keep) log.Debug("keeping snapshot {Snapshot} ({Reasons})", kept.Snapshot.ToString(), string.Join(", ", kept.Reasons));
            var keys = new List<string>();
            foreach (var s in _decision.Prune)
            {
                if (s.Kind == SnapshotKind.Incremental) keys.Add(BucketLayout.ManifestKey(s.Name));
                else keys.AddRange(listing.Where(o => o.Key.StartsWith(s.Name + "/", StringComparison.Ordinal)).Select(o => o.Key));
            }
            return keys;
        }

        public void SnapshotsDeleted(IReadOnlyList<(string Key, string Error)> failures)
        {
            if (failures.Count > 0)
                throw new StoreException(StoreErrorKind.ServerError, $"pruning old snapshots under {store.Location} failed for {failures.Count} object(s), e.g. {failures[0].Key}: {failures[0].Error}; no block was deleted");
            foreach (var s in _decision!.Prune) log.Information("pruned snapshot {Snapshot}{Why}", s.ToString(), s.Complete ? "" : $" ({s.Problem})");
        }

        public List<string> CollectBlocks(TimeSpan grace)
        {
            var doomed = _decision!.Prune.ToHashSet();
            var remaining = _snapshots.Where(s => s.Kind == SnapshotKind.Incremental && !doomed.Contains(s)).ToList();
            _collection = Retention.CollectBlocks(listing, remaining.Where(s => _manifests.ContainsKey(s.Name)).Select(s => _manifests[s.Name]).ToList(),
                remaining.Count(s => s.Unreadable), remaining.Count > 0 ? remaining.Max(s => s.Time) : null, grace);
            if (_collection.SkippedBecause is { } reason) log.Warning("not deleting any block object: {Reason}", reason);
            if (_collection.TooYoung.Count > 0)
                log.Information("kept {Count} unreferenced block object(s) written less than {Grace} before the newest manifest (a push may be under way)", _collection.TooYoung.Count, grace.ToString());
            return _collection.Delete.Select(o => o.Key).ToList();
        }

        public void BlocksDeleted(IReadOnlyList<(string Key, string Error)> failures)
        {
            if (failures.Count > 0)
                throw new StoreException(StoreErrorKind.ServerError, $"deleting unreferenced block objects under {store.Location} failed for {failures.Count} object(s), e.g. {failures[0].Key}: {failures[0].Error}");
            log.Information("deleted {Count} block object(s) ({Bytes} bytes) that no kept snapshot names", _collection!.Delete.Count, _collection.DeleteBytes);
        }

        public TsdbPruneResult Result() => new()
        {
            Pruned = _decision!.Prune,
            Kept = _decision.Keep,
            Incomplete = _snapshots.Where(s => !s.Complete).ToList(),
            BlockObjectsDeleted = _collection!.Delete.Count,
            BlockBytesDeleted = _collection.DeleteBytes,
            BlockObjectsTooYoung = _collection.TooYoung.Count,
            BlocksSkippedBecause = _collection.SkippedBecause,
        };
    }

    internal sealed class ManifestLoad(SnapshotManifest? manifest, string? error)
    {
        public SnapshotManifest? Manifest { get; } = manifest;
        public string? Error { get; } = error;
    }

    /// <summary>Reads and parses snapshots/NAME.json; a failure the store does not call fatal becomes <see cref="ManifestLoad.Error"/>.</summary>
    internal static async Task<ManifestLoad> TryLoadManifestAsync(TsdbStore store, string name, CancellationToken cancellationToken)
    {
        using var buffer = new MemoryStream();
        try
        {
            await store.GetAsync(BucketLayout.ManifestKey(name), (stream, ct) => stream.CopyToAsync(buffer, ct), cancellationToken).ConfigureAwait(false);
            return new ManifestLoad(ParseManifest(buffer, name), null);
        }
        catch (Exception ex) when (ex is StoreException { StopsTheRun: false } or TsdbFormatException)
        {
            return new ManifestLoad(null, ex.Message);
        }
    }

    private static SnapshotManifest ParseManifest(MemoryStream buffer, string name) =>
        buffer.Length > SnapshotManifest.MaxBytes
            ? throw new TsdbFormatException($"the manifest {BucketLayout.ManifestKey(name)} is larger than {SnapshotManifest.MaxBytes} bytes")
            : SnapshotManifest.Parse(buffer.GetBuffer().AsSpan(0, (int)buffer.Length), name);
}
