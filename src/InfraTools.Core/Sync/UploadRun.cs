using InfraTools.Files;
using InfraTools.S3;
using Serilog;

namespace InfraTools.Sync;

/// <summary>Counters of one push, updated from parallel workers.</summary>
public sealed class UploadStats
{
    private long _uploaded, _uploadedBytes, _deleted, _unchanged, _failed;
    public long Uploaded => Interlocked.Read(ref _uploaded);
    public long UploadedBytes => Interlocked.Read(ref _uploadedBytes);
    public long Deleted => Interlocked.Read(ref _deleted);
    public long Unchanged => Interlocked.Read(ref _unchanged);
    public long Failed => Interlocked.Read(ref _failed);

    internal void AddUploaded(long bytes) { Interlocked.Increment(ref _uploaded); Interlocked.Add(ref _uploadedBytes, bytes); }
    internal void AddDeleted(long count) => Interlocked.Add(ref _deleted, count);
    internal void AddUnchanged(long count = 1) => Interlocked.Add(ref _unchanged, count);
    internal void AddFailed(long count = 1) => Interlocked.Add(ref _failed, count);
}

/// <summary>
/// Carries out an <see cref="UploadPlan"/>: parallel uploads (multipart for large files, each checked against the
/// MD5-based ETag computed while sending), checksum comparisons for files that may be unchanged, then, only if
/// every upload succeeded, the deletes of remote objects that have no local file any more.
/// </summary>
public sealed class UploadRun(S3Client client, string bucket, string root, Manifest manifest, int parallel, ILogger log)
{
    public UploadStats Stats { get; } = new();

    public async Task ExecuteAsync(UploadPlan plan, CancellationToken cancellationToken)
    {
        Stats.AddUnchanged(plan.Unchanged.Count);
        var work = plan.Uploads.Select(u => (Upload: u, Verify: false)).Concat(plan.Verify.Select(v => (Upload: v, Verify: true)));
        await ParallelTransfers.RunAsync(work, parallel, async (item, ct) =>
        {
            var path = KeyPaths.LocalPath(root, item.Upload.RelativePath);
            if (item.Verify)
            {
                var local = await ObjectChecksum.ComputeETagAsync(path, ct).ConfigureAwait(false);
                if (item.Upload.RemoteETag == local)
                {
                    manifest.Set(item.Upload.RelativePath, new ManifestEntry(item.Upload.File.Size, local, item.Upload.File.LastWriteUtc));
                    Stats.AddUnchanged();
                    return;
                }
            }
            await using var file = RegularFile.OpenRead(path);
            var etag = await client.PutAsync(bucket, item.Upload.Key, file, file.Length, cancellationToken: ct).ConfigureAwait(false);
            manifest.Set(item.Upload.RelativePath, new ManifestEntry(file.Length, etag, item.Upload.File.LastWriteUtc));
            Stats.AddUploaded(file.Length);
            log.Debug("uploaded {Key} ({Bytes} bytes)", item.Upload.Key, file.Length);
        }, (item, ex) =>
        {
            log.Error("failed to upload {Path}: {Reason}", item.Upload.RelativePath, ex.Message);
            Stats.AddFailed();
        }, cancellationToken).ConfigureAwait(false);

        if (plan.DeleteKeys.Count == 0) return;
        if (Stats.Failed > 0)
        {
            log.Warning("not deleting anything: {Failed} upload(s) failed in this run", Stats.Failed);
            return;
        }
        var failures = await client.DeleteManyAsync(bucket, plan.DeleteKeys, cancellationToken).ConfigureAwait(false);
        foreach (var (key, error) in failures) log.Error("failed to delete {Key}: {Reason}", key, error);
        foreach (var key in plan.DeleteKeys.Except(failures.Select(f => f.Key))) log.Information("deleted {Key}", key);
        Stats.AddDeleted(plan.DeleteKeys.Count - failures.Count);
        Stats.AddFailed(failures.Count);
    }
}
