using InfraTools.Storage;
using InfraTools.Sync;

namespace InfraTools.Releases;

/// <summary>
/// The bucket side of a pull that follows a release manifest: the listing is the manifest's set (the caller hands
/// it to <see cref="BucketSide"/> as its listing), and every download must still be the object the manifest names:
/// an answer with another ETag (overwritten since) or no object (deleted since) fails that file, so the run
/// publishes nothing (a vanished object would otherwise be skipped as in a plain mirror). Everything else is the
/// bucket side's.
/// </summary>
public sealed class ManifestSourceSide(ISyncSide bucket, string manifestName) : ISyncSide
{
    public bool IsTree => bucket.IsTree;
    public string ReceiveVerb => bucket.ReceiveVerb;
    public string Describe(string path) => bucket.Describe(path);
    public string NameOf(string path) => bucket.NameOf(path);
    public string ExplainUnsafe(string problem) => bucket.ExplainUnsafe(problem);
    public Task<SideListing> ListAsync(CancellationToken cancellationToken) => bucket.ListAsync(cancellationToken);

    public async Task ReadAsync(SyncFile file, Func<Stream, SourceInfo, CancellationToken, Task> consume, CancellationToken cancellationToken)
    {
        try
        {
            await bucket.ReadAsync(file, (body, info, ct) =>
            {
                if (info.ETag is { } etag && etag != file.ETag)
                    throw new StoreException(StoreErrorKind.IntegrityCheckFailed,
                        $"it was overwritten after {manifestName} was written (ETag {etag}, the manifest names {file.ETag}): not publishing this release");
                return consume(body, info, ct);
            }, cancellationToken).ConfigureAwait(false);
        }
        catch (StoreException ex) when (ex.Kind == StoreErrorKind.ObjectNotFound)
        {
            throw new StoreException(StoreErrorKind.IntegrityCheckFailed, $"it was deleted after {manifestName} was written: not publishing this release", ex);
        }
    }

    public Task<Written> WriteAsync(SyncFile source, Stream content, SourceInfo info, CancellationToken cancellationToken) => bucket.WriteAsync(source, content, info, cancellationToken);
    public Task<string> ChecksumAsync(SyncFile file, CancellationToken cancellationToken) => bucket.ChecksumAsync(file, cancellationToken);
    public Written Adopt(SyncFile source, SyncFile here) => bucket.Adopt(source, here);
    public Task<IReadOnlyList<(string Path, string Error)>> DeleteFilesAsync(IReadOnlyList<string> paths, CancellationToken cancellationToken) => bucket.DeleteFilesAsync(paths, cancellationToken);
    public Task<IReadOnlyList<(string Path, string? Error)>> DeleteDirectoriesAsync(IReadOnlyList<string> paths, CancellationToken cancellationToken) => bucket.DeleteDirectoriesAsync(paths, cancellationToken);
    public IReadOnlyList<(string Path, string Error)> DeleteUndecodable(IReadOnlyList<UndecodableEntry> entries) => bucket.DeleteUndecodable(entries);
    public IReadOnlyList<(string Path, string Error)> CreateDirectories(IReadOnlyList<string> paths) => bucket.CreateDirectories(paths);
    public void RemoveLeftovers(IReadOnlyList<string> paths) => bucket.RemoveLeftovers(paths);
}
