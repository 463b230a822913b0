using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Text;
using InfraTools.Cli;
using InfraTools.Files;
using InfraTools.Monitoring;
using InfraTools.S3;
using InfraTools.Sync;
using Serilog;

namespace InfraTools.Backup;

/// <summary>backup push: upload a file or a tree, only what changed, optionally as a timestamped snapshot.</summary>
public static class PushCommand
{
    public const string DefaultStateDirectory = "/var/lib/backup";
    private const int DefaultParallel = 8;
    /// <summary>How often a file given with --require-json is read again before giving up (Traefik may be rewriting it).</summary>
    private const int JsonAttempts = 5;
    private static readonly TimeSpan JsonRetryDelay = TimeSpan.FromSeconds(1);
    /// <summary>Largest file --require-json reads (acme-restore refuses larger backups too).</summary>
    private const long MaxJsonBytes = 64L << 20;

    private static readonly Argument<string> Source = new("SRC") { Description = "File or directory to back up" };
    private static readonly Argument<string> Target = new("TARGET")
    {
        Description = "s3://bucket/prefix/ for a tree (or a file, under its own name); s3://bucket/path/name to store a single file under that key",
    };
    private static readonly Option<string> Name = new("--name") { Description = "Name of this backup in the metrics (label name=...)", DefaultValueFactory = _ => "default", HelpName = "NAME" };
    private static readonly Option<bool> RequireJson = new("--require-json") { Description = $"SRC is a single JSON file (acme.json): upload it only if it parses, reading it up to {JsonAttempts} times" };
    private static readonly Option<bool> Delete = new("--delete") { Description = "Delete remote objects under the prefix that no longer exist locally (after all uploads succeeded)" };
    private static readonly Option<bool> Snapshot = new("--snapshot") { Description = "Upload into a new timestamped prefix (TARGET/yyyyMMddTHHmmssZ/) instead of mirroring into TARGET" };
    private static readonly Option<int?> KeepLast = new("--keep-last") { Description = "With --snapshot: keep the N newest complete snapshots, delete older ones", HelpName = "N" };
    private static readonly Option<string?> PrometheusSnapshot = new("--prometheus-snapshot")
    {
        Description = "Ask the Prometheus at URL for a TSDB snapshot (needs --web.enable-admin-api), upload it from SRC/snapshots/NAME, then delete it; SRC is Prometheus' data directory",
        HelpName = "URL",
    };
    private static readonly Option<string?> StateDirectory = new("--state-dir")
    {
        Description = $"Directory for the manifest of what was uploaded (env BACKUP_STATE_DIR; default {DefaultStateDirectory})",
        HelpName = "DIR",
    };
    private static readonly Option<string[]> Exclude = new("--exclude") { Description = "Skip local paths matching GLOB (repeatable; same rules as content-pull)", HelpName = "GLOB" };
    private static readonly Option<bool> Force = new("--force") { Description = "With --delete, mirror even an empty SRC (deleting every remote object under the prefix); with --snapshot, write a snapshot of an empty SRC" };
    private static readonly Option<int> Parallel = BackupCommand.ParallelOption(DefaultParallel);

    public static Command Create()
    {
        var command = new Command("push", "Upload a file or a directory tree to S3: only what changed, checked, in parallel.");
        command.Arguments.Add(Source);
        command.Arguments.Add(Target);
        foreach (var option in new Option[] { Name, RequireJson, Delete, Snapshot, KeepLast, PrometheusSnapshot, StateDirectory, Exclude, Force, Parallel })
            command.Options.Add(option);
        command.Options.Add(CommonOptions.MetricsFile);
        ToolHost.SetAction(command, BackupCommand.Tool, RunAsync);
        return command;
    }

    private sealed record Outcome(long Files, long Bytes, long Unchanged, long Deleted, long Failed, long Skipped, string? Snapshot = null);

