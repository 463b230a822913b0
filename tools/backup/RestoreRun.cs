using InfraTools.Backup.Tsdb;
using InfraTools.Cli;
using InfraTools.Crypto;
using InfraTools.Files;
using InfraTools.S3;
using InfraTools.Storage;
using InfraTools.Sync;

namespace InfraTools.Backup;

/// <summary>
/// One `backup restore`: a single object into a file, or a tree (the mirror, or the latest or a named complete
/// snapshot) into an empty DEST with the sync engine (bucket → local tree, without a manifest), private modes; a
/// prefix with incremental Prometheus snapshots by <see cref="TsdbRestore"/> (full copies there stay restorable).
/// </summary>
public sealed class RestoreRun(RestoreOptions options, ToolContext context) : IToolRun
{
    private readonly SyncStats _stats = new();

    public RunReport Report { get; } = new("backup_restore", "restore") { WritesMetrics = false };

    RunReport? IToolRun.Report => null;

    public async Task<ToolResult> RunAsync()
    {
        var source = options.Source;
        var destination = LocalPaths.Resolve(options.Destination);
        if (destination == "/") throw new UsageException("DEST '/' is not allowed: give the directory to restore into");
        var settings = context.ReadS3Settings();
        var identities = AgeSettingsReader.ReadIdentities(options.IdentityFile, context.Environment);
        // Always: an object NAME.age is encrypted, whether or not an identity was given (then it fails before anything is written).
        var decryption = new AgeObjectTransform([], identities, AgeSettingsReader.IdentityHint);
        using var store = new S3Store(settings, options.Parallel);

        if (source.IsKey && options.Snapshot is null && await FindObjectAsync(store, source).ConfigureAwait(false) is { } single)
        {
            if (IsEncrypted(single)) await decryption.CheckIdentityAsync(store, source.Bucket, single, context.Stopping).ConfigureAwait(false);
            return await RestoreFileAsync(store, single, destination, decryption).ConfigureAwait(false);
        }

        var listing = await store.ListAsync(source.Bucket, source.Prefix, context.Stopping).ToListAsync(context.Stopping).ConfigureAwait(false);
        if (listing.Any(o => BucketLayout.ManifestName(o.Key[source.Prefix.Length..]) is not null))
            return await RestoreTsdbAsync(store, destination).ConfigureAwait(false);
        var (prefix, what) = ChooseTree(listing, source, options.Snapshot);
        var marker = prefix + Snapshots.CompleteMarker;
        var objects = listing.Where(o => o.Key.StartsWith(prefix, StringComparison.Ordinal) && o.Key != marker).ToList();
        if (objects.Count == 0) throw new StoreException(StoreErrorKind.ObjectNotFound, $"nothing to restore: {source} holds no objects");

        if (!options.Force && Directory.Exists(destination) && Directory.EnumerateFileSystemEntries(destination).Any())
            throw new ToolException(ExitCodes.Refused, $"DEST '{destination}' is not empty: nothing was restored. Restore into an empty directory, or use --force to overwrite.");
        if (File.Exists(destination)) throw new UsageException($"DEST '{destination}' is a file; a tree is restored into a directory");
        // A wrong or missing identity fails here, on the first encrypted object's header, before DEST is created.
        if (objects.FirstOrDefault(IsEncrypted) is { } encrypted)
            await decryption.CheckIdentityAsync(store, source.Bucket, encrypted, context.Stopping).ConfigureAwait(false);

        context.Log.Information("restoring {What} into {Destination}", what, destination);
        Directories.Create(destination, options.Modes.Directory);
        using var destinationLock = FileLock.TryAcquireDirectory(destination)
            ?? throw new ToolException(ExitCodes.Refused, $"another run is already writing {destination} (it holds the lock on that directory): nothing was restored");
        var none = new GlobFilter([]);
        var session = new SyncSession(
            new BucketSide(store, source.Bucket, prefix, none, new HashSet<string>(StringComparer.Ordinal) { marker }, objects, decryption),
            new LocalSide(destination, options.Modes, none, TempNames.Process),
            SyncState.Ephemeral(context.Log),
            new SyncOptions(Delete: false, new SafetyOptions(EmptySourceRule.Allow, Force: false, MaxDelete: null), options.Parallel),
            context.Log);
        var plan = await session.PlanAsync(source.ToString(), destination, context.Stopping).ConfigureAwait(false);
        await session.RunAsync(plan, _stats, context.Stopping).ConfigureAwait(false);
        var complete = _stats.Failed == 0 && plan.Skipped.Count == 0;
        Report.LogSync(context.Log, "restored", what, "into", destination, _stats, "downloaded", complete);
        return complete ? ExitCodes.Ok : ExitCodes.PartialFailure;
    }

