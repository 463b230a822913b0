// The sync engine's execution: the runner that carries out a plan (SyncRunner), bounded parallel transfers
// (ParallelTransfers), and one run from listing to publishing, with its options and publisher (SyncSession).
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

/// <summary>
/// Runs transfers in parallel and sorts their failures: an error that would hit every other transfer too
/// (<see cref="StoreException.StopsTheRun"/>: endpoint unreachable, credentials refused, bucket gone) stops them
/// all and is rethrown, any other store or file-system error fails just that item.
/// </summary>
public static class ParallelTransfers
{
    public static async Task RunAsync<T>(IEnumerable<T> items, int parallel, Func<T, CancellationToken, Task> transfer,
        Action<T, Exception> onItemFailed, CancellationToken cancellationToken)
    {
        using var stopAll = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        StoreException? fatal = null;
        try
        {
            await Parallel.ForEachAsync(items, new ParallelOptions { MaxDegreeOfParallelism = parallel, CancellationToken = stopAll.Token },
                async (item, ct) =>
                {
                    try
                    {
                        await transfer(item, ct).ConfigureAwait(false);
                    }
                    catch (StoreException ex) when (ex.StopsTheRun)
                    {
                        Interlocked.CompareExchange(ref fatal, ex, null);
                        await stopAll.CancelAsync().ConfigureAwait(false);
                    }
                    catch (Exception ex) when (ex is StoreException or IOException or UnauthorizedAccessException)
                    {
                        onItemFailed(item, ex);
                    }
                }).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (fatal is not null && !cancellationToken.IsCancellationRequested)
        {
        }
        if (fatal is not null) throw fatal;
    }
}

/// <summary>How a run goes, besides its two sides.</summary>
public sealed record SyncOptions(bool Delete, SafetyOptions Safety, int Parallel);

/// <summary>
/// Where a finished run's result becomes visible. In place (the default), every file was already renamed into
/// the target as it arrived; a release publisher swaps a whole new tree in at once.
/// </summary>
public interface IPublisher
{
    Task PublishAsync(SyncPlan plan, SyncStats stats, CancellationToken cancellationToken);
}

/// <summary>
/// One run of the engine for every tool and direction: both sides are listed at the same time (on a no-change
/// pull the listing and the local scan are all the work), the plan is made and checked by the safety policy
/// before anything changes, then carried out, the manifest (the state's, the only owner) pruned to the source's
/// files and saved, also when the run failed half-way, and the result published.
/// </summary>
public sealed class SyncSession(ISyncSide source, ISyncSide target, SyncState state, SyncOptions options, ILogger log, IPublisher? publisher = null)
{
    public ISyncSide Source => source;
    public ISyncSide Target => target;

    /// <summary>Lists both sides and plans; throws <see cref="RefusedException"/> if the safety policy refuses the run.</summary>
    public async Task<SyncPlan> PlanAsync(string sourceText, string targetText, CancellationToken cancellationToken)
    {
        var targetListing = target.ListAsync(cancellationToken);
        var sourceListing = await source.ListAsync(cancellationToken).ConfigureAwait(false);
        var targetFiles = await targetListing.ConfigureAwait(false);
        var plan = SyncPlanner.Plan(source, sourceListing, target, targetFiles, state.Manifest, options.Delete);
        foreach (var skipped in plan.Skipped) log.Warning("skipping {Key}: {Problem}", skipped.Key, skipped.Problem);
        // Target entries a side leaves alone (plaintext objects under an encrypted push): one line, not one per object.
        if (targetFiles.Skipped.Count > 0)
            log.Warning("{Count} object(s) under the target left alone, e.g. {Key}: {Problem}", targetFiles.Skipped.Count, targetFiles.Skipped[0].Key, targetFiles.Skipped[0].Problem);
        SafetyPolicy.Check(plan, options.Safety, target, sourceText, targetText);
        return plan;
    }

    /// <summary>Carries out the plan into <paramref name="stats"/>; the result is published only when nothing failed.</summary>
    public async Task RunAsync(SyncPlan plan, SyncStats stats, CancellationToken cancellationToken)
    {
        var runner = new SyncRunner(source, target, state, options.Parallel, log);
        if (publisher is null)
        {
            try
            {
                await runner.RunAsync(plan, stats, cancellationToken).ConfigureAwait(false);
            }
            finally
            {
                await state.SaveAsync(plan.SourceFiles).ConfigureAwait(false);
            }
            return;
        }
        // With a publisher (release mode) the manifest must describe what is published: saved before the swap, a
        // run killed in between would leave entries for staged files that the next run matches against the old
        // release's files (same size, same Last-Modified second) and skips. Saved only after publishing; a run that
        // failed or died keeps the previous manifest, which still describes the current release.
        await runner.RunAsync(plan, stats, cancellationToken).ConfigureAwait(false);
        if (stats.Failed > 0) return;
        await publisher.PublishAsync(plan, stats, cancellationToken).ConfigureAwait(false);
        await state.SaveAsync(plan.SourceFiles).ConfigureAwait(false);
    }
}
