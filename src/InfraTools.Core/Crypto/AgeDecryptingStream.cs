using System.Globalization;
using System.Security.Cryptography;
using System.Text;

namespace InfraTools.Crypto;

/// <summary>
/// A read-only stream of the plaintext of an age v1 file, decrypted 64 KiB chunk by chunk as it is read.
/// <see cref="Open"/>/<see cref="OpenAsync"/> read and check the whole header first (stanzas, identity match,
/// header MAC), so a wrong identity or an altered header fails before any plaintext exists. Every byte that
/// <see cref="Read(Span{byte})"/> returns belongs to a chunk that authenticated; but a later chunk can still
/// fail (altered or truncated file), so a caller must treat what it has read as unusable until a read returns
/// 0, which happens only after the final chunk authenticated and nothing follows it. Write the plaintext to
/// a temporary file and rename it only after that (as <see cref="Age.DecryptToFileAsync"/> does), and discard
/// it on any exception. A failure is sticky: every later read throws the same exception.
/// </summary>
public sealed class AgeDecryptingStream : ChunkedReadStream
{
    private const int MaxHeaderBytes = 1 << 20;
    private static readonly byte[] Intro = Encoding.ASCII.GetBytes(AgeFormat.VersionLine);

    private readonly Stream _source;
    private readonly bool _leaveOpen;
    // Input: the header's lines, then the payload, EncryptedChunkSize at a time.
    private readonly byte[] _in = new byte[AgeFormat.EncryptedChunkSize];
    private int _inStart, _inEnd;
    private bool _sourceEnded;
    private ChaCha20Poly1305? _aead;
    private readonly byte[] _plain = new byte[AgeFormat.ChunkSize];
    private long _chunks;
    private bool _finalChunkRead;
    private bool _ended;
    private Exception? _failure;

    private AgeDecryptingStream(Stream source, bool leaveOpen)
    {
        _source = source;
        _leaveOpen = leaveOpen;
    }

    /// <summary>The recipient (public key) of the identity that opened the file.</summary>
    public AgeRecipient Recipient { get; private set; } = null!;

    /// <summary>
    /// Reads the header of <paramref name="ciphertext"/> and unwraps its file key with one of
    /// <paramref name="identities"/>. Throws <see cref="AgeFormatException"/> (not an age file, malformed header),
    /// <see cref="AgeNoMatchException"/> (not encrypted to these identities), <see cref="AgeIntegrityException"/>
    /// (header altered) or <see cref="AgeTruncatedException"/>; nothing has been decrypted then.
    /// </summary>
    public static Task<AgeDecryptingStream> OpenAsync(Stream ciphertext, IReadOnlyList<AgeIdentity> identities, bool leaveOpen = false,
        CancellationToken cancellationToken = default) => OpenCore(ciphertext, identities, leaveOpen, useAsync: true, cancellationToken).AsTask();

    /// <summary>The synchronous <see cref="OpenAsync"/>.</summary>
    public static AgeDecryptingStream Open(Stream ciphertext, IReadOnlyList<AgeIdentity> identities, bool leaveOpen = false) =>
        OpenCore(ciphertext, identities, leaveOpen, useAsync: false, default).AsTask().GetAwaiter().GetResult();

    private static async ValueTask<AgeDecryptingStream> OpenCore(Stream ciphertext, IReadOnlyList<AgeIdentity> identities, bool leaveOpen, bool useAsync,
        CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(ciphertext);
        ArgumentNullException.ThrowIfNull(identities);
        if (identities.Count == 0) throw new ArgumentException("at least one identity is needed", nameof(identities));
        if (!ChaCha20Poly1305.IsSupported) throw new PlatformNotSupportedException("ChaCha20-Poly1305 is not available (OpenSSL 1.1 or later is needed)");
        var stream = new AgeDecryptingStream(ciphertext, leaveOpen);
        try
        {
            await stream.ReadHeader(identities, useAsync, cancellationToken).ConfigureAwait(false);
            return stream;
        }
        catch
        {
            if (!leaveOpen) await ciphertext.DisposeAsync().ConfigureAwait(false);
            stream._aead?.Dispose();
            throw;
        }
    }

