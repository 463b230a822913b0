using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using InfraTools.Cli;
using InfraTools.Files;
using InfraTools.Logging;
using InfraTools.S3;
using InfraTools.Sync;
using Serilog;

namespace InfraTools.ContentPull;

/// <summary>content-pull: make a local directory an exact mirror of an S3 prefix.</summary>
public static class ContentPullCommand
{
    public const string Tool = "content-pull";
    public const string DefaultStateDirectory = "/var/lib/content-pull";
    public const int DefaultParallel = 32;

    private static readonly Argument<string> Source = new("SOURCE") { Description = "s3://bucket[/prefix] to mirror" };
    private static readonly Argument<string> Destination = new("DEST") { Description = "Local directory to make an exact mirror of SOURCE" };
    private static readonly Option<bool> Delete = new("--delete", "--delete-removed") { Description = "Delete local files and directories that are not in SOURCE (after all downloads succeeded)" };
    private static readonly Option<string?> StateDirectory = new("--state-dir")
    {
        Description = $"Directory for the manifest of what was downloaded (env CONTENT_PULL_STATE_DIR; default {DefaultStateDirectory}); must be outside DEST",
        HelpName = "DIR",
    };
    private static readonly Option<int> Parallel = new("--parallel", "-j") { Description = $"Downloads at the same time (1-256, default {DefaultParallel})", DefaultValueFactory = _ => DefaultParallel, HelpName = "N" };
    private static readonly Option<bool> DryRun = new("--dry-run", "-n") { Description = "Print what would be done, change nothing" };
    private static readonly Option<string[]> Exclude = new("--exclude") { Description = "Skip keys matching GLOB (repeatable): neither downloaded nor deleted; '*' stays within a directory, '**' crosses them, a pattern without '/' matches file names anywhere", HelpName = "GLOB" };
    private static readonly Option<bool> Force = new("--force") { Description = "Mirror even an empty SOURCE into a non-empty DEST (deleting everything with --delete)" };
    private static readonly Option<int?> MaxDelete = new("--max-delete") { Description = "Refuse the run, changing nothing, if more than N files would be deleted", HelpName = "N" };
    private static readonly Option<string?> Umask = new("--umask") { Description = "Octal umask for created files and directories instead of the default 022 (files 0644, directories 0755)", HelpName = "MASK" };
    private static readonly Option<string?> Chmod = new("--chmod") { Description = "Octal modes FILE[:DIR] for created files and directories, e.g. 0640:0750", HelpName = "MODES" };

    public static RootCommand Create()
    {
        var root = new RootCommand("Mirror an S3 prefix into a local directory (the web root): atomic, parallel, safe.");
        root.Arguments.Add(Source);
        root.Arguments.Add(Destination);
        foreach (var option in new Option[] { Delete, StateDirectory, Parallel, DryRun, Exclude, Force, MaxDelete, Umask, Chmod }) root.Options.Add(option);
        CommonOptions.AddTo(root, s3: true, metrics: true);
        ToolHost.SetAction(root, Tool, RunAsync);
        return root;
    }

