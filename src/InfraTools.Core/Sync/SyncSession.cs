using Serilog;

namespace InfraTools.Sync;

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
