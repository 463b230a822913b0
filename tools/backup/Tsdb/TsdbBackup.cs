using InfraTools.Cli;
using Serilog;

namespace InfraTools.Backup.Tsdb;

public sealed record TsdbPushOptions
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
}

/// <summary>What a push did. <see cref="Complete"/>: the manifest was written; only then may retention run.</summary>
public sealed record TsdbPushResult(string Name, bool Complete, SnapshotManifest? Manifest, int Blocks, int BlocksAlreadyUp, int BlocksNew, int BlocksPartial,
    long UploadedFiles, long UploadedBytes, long ReusedFiles, long ReusedBytes, long FailedFiles);

public sealed record TsdbPruneResult(IReadOnlyList<SnapshotRef> Pruned, IReadOnlyList<KeptSnapshot> Kept, IReadOnlyList<SnapshotRef> Incomplete,
    int BlockObjectsDeleted, long BlockBytesDeleted, int BlockObjectsTooYoung, string? BlocksSkippedBecause);

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
    public static async Task<TsdbPushResult> PushAsync(ITsdbStore store, string snapshotDirectory, TsdbPushOptions options, ILogger log, CancellationToken cancellationToken)
    {
        var created = DateTimeOffset.UtcNow;
        var name = options.Name ?? Snapshots.NewName(created);
        if (!Snapshots.IsName(name)) throw new UsageException($"snapshot name '{name}' is not of the form yyyyMMddTHHmmssZ");
        var local = await LocalSnapshot.ScanAsync(snapshotDirectory, store.CreateETagHasher, options.ChecksumAll, cancellationToken).ConfigureAwait(false);
        if (local.Blocks.Count == 0 && !options.Force)
            throw new ToolException(ExitCodes.Refused,
                $"the snapshot {snapshotDirectory} has no blocks (an empty TSDB?): refusing to write an empty snapshot, which would count as the newest backup; nothing was uploaded. Use --force if an empty backup is really wanted.");

        var manifests = await store.ListAsync(BucketLayout.SnapshotsPrefix, cancellationToken).ConfigureAwait(false);
        if (PushPlanner.NameProblem(manifests, name) is { } problem) throw new ToolException(ExitCodes.Refused, $"{problem} under {store.Location}: nothing was uploaded; push again in a second");
        var later = manifests.Select(m => BucketLayout.ManifestName(m.Key)).Where(n => n is not null && string.CompareOrdinal(n, name) > 0).ToList();
        if (later.Count > 0)
            log.Warning("{Count} snapshot(s) under {Target} are named after this host's time {Now}, e.g. {Name}: a host with its clock ahead pushed them. Snapshots are ordered by the server's time, so they are not taken for the newest; check the clocks (NTP)",
                later.Count, store.Location, name, later[^1]);

        var listing = await store.ListAsync(BucketLayout.BlocksPrefix, cancellationToken).ConfigureAwait(false);
        PushPlan? first = null;
        long uploadedFiles = 0, uploadedBytes = 0, failed = 0;
        for (var round = 1; ; round++)
        {
            (local, var plan) = await PlanAsync(local, listing, store, cancellationToken).ConfigureAwait(false);
            if (first is null)
            {
                first = plan;
                log.Information("snapshot {Name}: {Blocks} blocks; {Up} already in the bucket, {New} new, {Partial} partly there; uploading {Files} files ({Bytes} bytes), reusing {Reused} ({ReusedBytes} bytes)",
                    name, local.Blocks.Count, plan.CompleteBlocks.Count, plan.NewBlocks.Count, plan.PartialBlocks.Count, plan.Uploads.Count, plan.UploadBytes, plan.Reused.Count, plan.ReusedBytes);
            }
            if (plan.Uploads.Count == 0)
            {
                var manifest = plan.BuildManifest(name, created, options.Source);
                var bytes = manifest.Serialize();
                await store.PutBytesAsync(BucketLayout.ManifestKey(name), bytes, "application/json", cancellationToken).ConfigureAwait(false);
                log.Information("wrote {Key}: snapshot {Name} is complete ({Blocks} blocks, {Files} files, {Bytes} bytes)", BucketLayout.ManifestKey(name), name,
                    manifest.Blocks.Count, manifest.FileCount, manifest.Bytes);
                return Result(true, manifest);
            }
            if (round > 1)
            {
                log.Warning("{Count} object(s) of snapshot {Name} vanished or changed in the bucket while it was pushed (another host pruning?), e.g. {Key}: uploading them again",
                    plan.Uploads.Count, name, plan.Uploads[0].Key);
                if (round > MaxRounds)
                    throw new ToolException(ExitCodes.S3Error, $"objects of snapshot {name} keep vanishing from {store.Location} while it is pushed (e.g. {plan.Uploads[0].Key}): no manifest written; is another host pruning this prefix?");
            }
            var (files, sent, failures) = await UploadAsync(store, plan.Uploads, options.Parallel, log, cancellationToken).ConfigureAwait(false);
            uploadedFiles += files;
            uploadedBytes += sent;
            failed += failures;
            if (failures > 0)
            {
                log.Error("snapshot {Name} is incomplete: {Failed} upload(s) failed; no manifest written, nothing pruned", name, failures);
                return Result(false, null);
            }
            listing = await store.ListAsync(BucketLayout.BlocksPrefix, cancellationToken).ConfigureAwait(false);
        }

        TsdbPushResult Result(bool complete, SnapshotManifest? manifest) => new(name, complete, manifest, local.Blocks.Count, first!.CompleteBlocks.Count, first.NewBlocks.Count,
            first.PartialBlocks.Count, uploadedFiles, uploadedBytes, complete ? manifest!.FileCount - uploadedFiles : first.Reused.Count,
            complete ? manifest!.Bytes - uploadedBytes : first.ReusedBytes, failed);
    }

    /// <summary>Plans; when keys hold objects of another size, computes those files' ETags and plans again.</summary>
    private static async Task<(LocalSnapshot, PushPlan)> PlanAsync(LocalSnapshot local, IReadOnlyList<StoredObject> listing, ITsdbStore store, CancellationToken cancellationToken)
    {
        var plan = PushPlanner.Plan(local, listing);
        if (plan.IsFinal) return (local, plan);
        var etags = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var file in plan.NeedChecksum)
            etags[file.FullPath] = await LocalSnapshot.ComputeETagAsync(file.FullPath, file.Size, store.CreateETagHasher, cancellationToken).ConfigureAwait(false);
        local = local with
        {
            Blocks = local.Blocks.Select(b => b with { Files = b.Files.Select(f => etags.TryGetValue(f.FullPath, out var e) ? f with { ETag = e } : f).ToList() }).ToList(),
        };
        return (local, PushPlanner.Plan(local, listing));
    }

    private static async Task<(long Files, long Bytes, long Failed)> UploadAsync(ITsdbStore store, IReadOnlyList<PlannedUpload> uploads, int parallel, ILogger log, CancellationToken cancellationToken)
    {
        long files = 0, bytes = 0, failed = 0;
        await Transfers.RunAsync(uploads, parallel, store, async (upload, ct) =>
        {
            await store.PutFileAsync(upload.Key, upload.File.FullPath, upload.File.Size, ct).ConfigureAwait(false);
            Interlocked.Increment(ref files);
            Interlocked.Add(ref bytes, upload.File.Size);
            log.Debug("uploaded {Key} ({Bytes} bytes, {Reason})", upload.Key, upload.File.Size, upload.Reason);
        }, (upload, ex) =>
        {
            Interlocked.Increment(ref failed);
            log.Error("failed to upload {Path} to {Key}: {Reason}", upload.File.FullPath, upload.Key, ex.Message);
        }, cancellationToken).ConfigureAwait(false);
        return (files, bytes, failed);
    }

    /// <summary>Prunes after a push: only when that push is complete (a failed push never prunes).</summary>
    public static async Task<TsdbPruneResult?> PruneAfterPushAsync(ITsdbStore store, RetentionPolicy policy, TsdbPushResult pushed, ILogger log, CancellationToken cancellationToken)
    {
        if (!pushed.Complete)
        {
            log.Warning("not pruning: snapshot {Name} is incomplete", pushed.Name);
            return null;
        }
        return await PruneAsync(store, policy, pushed.Name, log, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Applies <paramref name="policy"/> to every snapshot under the prefix (full copies and incremental ones
    /// together, by the server's time), deletes the pruned ones (a full copy's objects, an incremental
    /// snapshot's manifest), then the block objects no remaining manifest names (<see cref="Retention.CollectBlocks"/>).
    /// If deleting a snapshot fails, no block is deleted.
    /// </summary>
    public static async Task<TsdbPruneResult> PruneAsync(ITsdbStore store, RetentionPolicy policy, string? justWritten, ILogger log, CancellationToken cancellationToken)
    {
        var listing = await store.ListAsync("", cancellationToken).ConfigureAwait(false);
        var objects = Catalog.Index(listing);
        var manifests = new Dictionary<string, SnapshotManifest>(StringComparer.Ordinal);
        var snapshots = new List<SnapshotRef>();
        foreach (var found in Catalog.List(listing))
        {
            if (found.Kind == SnapshotKind.FullCopy)
            {
                snapshots.Add(found);
                continue;
            }
            var (manifest, error) = await TryLoadManifestAsync(store, found.Name, cancellationToken).ConfigureAwait(false);
            if (manifest is null)
            {
                log.Warning("cannot read {Key} ({Reason}): it is kept, and no block is deleted until it is readable (or deleted by hand)", BucketLayout.ManifestKey(found.Name), error);
                snapshots.Add(found with { Unreadable = true, Problem = error });
                continue;
            }
            manifests[found.Name] = manifest;
            var problems = Catalog.Check(manifest, objects);
            snapshots.Add(problems.Count == 0 ? found : found with { Complete = false, Problem = $"{problems.Count} object(s) missing or changed, e.g. {problems[0]}" });
        }

        var decision = Retention.Decide(snapshots, policy, justWritten);
        foreach (var kept in decision.Keep) log.Debug("keeping snapshot {Snapshot} ({Reasons})", kept.Snapshot.ToString(), string.Join(", ", kept.Reasons));
        var doomed = decision.Prune.ToHashSet();
        var keys = new List<string>();
        foreach (var s in decision.Prune)
        {
            if (s.Kind == SnapshotKind.Incremental) keys.Add(BucketLayout.ManifestKey(s.Name));
            else keys.AddRange(listing.Where(o => o.Key.StartsWith(s.Name + "/", StringComparison.Ordinal)).Select(o => o.Key));
        }
        if (keys.Count > 0)
        {
            var failures = await store.DeleteAsync(keys, cancellationToken).ConfigureAwait(false);
            if (failures.Count > 0)
                throw new ToolException(ExitCodes.S3Error, $"pruning old snapshots under {store.Location} failed for {failures.Count} object(s), e.g. {failures[0].Key}: {failures[0].Error}; no block was deleted");
            foreach (var s in decision.Prune) log.Information("pruned snapshot {Snapshot}{Why}", s.ToString(), s.Complete ? "" : $" ({s.Problem})");
        }

        var remaining = snapshots.Where(s => s.Kind == SnapshotKind.Incremental && !doomed.Contains(s)).ToList();
        var collection = Retention.CollectBlocks(listing, remaining.Where(s => manifests.ContainsKey(s.Name)).Select(s => manifests[s.Name]).ToList(),
            remaining.Count(s => s.Unreadable), remaining.Count > 0 ? remaining.Max(s => s.Time) : null, policy.Grace);
        if (collection.SkippedBecause is { } reason) log.Warning("not deleting any block object: {Reason}", reason);
        if (collection.Delete.Count > 0)
        {
            var failures = await store.DeleteAsync(collection.Delete.Select(o => o.Key).ToList(), cancellationToken).ConfigureAwait(false);
            if (failures.Count > 0)
                throw new ToolException(ExitCodes.S3Error, $"deleting unreferenced block objects under {store.Location} failed for {failures.Count} object(s), e.g. {failures[0].Key}: {failures[0].Error}");
            log.Information("deleted {Count} block object(s) ({Bytes} bytes) that no kept snapshot names", collection.Delete.Count, collection.DeleteBytes);
        }
        if (collection.TooYoung.Count > 0)
            log.Information("kept {Count} unreferenced block object(s) written less than {Hours} h before the newest manifest (a push may be under way)",
                collection.TooYoung.Count, policy.Grace.TotalHours);
        return new TsdbPruneResult(decision.Prune, decision.Keep, snapshots.Where(s => !s.Complete || s.Unreadable).ToList(),
            collection.Delete.Count, collection.DeleteBytes, collection.TooYoung.Count, collection.SkippedBecause);
    }

    /// <summary>Reads and parses snapshots/NAME.json.</summary>
    public static async Task<SnapshotManifest> LoadManifestAsync(ITsdbStore store, string name, CancellationToken cancellationToken)
    {
        byte[]? content = null;
        await store.GetAsync(BucketLayout.ManifestKey(name), async (stream, ct) =>
        {
            using var buffer = new MemoryStream();
            var chunk = new byte[64 * 1024];
            int read;
            while ((read = await stream.ReadAsync(chunk, ct).ConfigureAwait(false)) > 0)
            {
                if (buffer.Length + read > SnapshotManifest.MaxBytes) throw new TsdbFormatException($"the manifest {BucketLayout.ManifestKey(name)} is larger than {SnapshotManifest.MaxBytes} bytes");
                buffer.Write(chunk, 0, read);
            }
            content = buffer.ToArray();
        }, cancellationToken).ConfigureAwait(false);
        return SnapshotManifest.Parse(content!, name);
    }

    internal static async Task<(SnapshotManifest? Manifest, string? Error)> TryLoadManifestAsync(ITsdbStore store, string name, CancellationToken cancellationToken)
    {
        try
        {
            return (await LoadManifestAsync(store, name, cancellationToken).ConfigureAwait(false), null);
        }
        catch (Exception ex) when (ex is not OperationCanceledException && !store.IsFatal(ex))
        {
            return (null, ex.Message);
        }
    }
}
