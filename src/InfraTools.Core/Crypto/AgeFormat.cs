using System.Buffers.Text;
using System.Security.Cryptography;
using System.Text;
using BcX25519 = Org.BouncyCastle.Math.EC.Rfc7748.X25519;

namespace InfraTools.Crypto;

/// <summary>
/// The pieces of the age v1 format (age-encryption.org/v1, C2SP age.md) that encryption and decryption
/// share: constants, unpadded canonical base64, the HKDF-SHA-256 derivations and the X25519 stanza.
/// </summary>
internal static class AgeFormat
{
    public const string VersionLine = "age-encryption.org/v1\n";
    public const int FileKeySize = 16;
    public const int NonceSize = 16;
    public const int TagSize = 16;
    public const int ChunkSize = 64 * 1024;
    public const int EncryptedChunkSize = ChunkSize + TagSize;
    public const int ColumnsPerLine = 64;
    public const int BytesPerLine = ColumnsPerLine / 4 * 3;
    public const string X25519Type = "X25519";
    private const string X25519Label = "age-encryption.org/v1/X25519";

    /// <summary>The size of one X25519 stanza as this encoder writes it: "-> X25519 " share LF body LF.</summary>
    public const int X25519StanzaSize = 3 + 6 + 1 + 43 + 1 + 43 + 1;

    /// <summary>The header's size for <paramref name="recipients"/> X25519 stanzas: version line, stanzas, "--- " MAC LF.</summary>
    public static int HeaderSize(int recipients) => VersionLine.Length + recipients * X25519StanzaSize + 4 + 43 + 1;

    /// <summary>Unpadded standard base64 (the spec's "base64").</summary>
    public static string Encode(ReadOnlySpan<byte> data) => Convert.ToBase64String(data).TrimEnd('=');

    /// <summary>
    /// Decodes unpadded base64, rejecting everything but its canonical form: padding, white space, CR or LF,
    /// non-zero trailing bits. Null if invalid.
    /// </summary>
    public static byte[]? DecodeCanonical(ReadOnlySpan<byte> text)
    {
        foreach (var c in text)
            if (!(c is >= (byte)'A' and <= (byte)'Z' or >= (byte)'a' and <= (byte)'z' or >= (byte)'0' and <= (byte)'9' or (byte)'+' or (byte)'/')) return null;
        if (text.Length % 4 == 1) return null;
        var padded = new byte[(text.Length + 3) / 4 * 4];
        text.CopyTo(padded);
        padded.AsSpan(text.Length).Fill((byte)'=');
        var result = new byte[padded.Length / 4 * 3];
        if (Base64.DecodeFromUtf8(padded, result, out _, out var written) != System.Buffers.OperationStatus.Done) return null;
        result = result[..written];
        return Encoding.ASCII.GetBytes(Encode(result)).AsSpan().SequenceEqual(text) ? result : null;
    }

    public static byte[] Hkdf(ReadOnlySpan<byte> ikm, ReadOnlySpan<byte> salt, string info)
    {
        var key = new byte[32];
        HKDF.DeriveKey(HashAlgorithmName.SHA256, ikm, key, salt, Encoding.ASCII.GetBytes(info));
        return key;
    }

    /// <summary>HMAC-SHA-256 over the header up to and including "---", keyed from the file key.</summary>
    public static byte[] HeaderMac(ReadOnlySpan<byte> fileKey, ReadOnlySpan<byte> headerWithoutMac)
    {
        var key = Hkdf(fileKey, [], "header");
        try { return HMACSHA256.HashData(key, headerWithoutMac); }
        finally { CryptographicOperations.ZeroMemory(key); }
    }

    public static byte[] PayloadKey(ReadOnlySpan<byte> fileKey, ReadOnlySpan<byte> nonce) => Hkdf(fileKey, nonce, "payload");

    /// <summary>The ChaCha20-Poly1305 nonce of a payload chunk: an 11-byte big-endian counter and the last-chunk flag.</summary>
    public static void ChunkNonce(Span<byte> nonce, long counter, bool last)
    {
        nonce.Clear();
        for (var i = 10; i >= 0 && counter != 0; i--, counter >>= 8) nonce[i] = (byte)counter;
        nonce[11] = last ? (byte)1 : (byte)0;
    }

