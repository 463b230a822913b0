using System.Text;
using InfraTools.Backup.Acme;
using InfraTools.Backup.Tsdb;
using InfraTools.Cli;
using InfraTools.Crypto;
using InfraTools.Files;
using InfraTools.S3;
using InfraTools.Storage;
using InfraTools.Sync;

namespace InfraTools.Backup;

/// <summary>
/// One `backup push`: a single file (put when it differs), or a directory tree with the sync engine (local →
/// bucket): mirrored into the prefix with a manifest, or as a new timestamped snapshot completed by a marker; a
/// fresh Prometheus TSDB snapshot with --snapshot as an incremental snapshot (each block uploaded once, a manifest
/// naming them: <see cref="TsdbBackup"/>); then old snapshots pruned by one retention policy. With --acme the file
/// must not lose what the copy in S3 holds (<see cref="AcmeGuard"/>).
/// </summary>
public sealed class PushRun(PushOptions options, ToolContext context) : IToolRun
{
    private static readonly TimeSpan JsonRetryDelay = TimeSpan.FromSeconds(1);
    /// <summary>Largest file --require-json reads (acme-restore refuses larger backups too).</summary>
    private const long MaxJsonBytes = 64L << 20;

    private readonly SyncStats _stats = new();
    /// <summary>The age encryption of this push, if it has recipients.</summary>
    private AgeObjectTransform? _encryption;

    public RunReport Report { get; } = new("backup", "backup", [("name", options.Name)]);

    RunReport? IToolRun.Report => Report;

    public async Task<ToolResult> RunAsync()
    {
        Report.Live = () =>
        [
            new("backup_last_run_uploaded_files", "Files uploaded by the last backup run.", _stats.Transferred),
            new("backup_last_run_uploaded_bytes", "Bytes uploaded by the last backup run.", _stats.TransferredBytes),
        ];
        var source = Path.GetFullPath(options.Source);
        var settings = context.ReadS3Settings();
        var recipients = AgeSettingsReader.ReadRecipients(options.EncryptTo, options.EncryptToFiles, context.Environment);
        _encryption = recipients.Count > 0 ? new AgeObjectTransform(recipients, [], AgeSettingsReader.IdentityHint) : null;
        if (_encryption is not null)
            context.Log.Information("encrypting for {Count} age recipient(s) {Recipients}: objects are stored as NAME.age", recipients.Count, string.Join(", ", recipients));
        using var store = new S3Store(settings, options.Parallel);

        (bool Complete, string? Snapshot) pushed;
        if (options.PrometheusSnapshot is { } prometheus)
        {
            if (!Directory.Exists(source)) throw new UsageException($"SRC '{source}' is not a directory: with --prometheus-snapshot it must be Prometheus' data directory");
            var snapshotDirectory = await PrometheusSnapshotApi.CreateAsync(prometheus, source, context.Stopping).ConfigureAwait(false);
            context.Log.Information("Prometheus made snapshot {Directory}", snapshotDirectory);
            try
            {
                pushed = options.Snapshot
                    ? await PushIncrementalAsync(store, snapshotDirectory).ConfigureAwait(false)
                    : await PushTreeAsync(store, snapshotDirectory, stateful: false).ConfigureAwait(false);
            }
            finally
            {
                Directory.Delete(snapshotDirectory, recursive: true);
                context.Log.Information("deleted the local snapshot {Directory}", snapshotDirectory);
            }
        }
        else if (File.Exists(source))
        {
            if (options.Delete) throw new UsageException("--delete applies to a directory SRC, not to a single file");
            pushed = await PushFileAsync(store, source).ConfigureAwait(false);
        }
        else if (Directory.Exists(source))
        {
            if (options.RequireJson) throw new UsageException("--require-json applies to a single file SRC (e.g. acme.json), not to a directory");
            pushed = await PushTreeAsync(store, source, stateful: !options.Snapshot).ConfigureAwait(false);
        }
        else
        {
            throw new ToolException(ExitCodes.Refused, $"SRC '{source}' does not exist: nothing was backed up");
        }

        if (options.Snapshot && pushed.Complete && RetentionPolicy.FromOptions(options.KeepLast, options.Keep?.Daily, options.Keep?.Weekly, options.Keep?.Monthly) is { } policy)
            await PruneAsync(store, policy, pushed.Snapshot).ConfigureAwait(false);

        Report.LogSync(context.Log, $"backup {options.Name}: pushed", source, "to", options.Target.ToString(), _stats, "uploaded", pushed.Complete);
        return pushed.Complete ? ExitCodes.Ok : ExitCodes.PartialFailure;
    }