    private static async Task<int> RunAsync(ToolContext context)
    {
        var started = DateTimeOffset.UtcNow;
        var clock = Stopwatch.StartNew();
        var parse = context.Parse;
        var name = parse.GetValue(Name)!;
        if (!IsValidName(name)) throw new UsageException($"--name '{name}' must be letters, digits, '-', '_' or '.', e.g. acme or prometheus");
        Outcome? outcome = null;
        var success = false;
        try
        {
            var sourceText = parse.GetValue(Source)!;
            if (string.IsNullOrWhiteSpace(sourceText)) throw new UsageException("SRC is empty: give the file or directory to back up");
            var source = Path.GetFullPath(sourceText);
            var target = S3Location.Parse(parse.GetValue(Target)!, "TARGET");
            var parallel = BackupCommand.CheckParallel(parse.GetValue(Parallel));
            var snapshot = parse.GetValue(Snapshot);
            var keepLast = parse.GetValue(KeepLast);
            if (keepLast is not null && !snapshot) throw new UsageException("--keep-last only applies with --snapshot");
            if (keepLast is < 1) throw new UsageException($"--keep-last {keepLast} must be at least 1");
            if (snapshot && parse.GetValue(Delete)) throw new UsageException("--delete does not apply with --snapshot (each snapshot is a new prefix); use --keep-last to prune");
            var prometheus = parse.GetValue(PrometheusSnapshot) is { } url ? ParseUrl(url) : null;
            if (prometheus is not null && parse.GetValue(RequireJson)) throw new UsageException("--require-json and --prometheus-snapshot cannot be combined");
            var settings = context.ReadS3Settings();
            using var client = new S3Client(settings, parallel);

            if (prometheus is not null)
            {
                if (!Directory.Exists(source)) throw new UsageException($"SRC '{source}' is not a directory: with --prometheus-snapshot it must be Prometheus' data directory");
                var snapshotDirectory = await PrometheusSnapshotApi.CreateAsync(prometheus, source, context.Stopping).ConfigureAwait(false);
                context.Log.Information("Prometheus made snapshot {Directory}", snapshotDirectory);
                try
                {
                    outcome = await PushTreeAsync(context, client, snapshotDirectory, target, snapshot, stateful: false, parallel).ConfigureAwait(false);
                }
                finally
                {
                    Directory.Delete(snapshotDirectory, recursive: true);
                    context.Log.Information("deleted the local snapshot {Directory}", snapshotDirectory);
                }
            }
            else if (File.Exists(source))
            {
                if (parse.GetValue(Delete)) throw new UsageException("--delete applies to a directory SRC, not to a single file");
                outcome = await PushFileAsync(context, client, source, target, snapshot, parse.GetValue(RequireJson)).ConfigureAwait(false);
            }
            else if (Directory.Exists(source))
            {
                if (parse.GetValue(RequireJson)) throw new UsageException("--require-json applies to a single file SRC (e.g. acme.json), not to a directory");
                outcome = await PushTreeAsync(context, client, source, target, snapshot, stateful: !snapshot, parallel).ConfigureAwait(false);
            }
            else
            {
                throw new ToolException(ExitCodes.Refused, $"SRC '{source}' does not exist: nothing was backed up");
            }

            if (snapshot && outcome.Failed == 0 && outcome.Skipped == 0 && keepLast is { } keep)
                await PruneAsync(context, client, target, keep, outcome.Snapshot).ConfigureAwait(false);

            success = outcome.Failed == 0 && outcome.Skipped == 0;
            context.Log.Information("backup {Name} to {Target}: {Files} uploaded ({Bytes}), {Unchanged} unchanged, {Deleted} deleted, {Failed} failed, {Skipped} skipped in {Seconds} s",
                name, target.ToString(), outcome.Files, BackupCommand.FormatBytes(outcome.Bytes), outcome.Unchanged, outcome.Deleted, outcome.Failed, outcome.Skipped,
                clock.Elapsed.TotalSeconds.ToString("0.00", CultureInfo.InvariantCulture));
            if (!success) context.Log.Error("the backup {Name} is incomplete: {Failed} failed, {Skipped} skipped (see above)", name, outcome.Failed, outcome.Skipped);
            return success ? ExitCodes.Ok : ExitCodes.PartialFailure;
        }
        finally
        {
            await WriteMetricsAsync(context, name, started, clock.Elapsed, success, outcome).ConfigureAwait(false);
        }
    }

    /// <summary>Uploads one file, unless the object already holds the same bytes. With --require-json the bytes must parse first.</summary>
    private static async Task<Outcome> PushFileAsync(ToolContext context, S3Client client, string source, S3Location target, bool snapshot, bool requireJson)
    {
        var fileName = Path.GetFileName(source);
        var snapshotName = snapshot ? Snapshots.NewName(DateTimeOffset.UtcNow) : null;
        var key = snapshotName is not null ? $"{target.Prefix}{snapshotName}/{fileName}"
            : target.Path.Length == 0 || target.Path.EndsWith('/') ? target.Path + fileName
            : target.Path;
        var content = requireJson
            ? await ReadValidJsonAsync(source, context.Log, context.Stopping).ConfigureAwait(false)
            : null;
        // The SRC named on the command line may be a link (followed); it must end at a regular file, never a FIFO.
        await using var file = content is null ? RegularFile.OpenRead(source, followLinks: true) : null;
        Stream data = content is not null ? new MemoryStream(content) : file!;
        var size = data.Length;
        var localETag = await ObjectChecksum.ComputeETagAsync(data, size, context.Stopping).ConfigureAwait(false);
        data.Position = 0;

        if (snapshotName is null)
        {
            await foreach (var existing in client.ListAsync(target.Bucket, key, context.Stopping).ConfigureAwait(false))
            {
                if (existing.Key != key) continue;
                if (existing.Size == size && existing.ETag == localETag)
                {
                    context.Log.Debug("{Key} already holds this content", key);
                    return new Outcome(0, 0, 1, 0, 0, 0);
                }
                break;
            }
        }

        if (snapshotName is not null) await WarnAboutFutureNamesAsync(context, client, target, snapshotName).ConfigureAwait(false);
        await client.PutAsync(target.Bucket, key, data, size, cancellationToken: context.Stopping).ConfigureAwait(false);
        context.Log.Debug("uploaded {Key} ({Bytes} bytes)", key, size);
        if (snapshotName is not null) await MarkCompleteAsync(client, target, snapshotName, 1, size, context.Stopping).ConfigureAwait(false);
        return new Outcome(1, size, 0, 0, 0, 0, snapshotName);
    }

