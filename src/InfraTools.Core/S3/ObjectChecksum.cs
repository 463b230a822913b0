using System.Security.Cryptography;
using InfraTools.Files;
using Minio.Helper;

namespace InfraTools.S3;

/// <summary>
/// The ETag an S3 server gives an object uploaded by <see cref="S3Store.PutAsync"/>: the MD5 of the content for
/// a single-part upload, or MD5(part MD5s) + "-N" for a multipart upload with Minio's part size. Used to verify
/// uploads and to tell whether a local file equals a remote object without downloading it.
/// </summary>
public static class ObjectChecksum
{
    /// <summary>Minio switches to multipart uploads at this size.</summary>
    public const long MultipartThreshold = 5L * 1024 * 1024;

    /// <summary>The part size Minio uses for an object of <paramref name="size"/> bytes.</summary>
    public static long PartSize(long size) => (long)Utils.CalculateMultiPartSize(size).PartSize;

    public static bool IsMultipart(long size) => size >= MultipartThreshold;

    /// <summary>True for an ETag of a multipart upload ("hex-N"), which is not the MD5 of the content.</summary>
    public static bool IsMultipartETag(string etag) => etag.Contains('-', StringComparison.Ordinal);

    /// <summary>Normalises an ETag as servers send it (quoted, any case) to lower-case hex without quotes.</summary>
    public static string Normalize(string? etag) => (etag ?? "").Trim().Trim('"').ToLowerInvariant();

    /// <summary>Computes the expected ETag of a stream of <paramref name="size"/> bytes, reading it once.</summary>
    public static async Task<string> ComputeETagAsync(Stream content, long size, CancellationToken cancellationToken)
    {
        using var hasher = new ETagHasher(size);
        var buffer = new byte[81920];
        int read;
        while ((read = await content.ReadAsync(buffer, cancellationToken).ConfigureAwait(false)) > 0)
            hasher.Append(buffer.AsSpan(0, read));
        return hasher.Finish();
    }

    /// <summary>The expected ETag of a local regular file (never a FIFO or a link: <see cref="RegularFile"/>).</summary>
    public static async Task<string> ComputeETagAsync(string path, CancellationToken cancellationToken)
    {
        await using var file = RegularFile.OpenRead(path);
        return await ComputeETagAsync(file, file.Length, cancellationToken).ConfigureAwait(false);
    }
}

/// <summary>Incremental ETag computation over bytes fed in order (used while uploading, so the file is read once).</summary>
public sealed class ETagHasher : IDisposable
{
    private readonly long _partSize;
    private readonly bool _multipart;
    private readonly IncrementalHash _whole = IncrementalHash.CreateHash(HashAlgorithmName.MD5);
    private readonly IncrementalHash _part = IncrementalHash.CreateHash(HashAlgorithmName.MD5);
    private readonly List<byte[]> _partHashes = [];
    private long _inPart;
    private long _total;

    public ETagHasher(long size)
    {
        _multipart = ObjectChecksum.IsMultipart(size);
        _partSize = _multipart ? ObjectChecksum.PartSize(size) : long.MaxValue;
    }

    public long BytesHashed => _total;

    public void Append(ReadOnlySpan<byte> data)
    {
        _total += data.Length;
        if (!_multipart)
        {
            _whole.AppendData(data);
            return;
        }
        while (!data.IsEmpty)
        {
            var take = (int)Math.Min(data.Length, _partSize - _inPart);
            _part.AppendData(data[..take]);
            _inPart += take;
            data = data[take..];
            if (_inPart == _partSize)
            {
                _partHashes.Add(_part.GetHashAndReset());
                _inPart = 0;
            }
        }
    }

    public string Finish()
    {
        if (!_multipart) return Convert.ToHexStringLower(_whole.GetHashAndReset());
        if (_inPart > 0 || _partHashes.Count == 0) _partHashes.Add(_part.GetHashAndReset());
        var combined = IncrementalHash.CreateHash(HashAlgorithmName.MD5);
        foreach (var hash in _partHashes) combined.AppendData(hash);
        return $"{Convert.ToHexStringLower(combined.GetHashAndReset())}-{_partHashes.Count}";
    }

    public void Dispose()
    {
        _whole.Dispose();
        _part.Dispose();
    }
}

/// <summary>A read-only stream that feeds every byte it passes through to an <see cref="ETagHasher"/>.</summary>
internal sealed class HashingReadStream(Stream inner, ETagHasher hasher) : ReadOnlyStreamWrapper(inner)
{
    public override int Read(Span<byte> buffer)
    {
        var read = Inner.Read(buffer);
        hasher.Append(buffer[..read]);
        return read;
    }

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        var read = await Inner.ReadAsync(buffer, cancellationToken).ConfigureAwait(false);
        hasher.Append(buffer.Span[..read]);
        return read;
    }
}
