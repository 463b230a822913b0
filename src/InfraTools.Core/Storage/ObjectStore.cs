namespace InfraTools.Storage;

/// <summary>One object in a listing.</summary>
public sealed record StoredObject(string Key, long Size, string ETag, DateTimeOffset LastModified);

/// <summary>
/// What a stat or get tells about an object. Metadata keys are the user metadata names (x-amz-meta-*) without
/// the prefix. <see cref="Size"/> is -1 when a get's answer announced no length (a chunked body).
/// </summary>
public sealed record ObjectInfo(string Key, long Size, string ETag, DateTimeOffset LastModified, string? ContentType,
    IReadOnlyDictionary<string, string> Metadata);

/// <summary>What a get may ask for besides the object: a byte range, or "only if it changed" (If-None-Match).</summary>
public sealed record GetOptions((long From, long To)? Range = null, string? IfNoneMatch = null);

/// <summary>What a put may set besides the content.</summary>
public sealed record PutOptions(string? ContentType = null, IReadOnlyDictionary<string, string>? Metadata = null);

/// <summary>
/// The object-store port: everything the sync engine and the tools need from S3, and nothing of how it is done.
/// <see cref="S3.S3Store"/> is the one adapter (Minio and the workarounds around it); the tests also have an
/// in-memory store. Every failure is a <see cref="StoreException"/> with a <see cref="StoreErrorKind"/>; the
/// command line alone turns kinds into exit codes.
/// </summary>
public interface IObjectStore : IDisposable
{
    /// <summary>The endpoint as messages show it, e.g. https://sos-ch-gva-2.exo.io.</summary>
    string Endpoint { get; }

    /// <summary>Requests sent so far, for tests, benchmarks and debug output.</summary>
    long RequestsSent { get; }

    /// <summary>Every object under <paramref name="prefix"/> (recursive, all pages), in key order. An incomplete listing is an error, never a shorter one.</summary>
    IAsyncEnumerable<StoredObject> ListAsync(string bucket, string prefix, CancellationToken cancellationToken = default);

    /// <summary>
    /// The same listing, with a hint: <paramref name="knownPaths"/> are paths under the prefix (keys without it) the
    /// caller saw there before, e.g. the last run's. A store may cut the key space at them and list the ranges at
    /// the same time (<see cref="S3.S3Store"/> does, from 2,000 paths on); what comes back is the same with or
    /// without the hint, in key order.
    /// </summary>
    IAsyncEnumerable<StoredObject> ListAsync(string bucket, string prefix, IReadOnlyCollection<string> knownPaths, CancellationToken cancellationToken = default) =>
        ListAsync(bucket, prefix, cancellationToken);

    Task<ObjectInfo> StatAsync(string bucket, string key, CancellationToken cancellationToken = default);

    /// <summary>
    /// Downloads an object with one request and hands its content to <paramref name="consume"/>, which must read
    /// the stream before returning. With <see cref="GetOptions.IfNoneMatch"/> an unchanged object throws
    /// <see cref="StoreErrorKind.NotModified"/> without a body.
    /// </summary>
    Task<ObjectInfo> GetAsync(string bucket, string key, Func<Stream, ObjectInfo, CancellationToken, Task> consume, GetOptions? options = null,
        CancellationToken cancellationToken = default);

    /// <summary>Uploads <paramref name="size"/> bytes and checks what the server stored against what was sent; returns the ETag.</summary>
    Task<string> PutAsync(string bucket, string key, Stream content, long size, PutOptions? options = null, CancellationToken cancellationToken = default);

    /// <summary>Deletes keys (in batches); returns the keys the server refused, with its reason. Missing keys are not an error.</summary>
    Task<IReadOnlyList<(string Key, string Error)>> DeleteManyAsync(string bucket, IReadOnlyList<string> keys, CancellationToken cancellationToken = default);
}

/// <summary>What went wrong with an object-store request, in terms a run can act on.</summary>
public enum StoreErrorKind
{
    /// <summary>No answer: DNS, connection refused, TLS, nothing received within the I/O timeout.</summary>
    Unreachable,
    AuthenticationFailed,
    AccessDenied,
    BucketNotFound,
    ObjectNotFound,
    /// <summary>What arrived or was stored is not what was sent or announced.</summary>
    IntegrityCheckFailed,
    /// <summary>A 5xx, or an S3 error that is not one of the above.</summary>
    ServerError,
    /// <summary>An answer that is not S3 (a web page, an empty 4xx), or a listing that cannot be complete: not worth retrying.</summary>
    UnexpectedAnswer,
    /// <summary>The answer started but its body broke off or stalled: that transfer failed, the others may go on.</summary>
    Interrupted,
    /// <summary>A conditional get found the object unchanged (If-None-Match): not a failure.</summary>
    NotModified,
}

/// <summary>An object-store failure, already worded for the operator: what happened and what to check.</summary>
public sealed class StoreException(StoreErrorKind kind, string message, Exception? inner = null) : Exception(message, inner)
{
    public StoreErrorKind Kind { get; } = kind;

    /// <summary>True for failures worth retrying a little later (network trouble, 5xx).</summary>
    public bool IsTransient => Kind is StoreErrorKind.Unreachable or StoreErrorKind.ServerError or StoreErrorKind.Interrupted;

    /// <summary>True for failures that every other request of the run would hit too: the run stops instead of failing item by item.</summary>
    public bool StopsTheRun => Kind is StoreErrorKind.Unreachable or StoreErrorKind.AuthenticationFailed or StoreErrorKind.AccessDenied or StoreErrorKind.BucketNotFound;
}