    private static async Task<int> RunAsync(ToolContext context)
    {
        var started = DateTimeOffset.UtcNow;
        var clock = Stopwatch.StartNew();
        var parse = context.Parse;
        var dryRun = parse.GetValue(DryRun);
        var metricsPath = context.MetricsPath;
        MirrorStats? stats = null;
        var success = false;
        try
        {
            var source = S3Location.Parse(parse.GetValue(Source)!, "SOURCE");
            var destination = ParseDestination(parse.GetValue(Destination)!);
            var parallel = parse.GetValue(Parallel);
            if (parallel is < 1 or > 256) throw new UsageException($"--parallel {parallel} is out of range: use 1 to 256");
            if (parse.GetValue(MaxDelete) is < 0) throw new UsageException($"--max-delete {parse.GetValue(MaxDelete)} is negative: give 0 or more (0 refuses any delete)");
            var modes = ParseModes(parse.GetValue(Umask), parse.GetValue(Chmod));
            var exclude = new GlobFilter(parse.GetValue(Exclude) ?? []);
            var delete = parse.GetValue(Delete);
            var settings = context.ReadS3Settings();
            var stateDirectory = ResolveStateDirectory(parse.GetValue(StateDirectory) ?? context.Environment("CONTENT_PULL_STATE_DIR"), destination);

            // DEST exists from here on (0755 and its parents too, whatever the umask), so that it can be locked.
            if (!dryRun) Directories.Create(destination, modes.Directory);
            using var state = SyncState.Open(stateDirectory, Tool, settings.Endpoint.ToString(), source.Bucket, source.Prefix, destination, dryRun,
                lockLocal: true, context.Log);
            using var client = new S3Client(settings, parallel);

            // The local scan runs while the listing waits for the server: on a no-change run the two are all the work.
            var scan = Task.Run(() => LocalTree.Scan(destination, exclude, state.Persistent ? state.TempNames.IsOurs : null));
            var listing = new List<S3Object>();
            await foreach (var item in client.ListAsync(source.Bucket, source.Prefix, context.Stopping).ConfigureAwait(false)) listing.Add(item);
            var local = await scan.ConfigureAwait(false);
            var plan = MirrorPlanner.Plan(listing, local, state.Manifest, new MirrorOptions(source.Prefix, delete, exclude));
            foreach (var skipped in plan.Skipped) context.Log.Warning("skipping {Key}: {Problem}", skipped.Key, skipped.Problem);

            CheckSafety(plan, local, source, destination, parse.GetValue(Force), parse.GetValue(MaxDelete));
            if (dryRun)
            {
                PrintPlan(plan);
                return plan.Skipped.Count == 0 && plan.Unreadable.Count == 0 ? ExitCodes.Ok : ExitCodes.PartialFailure;
            }

            var run = new MirrorRun(client, source.Bucket, destination, state.Manifest, modes, parallel, context.Log, state.TempNames);
            stats = run.Stats;
            try
            {
                using (Progress.Start(run.Stats, context))
                    await run.ExecuteAsync(plan, context.Stopping).ConfigureAwait(false);
            }
            finally
            {
                state.Manifest.RemoveWhere(path => !plan.SourceFiles.Contains(path));
                await state.SaveAsync().ConfigureAwait(false);
            }

            context.Log.Debug("{Requests} S3 requests", client.RequestsSent);
            success = run.Stats.Failed == 0 && plan.Skipped.Count == 0;
            context.Log.Information("pulled {Source} into {Destination}: {Downloaded} downloaded ({Bytes}), {Deleted} deleted, {Unchanged} unchanged, {Failed} failed, {Skipped} skipped in {Seconds} s",
                source.ToString(), destination, run.Stats.Downloaded, FormatBytes(run.Stats.DownloadedBytes), run.Stats.Deleted, run.Stats.Unchanged,
                run.Stats.Failed, run.Stats.Skipped, clock.Elapsed.TotalSeconds.ToString("0.00", CultureInfo.InvariantCulture));
            if (!success)
                context.Log.Error("the pull was incomplete: {Failed} file(s) failed and {Skipped} key(s) were skipped (see above)", run.Stats.Failed, plan.Skipped.Count);
            return success ? ExitCodes.Ok : ExitCodes.PartialFailure;
        }
        finally
        {
            if (metricsPath is not null && !dryRun)
            {
                try
                {
                    await ContentPullMetrics.WriteAsync(metricsPath, started, clock.Elapsed, success, stats).ConfigureAwait(false);
                }
                catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
                {
                    context.Log.Error("cannot write the metrics file {Path}: {Reason}", metricsPath, ex.Message);
                }
            }
        }
    }

    /// <summary>Refuses, before anything changes, runs that look like a mistake.</summary>
    private static void CheckSafety(MirrorPlan plan, LocalTree local, S3Location source, string destination, bool force, int? maxDelete)
    {
        if (plan.SourceEntries == 0 && local.Files.Count > 0 && !force)
            throw new ToolException(ExitCodes.Refused,
                $"{source} is empty but {destination} holds {local.Files.Count} file(s): refusing to mirror an empty source (wrong bucket or prefix?); nothing was changed. Use --force if the source really is empty.");
        if (maxDelete is { } limit && plan.DeleteFiles.Count > limit)
            throw new ToolException(ExitCodes.Refused,
                $"{plan.DeleteFiles.Count} file(s) would be deleted, more than --max-delete {limit}: nothing was changed. Check the source, or raise --max-delete.");
    }

    /// <summary>DEST with every symbolic link resolved, so that one directory is one DEST however it is spelled.</summary>
    private static string ParseDestination(string text)
    {
        if (string.IsNullOrWhiteSpace(text)) throw new UsageException("DEST is empty: give the web root directory, e.g. /var/www/htdocs");
        var full = LocalPaths.Resolve(text);
        if (full == "/") throw new UsageException("DEST '/' is not allowed: give the web root directory, e.g. /var/www/htdocs");
        if (File.Exists(full)) throw new UsageException($"DEST '{text}' is a file, not a directory");
        return full;
    }

