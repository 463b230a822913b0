using InfraTools.Storage;

namespace InfraTools.Sync;

/// <summary>
/// A prefix in a bucket as a sync side, through the object-store port. Keys map to paths by dropping the prefix;
/// a key ending in '/' is a folder marker (a directory of its own). Whether a key is a safe local path is the
/// planner's business, not the listing's, so that a push can also delete objects no local name could have.
/// </summary>
/// <remarks>
/// <paramref name="listed"/>, when given, is a listing of the prefix the caller already has (restores), so it is not listed twice;
/// <paramref name="known"/> (the last run's manifest) lets the store list ranges of a large prefix at the same time
/// (its paths are the hint), and the listing holds its path and ETag strings instead of copies.
/// With a <paramref name="transform"/> (encryption), an object PATH + its suffix holds the file PATH encoded: the
/// listing shows the file's path and content size, reads decode and writes encode. A writing transform (a push)
/// leaves objects without the suffix alone (listed as skipped: a plaintext copy from an earlier push is not
/// replaced, compared or deleted); a reading one (a restore) reads them as they are, and prefers PATH + suffix
/// when both exist.
/// </remarks>
public sealed class BucketSide(IObjectStore store, string bucket, string prefix, GlobFilter exclude, IReadOnlySet<string>? ignoreKeys = null,
    IReadOnlyList<StoredObject>? listed = null, IObjectTransform? transform = null, IReadOnlyManifest? known = null) : ISyncSide
{
    /// <summary>What a written or deleted path's key ends with: the transform's suffix when this side encodes.</summary>
    private readonly string _writeSuffix = transform is { CanEncode: true } t ? t.KeySuffix : "";

    public bool IsTree => false;
    public string ReceiveVerb => "upload";

    public string Describe(string path) => $"s3://{bucket}/{prefix}{path}{_writeSuffix}";
    public string NameOf(string path) => prefix + path + _writeSuffix;
    public string ExplainUnsafe(string problem) => $"unsafe key: it {problem}";

    public async Task<SideListing> ListAsync(CancellationToken cancellationToken)
    {
        var listing = new SideListing(known?.Count ?? 0);
        var items = listed?.ToAsyncEnumerable()
            ?? (known is null ? store.ListAsync(bucket, prefix, cancellationToken) : store.ListAsync(bucket, prefix, known.Paths(), cancellationToken));
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
            if (transform is not null)
            {
                AddTransformed(listing, transform, item, relative);
                continue;
            }
            if (exclude.Excludes(relative)) continue;
            var etag = item.ETag;
            if (known is not null && known.TryShare(relative, out var shared, out var entry))
                (relative, etag) = (shared, entry.ETag == etag ? entry.ETag : etag);
            listing.Files[relative] = new SyncFile(relative, item.Size, etag, null, item.LastModified) { KeyPrefix = prefix };
        }
        return listing;
    }

    private void AddTransformed(SideListing listing, IObjectTransform codec, StoredObject item, string relative)
    {
        var encoded = relative.EndsWith(codec.KeySuffix, StringComparison.Ordinal) && relative.Length > codec.KeySuffix.Length;
        var path = encoded ? relative[..^codec.KeySuffix.Length] : relative;
        if (exclude.Excludes(path)) return;
        if (!encoded && codec.CanEncode)
        {
            listing.Skipped.Add(new SkippedKey(item.Key, $"it is not encrypted (pushed without encryption?): left as it is, neither replaced nor deleted; delete it once {prefix + path + codec.KeySuffix} is there"));
            return;
        }
        if (listing.Files.TryGetValue(path, out var other))
        {
            // PATH and PATH + suffix: the encoded one is the file; the other is reported and not read.
            var plain = encoded ? other.Key! : item.Key;
            listing.Skipped.Add(new SkippedKey(plain, $"both {plain} and {prefix + path + codec.KeySuffix} exist: {prefix + path + codec.KeySuffix} is the one restored"));
            if (!encoded) return;
        }
        listing.Files[path] = encoded
            ? new SyncFile(path, codec.ContentSize(item.Size), item.ETag, null, item.LastModified, item.Key)
            : new SyncFile(path, item.Size, item.ETag, null, item.LastModified, item.Key);
    }

    /// <summary>With a transform, every key that ends in its suffix is encoded (the suffix is the mark).</summary>
    private bool IsEncoded(string key) => transform is not null && key.EndsWith(transform.KeySuffix, StringComparison.Ordinal);

    public async Task ReadAsync(SyncFile file, Func<Stream, SourceInfo, CancellationToken, Task> consume, CancellationToken cancellationToken)
    {
        var key = file.Key ?? prefix + file.Path + _writeSuffix;
        var encoded = IsEncoded(key);
        await store.GetAsync(bucket, key, (body, info, ct) =>
        {
            var modified = info.LastModified == DateTimeOffset.UnixEpoch ? file.Modified : info.LastModified;
            return encoded
                ? transform!.DecodeAsync(body, $"s3://{bucket}/{key}", (content, c) => consume(content, new SourceInfo(-1, null, modified, Authenticated: true), c), ct)
                : consume(body, new SourceInfo(info.Size, info.ETag.Length > 0 ? info.ETag : null, modified), ct);
        }, cancellationToken: cancellationToken).ConfigureAwait(false);
    }

    public async Task<Written> WriteAsync(SyncFile source, Stream content, SourceInfo info, CancellationToken cancellationToken)
    {
        var size = info.Size >= 0 ? info.Size : content.Length;
        if (_writeSuffix.Length == 0)
            return new Written(size, await store.PutAsync(bucket, prefix + source.Path, content, size, cancellationToken: cancellationToken).ConfigureAwait(false), null);
        // The manifest records the content's size (what the listing shows for the object) with the object's ETag.
        await using var encoded = transform!.Encode(content, size);
        var etag = await store.PutAsync(bucket, prefix + source.Path + _writeSuffix, encoded, transform.StoredSize(size), cancellationToken: cancellationToken).ConfigureAwait(false);
        return new Written(size, etag, null);
    }

    public Task<string> ChecksumAsync(SyncFile file, CancellationToken cancellationToken) => Task.FromResult(file.ETag ?? "");

    public Written Adopt(SyncFile source, SyncFile here) => new(here.Size, here.ETag, null);

    public async Task<IReadOnlyList<(string Path, string Error)>> DeleteFilesAsync(IReadOnlyList<string> paths, CancellationToken cancellationToken)
    {
        if (paths.Count == 0) return [];
        var failures = await store.DeleteManyAsync(bucket, paths.Select(p => prefix + p + _writeSuffix).ToList(), cancellationToken).ConfigureAwait(false);
        return failures.Select(f => (f.Key[prefix.Length..^_writeSuffix.Length], f.Error)).ToList();
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