    public static bool IsZero(ReadOnlySpan<byte> bytes)
    {
        var acc = 0;
        foreach (var b in bytes) acc |= b;
        return acc == 0;
    }

    /// <summary>Wraps the file key for one recipient: the stanza's share argument and its 32-byte body.</summary>
    public static (string Share, byte[] Body) WrapX25519(AgeRecipient recipient, ReadOnlySpan<byte> fileKey)
    {
        var ephemeral = RandomNumberGenerator.GetBytes(BcX25519.ScalarSize);
        var share = new byte[BcX25519.PointSize];
        var shared = new byte[BcX25519.PointSize];
        byte[]? wrapKey = null;
        try
        {
            BcX25519.ScalarMultBase(ephemeral, 0, share, 0);
            BcX25519.ScalarMult(ephemeral, 0, recipient.PublicKey.ToArray(), 0, shared, 0);
            if (IsZero(shared)) throw new CryptographicException("the recipient is a low-order X25519 point");
            wrapKey = Hkdf(shared, [.. share, .. recipient.PublicKey], X25519Label);
            var body = new byte[FileKeySize + TagSize];
            using var aead = new ChaCha20Poly1305(wrapKey);
            aead.Encrypt(new byte[12], fileKey, body.AsSpan(0, FileKeySize), body.AsSpan(FileKeySize));
            return (Encode(share), body);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(ephemeral);
            CryptographicOperations.ZeroMemory(shared);
            if (wrapKey is not null) CryptographicOperations.ZeroMemory(wrapKey);
        }
    }

    /// <summary>
    /// Unwraps an X25519 stanza with one identity: the file key, or null if the stanza is not for it.
    /// A malformed stanza (argument count, share, body length, low-order share) is an <see cref="AgeFormatException"/>.
    /// </summary>
    public static byte[]? UnwrapX25519(AgeStanza stanza, AgeIdentity identity)
    {
        var share = CheckX25519(stanza);
        var shared = new byte[BcX25519.PointSize];
        byte[]? wrapKey = null;
        try
        {
            BcX25519.ScalarMult(identity.SecretKey, 0, share, 0, shared, 0);
            if (IsZero(shared)) throw new AgeFormatException("the file's header is malformed: an X25519 stanza has a low-order share (its shared secret is zero)");
            wrapKey = Hkdf(shared, [.. share, .. identity.Recipient.PublicKey], X25519Label);
            var fileKey = new byte[FileKeySize];
            using var aead = new ChaCha20Poly1305(wrapKey);
            try
            {
                aead.Decrypt(new byte[12], stanza.Body.AsSpan(0, FileKeySize), stanza.Body.AsSpan(FileKeySize), fileKey);
                return fileKey;
            }
            catch (AuthenticationTagMismatchException)
            {
                return null;
            }
        }
        finally
        {
            CryptographicOperations.ZeroMemory(shared);
            if (wrapKey is not null) CryptographicOperations.ZeroMemory(wrapKey);
        }
    }

    /// <summary>The share of a well-formed X25519 stanza; <see cref="AgeFormatException"/> otherwise.</summary>
    public static byte[] CheckX25519(AgeStanza stanza)
    {
        if (stanza.Arguments.Count != 2) throw new AgeFormatException($"the file's header is malformed: an X25519 stanza has {stanza.Arguments.Count - 1} arguments instead of 1");
        var share = DecodeCanonical(Encoding.ASCII.GetBytes(stanza.Arguments[1]));
        if (share is not { Length: BcX25519.PointSize }) throw new AgeFormatException("the file's header is malformed: an X25519 stanza's share is not 32 bytes in canonical base64");
        // Checked before any decryption, as the spec requires (no partitioning oracle on the file key size).
        if (stanza.Body.Length != FileKeySize + TagSize) throw new AgeFormatException($"the file's header is malformed: an X25519 stanza's body is {stanza.Body.Length} bytes instead of 32");
        return share;
    }
}

/// <summary>One recipient stanza of a header: its arguments (the first is the type) and its decoded body.</summary>
internal sealed record AgeStanza(IReadOnlyList<string> Arguments, byte[] Body)
{
    public string Type => Arguments[0];
}