    private async ValueTask ReadHeader(IReadOnlyList<AgeIdentity> identities, bool useAsync, CancellationToken cancellationToken)
    {
        var header = new MemoryStream();
        await Fill(Intro.Length, useAsync, cancellationToken).ConfigureAwait(false);
        CheckVersionLine();
        header.Write(Intro);
        _inStart += Intro.Length;

        var stanzas = new List<AgeStanza>();
        byte[] mac;
        while (true)
        {
            await Fill(3, useAsync, cancellationToken).ConfigureAwait(false);
            if (Buffered < 3) throw Truncated("it ends inside the age header");
            var isEnd = _in.AsSpan(_inStart, 3).SequenceEqual("---"u8);
            var line = await ReadLine(header, useAsync, cancellationToken).ConfigureAwait(false);
            if (isEnd)
            {
                // "--- " + 43 base64 characters (32 bytes) + LF, nothing else; the MAC covers everything up to "---".
                var decoded = line.Length == 48 && line[3] == ' ' ? AgeFormat.DecodeCanonical(line.AsSpan(4, 43)) : null;
                if (decoded is not { Length: 32 }) throw Malformed("its MAC line is not \"--- \" and 43 base64 characters");
                mac = decoded;
                header.SetLength(header.Length - line.Length + 3);
                break;
            }
            stanzas.Add(await ReadStanza(line, header, useAsync, cancellationToken).ConfigureAwait(false));
        }
        if (stanzas.Count == 0) throw Malformed("it has no recipient stanza");

        var fileKey = Unwrap(stanzas, identities);
        try
        {
            var expected = AgeFormat.HeaderMac(fileKey, header.GetBuffer().AsSpan(0, (int)header.Length));
            if (!CryptographicOperations.FixedTimeEquals(expected, mac))
                throw new AgeIntegrityException("the file was altered: its header MAC does not match (the header was changed after encryption)");
            await Fill(AgeFormat.NonceSize, useAsync, cancellationToken).ConfigureAwait(false);
            if (Buffered < AgeFormat.NonceSize) throw Truncated("it ends before its payload (no payload nonce)");
            var payloadKey = AgeFormat.PayloadKey(fileKey, _in.AsSpan(_inStart, AgeFormat.NonceSize));
            _inStart += AgeFormat.NonceSize;
            _aead = new ChaCha20Poly1305(payloadKey);
            CryptographicOperations.ZeroMemory(payloadKey);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(fileKey);
        }
    }

    private void CheckVersionLine()
    {
        var have = _in.AsSpan(_inStart, Math.Min(Buffered, Intro.Length));
        if (have.IsEmpty) throw new AgeFormatException("the file is empty, not an age-encrypted file");
        if (have.SequenceEqual(Intro.AsSpan(0, have.Length)))
        {
            if (have.Length < Intro.Length) throw Truncated("it ends inside the age header");
            return;
        }
        if (have.StartsWith("age-encryption.org/"u8)) throw new AgeFormatException("the file is in an age format version other than v1, which this tool does not read");
        if (have.StartsWith("-----BEGIN "u8))
            throw new AgeFormatException("the file is an ASCII-armored (PEM) age file, which this tool does not read: decode it with age -d, or encrypt without -a");
        throw new AgeFormatException("the file is not age-encrypted (it does not start with \"age-encryption.org/v1\")");
    }