    /// <summary>
    /// Uploads one file with the sync engine (the file as a one-file source, the key's folder as the bucket side),
    /// unless the object already holds the same bytes; with --require-json the bytes must parse first. Plaintext:
    /// a same-size object is compared by MD5 against its ETag, so no state is needed. Encrypted: the ciphertext
    /// differs on every run, so only the manifest (size, mtime, the object's ETag) tells an unchanged file, which
    /// is then not uploaded again; the object is KEY.age (KEY if it ends in .age).
    /// </summary>
    private async Task<(bool, string?)> PushFileAsync(S3Store store, string source)
    {
        var encryption = _encryption;
        var target = options.Target;
        var fileName = Path.GetFileName(source);
        var snapshotName = options.Snapshot ? Snapshots.NewName(DateTimeOffset.UtcNow) : null;
        var key = snapshotName is not null ? $"{target.Prefix}{snapshotName}/{fileName}"
            : target.Path.Length == 0 || target.Path.EndsWith('/') ? target.Path + fileName
            : target.Path;
        if (encryption is not null && key.EndsWith(AgeObjectTransform.Suffix, StringComparison.Ordinal) && key[(key.LastIndexOf('/') + 1)..].Length > AgeObjectTransform.Suffix.Length)
            key = key[..^AgeObjectTransform.Suffix.Length];
        var prefix = key[..(key.LastIndexOf('/') + 1)];
        var name = key[prefix.Length..];

        // The mtime is taken before the content is read: a file that changes meanwhile differs on the next run.
        DateTime modified;
        await using (var file = RegularFile.OpenRead(source, followLinks: true)) modified = File.GetLastWriteTimeUtc(file.SafeFileHandle);
        var content = options.RequireJson ? await ReadValidJsonAsync(source).ConfigureAwait(false) : null;

        var existing = snapshotName is not null ? []
            : await store.ListAsync(target.Bucket, key, context.Stopping).Where(o => o.Key == key || (encryption is not null && o.Key == key + AgeObjectTransform.Suffix))
                .ToListAsync(context.Stopping).ConfigureAwait(false);
        using var state = snapshotName is null && encryption is not null
            ? SyncState.Open(LocalPaths.Resolve(StateDirectory()), BackupCli.Tool, store.Settings.Endpoint.ToString(), target.Bucket, key,
                LocalPaths.Resolve(source), readOnly: false, lockLocal: false, context.Log, encryption.Variant)
            : SyncState.Ephemeral(context.Log);
        var session = new SyncSession(
            new FileSide(source, name, content, modified),
            new BucketSide(store, target.Bucket, prefix, new GlobFilter([]), listed: existing, transform: encryption),
            state,
            new SyncOptions(Delete: false, new SafetyOptions(EmptySourceRule.Allow, options.Force, MaxDelete: null), Parallel: 1),
            context.Log);
        var plan = await session.PlanAsync(source, target.ToString(), context.Stopping).ConfigureAwait(false);
        if (options.Acme && (plan.Transfers.Count > 0 || plan.Checks.Count > 0))
        {
            if (encryption is not null)
                GuardEncryptedAcme(content!, snapshotName is null ? existing.Count > 0 : await LatestSnapshotKeyAsync(store, fileName).ConfigureAwait(false) is not null);
            else
                await GuardAcmeAsync(store, content!, snapshotName is null ? (existing.Count > 0 ? key : null) : await LatestSnapshotKeyAsync(store, fileName).ConfigureAwait(false)).ConfigureAwait(false);
        }
        if (snapshotName is not null) await WarnAboutFutureNamesAsync(store, snapshotName).ConfigureAwait(false);
        await session.RunAsync(plan, _stats, context.Stopping).ConfigureAwait(false);
        if (options.Acme) Report.Gauges.AddRange(AcmeMetrics.Gauges(AcmeFile.Parse(content)));
        var complete = _stats.Failed == 0 && plan.Skipped.Count == 0;
        if (snapshotName is not null && complete) await MarkCompleteAsync(store, snapshotName).ConfigureAwait(false);
        return (complete, snapshotName);
    }

