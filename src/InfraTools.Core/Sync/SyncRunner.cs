using InfraTools.Storage;
using Serilog;

namespace InfraTools.Sync;

/// <summary>Counters of one run, updated from parallel workers.</summary>
public sealed class SyncStats
{
    private long _transferred, _transferredBytes, _deleted, _unchanged, _failed, _skipped;
    public long Transferred => Interlocked.Read(ref _transferred);
    public long TransferredBytes => Interlocked.Read(ref _transferredBytes);
    public long Deleted => Interlocked.Read(ref _deleted);
    public long Unchanged => Interlocked.Read(ref _unchanged);
    public long Failed => Interlocked.Read(ref _failed);
    /// <summary>Source entries not synced: skipped by the plan, or vanished from the source during the run.</summary>
    public long Skipped => Interlocked.Read(ref _skipped);
    /// <summary>Files in the plan (to transfer, to check, unchanged), for progress output.</summary>
    public long Planned { get; internal set; }

    public void AddTransferred(long bytes) { Interlocked.Increment(ref _transferred); Interlocked.Add(ref _transferredBytes, bytes); }
    public void AddDeleted(long count = 1) => Interlocked.Add(ref _deleted, count);
    public void AddUnchanged(long count = 1) => Interlocked.Add(ref _unchanged, count);
    public void AddFailed(long count = 1) => Interlocked.Add(ref _failed, count);
    public void AddSkipped(long count = 1) => Interlocked.Add(ref _skipped, count);
}

/// <summary>
/// Carries out a <see cref="SyncPlan"/> between two sides, the same way for every direction: the leftovers of
/// an interrupted run go first; then the transfers and checks run in parallel (a failure fails that file only,
/// unless every other request would fail too: <see cref="StoreException.StopsTheRun"/>); then, only if every
/// transfer succeeded, the deletes, and the transfers that had to wait for one (a file turned into a directory or
/// back); then the directories the source defines. Every file known equal is recorded in the manifest.
/// </summary>
public sealed class SyncRunner(ISyncSide source, ISyncSide target, SyncState state, int parallel, ILogger log)
{
    /// <summary>Runs the plan, counting into <paramref name="stats"/>. Returns normally when files failed; throws when the whole run must stop.</summary>
    public async Task RunAsync(SyncPlan plan, SyncStats stats, CancellationToken cancellationToken)
    {
        stats.AddSkipped(plan.Skipped.Count);
        stats.AddUnchanged(plan.Unchanged.Count);
        stats.Planned = plan.FileCount;

        foreach (var leftover in plan.Leftovers) log.Information("removing {Path}, a temporary file left by an interrupted run", leftover);
        target.RemoveLeftovers(plan.Leftovers);
        foreach (var (path, reason) in plan.Unreadable)
        {
            log.Error("cannot read local directory {Path} ({Reason}): nothing below it is updated or deleted; fix its permissions or --exclude it", path.Length == 0 ? "." : path, reason);
            stats.AddFailed();
        }

        var work = plan.TransfersNow.Select(t => (t.Source, Check: (SyncFile?)null)).Concat(plan.Checks.Select(c => (c.Source, Check: (SyncFile?)c.Target)));
        await RunParallelAsync(work, stats, cancellationToken).ConfigureAwait(false);

        if (plan.HasDeletes || plan.TransfersAfterDeletes.Any())
        {
            if (stats.Failed > 0)
            {
                log.Warning("not deleting anything: {Failed} transfer(s) failed in this run", stats.Failed);
                foreach (var waiting in plan.TransfersAfterDeletes)
                {
                    log.Error("not {Verb}ed {Key}: it has to replace an entry of another type, which is only removed when every other transfer succeeded",
                        target.ReceiveVerb, waiting.Source.Name);
                    stats.AddFailed();
                }
                return;
            }
            await DeleteAsync(plan, stats, cancellationToken).ConfigureAwait(false);
            await RunParallelAsync(plan.TransfersAfterDeletes.Select(t => (t.Source, Check: (SyncFile?)null)), stats, cancellationToken).ConfigureAwait(false);
        }

        foreach (var (path, error) in target.CreateDirectories(plan.Directories))
        {
            log.Error("cannot create directory {Path}: {Reason}", path, error);
            stats.AddFailed();
        }
    }