    /// <summary>A stanza: "-> " arguments LF, then base64 lines of 64 columns ending with a shorter (maybe empty) one.</summary>
    private async ValueTask<AgeStanza> ReadStanza(byte[] argumentLine, MemoryStream header, bool useAsync, CancellationToken cancellationToken)
    {
        // Latin-1 maps each byte to one char, so a non-ASCII byte is seen as such (ASCII would turn it into "?").
        var parts = Encoding.Latin1.GetString(argumentLine, 0, argumentLine.Length - 1).Split(' ');
        if (parts[0] != "->" || parts.Length < 2) throw Malformed("a line that should start a stanza does not start with \"-> \" and a type");
        foreach (var part in parts.Skip(1))
            if (part.Length == 0 || part.Any(c => c < 33 || c > 126)) throw Malformed("a stanza has an empty argument or a character outside printable ASCII");
        var body = new List<byte>();
        while (true)
        {
            var line = await ReadLine(header, useAsync, cancellationToken).ConfigureAwait(false);
            var decoded = AgeFormat.DecodeCanonical(line.AsSpan(0, line.Length - 1));
            if (decoded is null) throw Malformed("a stanza's body is not canonical unpadded base64 ending with a line shorter than 64 columns");
            if (decoded.Length > AgeFormat.BytesPerLine) throw Malformed("a stanza's body line is longer than 64 columns");
            body.AddRange(decoded);
            if (decoded.Length < AgeFormat.BytesPerLine) return new AgeStanza(parts.Skip(1).ToArray(), body.ToArray());
        }
    }

    private byte[] Unwrap(List<AgeStanza> stanzas, IReadOnlyList<AgeIdentity> identities)
    {
        if (stanzas.Any(s => s.Type == "scrypt"))
        {
            if (stanzas.Count > 1) throw Malformed("it mixes a passphrase (scrypt) stanza with other stanzas");
            throw new AgeNoMatchException("the file is encrypted with a passphrase (age -p), not to a recipient; only age -d can open it");
        }
        var x25519 = stanzas.Where(s => s.Type == AgeFormat.X25519Type).ToList();
        foreach (var stanza in x25519) AgeFormat.CheckX25519(stanza);
        foreach (var identity in identities)
            foreach (var stanza in x25519)
                if (AgeFormat.UnwrapX25519(stanza, identity) is { } fileKey)
                {
                    Recipient = identity.Recipient;
                    return fileKey;
                }
        var to = identities.Count == 1 ? $"this identity (public key {identities[0].Recipient})" : $"any of these {identities.Count} identities ({string.Join(", ", identities.Select(i => i.Recipient))})";
        var types = string.Join(", ", stanzas.GroupBy(s => s.Type).Select(g => g.Count() == 1 ? g.Key : $"{g.Count()} x {g.Key}"));
        throw new AgeNoMatchException(stanzas.Count == 1
            ? $"the file is not encrypted to {to}: its one recipient stanza ({types}) does not open with it"
            : $"the file is not encrypted to {to}: none of its {stanzas.Count} recipient stanzas ({types}) opens with it");
    }

    /// <summary>The next header line, LF included; appended to <paramref name="header"/>.</summary>
    private async ValueTask<byte[]> ReadLine(MemoryStream header, bool useAsync, CancellationToken cancellationToken)
    {
        var scanned = 0;
        while (true)
        {
            var newline = _in.AsSpan(_inStart + scanned, Buffered - scanned).IndexOf((byte)'\n');
            if (newline >= 0)
            {
                var line = _in.AsSpan(_inStart, scanned + newline + 1).ToArray();
                _inStart += line.Length;
                if (header.Length + line.Length > MaxHeaderBytes) throw Malformed("its header is larger than 1 MiB");
                header.Write(line);
                return line;
            }
            scanned = Buffered;
            if (scanned == _in.Length) throw Malformed("a header line is longer than 64 KiB");
            if (_sourceEnded) throw Truncated("it ends inside the age header");
            await Fill(scanned + 1, useAsync, cancellationToken).ConfigureAwait(false);
        }
    }

    private int Buffered => _inEnd - _inStart;

