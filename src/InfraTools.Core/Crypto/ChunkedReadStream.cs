namespace InfraTools.Crypto;

/// <summary>
/// The shape both age streams share: a read-only, forward-only stream that produces its bytes one chunk at a
/// time (<see cref="ProduceAsync"/>, synchronously for <see cref="Read(Span{byte})"/>) and hands them out
/// until the chunk is used up.
/// </summary>
public abstract class ChunkedReadStream : Stream
{
    private ReadOnlyMemory<byte> _pending;
    private long _position;

    protected bool Disposed { get; private set; }

    /// <summary>True once no chunk follows the last one produced.</summary>
    protected abstract bool Ended { get; }

    /// <summary>Produces the next chunk (<see cref="SetPending"/>) or makes <see cref="Ended"/> true.</summary>
    protected abstract ValueTask ProduceAsync(bool useAsync, CancellationToken cancellationToken);

    /// <summary>Frees what the stream holds (keys, buffers, the source); called once, on dispose.</summary>
    protected abstract void Release();

    protected void SetPending(ReadOnlyMemory<byte> chunk) => _pending = chunk;

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override int Read(Span<byte> buffer)
    {
        ObjectDisposedException.ThrowIf(Disposed, this);
        if (buffer.IsEmpty) return 0;
        while (_pending.IsEmpty && !Ended) ProduceAsync(useAsync: false, default).AsTask().GetAwaiter().GetResult();
        return Take(buffer);
    }

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        ObjectDisposedException.ThrowIf(Disposed, this);
        if (buffer.IsEmpty) return 0;
        while (_pending.IsEmpty && !Ended) await ProduceAsync(useAsync: true, cancellationToken).ConfigureAwait(false);
        return Take(buffer.Span);
    }

    private int Take(Span<byte> buffer)
    {
        var n = Math.Min(buffer.Length, _pending.Length);
        _pending.Span[..n].CopyTo(buffer);
        _pending = _pending[n..];
        _position += n;
        return n;
    }

    public override bool CanRead => !Disposed;
    public override bool CanSeek => false;
    public override bool CanWrite => false;
    public override long Length => throw new NotSupportedException();
    public override long Position { get => _position; set => throw new NotSupportedException(); }
    public override void Flush() { }
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    protected sealed override void Dispose(bool disposing)
    {
        if (disposing && !Disposed)
        {
            Disposed = true;
            Release();
        }
        base.Dispose(disposing);
    }
}
