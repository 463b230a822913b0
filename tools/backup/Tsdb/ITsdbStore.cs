namespace InfraTools.Backup.Tsdb;

/// <summary>One object in a listing. <see cref="Key"/> is relative to the backup prefix (e.g. "blocks/01J.../index").</summary>
public sealed class StoredObject(string key, long size, string etag, DateTimeOffset lastModified)
{
    public string Key { get; } = key;
    public long Size { get; } = size;
    public string ETag { get; } = etag;
    public DateTimeOffset LastModified { get; } = lastModified;
}

/// <summary>Computes, from content fed in order, the ETag a store gives an object of known size.</summary>
public interface IETagHasher : IDisposable
{
    void Append(ReadOnlySpan<byte> data);

    /// <summary>The ETag: lower-case hex without quotes, "hex-N" for a multipart upload.</summary>
    string Finish();
}

/// <summary>
/// What the TSDB module needs from an object store, bound to one bucket and one backup prefix (e.g.
/// s3://bucket/prometheus/): every key here is relative to that prefix. Implementations translate their own
/// failures into exceptions with a clear message (and <see cref="InfraTools.Cli.ToolException"/> exit codes).
/// </summary>
public interface ITsdbStore
{
    /// <summary>Where the store points, for messages (e.g. s3://bucket/prometheus/).</summary>
    string Location { get; }

    /// <summary>Every object whose key starts with <paramref name="prefix"/> (relative; "" for all), all pages, in key order. A listing that cannot be completed throws.</summary>
    Task<IReadOnlyList<StoredObject>> ListAsync(string prefix, CancellationToken cancellationToken);

    /// <summary>Uploads the local regular file at <paramref name="path"/> (exactly <paramref name="size"/> bytes) under <paramref name="key"/>, checked against the server's answer; returns the object's ETag.</summary>
    Task<string> PutFileAsync(string key, string path, long size, CancellationToken cancellationToken);

    /// <summary>Uploads bytes under <paramref name="key"/>; returns the object's ETag.</summary>
    Task<string> PutBytesAsync(string key, ReadOnlyMemory<byte> content, string contentType, CancellationToken cancellationToken);

    /// <summary>Reads an object: <paramref name="consume"/> gets its content and must read it before returning.</summary>
    Task GetAsync(string key, Func<Stream, CancellationToken, Task> consume, CancellationToken cancellationToken);

    /// <summary>Deletes keys (batched as the store likes); returns the keys that could not be deleted, with the reason.</summary>
    Task<IReadOnlyList<(string Key, string Error)>> DeleteAsync(IReadOnlyList<string> keys, CancellationToken cancellationToken);

    /// <summary>A hasher that computes the ETag <see cref="PutFileAsync"/> gives an object of <paramref name="size"/> bytes.</summary>
    IETagHasher CreateETagHasher(long size);

    /// <summary>True for a failure that would hit every other transfer too (unreachable, credentials refused, bucket gone): the whole run stops.</summary>
    bool IsFatal(Exception exception);
}
