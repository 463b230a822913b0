using System.Globalization;
using System.Security.Cryptography;
using System.Text;

namespace InfraTools.Crypto;

/// <summary>
/// A read-only stream of the age v1 encryption of another stream: read it and you get the header (one X25519
/// stanza per recipient, HMAC), the payload nonce and the ChaCha20-Poly1305 chunks, produced 64 KiB at a time
/// while the plaintext is read, so the whole file is never in memory. With a known plaintext length the
/// ciphertext's <see cref="Length"/> is known up front (for an S3 PUT with Content-Length), and a source that
/// delivers a different number of bytes fails the read instead of producing a file of another size.
/// Each instance has its own random file key and nonce: ciphertext differs on every run.
/// </summary>
public sealed class AgeEncryptingStream : ChunkedReadStream
{
    private readonly Stream _source;
    private readonly bool _leaveOpen;
    private readonly long? _plaintextLength;
    private readonly ChaCha20Poly1305 _aead;
    private readonly byte[] _plain = new byte[AgeFormat.ChunkSize + 1];
    private int _plainCount;
    private bool _sourceDone;
    private long _plaintextRead;
    private long _counter;
    private readonly byte[] _out = new byte[AgeFormat.EncryptedChunkSize];
    private bool _finished;

    /// <param name="plaintext">The data to encrypt, read from its current position to its end.</param>
    /// <param name="recipients">Who can decrypt: at least one.</param>
    /// <param name="plaintextLength">The number of bytes <paramref name="plaintext"/> will deliver, if known
    /// (a seekable source's remaining length is used when this is null).</param>
    /// <param name="leaveOpen">Keep <paramref name="plaintext"/> open when this stream is disposed.</param>
    public AgeEncryptingStream(Stream plaintext, IReadOnlyList<AgeRecipient> recipients, long? plaintextLength = null, bool leaveOpen = false)
    {
        ArgumentNullException.ThrowIfNull(plaintext);
        ArgumentNullException.ThrowIfNull(recipients);
        if (recipients.Count == 0) throw new ArgumentException("at least one recipient is needed", nameof(recipients));
        if (!ChaCha20Poly1305.IsSupported) throw new PlatformNotSupportedException("ChaCha20-Poly1305 is not available (OpenSSL 1.1 or later is needed)");
        _source = plaintext;
        _leaveOpen = leaveOpen;
        _plaintextLength = plaintextLength ?? (plaintext.CanSeek ? plaintext.Length - plaintext.Position : null);
        if (_plaintextLength < 0) throw new ArgumentOutOfRangeException(nameof(plaintextLength));

        var fileKey = RandomNumberGenerator.GetBytes(AgeFormat.FileKeySize);
        try
        {
            var header = new StringBuilder(AgeFormat.HeaderSize(recipients.Count)).Append(AgeFormat.VersionLine);
            foreach (var recipient in recipients)
            {
                var (share, body) = AgeFormat.WrapX25519(recipient, fileKey);
                header.Append("-> ").Append(AgeFormat.X25519Type).Append(' ').Append(share).Append('\n').Append(AgeFormat.Encode(body)).Append('\n');
            }
            header.Append("---");
            var mac = AgeFormat.HeaderMac(fileKey, Encoding.ASCII.GetBytes(header.ToString()));
            header.Append(' ').Append(AgeFormat.Encode(mac)).Append('\n');
            var nonce = RandomNumberGenerator.GetBytes(AgeFormat.NonceSize);
            byte[] intro = [.. Encoding.ASCII.GetBytes(header.ToString()), .. nonce];
            SetPending(intro);
            HeaderLength = intro.Length;
            var payloadKey = AgeFormat.PayloadKey(fileKey, nonce);
            _aead = new ChaCha20Poly1305(payloadKey);
            CryptographicOperations.ZeroMemory(payloadKey);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(fileKey);
        }
    }

    /// <summary>The size of the header and payload nonce, before the first chunk.</summary>
    public int HeaderLength { get; }

    /// <summary>
    /// The size of the age file for <paramref name="plaintextLength"/> bytes encrypted to
    /// <paramref name="recipientCount"/> X25519 recipients by this encoder.
    /// </summary>
    public static long CiphertextLength(long plaintextLength, int recipientCount)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(plaintextLength);
        ArgumentOutOfRangeException.ThrowIfLessThan(recipientCount, 1);
        return AgeFormat.HeaderSize(recipientCount) + AgeFormat.NonceSize + PayloadLength(plaintextLength);
    }

    /// <summary>The chunks' size: the plaintext plus one tag per chunk (an empty plaintext is one empty chunk).</summary>
    private static long PayloadLength(long plaintextLength)
    {
        var chunks = plaintextLength == 0 ? 1 : (plaintextLength + AgeFormat.ChunkSize - 1) / AgeFormat.ChunkSize;
        return plaintextLength + chunks * AgeFormat.TagSize;
    }

    /// <summary>The ciphertext's total size; known when the plaintext's length is.</summary>
    public override long Length => _plaintextLength is { } n
        ? HeaderLength + PayloadLength(n)
        : throw new NotSupportedException("the plaintext's length is unknown, so the ciphertext's is");

    protected override bool Ended => _finished;

    protected override async ValueTask ProduceAsync(bool useAsync, CancellationToken cancellationToken)
    {
        await FillPlaintext(useAsync, cancellationToken).ConfigureAwait(false);
        EncryptChunk();
    }

    /// <summary>Reads until one byte more than a chunk is buffered (so the chunk is known not to be the last) or the source ends.</summary>
    private async ValueTask FillPlaintext(bool useAsync, CancellationToken cancellationToken)
    {
        while (!_sourceDone && _plainCount < _plain.Length)
        {
            var space = _plain.AsMemory(_plainCount);
            var n = useAsync ? await _source.ReadAsync(space, cancellationToken).ConfigureAwait(false) : _source.Read(space.Span);
            if (n == 0)
            {
                _sourceDone = true;
                if (_plaintextLength is { } expected && _plaintextRead != expected)
                    throw new IOException(string.Create(CultureInfo.InvariantCulture,
                        $"the data to encrypt ended after {_plaintextRead} bytes instead of {expected} (did the file change while it was read?)"));
                break;
            }
            _plaintextRead += n;
            _plainCount += n;
            if (_plaintextRead > _plaintextLength)
                throw new IOException(string.Create(CultureInfo.InvariantCulture,
                    $"the data to encrypt is longer than the {_plaintextLength} bytes announced (did the file change while it was read?)"));
        }
    }

    private void EncryptChunk()
    {
        var last = _plainCount <= AgeFormat.ChunkSize;
        var size = last ? _plainCount : AgeFormat.ChunkSize;
        Span<byte> nonce = stackalloc byte[12];
        AgeFormat.ChunkNonce(nonce, _counter++, last);
        _aead.Encrypt(nonce, _plain.AsSpan(0, size), _out.AsSpan(0, size), _out.AsSpan(size, AgeFormat.TagSize));
        SetPending(_out.AsMemory(0, size + AgeFormat.TagSize));
        // Keep the look-ahead byte for the next chunk; wipe the plaintext copy.
        _plain.AsSpan(size, _plainCount - size).CopyTo(_plain);
        _plainCount -= size;
        CryptographicOperations.ZeroMemory(_plain.AsSpan(_plainCount));
        _finished = last;
    }

    protected override void Release()
    {
        _aead.Dispose();
        CryptographicOperations.ZeroMemory(_plain);
        if (!_leaveOpen) _source.Dispose();
    }
}