    /// <summary>
    /// --acme with --encrypt-to: the pusher holds only recipients, so it cannot read the encrypted copy in S3 to compare.
    /// It refuses (exit 5, nothing uploaded, unless --force) to replace an existing copy with a file that protects
    /// nothing, no usable certificate or no account key: the fresh-Traefik case the guard exists for. A file that
    /// lacks only some of the remote's domains cannot be told apart here (docs/acme-guard.md).
    /// </summary>
    private void GuardEncryptedAcme(byte[] content, bool remoteExists)
    {
        if (!remoteExists) return;
        var local = AcmeFile.Parse(content);
        var certificates = local.Certificates.Count(c => c.IsUsable);
        var account = local.Resolvers.Any(r => r.Account?.HasKey == true);
        if (certificates > 0 && account) return;
        var what = certificates == 0 && !account ? "no usable certificate and no account key" : certificates == 0 ? "no usable certificate" : "no account key";
        var refusal = $"the local acme.json has {what}, and the encrypted copy in S3 ({options.Target}) cannot be read without the identity to compare: " +
            "refusing to replace it (a Traefik that started without a restore writes such a file); restore it first, or push with --force";
        if (options.Force)
        {
            context.Log.Warning("replacing the encrypted copy anyway (--force): {Refusal}", refusal);
            return;
        }
        throw new ToolException(ExitCodes.Refused, refusal);
    }

    private string StateDirectory() =>
        options.StateDirectory is { Length: > 0 } given ? given
        : context.Environment("BACKUP_STATE_DIR") is { Length: > 0 } fromEnvironment ? fromEnvironment
        : BackupCli.DefaultStateDirectory;

    /// <summary>
    /// --acme: refuses (exit 5, nothing uploaded) to replace the copy at <paramref name="remoteKey"/> when it holds a
    /// certificate, a later expiry or an account the local file lacks, unless --force. A refused push reports the
    /// metrics of the copy in S3, which stays.
    /// </summary>
    private async Task GuardAcmeAsync(S3Store store, byte[] local, string? remoteKey)
    {
        byte[]? remote = null;
        if (remoteKey is not null)
        {
            try
            {
                using var buffer = new MemoryStream();
                await store.GetAsync(options.Target.Bucket, remoteKey, async (body, info, ct) =>
                {
                    if (info.Size > MaxJsonBytes) throw new ToolException(ExitCodes.Refused, $"the copy in S3 {options.Target.Describe(remoteKey)} is larger than {MaxJsonBytes} bytes: not an acme.json; nothing was uploaded");
                    await body.CopyToAsync(buffer, ct).ConfigureAwait(false);
                }, cancellationToken: context.Stopping).ConfigureAwait(false);
                remote = buffer.ToArray();
            }
            catch (StoreException ex) when (ex.Kind == StoreErrorKind.ObjectNotFound)
            {
            }
        }
        var verdict = AcmeGuard.Check(local, remote, DateTimeOffset.UtcNow);
        foreach (var warning in verdict.Warnings) context.Log.Warning("{Warning}", warning);
        if (verdict.Allowed) return;
        if (options.Force)
        {
            context.Log.Warning("replacing {Key} anyway (--force): {Refusal}", options.Target.Describe(remoteKey!), verdict.Refusal);
            return;
        }
        Report.Gauges.AddRange(AcmeMetrics.Gauges(AcmeFile.Parse(remote!)));
        throw new ToolException(ExitCodes.Refused, verdict.Refusal!);
    }

