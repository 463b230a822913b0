using System.Globalization;
using InfraTools.Cli;
using InfraTools.Files;
using InfraTools.Releases;
using InfraTools.S3;
using InfraTools.Sync;

namespace InfraTools.ContentPull;

/// <summary>The release-mode gauges of a run's textfile (pull and rollback).</summary>
internal static class ReleaseGauges
{
    public static ReportGauge Withheld(bool withheld) =>
        new("content_pull_release_withheld", "1 when the last run changed nothing because the source's release manifest (PREFIX/.release.json) no longer held.", withheld ? 1 : 0);

    public static IEnumerable<ReportGauge> For(ReleaseDirectory releases, ReleasePublished? published)
    {
        var gauges = new List<ReportGauge>();
        var ids = releases.ReleaseIdList();
        if (releases.CurrentId is { } current)
            gauges.Add(new("content_pull_release_info", "The release DEST/current points to (value 1).", 0, "release", [(current, 1)]));
        gauges.Add(new("content_pull_releases", "Releases kept in DEST/releases.", ids.Count));
        if (ids.Count > 0 && ReleaseIds.TryParseTime(ids[^1], out var newest))
            gauges.Add(new("content_pull_last_publish_timestamp_seconds", "Unix time the newest release was published.", new DateTimeOffset(newest).ToUnixTimeMilliseconds() / 1000.0));
        if (published is not null)
            gauges.Add(new("content_pull_last_publish_duration_seconds", "Linking, syncfs and swap of the last release published (in the run that published it).",
                published.Duration.TotalSeconds));
        gauges.Add(new("content_pull_last_run_release_files", "Files of the release the last run published, by how they got there (0 when it published none).", 0, "how",
        [
            ("linked", published?.Linked ?? 0), ("downloaded", published?.Downloaded ?? 0), ("carried", published?.Release.Carried ?? 0),
        ]));
        return gauges;
    }
}

/// <summary>
/// `content-pull publish DIR s3://bucket/prefix`: the sync engine pushes DIR (local → bucket, no deletes, every
/// same-size file compared by checksum, as CI has no state), then <see cref="BucketReleasePublisher"/> writes the
/// release manifest last and deletes what no recent release references.
/// </summary>
public sealed class PublishRun(PublishOptions options, ToolContext context) : IToolRun
{
    private readonly SyncStats _stats = new();

    public RunReport Report { get; } = new("content_pull_publish", "content-pull publish");

    RunReport? IToolRun.Report => Report;

    public async Task<ToolResult> RunAsync()
    {
        Report.Live = () => RunReport.FilesByOutcome(_stats, "content_pull_publish_last_run_files", "Files per outcome in the last publish.", "uploaded",
            "content_pull_publish_last_run_uploaded_bytes", "Bytes uploaded by the last publish.");
        var directory = LocalPaths.Resolve(options.Directory);
        if (!Directory.Exists(directory)) throw new UsageException($"DIR '{options.Directory}' is not a directory: nothing was published");
        var (bucket, prefix) = (options.Target.Bucket, options.Target.Prefix);
        var exclude = new GlobFilter(options.Exclude.Concat(ReleaseManifest.ProtocolExclusions));
        using var store = new S3Store(context.ReadS3Settings(), options.Parallel);
        using var state = SyncState.Ephemeral(context.Log);
        var publisher = new BucketReleasePublisher(store, bucket, prefix, state, options.KeepReleases, exclude, context.Log);
        var session = new SyncSession(
            new LocalSide(directory, FileModes.WebReadable, exclude, TempNames.Random()),
            new BucketSide(store, bucket, prefix, exclude),
            state,
            new SyncOptions(Delete: false, new SafetyOptions(EmptySourceRule.Refuse, options.Force, null), options.Parallel),
            context.Log, publisher);
        var plan = await session.PlanAsync(directory, options.Target.ToString(), context.Stopping).ConfigureAwait(false);
        await session.RunAsync(plan, _stats, context.Stopping).ConfigureAwait(false);
        var complete = _stats.Failed == 0 && plan.Skipped.Count == 0 && publisher.Result is not null;
        Report.LogSync(context.Log, "published", directory, "to", options.Target.ToString(), _stats, "uploaded", complete);
        if (publisher.Result is { } result)
        {
            Report.Gauges.Add(new("content_pull_publish_release_info", "The release the last publish wrote (value 1).", 0, "release", [(result.Id, 1)]));
            Report.Gauges.Add(new("content_pull_publish_release_files", "Files in the release the last publish wrote.", result.Files));
            Console.WriteLine(result.Id);
        }
        else
        {
            context.Log.Error("no release manifest written: {Failed} upload(s) failed; the release the bucket names stays as it was", _stats.Failed);
        }
        return complete ? ExitCodes.Ok : ExitCodes.PartialFailure;
    }
}