    /// <summary>Uploads a directory tree: everything into a new snapshot, or only what changed into the mirror prefix.</summary>
    private static async Task<Outcome> PushTreeAsync(ToolContext context, S3Client client, string source, S3Location target, bool snapshot, bool stateful, int parallel)
    {
        var parse = context.Parse;
        var snapshotName = snapshot ? Snapshots.NewName(DateTimeOffset.UtcNow) : null;
        var prefix = snapshotName is null ? target.Prefix : $"{target.Prefix}{snapshotName}/";
        var delete = !snapshot && parse.GetValue(Delete);
        var exclude = new GlobFilter(parse.GetValue(Exclude) ?? []);
        var local = LocalTree.Scan(source, exclude);

        var remote = new List<S3Object>();
        if (snapshotName is null)
            await foreach (var item in client.ListAsync(target.Bucket, prefix, context.Stopping).ConfigureAwait(false)) remote.Add(item);
        if (delete && local.Files.Count == 0 && remote.Count > 0 && !parse.GetValue(Force))
            throw new ToolException(ExitCodes.Refused,
                $"SRC '{source}' has no files but {target} holds {remote.Count} object(s): refusing to delete the backup (wrong SRC?); nothing was changed. Use --force if that is really wanted.");
        if (snapshotName is not null && local.Files.Count == 0 && !parse.GetValue(Force))
            throw new ToolException(ExitCodes.Refused,
                $"SRC '{source}' has no files: refusing to write an empty snapshot, which would count as the newest backup (and with --keep-last push real ones out); nothing was uploaded. Use --force if an empty backup is really wanted.");
        if (snapshotName is not null) await WarnAboutFutureNamesAsync(context, client, target, snapshotName).ConfigureAwait(false);

        var stateDirectory = parse.GetValue(StateDirectory) is { Length: > 0 } given ? given
            : context.Environment("BACKUP_STATE_DIR") is { Length: > 0 } fromEnvironment ? fromEnvironment
            : DefaultStateDirectory;
        using var state = stateful
            ? SyncState.Open(LocalPaths.Resolve(stateDirectory), BackupCommand.Tool, client.Settings.Endpoint.ToString(), target.Bucket, prefix,
                LocalPaths.Resolve(source), readOnly: false, lockLocal: false, context.Log)
            : null;
        var manifest = state?.Manifest ?? new Manifest();
        var plan = UploadPlanner.Plan(local, remote, manifest, prefix, delete, exclude);
        foreach (var skipped in plan.Skipped) context.Log.Warning("skipping {Path}: {Problem}", skipped.Key, skipped.Problem);

        var run = new UploadRun(client, target.Bucket, source, manifest, parallel, context.Log);
        try
        {
            await run.ExecuteAsync(plan, context.Stopping).ConfigureAwait(false);
        }
        finally
        {
            manifest.RemoveWhere(path => !plan.LocalFiles.Contains(path));
            if (state is not null) await state.SaveAsync().ConfigureAwait(false);
        }
        var stats = run.Stats;
        if (snapshotName is not null && stats.Failed == 0 && plan.Skipped.Count == 0)
            await MarkCompleteAsync(client, target, snapshotName, stats.Uploaded, stats.UploadedBytes, context.Stopping).ConfigureAwait(false);
        return new Outcome(stats.Uploaded, stats.UploadedBytes, stats.Unchanged, stats.Deleted, stats.Failed, plan.Skipped.Count, snapshotName);
    }

