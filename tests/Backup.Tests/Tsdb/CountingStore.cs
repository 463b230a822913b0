using System.Runtime.CompilerServices;
using InfraTools.Backup.Tsdb;
using InfraTools.Storage;

namespace InfraTools.Tests.Tsdb;

/// <summary>
/// Counts what goes through an object store (uploads, their bytes, requests) and can fail or tamper with chosen
/// calls; keys in its counters and hooks are relative to <paramref name="prefix"/>, as the TSDB module sees them.
/// Converts to the <see cref="TsdbStore"/> of that prefix, so a test hands it where the module takes one.
/// </summary>
public sealed class CountingStore(IObjectStore inner, string bucket, string prefix) : IObjectStore
{
    private long _puts, _putBytes, _lists, _gets, _deletes;
    private readonly List<string> _putKeys = [];

    public TsdbStore Tsdb => new(this, bucket, prefix);

    public static implicit operator TsdbStore(CountingStore store) => store.Tsdb;

    public long Puts => Interlocked.Read(ref _puts);
    public long PutBytes => Interlocked.Read(ref _putBytes);
    public long Lists => Interlocked.Read(ref _lists);
    public long Gets => Interlocked.Read(ref _gets);
    public long Deletes => Interlocked.Read(ref _deletes);

    public List<string> PutKeys { get { lock (_putKeys) return [.. _putKeys]; } }

    /// <summary>Makes the upload of a (relative) key fail with an error that fails that file only.</summary>
    public Func<string, bool> FailPut { get; set; } = _ => false;

    /// <summary>Runs after every listing, with its relative prefix (e.g. to delete an object behind the push's back).</summary>
    public Func<string, Task>? AfterList { get; set; }

    /// <summary>Replaces the content of a get.</summary>
    public Func<string, Stream, Stream>? TamperGet { get; set; }

    public string Location => Tsdb.Location;
    public string Endpoint => inner.Endpoint;
    public long RequestsSent => inner.RequestsSent;

    public void Reset()
    {
        _puts = _putBytes = _lists = _gets = _deletes = 0;
        lock (_putKeys) _putKeys.Clear();
    }

    public Task<string> PutBytesAsync(string key, ReadOnlyMemory<byte> content, string contentType, CancellationToken cancellationToken) =>
        Tsdb.PutBytesAsync(key, content, contentType, cancellationToken);

    private string Relative(string key) => key.StartsWith(prefix, StringComparison.Ordinal) ? key[prefix.Length..] : key;

    public async IAsyncEnumerable<StoredObject> ListAsync(string bucketName, string listPrefix, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        Interlocked.Increment(ref _lists);
        var found = await inner.ListAsync(bucketName, listPrefix, cancellationToken).ToListAsync(cancellationToken);
        if (AfterList is { } after) await after(Relative(listPrefix));
        foreach (var item in found) yield return item;
    }

    public Task<ObjectInfo> StatAsync(string bucketName, string key, CancellationToken cancellationToken = default) => inner.StatAsync(bucketName, key, cancellationToken);

    public Task<ObjectInfo> GetAsync(string bucketName, string key, Func<Stream, ObjectInfo, CancellationToken, Task> consume, GetOptions? options = null,
        CancellationToken cancellationToken = default)
    {
        Interlocked.Increment(ref _gets);
        return inner.GetAsync(bucketName, key, (s, info, ct) => consume(TamperGet is { } tamper ? tamper(Relative(key), s) : s, info, ct), options, cancellationToken);
    }

    public Task<string> PutAsync(string bucketName, string key, Stream content, long size, PutOptions? options = null, CancellationToken cancellationToken = default)
    {
        var relative = Relative(key);
        if (FailPut(relative)) throw new StoreException(StoreErrorKind.ServerError, $"injected failure uploading {relative}");
        Interlocked.Increment(ref _puts);
        Interlocked.Add(ref _putBytes, size);
        lock (_putKeys) _putKeys.Add(relative);
        return inner.PutAsync(bucketName, key, content, size, options, cancellationToken);
    }

    public Task<IReadOnlyList<(string Key, string Error)>> DeleteManyAsync(string bucketName, IReadOnlyList<string> keys, CancellationToken cancellationToken = default)
    {
        Interlocked.Increment(ref _deletes);
        return inner.DeleteManyAsync(bucketName, keys, cancellationToken);
    }

    public void Dispose() { }
}
