using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using InfraTools.S3;
using InfraTools.Storage;

namespace InfraTools.Tests;

/// <summary>
/// The object-store port in memory, for testing the engine's rules in milliseconds (the real-RGW tests stay):
/// objects with S3's ETags (MD5, or multipart MD5 with our part size), listings in key order, and hooks that
/// inject a failure or change the store at a given request.
/// </summary>
public sealed class InMemoryObjectStore : IObjectStore
{
    private sealed record Stored(byte[] Content, string ETag, DateTimeOffset LastModified, PutOptions? Options);

    private readonly ConcurrentDictionary<(string Bucket, string Key), Stored> _objects = new();
    private long _requests;
    private DateTimeOffset _clock = new(2026, 12, 1, 12, 0, 0, TimeSpan.Zero);

    public string Endpoint => "memory://";
    public long RequestsSent => Interlocked.Read(ref _requests);

    /// <summary>Called before every request with (operation, bucket, key); throw from it to make the request fail, or change the store.</summary>
    public Action<string, string, string>? BeforeRequest { get; set; }

    /// <summary>Requests by operation ("list", "get", "put", "delete", "stat").</summary>
    public ConcurrentDictionary<string, int> Counts { get; } = new();

    public void Put(string bucket, string key, byte[] content)
    {
        _clock = _clock.AddSeconds(1);
        _objects[(bucket, key)] = new Stored(content, ETagOf(content), _clock, null);
    }

    public void Remove(string bucket, string key) => _objects.TryRemove((bucket, key), out _);

    public byte[]? Content(string bucket, string key) => _objects.TryGetValue((bucket, key), out var o) ? o.Content : null;

    public IReadOnlyList<string> Keys(string bucket) =>
        _objects.Keys.Where(k => k.Bucket == bucket).Select(k => k.Key).Order(StringComparer.Ordinal).ToList();

    public static string ETagOf(byte[] content)
    {
        using var hasher = new ETagHasher(content.Length);
        hasher.Append(content);
        return hasher.Finish();
    }

    private void Count(string operation, string bucket, string key)
    {
        Interlocked.Increment(ref _requests);
        Counts.AddOrUpdate(operation, 1, (_, n) => n + 1);
        BeforeRequest?.Invoke(operation, bucket, key);
    }

    public async IAsyncEnumerable<StoredObject> ListAsync(string bucket, string prefix, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        Count("list", bucket, prefix);
        var snapshot = _objects.Where(o => o.Key.Bucket == bucket && o.Key.Key.StartsWith(prefix, StringComparison.Ordinal))
            .OrderBy(o => o.Key.Key, StringComparer.Ordinal).ToList();
        foreach (var (key, stored) in snapshot)
        {
            cancellationToken.ThrowIfCancellationRequested();
            await Task.Yield();
            yield return new StoredObject(key.Key, stored.Content.Length, stored.ETag, stored.LastModified);
        }
    }

    public Task<ObjectInfo> StatAsync(string bucket, string key, CancellationToken cancellationToken = default)
    {
        Count("stat", bucket, key);
        return Task.FromResult(Info(bucket, key, Find(bucket, key)));
    }

    public async Task<ObjectInfo> GetAsync(string bucket, string key, Func<Stream, ObjectInfo, CancellationToken, Task> consume, GetOptions? options = null,
        CancellationToken cancellationToken = default)
    {
        Count("get", bucket, key);
        var stored = Find(bucket, key);
        if (options?.IfNoneMatch is { } etag && etag == stored.ETag) throw new StoreException(StoreErrorKind.NotModified, $"s3://{bucket}/{key} has not changed");
        var info = Info(bucket, key, stored);
        await consume(new MemoryStream(stored.Content, writable: false), info, cancellationToken);
        return info;
    }

    public async Task<string> PutAsync(string bucket, string key, Stream content, long size, PutOptions? options = null, CancellationToken cancellationToken = default)
    {
        Count("put", bucket, key);
        using var buffer = new MemoryStream();
        await content.CopyToAsync(buffer, cancellationToken);
        if (buffer.Length != size)
            throw new StoreException(StoreErrorKind.IntegrityCheckFailed, $"upload of s3://{bucket}/{key} read {buffer.Length} bytes, expected {size}");
        var bytes = buffer.ToArray();
        _clock = _clock.AddSeconds(1);
        var stored = new Stored(bytes, ETagOf(bytes), _clock, options);
        _objects[(bucket, key)] = stored;
        return stored.ETag;
    }

    public Task<IReadOnlyList<(string Key, string Error)>> DeleteManyAsync(string bucket, IReadOnlyList<string> keys, CancellationToken cancellationToken = default)
    {
        var failures = new List<(string, string)>();
        foreach (var key in keys)
        {
            try
            {
                Count("delete", bucket, key);
                _objects.TryRemove((bucket, key), out _);
            }
            catch (StoreException ex) when (!ex.StopsTheRun)
            {
                failures.Add((key, ex.Message));
            }
        }
        return Task.FromResult<IReadOnlyList<(string, string)>>(failures);
    }

    public void Dispose() { }

    private Stored Find(string bucket, string key) =>
        _objects.TryGetValue((bucket, key), out var stored) ? stored : throw new StoreException(StoreErrorKind.ObjectNotFound, $"s3://{bucket}/{key} does not exist");

    private static ObjectInfo Info(string bucket, string key, Stored stored) =>
        new(key, stored.Content.Length, stored.ETag, stored.LastModified, stored.Options?.ContentType, stored.Options?.Metadata ?? new Dictionary<string, string>());
}