    private Task RunParallelAsync(IEnumerable<(SyncFile Source, SyncFile? Check)> work, SyncStats stats, CancellationToken cancellationToken) =>
        ParallelTransfers.RunAsync(work, parallel, async (item, ct) =>
        {
            try
            {
                if (item.Check is { } existing && await IsSameContentAsync(item.Source, existing, ct).ConfigureAwait(false))
                {
                    state.Record(item.Source.Path, Entry(item.Source, target.Adopt(item.Source, existing)));
                    stats.AddUnchanged();
                    return;
                }
                await TransferAsync(item.Source, stats, ct).ConfigureAwait(false);
            }
            catch (Exception ex) when (Vanished(ex))
            {
                log.Information("{Key} was deleted from the source during the run; the next run removes it {Where}", item.Source.Name, target.IsTree ? "here" : "there");
                stats.AddSkipped();
            }
        }, (item, ex) =>
        {
            log.Error("failed to {Verb} {Key}: {Reason}", target.ReceiveVerb, item.Source.Name, ex.Message);
            stats.AddFailed();
        }, cancellationToken);

    private async Task TransferAsync(SyncFile file, SyncStats stats, CancellationToken cancellationToken)
    {
        Written? written = null;
        await source.ReadAsync(file, async (content, info, ct) => written = await target.WriteAsync(file, content, info, ct).ConfigureAwait(false), cancellationToken)
            .ConfigureAwait(false);
        state.Record(file.Path, Entry(file, written!));
        stats.AddTransferred(written!.Size);
        log.Debug("{Verb}ed {Key} ({Bytes} bytes)", target.ReceiveVerb, file.Name, written.Size);
    }

    /// <summary>True if the local file of the pair has the object's ETag: the one checksum rule of every direction.</summary>
    private async Task<bool> IsSameContentAsync(SyncFile file, SyncFile existing, CancellationToken cancellationToken)
    {
        var (localSide, local, remote) = file.IsLocal ? (source, file, existing) : (target, existing, file);
        var checksum = await localSide.ChecksumAsync(local, cancellationToken).ConfigureAwait(false);
        if (checksum == remote.ETag) return true;
        log.Debug("{Path} differs from {Key}", local.Path, remote.Name);
        return false;
    }

    /// <summary>What the manifest keeps of a pair known equal: the size, the object's ETag, the local file's mtime.</summary>
    private static ManifestEntry Entry(SyncFile source, Written written) =>
        new(written.Size, written.ETag ?? source.ETag ?? "", written.LocalLastWriteUtc ?? source.LocalLastWriteUtc ?? default);

    private static bool Vanished(Exception ex) =>
        ex is StoreException { Kind: StoreErrorKind.ObjectNotFound } or FileNotFoundException or DirectoryNotFoundException;

    private async Task DeleteAsync(SyncPlan plan, SyncStats stats, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        var failed = await target.DeleteFilesAsync(plan.DeleteFiles, cancellationToken).ConfigureAwait(false);
        var refused = failed.Select(f => f.Path).ToHashSet(StringComparer.Ordinal);
        foreach (var (path, error) in failed) log.Error("failed to delete {Path}: {Reason}", path, error);
        foreach (var path in plan.DeleteFiles)
        {
            if (refused.Contains(path)) continue;
            state.Forget(path);
            log.Information("deleted {Path}", path);
        }
        stats.AddDeleted(plan.DeleteFiles.Count - failed.Count);
        stats.AddFailed(failed.Count);

        var undecodable = target.DeleteUndecodable(plan.DeleteUndecodable);
        foreach (var (path, error) in undecodable) log.Error("failed to delete {Path}: {Reason}", path, error);
        foreach (var entry in plan.DeleteUndecodable.Where(e => undecodable.All(u => u.Path != e.Display)))
            log.Information("deleted {Path} (its name is not UTF-8, so no object can have it)", entry.Display);
        stats.AddDeleted(plan.DeleteUndecodable.Count - undecodable.Count);
        stats.AddFailed(undecodable.Count);

        foreach (var (path, error) in await target.DeleteDirectoriesAsync(plan.DeleteDirectories, cancellationToken).ConfigureAwait(false))
        {
            if (error is null)
            {
                log.Information("deleted directory {Path}", path);
                continue;
            }
            log.Error("failed to delete directory {Path}: {Reason}", path, error);
            stats.AddFailed();
        }
    }
}
