using InfraTools.Cli;
using InfraTools.Files;
using InfraTools.Logging;
using InfraTools.Releases;
using InfraTools.S3;
using InfraTools.Storage;
using InfraTools.Sync;

namespace InfraTools.ContentPull;

/// <summary>
/// One content-pull run: make DEST an exact mirror of SOURCE with the sync engine (bucket → local tree), in place
/// (every file renamed into DEST as it arrives) or in release mode (a new release built next to the current one and
/// published by one rename of DEST/current: <see cref="ReleasePublisher"/>). When SOURCE has a release manifest
/// (PREFIX/.release.json) the run mirrors exactly the set it names, and only if every object still is what it names.
/// The watcher passes its own <c>sharedStore</c> so that its pulls keep the S3 connections warm.
/// </summary>
public sealed class ContentPullRun(ContentPullOptions options, ToolContext context, S3Store? sharedStore = null) : IToolRun
{
    private readonly SyncStats _stats = new();
    private ReleaseDirectory? _releases;
    private ReleasePublisher? _publisher;
    private bool _withheld;

    public RunReport Report { get; } = new("content_pull", "content pull") { WritesMetrics = !options.DryRun };

    RunReport? IToolRun.Report => Report;

    public async Task<ToolResult> RunAsync()
    {
        Report.Live = () => RunReport.FilesByOutcome(_stats, "content_pull_last_run_files", "Files per outcome in the last content pull.", "downloaded",
                "content_pull_last_run_downloaded_bytes", "Bytes downloaded by the last content pull.")
            .Append(ReleaseGauges.Withheld(_withheld))
            .Concat(_releases is null ? [] : ReleaseGauges.For(_releases, _publisher?.Published));
        var destination = ResolveDestination(options.Destination);
        var stateDirectory = ResolveStateDirectory(options.StateDirectory ?? context.Environment("CONTENT_PULL_STATE_DIR"), destination);
        var release = options.Releases;
        var releaseMode = release.Requested || ReleaseDirectory.HasReleases(destination);
        if (!releaseMode && release.Given)
            throw new UsageException("--keep-releases, --release-grace, --keep-assets and --keep-assets-for apply to release mode: add --releases (and serve DEST/current)");
        if (releaseMode && !release.Requested) context.Log.Information("{Destination} holds releases: running in release mode", destination);
        var exclusions = options.Exclude.Concat(ReleaseManifest.ProtocolExclusions).ToList();
        var exclude = new GlobFilter(exclusions);
        var settings = context.ReadS3Settings();

        // DEST exists from here on (0755 and its parents too, whatever the umask), so that it can be locked.
        if (!options.DryRun) Directories.Create(destination, options.Modes.Directory);
        using var state = SyncState.Open(stateDirectory, ContentPullCli.Tool, settings.Endpoint.ToString(), options.Source.Bucket, options.Source.Prefix, destination,
            options.DryRun, lockLocal: true, context.Log);
        using var owned = sharedStore is null ? new S3Store(settings, options.Parallel) : null;
        var store = sharedStore ?? owned!;
        var requestsBefore = store.RequestsSent;

        ISyncSide target;
        if (releaseMode)
        {
            var releaseOptions = new ReleaseOptions
            {
                Modes = options.Modes, KeepReleases = release.KeepReleases, Grace = release.Grace, KeepAssets = release.KeepAssets, KeepAssetsFor = release.KeepAssetsFor,
            };
            _releases = options.DryRun
                ? ReleaseDirectory.TryOpen(destination, releaseOptions) ?? throw new RefusedException($"another run is already writing {destination}: not starting a second one")
                : ReleaseDirectory.OpenLocked(destination, releaseOptions);
            if (!options.DryRun) LogLeftovers(_releases.RemoveLeftovers());
            if (_releases.DanglingTarget is { } dangling)
                context.Log.Warning("{Link} points to {Target}, which does not exist: this run builds a complete new release", _releases.CurrentLinkPath, dangling);
            var side = new ReleaseSide(_releases, options.Modes, options.Exclude, state.TempNames, state.Manifest);
            _publisher = new ReleasePublisher(side, context.Log);
            target = side;
        }
        else
        {
            target = new LocalSide(destination, options.Modes, exclude, state.TempNames, state.Persistent ? state.TempNames.IsOurs : null, known: state.Manifest);
        }
        using var releases = _releases;
        var source = await SourceSideAsync(store, exclude, state).ConfigureAwait(false);
        if (source is null) return ExitCodes.Refused;
        var session = new SyncSession(source, target, state,
            new SyncOptions(options.Delete, new SafetyOptions(EmptySourceRule.RefuseIfTargetHasFiles, options.Force, options.MaxDelete), options.Parallel),
            context.Log, _publisher);

        var plan = await session.PlanAsync(options.Source.ToString(), destination, context.Stopping).ConfigureAwait(false);
        if (options.DryRun)
        {
            PlanPrinter.Print(plan);
            return plan.Skipped.Count == 0 && plan.Unreadable.Count == 0 ? ExitCodes.Ok : ExitCodes.PartialFailure;
        }

        using (Progress.Start(_stats, context.Common.Log))
            await session.RunAsync(plan, _stats, context.Stopping).ConfigureAwait(false);
        context.Log.Debug("{Requests} S3 requests", store.RequestsSent - requestsBefore);
        var complete = _stats.Failed == 0 && plan.Skipped.Count == 0;
        Report.LogSync(context.Log, "pulled", options.Source.ToString(), "into", releaseMode ? Path.Join(destination, ReleaseDirectory.CurrentLinkName) : destination,
            _stats, "downloaded", complete);
        if (_releases is not null)
        {
            if (_stats.Failed > 0)
                context.Log.Error("no new release: {Failed} file(s) failed; {Link} stays on {Release}; the next run tries again", _stats.Failed, _releases.CurrentLinkPath,
                    _releases.CurrentId ?? "nothing");
            CleanUp(_releases);
        }
        return complete ? ExitCodes.Ok : ExitCodes.PartialFailure;
    }