    /// <summary>The state directory, resolved like DEST: never DEST itself or inside it, whatever links lead there.</summary>
    private static string ResolveStateDirectory(string? given, string destination)
    {
        var directory = LocalPaths.Resolve(string.IsNullOrEmpty(given) ? DefaultStateDirectory : given);
        if (LocalPaths.IsSameOrInside(directory, destination))
            throw new UsageException($"--state-dir '{given ?? DefaultStateDirectory}' is inside DEST '{destination}'{(directory == given ? "" : $" (it resolves to {directory})")}: put it outside the mirrored directory");
        return directory;
    }

    private static FileModes ParseModes(string? umask, string? chmod)
    {
        if (umask is not null && chmod is not null) throw new UsageException("--umask and --chmod cannot be combined: use one of them");
        if (chmod is not null) return FileModes.ParseChmod(chmod);
        return umask is not null ? FileModes.FromUmask(umask) : FileModes.WebReadable;
    }

    private static void PrintPlan(MirrorPlan plan)
    {
        // Keys are printed escaped: one with a newline cannot forge a line of the plan.
        foreach (var download in plan.Downloads)
            Console.WriteLine($"download {LogText.Escape(download.File.Key)} ({download.Reason switch { DownloadReason.New => "new", DownloadReason.Changed => "changed", DownloadReason.AfterDeletes => "replaces a local entry of another type", _ => "differs" }})");
        foreach (var verify in plan.Verify) Console.WriteLine($"check {LogText.Escape(verify.Key)} (same size, compared by checksum)");
        foreach (var path in plan.DeleteFiles) Console.WriteLine($"delete {LogText.Escape(path)}");
        foreach (var entry in plan.DeleteUndecodable) Console.WriteLine($"delete {entry.Display} (name not UTF-8)");
        foreach (var path in plan.DeleteDirectories) Console.WriteLine($"delete directory {LogText.Escape(path)} (if empty)");
        foreach (var leftover in plan.LeftoverTemporaryFiles) Console.WriteLine($"remove leftover temporary file {LogText.Escape(leftover)}");
        foreach (var (path, reason) in plan.Unreadable) Console.WriteLine($"cannot read directory {LogText.Escape(path)}: {reason}");
        foreach (var skipped in plan.Skipped) Console.WriteLine($"skip {LogText.Escape(skipped.Key)}: {skipped.Problem}");
        Console.WriteLine($"dry run: {plan.Downloads.Count} to download, {plan.Verify.Count} to check, {plan.Unchanged.Count} unchanged, {plan.DeleteFiles.Count + plan.DeleteUndecodable.Count} to delete, {plan.Skipped.Count} skipped; nothing was changed");
    }

    internal static string FormatBytes(long bytes) => bytes switch
    {
        < 1024 => $"{bytes} B",
        < 1024 * 1024 => (bytes / 1024.0).ToString("0.0 KB", CultureInfo.InvariantCulture),
        _ => (bytes / 1024.0 / 1024.0).ToString("0.0 MB", CultureInfo.InvariantCulture),
    };

    /// <summary>A progress line on stderr while pulling, only when stderr is a terminal and logs are for humans.</summary>
    private sealed class Progress : IDisposable
    {
        private readonly Timer? _timer;
        private readonly MirrorStats _stats;

        private Progress(MirrorStats stats, bool enabled)
        {
            _stats = stats;
            if (enabled) _timer = new Timer(_ => Draw(), null, TimeSpan.FromMilliseconds(250), TimeSpan.FromMilliseconds(250));
        }

        public static Progress Start(MirrorStats stats, ToolContext context)
        {
            var options = CommonOptions.LogOptions(context.Parse);
            return new Progress(stats, !Console.IsErrorRedirected && !options.Json && !options.Quiet);
        }

        private void Draw() =>
            Console.Error.Write($"\r{_stats.Downloaded + _stats.Unchanged + _stats.Failed}/{_stats.Planned} files, {FormatBytes(_stats.DownloadedBytes)} downloaded  ");

        public void Dispose()
        {
            if (_timer is null) return;
            _timer.Dispose();
            Console.Error.Write("\r\u001b[K");
        }
    }
}
