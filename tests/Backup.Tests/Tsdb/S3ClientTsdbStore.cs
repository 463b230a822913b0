using InfraTools.Backup.Tsdb;
using InfraTools.Files;
using InfraTools.S3;

namespace InfraTools.Tests.Tsdb;

/// <summary>
/// <see cref="ITsdbStore"/> over today's <see cref="S3Client"/>, for the tests: the shape of the adapter the
/// tool needs over its object-store port (keys relative to the prefix, ETags as the client computes them).
/// </summary>
public sealed class S3ClientTsdbStore(S3Client client, string bucket, string prefix) : ITsdbStore
{
    public string Location => $"s3://{bucket}/{prefix}";

    public async Task<IReadOnlyList<StoredObject>> ListAsync(string relative, CancellationToken cancellationToken) =>
        await client.ListAsync(bucket, prefix + relative, cancellationToken)
            .Select(o => new StoredObject(o.Key[prefix.Length..], o.Size, o.ETag, o.LastModified)).ToListAsync(cancellationToken);

    public async Task<string> PutFileAsync(string key, string path, long size, CancellationToken cancellationToken)
    {
        await using var file = RegularFile.OpenRead(path);
        return await client.PutAsync(bucket, prefix + key, file, size, cancellationToken: cancellationToken);
    }

    public Task<string> PutBytesAsync(string key, ReadOnlyMemory<byte> content, string contentType, CancellationToken cancellationToken) =>
        client.PutAsync(bucket, prefix + key, new MemoryStream(content.ToArray()), content.Length, contentType: contentType, cancellationToken: cancellationToken);

    public Task GetAsync(string key, Func<Stream, CancellationToken, Task> consume, CancellationToken cancellationToken) =>
        client.GetAsync(bucket, prefix + key, (stream, _, ct) => consume(stream, ct), cancellationToken: cancellationToken);

    public async Task<IReadOnlyList<(string Key, string Error)>> DeleteAsync(IReadOnlyList<string> keys, CancellationToken cancellationToken) =>
        (await client.DeleteManyAsync(bucket, keys.Select(k => prefix + k).ToList(), cancellationToken)).Select(f => (f.Key[prefix.Length..], f.Error)).ToList();

    public IETagHasher CreateETagHasher(long size) => new Hasher(new ETagHasher(size));

    public bool IsFatal(Exception exception) =>
        exception is S3Exception { Kind: S3ErrorKind.Unreachable or S3ErrorKind.AuthenticationFailed or S3ErrorKind.AccessDenied or S3ErrorKind.BucketNotFound };

    private sealed class Hasher(ETagHasher inner) : IETagHasher
    {
        public void Append(ReadOnlySpan<byte> data) => inner.Append(data);
        public string Finish() => inner.Finish();
        public void Dispose() => inner.Dispose();
    }
}

/// <summary>Counts what goes through a store (uploads, their bytes, requests), and can fail or tamper with chosen calls.</summary>
public sealed class CountingStore(ITsdbStore inner) : ITsdbStore
{
    private long _puts, _putBytes, _lists, _gets, _deletes;
    private readonly List<string> _putKeys = [];

    public long Puts => Interlocked.Read(ref _puts);
    public long PutBytes => Interlocked.Read(ref _putBytes);
    public long Lists => Interlocked.Read(ref _lists);
    public long Gets => Interlocked.Read(ref _gets);
    public long Deletes => Interlocked.Read(ref _deletes);
    public long Requests => Puts + Lists + Gets + Deletes;

    public List<string> PutKeys { get { lock (_putKeys) return [.. _putKeys]; } }

    /// <summary>Makes the upload of a key fail (an exception the store does not call fatal).</summary>
    public Func<string, bool> FailPut { get; set; } = _ => false;

    /// <summary>Runs after every listing (e.g. to delete an object behind the push's back).</summary>
    public Func<string, Task>? AfterList { get; set; }

    /// <summary>Replaces the content of a get.</summary>
    public Func<string, Stream, Stream>? TamperGet { get; set; }

    public string Location => inner.Location;

    public void Reset()
    {
        _puts = _putBytes = _lists = _gets = _deletes = 0;
        lock (_putKeys) _putKeys.Clear();
    }

    public async Task<IReadOnlyList<StoredObject>> ListAsync(string prefix, CancellationToken cancellationToken)
    {
        Interlocked.Increment(ref _lists);
        var result = await inner.ListAsync(prefix, cancellationToken);
        if (AfterList is { } after) await after(prefix);
        return result;
    }

    public Task<string> PutFileAsync(string key, string path, long size, CancellationToken cancellationToken)
    {
        if (FailPut(key)) throw new IOException($"injected failure uploading {key}");
        Count(key, size);
        return inner.PutFileAsync(key, path, size, cancellationToken);
    }

    public Task<string> PutBytesAsync(string key, ReadOnlyMemory<byte> content, string contentType, CancellationToken cancellationToken)
    {
        if (FailPut(key)) throw new IOException($"injected failure uploading {key}");
        Count(key, content.Length);
        return inner.PutBytesAsync(key, content, contentType, cancellationToken);
    }

    public Task GetAsync(string key, Func<Stream, CancellationToken, Task> consume, CancellationToken cancellationToken)
    {
        Interlocked.Increment(ref _gets);
        return inner.GetAsync(key, (s, ct) => consume(TamperGet is { } tamper ? tamper(key, s) : s, ct), cancellationToken);
    }

    public Task<IReadOnlyList<(string Key, string Error)>> DeleteAsync(IReadOnlyList<string> keys, CancellationToken cancellationToken)
    {
        Interlocked.Increment(ref _deletes);
        return inner.DeleteAsync(keys, cancellationToken);
    }

    public IETagHasher CreateETagHasher(long size) => inner.CreateETagHasher(size);

    public bool IsFatal(Exception exception) => inner.IsFatal(exception);

    private void Count(string key, long size)
    {
        Interlocked.Increment(ref _puts);
        Interlocked.Add(ref _putBytes, size);
        lock (_putKeys) _putKeys.Add(key);
    }
}