    /// <summary>The prefix to restore and a description: a named or the latest complete snapshot (by the server's clock), or the tree itself.</summary>
    private static (string Prefix, string What) ChooseTree(IReadOnlyList<StoredObject> listing, S3Location source, string? requested)
    {
        var snapshots = Snapshots.Find(listing, source.Prefix);
        var complete = snapshots.Where(s => s.Complete).Select(s => s.Name).ToList(); // oldest first by the server's time
        string name;
        if (requested is null || requested == "latest")
        {
            if (complete.Count == 0)
            {
                if (requested == "latest" || snapshots.Count > 0)
                    throw new StoreException(StoreErrorKind.ObjectNotFound, $"no complete snapshot under {source}" + (snapshots.Count > 0 ? $" ({snapshots.Count} incomplete ones: interrupted pushes)" : ""));
                return (source.Prefix, source.ToString());
            }
            name = complete[^1];
        }
        else
        {
            if (!snapshots.Any(s => s.Name == requested)) throw new StoreException(StoreErrorKind.ObjectNotFound, $"there is no snapshot {requested} under {source}");
            if (!complete.Contains(requested)) throw new ToolException(ExitCodes.Refused, $"snapshot {requested} under {source} is incomplete (an interrupted push): not restoring it");
            name = requested;
        }
        return ($"{source.Prefix}{name}/", $"snapshot {name} of {source}");
    }

    /// <summary>A prefix with incremental snapshots: the newest complete snapshot of either kind, or --snapshot NAME, assembled from its blocks.</summary>
    private async Task<ToolResult> RestoreTsdbAsync(S3Store store, string destination)
    {
        var restored = await TsdbRestore.RestoreAsync(new TsdbStore(store, options.Source.Bucket, options.Source.Prefix), destination,
            new TsdbRestoreOptions { Snapshot = options.Snapshot, Force = options.Force, Modes = options.Modes, Parallel = options.Parallel }, context.Log, context.Stopping)
            .ConfigureAwait(false);
        return restored.Failed == 0 ? ExitCodes.Ok : ExitCodes.PartialFailure;
    }

    private static bool IsEncrypted(StoredObject item) => item.Key.EndsWith(AgeObjectTransform.Suffix, StringComparison.Ordinal);

    /// <summary>The object SOURCE names, else its encrypted form SOURCE.age (what push --encrypt-to stored for that key).</summary>
    private async Task<StoredObject?> FindObjectAsync(S3Store store, S3Location source)
    {
        StoredObject? encrypted = null;
        await foreach (var item in store.ListAsync(source.Bucket, source.Path, context.Stopping).ConfigureAwait(false))
        {
            if (item.Key == source.Path) return item;
            if (item.Key == source.Path + AgeObjectTransform.Suffix) encrypted = item;
        }
        return encrypted;
    }

    private async Task<ToolResult> RestoreFileAsync(S3Store store, StoredObject item, string destination, AgeObjectTransform decryption)
    {
        var name = Path.GetFileName(item.Key);
        if (IsEncrypted(item) && name.Length > AgeObjectTransform.Suffix.Length) name = name[..^AgeObjectTransform.Suffix.Length];
        if (Directory.Exists(destination)) destination = Path.Combine(destination, name);
        if (!options.Force && File.Exists(destination) && new FileInfo(destination).Length > 0)
            throw new ToolException(ExitCodes.Refused, $"'{destination}' already exists: nothing was restored. Use --force to overwrite it.");
        var file = new SyncFile(Path.GetFileName(destination), item.Size, item.ETag, null, item.LastModified, item.Key);
        var local = new LocalSide(Path.GetDirectoryName(destination)!, options.Modes, new GlobFilter([]), TempNames.Process);
        Directories.Create(local.Root, options.Modes.Directory);
        var bucket = new BucketSide(store, options.Source.Bucket, "", new GlobFilter([]), transform: decryption);
        Written? written = null;
        await bucket.ReadAsync(file, async (content, info, ct) => written = await local.WriteAsync(file, content, info, ct).ConfigureAwait(false), context.Stopping)
            .ConfigureAwait(false);
        context.Log.Information("restored {Source} to {Destination} ({Bytes}{Decrypted})", $"s3://{options.Source.Bucket}/{item.Key}", destination,
            Units.FormatBytes(written!.Size), IsEncrypted(item) ? ", decrypted" : "");
        return ExitCodes.Ok;
    }
}