    /// <summary>The key of the file in the newest complete snapshot (what a restore would take), or null.</summary>
    private async Task<string?> LatestSnapshotKeyAsync(S3Store store, string fileName)
    {
        var target = options.Target;
        var listing = await store.ListAsync(target.Bucket, target.Prefix, context.Stopping).ToListAsync(context.Stopping).ConfigureAwait(false);
        return Snapshots.Find(listing, target.Prefix).LastOrDefault(s => s.Complete) is { } newest ? $"{target.Prefix}{newest.Name}/{fileName}" : null;
    }

    /// <summary>An incremental snapshot of a Prometheus TSDB snapshot: only blocks not yet in the bucket are uploaded, then the manifest.</summary>
    private async Task<(bool, string?)> PushIncrementalAsync(S3Store store, string snapshotDirectory)
    {
        var tsdb = new TsdbStore(store, options.Target.Bucket, options.Target.Prefix);
        var pushed = await TsdbBackup.PushAsync(tsdb, snapshotDirectory,
            new TsdbPushOptions { Source = Path.GetFileName(snapshotDirectory), Parallel = options.Parallel, Force = options.Force, Stats = _stats },
            context.Log, context.Stopping).ConfigureAwait(false);
        Report.Gauges.Add(new("backup_last_run_reused_bytes", "Bytes of the snapshot already in the bucket (blocks uploaded by earlier runs).", pushed.ReusedBytes));
        Report.Gauges.Add(new("backup_snapshot_bytes", "Bytes of the last complete snapshot (its blocks, uploaded now or before).", pushed.Manifest?.Bytes ?? 0));
        return (pushed.Complete, pushed.Name);
    }

    /// <summary>Uploads a directory tree with the sync engine: everything into a new snapshot, or only what changed into the mirror prefix.</summary>
    private async Task<(bool, string?)> PushTreeAsync(S3Store store, string source, bool stateful)
    {
        var target = options.Target;
        var snapshotName = options.Snapshot ? Snapshots.NewName(DateTimeOffset.UtcNow) : null;
        var prefix = snapshotName is null ? target.Prefix : $"{target.Prefix}{snapshotName}/";
        var delete = snapshotName is null && options.Delete;
        var exclude = new GlobFilter(options.Exclude);
        using var state = stateful
            ? SyncState.Open(LocalPaths.Resolve(StateDirectory()), BackupCli.Tool, store.Settings.Endpoint.ToString(), target.Bucket, prefix,
                LocalPaths.Resolve(source), readOnly: false, lockLocal: false, context.Log, _encryption?.Variant ?? "")
            : SyncState.Ephemeral(context.Log);
        var emptySource = snapshotName is not null ? EmptySourceRule.Refuse : delete ? EmptySourceRule.RefuseIfTargetHasFiles : EmptySourceRule.Allow;
        var session = new SyncSession(
            new LocalSide(source, FileModes.Private, exclude, TempNames.Process),
            new BucketSide(store, target.Bucket, prefix, exclude, transform: _encryption),
            state,
            new SyncOptions(delete, new SafetyOptions(emptySource, options.Force, MaxDelete: null), options.Parallel),
            context.Log);

        var plan = await session.PlanAsync(source, target.ToString(), context.Stopping).ConfigureAwait(false);
        if (snapshotName is not null) await WarnAboutFutureNamesAsync(store, snapshotName).ConfigureAwait(false);
        await session.RunAsync(plan, _stats, context.Stopping).ConfigureAwait(false);
        var complete = _stats.Failed == 0 && plan.Skipped.Count == 0;
        if (snapshotName is not null && complete) await MarkCompleteAsync(store, snapshotName).ConfigureAwait(false);
        return (complete, snapshotName);
    }