    /// <summary>
    /// The bucket side: the prefix's listing, or, when PREFIX/.release.json exists, exactly the set it names, after
    /// one listing showed that every object in it is still there with the ETag it names. Null (after saying why)
    /// when the manifest's release is not in the bucket as it names it: CI is uploading the next release, or an
    /// object was overwritten; nothing is changed and the next run tries again.
    /// </summary>
    private async Task<ISyncSide?> SourceSideAsync(S3Store store, GlobFilter exclude, SyncState state)
    {
        var (bucket, prefix) = (options.Source.Bucket, options.Source.Prefix);
        var manifestName = $"s3://{bucket}/{prefix}{ReleaseManifest.Name}";
        var manifest = await ReleaseManifest.ReadAsync(store, bucket, prefix + ReleaseManifest.Name, context.Stopping).ConfigureAwait(false);
        if (manifest is null) return new BucketSide(store, bucket, prefix, exclude, known: state.Manifest);

        var listing = new Dictionary<string, StoredObject>(StringComparer.Ordinal);
        var named = manifest.Files.Select(f => f.Path).ToArray(); // listed in ranges between them, at the same time
        await foreach (var item in store.ListAsync(bucket, prefix, named, context.Stopping).ConfigureAwait(false)) listing[item.Key] = item;
        if (manifest.Mismatch(listing, prefix) is { } why)
        {
            _withheld = true;
            context.Log.Error("release {Release} of {Manifest} does not hold: {Why}; nothing was changed (the current site stays), the next run tries again",
                manifest.Id, manifestName, why);
            return null;
        }
        context.Log.Information("following release {Release} of {Manifest} ({Files} files)", manifest.Id, manifestName, manifest.Files.Count);
        var listed = manifest.Files.Select(f => new StoredObject(prefix + f.Path, f.Size, f.ETag, listing[prefix + f.Path].LastModified)).ToList();
        return new ManifestSourceSide(new BucketSide(store, bucket, prefix, exclude, listed: listed, known: state.Manifest), $"the manifest of release {manifest.Id}");
    }

    private void LogLeftovers(LeftoverResult leftovers)
    {
        if (leftovers.Entries > 0)
            context.Log.Information("removed what an interrupted run left: {Staging} unfinished release(s), {Links} temporary link(s), {Orphans} orphaned list(s), {Entries} entries",
                leftovers.StagingDirectories, leftovers.TemporaryLinks, leftovers.OrphanFiles, leftovers.Entries);
    }

    /// <summary>Deletes old releases after publishing (off the critical path), also when nothing was published: grace periods end between publishes.</summary>
    private void CleanUp(ReleaseDirectory releases)
    {
        try
        {
            var cleanup = releases.Cleanup();
            foreach (var id in cleanup.Deleted) context.Log.Information("deleted old release {Release}", id);
            if (cleanup.Deleted.Count > 0)
                context.Log.Debug("cleanup removed {Entries} entries in {Seconds:0.00} s", cleanup.Entries, cleanup.Duration.TotalSeconds);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            context.Log.Warning("cannot delete old releases ({Reason}): the next run tries again", ex.Message);
        }
    }

    /// <summary>DEST with every symbolic link resolved, so that one directory is one DEST however it is spelled.</summary>
    internal static string ResolveDestination(string text)
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
            Console.Error.Write($"\r{_stats.Transferred + _stats.Unchanged + _stats.Failed}/{_stats.Planned} files, {Units.FormatBytes(_stats.TransferredBytes)} downloaded  ");

        public void Dispose()
        {
            if (_timer is null) return;
            _timer.Dispose();
            Console.Error.Write("\r\u001b[K");
        }
    }
}
