using InfraTools.Cli;
using InfraTools.Files;
using InfraTools.Logging;
using InfraTools.S3;
using InfraTools.Sync;

namespace InfraTools.ContentPull;

/// <summary>One content-pull run: make DEST an exact mirror of SOURCE with the sync engine (bucket → local tree).</summary>
public sealed class ContentPullRun(ContentPullOptions options, ToolContext context) : IToolRun
{
    private readonly SyncStats _stats = new();

    public RunReport Report { get; } = new("content_pull", "content pull") { WritesMetrics = !options.DryRun };

    RunReport? IToolRun.Report => Report;

    public async Task<ToolResult> RunAsync()
    {
        Report.Live = () => RunReport.FilesByOutcome(_stats, "content_pull_last_run_files", "Files per outcome in the last content pull.", "downloaded",
            "content_pull_last_run_downloaded_bytes", "Bytes downloaded by the last content pull.");
        var destination = ResolveDestination(options.Destination);
        var stateDirectory = ResolveStateDirectory(options.StateDirectory ?? context.Environment("CONTENT_PULL_STATE_DIR"), destination);
        var exclude = new GlobFilter(options.Exclude);
        var settings = context.ReadS3Settings();

        // DEST exists from here on (0755 and its parents too, whatever the umask), so that it can be locked.
        if (!options.DryRun) Directories.Create(destination, options.Modes.Directory);
        using var state = SyncState.Open(stateDirectory, ContentPullCli.Tool, settings.Endpoint.ToString(), options.Source.Bucket, options.Source.Prefix, destination,
            options.DryRun, lockLocal: true, context.Log);
        using var store = new S3Store(settings, options.Parallel);
        var session = new SyncSession(
            new BucketSide(store, options.Source.Bucket, options.Source.Prefix, exclude),
            new LocalSide(destination, options.Modes, exclude, state.TempNames, state.Persistent ? state.TempNames.IsOurs : null),
            state,
            new SyncOptions(options.Delete, new SafetyOptions(EmptySourceRule.RefuseIfTargetHasFiles, options.Force, options.MaxDelete), options.Parallel),
            context.Log);

        var plan = await session.PlanAsync(options.Source.ToString(), destination, context.Stopping).ConfigureAwait(false);
        if (options.DryRun)
        {
            PlanPrinter.Print(plan);
            return plan.Skipped.Count == 0 && plan.Unreadable.Count == 0 ? ExitCodes.Ok : ExitCodes.PartialFailure;
        }

        using (Progress.Start(_stats, context.Common.Log))
            await session.RunAsync(plan, _stats, context.Stopping).ConfigureAwait(false);
        context.Log.Debug("{Requests} S3 requests", store.RequestsSent);
        var complete = _stats.Failed == 0 && plan.Skipped.Count == 0;
        Report.LogSync(context.Log, "pulled", options.Source.ToString(), "into", destination, _stats, "downloaded", complete);
        return complete ? ExitCodes.Ok : ExitCodes.PartialFailure;
    }

    /// <summary>DEST with every symbolic link resolved, so that one directory is one DEST however it is spelled.</summary>
    private static string ResolveDestination(string text)
    {
        var full = LocalPaths.Resolve(text);
        if (full == "/") throw new UsageException("DEST '/' is not allowed: give the web root directory, e.g. /var/www/htdocs");
        if (File.Exists(full)) throw new UsageException($"DEST '{text}' is a file, not a directory");
        return full;
    }

    /// <summary>The state directory, resolved like DEST: never DEST itself or inside it, whatever links lead there.</summary>
    private static string ResolveStateDirectory(string? given, string destination)
    {
        var directory = LocalPaths.Resolve(string.IsNullOrEmpty(given) ? ContentPullCli.DefaultStateDirectory : given);
        if (LocalPaths.IsSameOrInside(directory, destination))
            throw new UsageException($"--state-dir '{given ?? ContentPullCli.DefaultStateDirectory}' is inside DEST '{destination}'{(directory == given ? "" : $" (it resolves to {directory})")}: put it outside the mirrored directory");
        return directory;
    }

    /// <summary>A progress line on stderr while pulling, only when stderr is a terminal and logs are for humans.</summary>
    private sealed class Progress : IDisposable
    {
        private readonly Timer? _timer;
        private readonly SyncStats _stats;

        private Progress(SyncStats stats, bool enabled)
        {
            _stats = stats;
            if (enabled) _timer = new Timer(_ => Draw(), null, TimeSpan.FromMilliseconds(250), TimeSpan.FromMilliseconds(250));
        }

        public static Progress Start(SyncStats stats, LogOptions log) => new(stats, !Console.IsErrorRedirected && !log.Json && !log.Quiet);

        private void Draw() =>
            Console.Error.Write($"\r{_stats.Transferred + _stats.Unchanged + _stats.Failed}/{_stats.Planned} files, {Text.Units.FormatBytes(_stats.TransferredBytes)} downloaded  ");

        public void Dispose()
        {
            if (_timer is null) return;
            _timer.Dispose();
            Console.Error.Write("\r\u001b[K");
        }
    }
}