    private async Task MarkCompleteAsync(S3Store store, string snapshotName)
    {
        var target = options.Target;
        var marker = Encoding.UTF8.GetBytes($"{{\"snapshot\":\"{snapshotName}\",\"files\":{_stats.Transferred},\"bytes\":{_stats.TransferredBytes},\"completed\":\"{DateTimeOffset.UtcNow:O}\"}}\n");
        await store.PutAsync(target.Bucket, $"{target.Prefix}{snapshotName}/{Snapshots.CompleteMarker}", new MemoryStream(marker), marker.Length,
            new PutOptions(ContentType: "application/json"), context.Stopping).ConfigureAwait(false);
    }

    /// <summary>
    /// Applies the retention policy to the snapshots under the prefix, full copies and incremental ones together, by
    /// the server's clock, never the one just written; then deletes the block objects no kept snapshot names.
    /// </summary>
    private async Task PruneAsync(S3Store store, RetentionPolicy policy, string? justWritten)
    {
        var pruned = await TsdbBackup.PruneAsync(new TsdbStore(store, options.Target.Bucket, options.Target.Prefix), policy, justWritten, context.Log, context.Stopping)
            .ConfigureAwait(false);
        Report.Gauges.Add(new("backup_snapshots_kept", "Complete snapshots under the prefix after pruning.", pruned.Kept.Count));
        Report.Gauges.Add(new("backup_last_run_pruned_snapshots", "Snapshots the last run pruned.", pruned.Pruned.Count));
        Report.Gauges.Add(new("backup_last_run_deleted_block_bytes", "Bytes of unreferenced block objects the last run deleted.", pruned.BlockBytesDeleted));
    }

    /// <summary>Warns when existing snapshots are named later than this host's clock says now (a host whose clock was ahead pushed them).</summary>
    private async Task WarnAboutFutureNamesAsync(S3Store store, string newName)
    {
        var target = options.Target;
        var listing = await store.ListAsync(target.Bucket, target.Prefix, context.Stopping).ToListAsync(context.Stopping).ConfigureAwait(false);
        var later = Snapshots.Find(listing, target.Prefix).Where(s => string.CompareOrdinal(s.Name, newName) > 0).Select(s => s.Name).ToList();
        if (later.Count > 0)
            context.Log.Warning("{Count} snapshot(s) under {Target} are named after this host's time {Now}, e.g. {Name}: a host with its clock ahead pushed them. Snapshots are ordered by the server's time, so they are not taken for the newest; check the clocks (NTP)",
                later.Count, target.ToString(), newName, later[^1]);
    }

    /// <summary>Reads a file that must be one JSON object, retrying while it is empty or does not parse (it may be half-written).</summary>
    private async Task<byte[]> ReadValidJsonAsync(string path)
    {
        var problem = "";
        for (var attempt = 1; attempt <= BackupCli.JsonAttempts; attempt++)
        {
            var content = await RegularFile.ReadAllBytesAsync(path, followLinks: true, MaxJsonBytes, context.Stopping).ConfigureAwait(false);
            problem = JsonObjectCheck.Problem(content) ?? "";
            if (problem.Length == 0) return content;
            if (attempt < BackupCli.JsonAttempts)
            {
                context.Log.Warning("{Path} {Problem}; reading it again in {Seconds} s (attempt {Attempt} of {Attempts})", path, problem, JsonRetryDelay.TotalSeconds, attempt, BackupCli.JsonAttempts);
                await Task.Delay(JsonRetryDelay, context.Stopping).ConfigureAwait(false);
            }
        }
        throw new ToolException(ExitCodes.Refused, $"{path} {problem} after {BackupCli.JsonAttempts} attempts: not uploaded, the copy in S3 was left as it is");
    }
}
