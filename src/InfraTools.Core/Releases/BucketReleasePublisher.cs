using InfraTools.Storage;
using InfraTools.Sync;
using Serilog;

namespace InfraTools.Releases;

/// <summary>What <c>content-pull publish</c> published.</summary>
/// <param name="Id">the new release</param>
/// <param name="Files">files in it</param>
/// <param name="Deleted">objects deleted because none of the last K releases references them</param>
public sealed record BucketReleaseResult(string Id, int Files, long Bytes, int Deleted, IReadOnlyList<string> DeleteFailures);

/// <summary>
/// The CI side of releases (the engine's <see cref="IPublisher"/> for a push of a build directory), called only when
/// every upload succeeded: it writes the release's manifest to PREFIX/.releases/ID.json and then, last, to
/// PREFIX/.release.json (a pull that reads it finds every object it names already there), and only after that
/// deletes the objects that no manifest of the newest <paramref name="keep"/> releases references, and the
/// manifests of older releases. A server still pulling the previous release so never loses an object under it.
/// </summary>
public sealed class BucketReleasePublisher(IObjectStore store, string bucket, string prefix, SyncState state, int keep, GlobFilter exclude, ILogger log,
    TimeProvider? time = null) : IPublisher
{
    public BucketReleaseResult? Result { get; private set; }

    /// <summary>True when the bucket already named a release of exactly these files, so none was written.</summary>
    public bool Unchanged { get; private set; }

    public async Task PublishAsync(SyncPlan plan, SyncStats stats, CancellationToken cancellationToken)
    {
        var files = new List<ReleaseManifestFile>();
        foreach (var path in plan.SourceFiles.Order(StringComparer.Ordinal))
        {
            if (!state.Manifest.TryGet(path, out var entry) || entry.ETag.Length == 0)
                throw new RefusedException($"{path} was not uploaded (it vanished from the build directory during the run?): not writing the release manifest; the objects uploaded stay, the current release is unchanged");
            files.Add(new ReleaseManifestFile(path, entry.Size, entry.ETag));
        }

        var history = new List<string>();
        await foreach (var item in store.ListAsync(bucket, prefix + ReleaseManifest.HistoryFolder, cancellationToken).ConfigureAwait(false))
        {
            var name = item.Key[(prefix.Length + ReleaseManifest.HistoryFolder.Length)..];
            if (name.EndsWith(".json", StringComparison.Ordinal) && ReleaseIds.IsId(name[..^5])) history.Add(name[..^5]);
        }
        history.Sort(StringComparer.Ordinal);

        // A publish of the build the bucket already names (a CI job run again) writes no new release: the
        // watchers would pull for nothing, and the history would lose an older release to the same content.
        ReleaseManifest? named;
        try
        {
            named = await ReleaseManifest.ReadAsync(store, bucket, prefix + ReleaseManifest.Name, cancellationToken).ConfigureAwait(false);
        }
        catch (StoreException ex) when (ex.Kind == StoreErrorKind.IntegrityCheckFailed)
        {
            named = null;  // a damaged manifest is replaced by this one
        }
        ReleaseManifest manifest;
        if (named is not null && history.Contains(named.Id) && SameFiles(named.Files, files))
        {
            manifest = named;
            Unchanged = true;
            log.Information("s3://{Bucket}/{Key} already names release {Release} with exactly these {Files} files: no new release written", bucket, prefix + ReleaseManifest.Name, named.Id, files.Count);
        }
        else
        {
            var now = (time ?? TimeProvider.System).GetUtcNow();
            manifest = new ReleaseManifest(ReleaseIds.New(now.UtcDateTime, history.LastOrDefault()), now, files);
            var json = manifest.ToJson();
            await PutAsync(prefix + ReleaseManifest.HistoryFolder + manifest.Id + ".json", json, cancellationToken).ConfigureAwait(false);
            await PutAsync(prefix + ReleaseManifest.Name, json, cancellationToken).ConfigureAwait(false);
            log.Information("wrote release {Release} ({Files} files) to s3://{Bucket}/{Key}", manifest.Id, files.Count, bucket, prefix + ReleaseManifest.Name);
            history.Add(manifest.Id);
        }
        var id = manifest.Id;

        // Only now, and only what none of the newest K releases references.
        var kept = history.TakeLast(keep).ToList();
        var referenced = new HashSet<string>(files.Select(f => f.Path), StringComparer.Ordinal);
        foreach (var older in kept.Where(k => k != id))
        {
            var other = await ReleaseManifest.ReadAsync(store, bucket, prefix + ReleaseManifest.HistoryFolder + older + ".json", cancellationToken).ConfigureAwait(false);
            if (other is null) continue;
            referenced.UnionWith(other.Files.Select(f => f.Path));
        }
        var delete = new List<string>();
        await foreach (var item in store.ListAsync(bucket, prefix, cancellationToken).ConfigureAwait(false))
        {
            if (!item.Key.StartsWith(prefix, StringComparison.Ordinal)) continue;
            var relative = item.Key[prefix.Length..];
            if (relative.Length == 0 || relative.EndsWith('/') || ReleaseManifest.IsProtocolPath(relative) || exclude.Excludes(relative)) continue;
            if (!referenced.Contains(relative)) delete.Add(item.Key);
        }
        delete.AddRange(history.SkipLast(keep).Select(h => prefix + ReleaseManifest.HistoryFolder + h + ".json"));
        var failures = delete.Count == 0 ? [] : await store.DeleteManyAsync(bucket, delete, cancellationToken).ConfigureAwait(false);
        foreach (var (key, error) in failures) log.Error("failed to delete {Key}: {Reason}", key, error);
        foreach (var key in delete.Except(failures.Select(f => f.Key))) log.Information("deleted {Key} (no release of the last {Keep} references it)", key, keep);
        stats.AddDeleted(delete.Count - failures.Count);
        stats.AddFailed(failures.Count);
        Result = new BucketReleaseResult(id, files.Count, manifest.Bytes, delete.Count - failures.Count, failures.Select(f => f.Key).ToList());
    }

    private static bool SameFiles(IReadOnlyList<ReleaseManifestFile> named, List<ReleaseManifestFile> files) =>
        named.Count == files.Count && named.OrderBy(f => f.Path, StringComparer.Ordinal).SequenceEqual(files);

    private async Task PutAsync(string key, byte[] content, CancellationToken cancellationToken)
    {
        using var stream = new MemoryStream(content, writable: false);
        await store.PutAsync(bucket, key, stream, content.Length, new PutOptions(ContentType: "application/json"), cancellationToken).ConfigureAwait(false);
    }
}
