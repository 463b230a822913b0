using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using InfraTools.Cli;
using InfraTools.Files;
using InfraTools.S3;
using InfraTools.Sync;

namespace InfraTools.Backup;

/// <summary>backup restore: bring a backed-up tree (mirror or snapshot) or file back onto a fresh host.</summary>
public static class RestoreCommand
{
    private const int DefaultParallel = 16;

    private static readonly Argument<string> Source = new("SOURCE") { Description = "s3://bucket/prefix/ of a tree or of snapshots, or s3://bucket/path/file of one file" };
    private static readonly Argument<string> Destination = new("DEST") { Description = "Directory to restore the tree into (or the file path, for one file)" };
    private static readonly Option<string?> Snapshot = new("--snapshot")
    {
        Description = "Which snapshot to restore: a name (yyyyMMddTHHmmssZ) or latest; default: the latest complete snapshot if SOURCE holds snapshots, else the tree itself",
        HelpName = "NAME",
    };
    private static readonly Option<bool> Force = new("--force") { Description = "Restore even if DEST is not empty, overwriting files that differ (other files are kept)" };
    private static readonly Option<string?> Chmod = new("--chmod") { Description = "Octal modes FILE[:DIR] of restored files and directories (default 0600:0700, backups may hold secrets)", HelpName = "MODES" };
    private static readonly Option<int> Parallel = BackupCommand.ParallelOption(DefaultParallel);

    public static Command Create()
    {
        var command = new Command("restore", "Restore a backed-up tree (latest mirror or a named/latest snapshot) or file into DEST, only if DEST is empty or missing unless --force.");
        command.Arguments.Add(Source);
        command.Arguments.Add(Destination);
        foreach (var option in new Option[] { Snapshot, Force, Chmod, Parallel }) command.Options.Add(option);
        ToolHost.SetAction(command, BackupCommand.Tool, RunAsync);
        return command;
    }

    private static async Task<int> RunAsync(ToolContext context)
    {
        var clock = Stopwatch.StartNew();
        var parse = context.Parse;
        var source = S3Location.Parse(parse.GetValue(Source)!, "SOURCE");
        var destinationText = parse.GetValue(Destination)!;
        if (string.IsNullOrWhiteSpace(destinationText)) throw new UsageException("DEST is empty: give the directory (or file) to restore into");
        var destination = LocalPaths.Resolve(destinationText);
        if (destination == "/") throw new UsageException("DEST '/' is not allowed: give the directory to restore into");
        var modes = parse.GetValue(Chmod) is { } chmod ? FileModes.ParseChmod(chmod) : FileModes.Private;
        var parallel = BackupCommand.CheckParallel(parse.GetValue(Parallel));
        var force = parse.GetValue(Force);
        var settings = context.ReadS3Settings();
        using var client = new S3Client(settings, parallel);

        if (source.Path.Length > 0 && !source.Path.EndsWith('/') && parse.GetValue(Snapshot) is null
            && await FindObjectAsync(client, source, context.Stopping).ConfigureAwait(false) is { } single)
            return await RestoreFileAsync(context, client, source, single, destination, modes, force).ConfigureAwait(false);

        var listing = new List<S3Object>();
        await foreach (var item in client.ListAsync(source.Bucket, source.Prefix, context.Stopping).ConfigureAwait(false)) listing.Add(item);
        var (prefix, what) = ChooseTree(listing, source, parse.GetValue(Snapshot));
        var objects = listing.Where(o => o.Key.StartsWith(prefix, StringComparison.Ordinal) && o.Key != prefix + Snapshots.CompleteMarker).ToList();
        if (objects.Count == 0) throw new S3Exception(S3ErrorKind.ObjectNotFound, $"nothing to restore: {source} holds no objects");

        if (!force && Directory.Exists(destination) && Directory.EnumerateFileSystemEntries(destination).Any())
            throw new ToolException(ExitCodes.Refused, $"DEST '{destination}' is not empty: nothing was restored. Restore into an empty directory, or use --force to overwrite.");
        if (File.Exists(destination)) throw new UsageException($"DEST '{destination}' is a file; a tree is restored into a directory");

        context.Log.Information("restoring {What} into {Destination}", what, destination);
        Directories.Create(destination, modes.Directory);
        using var destinationLock = FileLock.TryAcquireDirectory(destination)
            ?? throw new ToolException(ExitCodes.Refused, $"another run is already writing {destination} (it holds the lock on that directory): nothing was restored");
        var plan = MirrorPlanner.Plan(objects, LocalTree.Scan(destination), new Manifest(), new MirrorOptions(prefix, Delete: false, new GlobFilter([])));
        foreach (var skipped in plan.Skipped) context.Log.Warning("skipping {Key}: {Problem}", skipped.Key, skipped.Problem);
        var run = new MirrorRun(client, source.Bucket, destination, new Manifest(), modes, parallel, context.Log);
        await run.ExecuteAsync(plan, context.Stopping).ConfigureAwait(false);
        var stats = run.Stats;
        context.Log.Information("restored {What} into {Destination}: {Files} files ({Bytes}), {Unchanged} already there, {Failed} failed, {Skipped} skipped in {Seconds} s",
            what, destination, stats.Downloaded, BackupCommand.FormatBytes(stats.DownloadedBytes), stats.Unchanged, stats.Failed, stats.Skipped,
            clock.Elapsed.TotalSeconds.ToString("0.00", CultureInfo.InvariantCulture));
        return stats.Failed == 0 && plan.Skipped.Count == 0 ? ExitCodes.Ok : ExitCodes.PartialFailure;
    }

