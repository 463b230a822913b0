using InfraTools.Storage;

namespace InfraTools.Backup.Tsdb;

/// <summary>
/// The object store seen from one backup prefix (e.g. s3://bucket/prometheus/): every key the TSDB module uses is
/// relative to it (blocks/..., snapshots/..., NAME/... of a full copy), so a prefix copied elsewhere stays
/// restorable. Failures are the store's <see cref="StoreException"/>s.
/// </summary>
public sealed class TsdbStore(IObjectStore store, string bucket, string prefix)
{
    /// <summary>Where the store points, for messages (e.g. s3://bucket/prometheus/).</summary>
    public string Location => $"s3://{bucket}/{prefix}";

    public IObjectStore Store => store;

    /// <summary>Every object whose key starts with <paramref name="relative"/> ("" for all), keys relative to the prefix, in key order.</summary>
    public async Task<IReadOnlyList<StoredObject>> ListAsync(string relative, CancellationToken cancellationToken)
    {
        var found = new List<StoredObject>();
        await foreach (var item in store.ListAsync(bucket, prefix + relative, cancellationToken).ConfigureAwait(false))
            found.Add(item with { Key = item.Key[prefix.Length..] });
        return found;
    }

    /// <summary>Uploads the local regular file at <paramref name="path"/> (exactly <paramref name="size"/> bytes), checked against the server's answer; returns its ETag.</summary>
    public async Task<string> PutFileAsync(string key, string path, long size, CancellationToken cancellationToken)
    {
        await using var file = Files.RegularFile.OpenRead(path);
        if (file.Length != size) throw new IOException($"'{path}' changed since it was read ({file.Length} bytes, expected {size})");
        return await store.PutAsync(bucket, prefix + key, file, size, cancellationToken: cancellationToken).ConfigureAwait(false);
    }

    public Task<string> PutBytesAsync(string key, ReadOnlyMemory<byte> content, string contentType, CancellationToken cancellationToken) =>
        store.PutAsync(bucket, prefix + key, new MemoryStream(content.ToArray(), writable: false), content.Length, new PutOptions(ContentType: contentType), cancellationToken);

    /// <summary>Reads an object: <paramref name="consume"/> gets its content and must read it before returning.</summary>
    public Task GetAsync(string key, Func<Stream, CancellationToken, Task> consume, CancellationToken cancellationToken) =>
        store.GetAsync(bucket, prefix + key, (stream, _, ct) => consume(stream, ct), cancellationToken: cancellationToken);

    /// <summary>Deletes keys; returns the (relative) keys the server refused, with the reason.</summary>
    public async Task<IReadOnlyList<(string Key, string Error)>> DeleteAsync(IReadOnlyList<string> keys, CancellationToken cancellationToken)
    {
        var failures = await store.DeleteManyAsync(bucket, keys.Select(k => prefix + k).ToList(), cancellationToken).ConfigureAwait(false);
        return failures.Select(f => (f.Key.StartsWith(prefix, StringComparison.Ordinal) ? f.Key[prefix.Length..] : f.Key, f.Error)).ToList();
    }
}
