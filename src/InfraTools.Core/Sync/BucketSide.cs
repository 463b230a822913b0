using InfraTools.Storage;

namespace InfraTools.Sync;

/// <summary>
/// A prefix in a bucket as a sync side, through the object-store port. Keys map to paths by dropping the prefix;
/// a key ending in '/' is a folder marker (a directory of its own). Whether a key is a safe local path is the
/// planner's business, not the listing's, so that a push can also delete objects no local name could have.
/// </summary>
/// <remarks><paramref name="listed"/>, when given, is a listing of the prefix the caller already has (restores), so it is not listed twice.</remarks>
public sealed class BucketSide(IObjectStore store, string bucket, string prefix, GlobFilter exclude, IReadOnlySet<string>? ignoreKeys = null,
    IReadOnlyList<StoredObject>? listed = null) : ISyncSide
{
    public bool IsTree => false;
    public string ReceiveVerb => "upload";

    public string Describe(string path) => $"s3://{bucket}/{prefix}{path}";
    public string NameOf(string path) => prefix + path;
    public string ExplainUnsafe(string problem) => $"unsafe key: it {problem}";

    public async Task<SideListing> ListAsync(CancellationToken cancellationToken)
    {
        var listing = new SideListing();
        var items = listed?.ToAsyncEnumerable() ?? store.ListAsync(bucket, prefix, cancellationToken);
        await foreach (var item in items.ConfigureAwait(false))
        {
            if (!item.Key.StartsWith(prefix, StringComparison.Ordinal) || ignoreKeys?.Contains(item.Key) == true) continue;
            var relative = item.Key[prefix.Length..];
            if (relative.Length == 0) continue; // the marker of the prefix itself
            if (relative.EndsWith('/'))
            {
                var directory = relative[..^1];
                if (directory.Length > 0 && exclude.Excludes(directory)) continue;
                listing.Directories.Add(directory);
                continue;
            }
            if (exclude.Excludes(relative)) continue;
            listing.Files[relative] = new SyncFile(relative, item.Size, item.ETag, null, item.LastModified, item.Key);
        }
        return listing;
    }

    public async Task ReadAsync(SyncFile file, Func<Stream, SourceInfo, CancellationToken, Task> consume, CancellationToken cancellationToken)
    {
        await store.GetAsync(bucket, file.Key ?? prefix + file.Path, (body, info, ct) => consume(body,
            new SourceInfo(info.Size, info.ETag.Length > 0 ? info.ETag : null, info.LastModified == DateTimeOffset.UnixEpoch ? file.Modified : info.LastModified), ct),
            cancellationToken: cancellationToken).ConfigureAwait(false);
    }

    public async Task<Written> WriteAsync(SyncFile source, Stream content, SourceInfo info, CancellationToken cancellationToken)
    {
        var size = info.Size >= 0 ? info.Size : content.Length;
        var etag = await store.PutAsync(bucket, prefix + source.Path, content, size, cancellationToken: cancellationToken).ConfigureAwait(false);
        return new Written(size, etag, null);
    }

    public Task<string> ChecksumAsync(SyncFile file, CancellationToken cancellationToken) => Task.FromResult(file.ETag ?? "");

    public Written Adopt(SyncFile source, SyncFile here) => new(here.Size, here.ETag, null);

    public async Task<IReadOnlyList<(string Path, string Error)>> DeleteFilesAsync(IReadOnlyList<string> paths, CancellationToken cancellationToken)
    {
        if (paths.Count == 0) return [];
        var failures = await store.DeleteManyAsync(bucket, paths.Select(p => prefix + p).ToList(), cancellationToken).ConfigureAwait(false);
        return failures.Select(f => (f.Key[prefix.Length..], f.Error)).ToList();
    }

    public async Task<IReadOnlyList<(string Path, string? Error)>> DeleteDirectoriesAsync(IReadOnlyList<string> paths, CancellationToken cancellationToken)
    {
        if (paths.Count == 0) return [];
        var failures = await store.DeleteManyAsync(bucket, paths.Select(p => prefix + p + "/").ToList(), cancellationToken).ConfigureAwait(false);
        var failed = failures.ToDictionary(f => f.Key[prefix.Length..^1], f => f.Error, StringComparer.Ordinal);
        return paths.Select(p => (p, failed.TryGetValue(p, out var error) ? error : null)).ToList();
    }

    public IReadOnlyList<(string Path, string Error)> DeleteUndecodable(IReadOnlyList<UndecodableEntry> entries) => [];

    public IReadOnlyList<(string Path, string Error)> CreateDirectories(IReadOnlyList<string> paths) => [];

    public void RemoveLeftovers(IReadOnlyList<string> paths) { }
}