    /// <summary>The prefix to restore and a description: a named or the latest complete snapshot, or the tree itself.</summary>
    private static (string Prefix, string What) ChooseTree(List<S3Object> listing, S3Location source, string? requested)
    {
        var snapshots = Snapshots.Find(listing, source.Prefix);
        var complete = snapshots.Where(s => s.Complete).Select(s => s.Name).ToList(); // oldest first by the server's time
        string name;
        if (requested is null || requested == "latest")
        {
            if (complete.Count == 0)
            {
                if (requested == "latest" || snapshots.Count > 0)
                    throw new S3Exception(S3ErrorKind.ObjectNotFound, $"no complete snapshot under {source}" + (snapshots.Count > 0 ? $" ({snapshots.Count} incomplete ones: interrupted pushes)" : ""));
                return (source.Prefix, source.ToString());
            }
            name = complete[^1];
        }
        else
        {
            if (!Snapshots.IsName(requested)) throw new UsageException($"--snapshot '{requested}' is neither latest nor a snapshot name like 20261124T201502Z");
            if (!snapshots.Any(s => s.Name == requested)) throw new S3Exception(S3ErrorKind.ObjectNotFound, $"there is no snapshot {requested} under {source}");
            if (!complete.Contains(requested)) throw new ToolException(ExitCodes.Refused, $"snapshot {requested} under {source} is incomplete (an interrupted push): not restoring it");
            name = requested;
        }
        return ($"{source.Prefix}{name}/", $"snapshot {name} of {source}");
    }

    private static async Task<S3Object?> FindObjectAsync(S3Client client, S3Location source, CancellationToken cancellationToken)
    {
        await foreach (var item in client.ListAsync(source.Bucket, source.Path, cancellationToken).ConfigureAwait(false))
            if (item.Key == source.Path) return item;
        return null;
    }

    private static async Task<int> RestoreFileAsync(ToolContext context, S3Client client, S3Location source, S3Object item, string destination, FileModes modes, bool force)
    {
        if (Directory.Exists(destination)) destination = Path.Combine(destination, Path.GetFileName(item.Key));
        if (!force && File.Exists(destination) && new FileInfo(destination).Length > 0)
            throw new ToolException(ExitCodes.Refused, $"'{destination}' already exists: nothing was restored. Use --force to overwrite it.");
        var file = new RemoteFile(item.Key, Path.GetFileName(destination), item.Size, item.ETag, item.LastModified);
        var run = new MirrorRun(client, source.Bucket, Path.GetDirectoryName(destination)!, new Manifest(), modes, 1, context.Log);
        var single = new MirrorPlan();
        single.Downloads.Add(new Download(file, DownloadReason.New));
        await run.ExecuteAsync(single, context.Stopping).ConfigureAwait(false);
        if (run.Stats.Failed > 0) return ExitCodes.PartialFailure;
        context.Log.Information("restored {Source} to {Destination} ({Bytes})", source.ToString(), destination, BackupCommand.FormatBytes(item.Size));
        return ExitCodes.Ok;
    }
}