    private static async Task MarkCompleteAsync(S3Client client, S3Location target, string snapshotName, long files, long bytes, CancellationToken cancellationToken)
    {
        var marker = Encoding.UTF8.GetBytes($"{{\"snapshot\":\"{snapshotName}\",\"files\":{files},\"bytes\":{bytes},\"completed\":\"{DateTimeOffset.UtcNow:O}\"}}\n");
        await client.PutAsync(target.Bucket, $"{target.Prefix}{snapshotName}/{Snapshots.CompleteMarker}", new MemoryStream(marker), marker.Length,
            contentType: "application/json", cancellationToken: cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Keeps the newest <paramref name="keep"/> complete snapshots by the server's clock, and always the one just
    /// written; deletes older ones and incomplete leftovers older than the newest complete one.
    /// </summary>
    private static async Task PruneAsync(ToolContext context, S3Client client, S3Location target, int keep, string? justWritten)
    {
        var listing = new List<S3Object>();
        await foreach (var item in client.ListAsync(target.Bucket, target.Prefix, context.Stopping).ConfigureAwait(false)) listing.Add(item);
        var doomed = Snapshots.ToPrune(Snapshots.Find(listing, target.Prefix), keep, justWritten).ToHashSet(StringComparer.Ordinal);
        if (doomed.Count == 0) return;
        var keys = listing.Where(o => doomed.Any(d => o.Key.StartsWith($"{target.Prefix}{d}/", StringComparison.Ordinal))).Select(o => o.Key).ToList();
        var failures = await client.DeleteManyAsync(target.Bucket, keys, context.Stopping).ConfigureAwait(false);
        if (failures.Count > 0) throw new S3Exception(S3ErrorKind.ServerError, $"pruning old snapshots failed for {failures.Count} object(s), e.g. {failures[0].Key}: {failures[0].Error}");
        foreach (var name in doomed.Order(StringComparer.Ordinal)) context.Log.Information("pruned snapshot {Snapshot}", $"{target.Prefix}{name}/");
    }

    /// <summary>Warns when existing snapshots are named later than this host's clock says now (a host whose clock was ahead pushed them).</summary>
    private static async Task WarnAboutFutureNamesAsync(ToolContext context, S3Client client, S3Location target, string newName)
    {
        var listing = new List<S3Object>();
        await foreach (var item in client.ListAsync(target.Bucket, target.Prefix, context.Stopping).ConfigureAwait(false)) listing.Add(item);
        var later = Snapshots.Find(listing, target.Prefix).Where(s => string.CompareOrdinal(s.Name, newName) > 0).Select(s => s.Name).ToList();
        if (later.Count > 0)
            context.Log.Warning("{Count} snapshot(s) under {Target} are named after this host's time {Now}, e.g. {Name}: a host with its clock ahead pushed them. Snapshots are ordered by the server's time, so they are not taken for the newest; check the clocks (NTP)",
                later.Count, target.ToString(), newName, later[^1]);
    }

    /// <summary>Reads a file that must be one JSON object, retrying while it is empty or does not parse (it may be half-written).</summary>
    private static async Task<byte[]> ReadValidJsonAsync(string path, ILogger log, CancellationToken cancellationToken)
    {
        string problem = "";
        for (var attempt = 1; attempt <= JsonAttempts; attempt++)
        {
            var content = await RegularFile.ReadAllBytesAsync(path, followLinks: true, MaxJsonBytes, cancellationToken).ConfigureAwait(false);
            problem = JsonObjectCheck.Problem(content) ?? "";
            if (problem.Length == 0) return content;
            if (attempt < JsonAttempts)
            {
                log.Warning("{Path} {Problem}; reading it again in {Seconds} s (attempt {Attempt} of {Attempts})", path, problem, JsonRetryDelay.TotalSeconds, attempt, JsonAttempts);
                await Task.Delay(JsonRetryDelay, cancellationToken).ConfigureAwait(false);
            }
        }
        throw new ToolException(ExitCodes.Refused, $"{path} {problem} after {JsonAttempts} attempts: not uploaded, the copy in S3 was left as it is");
    }

    private static async Task WriteMetricsAsync(ToolContext context, string name, DateTimeOffset started, TimeSpan duration, bool success, Outcome? outcome)
    {
        if (context.MetricsPath is not { } path) return;
        try
        {
            await RunMetrics.WriteAsync(path, "backup", "backup", [("name", name)], started, duration, success, metrics =>
            {
                metrics.Gauge("backup_last_run_uploaded_files", "Files uploaded by the last backup run.", outcome?.Files ?? 0);
                metrics.Gauge("backup_last_run_uploaded_bytes", "Bytes uploaded by the last backup run.", outcome?.Bytes ?? 0);
            }).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            context.Log.Error("cannot write the metrics file {Path}: {Reason}", path, ex.Message);
        }
    }

    private static bool IsValidName(string name) => name.Length is > 0 and <= 64 && name.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.');

    private static Uri ParseUrl(string text) =>
        Uri.TryCreate(text.EndsWith('/') ? text : text + "/", UriKind.Absolute, out var uri) && (uri.Scheme == Uri.UriSchemeHttp || uri.Scheme == Uri.UriSchemeHttps)
            ? uri
            : throw new UsageException($"--prometheus-snapshot '{text}' is not an http(s) URL, e.g. http://prometheus:9090");
}