/// <summary>`content-pull rollback DEST [ID]`: one rename of DEST/current, no network, no S3 settings needed.</summary>
public sealed class RollbackRun(ReleaseCommandOptions options, ToolContext context) : IToolRun
{
    private ReleaseDirectory? _releases;

    public RunReport Report { get; } = new("content_pull", "content pull");

    RunReport? IToolRun.Report => Report;

    public Task<ToolResult> RunAsync()
    {
        Report.Live = () => _releases is null ? [] : ReleaseGauges.For(_releases, null);
        using var releases = ReleaseRunSupport.Open(options.Destination);
        _releases = releases;
        var result = releases.Rollback(options.Id);
        if (result.Changed) context.Log.Information("rolled back {Link} from {From} to {To}", releases.CurrentLinkPath, result.From, result.To);
        else context.Log.Information("{Link} already points to {To}: nothing changed", releases.CurrentLinkPath, result.To);
        Console.WriteLine(result.To);
        return Task.FromResult<ToolResult>(ExitCodes.Ok);
    }
}

/// <summary>`content-pull releases DEST`: one line per release, newest first.</summary>
public sealed class ListReleasesRun(ReleaseCommandOptions options, ToolContext context) : IToolRun
{
    public RunReport? Report => null;

    public Task<ToolResult> RunAsync()
    {
        // Listing changes nothing, so it does not wait for a pull at work; removing the legacy tree takes the lock.
        using var releases = ReleaseRunSupport.Open(options.Destination, locked: options.RemoveLegacy);
        if (options.RemoveLegacy)
        {
            var removed = releases.RemoveLegacyTree();
            context.Log.Information("removed the tree {Destination} held before its first release ({Entries} files and directories)", releases.Dest, removed);
        }
        else if (releases.IsLegacy || releases.LegacyEntries.Count > 0)
        {
            context.Log.Information("{Destination} still holds the site it had before its first release ({Entries} top-level entries): remove it with --remove-legacy once every nginx serves {Link}",
                releases.Dest, releases.LegacyEntries.Count, releases.CurrentLinkPath);
        }
        var list = releases.List();
        Console.WriteLine("ID\tPUBLISHED\tFILES\tBYTES\tCURRENT");
        foreach (var r in list)
            Console.WriteLine(string.Join('\t', r.Id, r.CreatedUtc.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture),
                (r.Files ?? 0).ToString(CultureInfo.InvariantCulture), (r.Bytes ?? 0).ToString(CultureInfo.InvariantCulture), r.IsCurrent ? "current" : ""));
        if (list.Count == 0) context.Log.Information("{Destination} has no releases yet", releases.Dest);
        else context.Log.Debug("{Count} releases, {Bytes} in all (files shared between releases count in each)", list.Count, Units.FormatBytes(list.Sum(r => r.Bytes ?? 0)));
        return Task.FromResult<ToolResult>(ExitCodes.Ok);
    }
}

internal static class ReleaseRunSupport
{
    /// <summary>
    /// Opens a release DEST for rollback or listing: it must exist and hold releases. <paramref name="locked"/>
    /// takes the DEST lock, which a pull at work holds (exit 5).
    /// </summary>
    public static ReleaseDirectory Open(string destination, bool locked = true)
    {
        var resolved = ContentPullRun.ResolveDestination(destination);
        if (!Directory.Exists(resolved)) throw new UsageException($"DEST '{destination}' is not a directory");
        if (!ReleaseDirectory.HasReleases(resolved))
            throw new ToolException(ExitCodes.Refused, $"'{resolved}' holds no releases (no {ReleaseDirectory.CurrentLinkName} link into {ReleaseDirectory.ReleasesDirectoryName}/): is it a DEST of content-pull --releases?");
        if (!locked) return ReleaseDirectory.OpenForReading(resolved);
        return ReleaseDirectory.TryOpen(resolved)
            ?? throw new ToolException(ExitCodes.Refused, $"another run is writing {resolved} (it holds the lock): try again when it is done; nothing was changed");
    }
}