    /// <summary>Reads until at least <paramref name="count"/> bytes are buffered or the source ends.</summary>
    private async ValueTask Fill(int count, bool useAsync, CancellationToken cancellationToken)
    {
        if (Buffered >= count || _sourceEnded) return;
        if (_inStart + count > _in.Length)
        {
            _in.AsSpan(_inStart, Buffered).CopyTo(_in);
            _inEnd = Buffered;
            _inStart = 0;
        }
        while (Buffered < count)
        {
            var space = _in.AsMemory(_inEnd);
            var n = useAsync ? await _source.ReadAsync(space, cancellationToken).ConfigureAwait(false) : _source.Read(space.Span);
            if (n == 0) { _sourceEnded = true; return; }
            _inEnd += n;
        }
    }

    protected override bool Ended => _ended;

    /// <summary>Decrypts the next chunk into the pending bytes, or sets <see cref="_ended"/> after a clean end.</summary>
    protected override async ValueTask ProduceAsync(bool useAsync, CancellationToken cancellationToken)
    {
        if (_failure is not null) throw _failure;
        try
        {
            if (_finalChunkRead)
            {
                await Fill(1, useAsync, cancellationToken).ConfigureAwait(false);
                if (Buffered > 0) throw new AgeIntegrityException("the file was altered: data follows its final chunk");
                _ended = true;
                return;
            }
            await Fill(AgeFormat.EncryptedChunkSize, useAsync, cancellationToken).ConfigureAwait(false);
            DecryptChunk();
        }
        catch (Exception ex) when (ex is AgeException)
        {
            _failure = ex;
            throw;
        }
    }

    private void DecryptChunk()
    {
        var n = Buffered;
        var chunk = _in.AsSpan(_inStart, n);
        var number = (_chunks + 1).ToString(CultureInfo.InvariantCulture);
        if (n == 0)
            throw _chunks == 0
                ? Truncated("it ends right after its header, without any payload chunk")
                : Truncated(_chunks == 1 ? "it ends after its first 64 KiB chunk, without the final chunk" : $"it ends after {_chunks} chunks of 64 KiB without the final chunk");
        int size;
        bool last;
        if (n < AgeFormat.EncryptedChunkSize)
        {
            // A short chunk can only be the final one.
            if (n < AgeFormat.TagSize) throw new AgeIntegrityException($"the file is truncated or was altered: its last chunk (chunk {number}) is shorter than an authentication tag");
            if (n == AgeFormat.TagSize && _chunks > 0) throw new AgeIntegrityException($"the file was altered: its final chunk (chunk {number}) is empty, which only an empty file may have");
            size = n - AgeFormat.TagSize;
            last = true;
            if (!TryDecrypt(chunk, size, last))
                throw new AgeIntegrityException($"the file is truncated or was altered: its last chunk (chunk {number}) does not authenticate");
        }
        else
        {
            // A full chunk is the final one if it authenticates as such (the plaintext is a multiple of 64 KiB).
            size = AgeFormat.ChunkSize;
            last = false;
            if (!TryDecrypt(chunk, size, last))
            {
                last = true;
                if (!TryDecrypt(chunk, size, last)) throw new AgeIntegrityException($"the file was altered: chunk {number} does not authenticate");
            }
        }
        _inStart += n;
        _chunks++;
        _finalChunkRead = last;
        SetPending(_plain.AsMemory(0, size));
    }

    private bool TryDecrypt(ReadOnlySpan<byte> chunk, int size, bool last)
    {
        Span<byte> nonce = stackalloc byte[12];
        AgeFormat.ChunkNonce(nonce, _chunks, last);
        try
        {
            _aead!.Decrypt(nonce, chunk[..size], chunk.Slice(size, AgeFormat.TagSize), _plain.AsSpan(0, size));
            return true;
        }
        catch (AuthenticationTagMismatchException)
        {
            return false;
        }
    }

    private static AgeTruncatedException Truncated(string detail) => new($"the file is truncated: {detail}");

    private static AgeFormatException Malformed(string detail) => new($"the file's age header is malformed: {detail}");

    protected override void Release()
    {
        _aead?.Dispose();
        CryptographicOperations.ZeroMemory(_plain);
        if (!_leaveOpen) _source.Dispose();
    }
}
