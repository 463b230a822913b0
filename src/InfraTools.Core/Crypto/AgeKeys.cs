using System.Security.Cryptography;
using System.Text;
using InfraTools.Secrets;
using BcX25519 = Org.BouncyCastle.Math.EC.Rfc7748.X25519;

namespace InfraTools.Crypto;

/// <summary>
/// An age X25519 recipient: the public key ("age1...", Bech32) that files are encrypted to. A server that
/// only pushes backups needs nothing else. Printing one is safe.
/// </summary>
public sealed class AgeRecipient : IEquatable<AgeRecipient>
{
    private readonly byte[] _publicKey;

    private AgeRecipient(byte[] publicKey) => _publicKey = publicKey;

    internal ReadOnlySpan<byte> PublicKey => _publicKey;

    internal static AgeRecipient FromPublicKey(byte[] publicKey) => new(publicKey);

    /// <summary>
    /// Parses "age1..." (as age-keygen prints it; surrounding white space is ignored).
    /// Throws <see cref="AgeKeyException"/> saying what is wrong.
    /// </summary>
    public static AgeRecipient Parse(string text) =>
        TryParse(text, out var recipient, out var error) ? recipient : throw new AgeKeyException($"not a valid age recipient: {error}");

    private static bool TryParse(string text, out AgeRecipient recipient, out string error)
    {
        recipient = null!;
        text = text.Trim();
        error = Describe(text);
        if (error.Length > 0) return false;
        var decoded = Bech32.Decode(text, out var bech32Error);
        if (decoded is not { } d) { error = $"'{Shorten(text)}': {bech32Error}"; return false; }
        if (d.Hrp != "age") { error = $"'{Shorten(text)}' is not an X25519 recipient (it should start with age1, in lower case)"; return false; }
        if (d.Data.Length != BcX25519.PointSize) { error = $"'{Shorten(text)}' holds {d.Data.Length} bytes, not a 32-byte X25519 public key"; return false; }
        // A low-order point makes every shared secret zero, so a file "encrypted" to it would be readable by
        // anyone (age refuses such keys too): any clamped scalar times such a point is zero.
        var probe = RandomNumberGenerator.GetBytes(32);
        var product = new byte[32];
        BcX25519.ScalarMult(probe, 0, d.Data, 0, product, 0);
        var weak = AgeFormat.IsZero(product);
        CryptographicOperations.ZeroMemory(probe);
        if (weak) { error = $"'{Shorten(text)}' is a low-order X25519 point, not a usable public key"; return false; }
        recipient = new AgeRecipient(d.Data);
        return true;
    }

    /// <summary>Why a string is no X25519 recipient before decoding it, or "" if it may be one. Never quotes secrets.</summary>
    private static string Describe(string text)
    {
        if (text.Length == 0) return "the value is empty";
        if (text.StartsWith("AGE-", StringComparison.OrdinalIgnoreCase))
            return "this is an identity (a secret key), not a recipient: give its public key (age-keygen -y KEYFILE prints it), and keep the secret key off this server";
        if (text.StartsWith("age1pq1", StringComparison.Ordinal)) return "post-quantum (age1pq1...) recipients are not supported; use an X25519 recipient (age-keygen without -pq)";
        if (text.StartsWith("age1tag", StringComparison.Ordinal)) return "tagged hardware-key (age1tag...) recipients are not supported";
        if (text.StartsWith("ssh-", StringComparison.Ordinal) || text.StartsWith("ecdsa-", StringComparison.Ordinal)) return "SSH public keys are not supported; use an age X25519 recipient (age1...)";
        if (text.StartsWith("AGE1", StringComparison.Ordinal)) return "an age recipient is written in lower case (age1...)";
        if (!text.StartsWith("age1", StringComparison.Ordinal)) return "an age X25519 recipient starts with age1";
        // The bech32 data alphabet has no '1', so "age1" is the only one in an X25519 recipient; more mean a
        // plugin recipient (age1NAME1...), as age itself tells them apart.
        if (text.Count(c => c == '1') > 1) return $"'{Shorten(text)}' looks like an age plugin recipient, which is not supported";
        return "";
    }

    private static string Shorten(string text) => text.Length <= 70 ? text : text[..66] + "...";

    /// <summary>
    /// Parses a recipients list as `age -R` reads it: one recipient a line, blank lines and lines starting with
    /// '#' ignored. <paramref name="source"/> (a file name, or e.g. "BACKUP_ENCRYPT_TO") names where it came from
    /// in errors, which give the line number. At least one recipient is required.
    /// </summary>
    public static IReadOnlyList<AgeRecipient> ParseList(string text, string source)
    {
        var recipients = new List<AgeRecipient>();
        var number = 0;
        foreach (var line in KeyLines.Split(text))
        {
            number++;
            if (KeyLines.IsIgnored(line)) continue;
            if (!TryParse(line, out var recipient, out var error)) throw new AgeKeyException($"{source} line {number}: not a valid age recipient: {error}");
            recipients.Add(recipient);
        }
        if (recipients.Count == 0) throw new AgeKeyException($"{source} holds no recipient (one age1... public key a line; '#' starts a comment)");
        return recipients;
    }

    /// <summary>Reads a recipients file (see <see cref="ParseList"/>).</summary>
    public static IReadOnlyList<AgeRecipient> ParseFile(string path) => ParseList(KeyLines.ReadFile(path, "recipients"), path);

    /// <summary>The "age1..." form.</summary>
    public override string ToString() => Bech32.Encode("age", _publicKey);

    public bool Equals(AgeRecipient? other) => other is not null && _publicKey.AsSpan().SequenceEqual(other._publicKey);

    public override bool Equals(object? obj) => obj is AgeRecipient other && Equals(other);

    public override int GetHashCode() => BitConverter.ToInt32(_publicKey, 0);
}

/// <summary>
/// An age X25519 identity: the secret key ("AGE-SECRET-KEY-1...") that opens files encrypted to its
/// <see cref="Recipient"/>. Needed only to restore. It never shows its secret when printed or logged
/// (ToString() gives the public key); the parsed text is registered with <see cref="SecretRedactor"/>.
/// Dispose zeroes the key in memory.
/// </summary>
public sealed class AgeIdentity : IDisposable
{
    private const string Prefix = "AGE-SECRET-KEY-";
    private readonly byte[] _secretKey;

    private AgeIdentity(byte[] secretKey)
    {
        _secretKey = secretKey;
        var publicKey = new byte[BcX25519.PointSize];
        BcX25519.ScalarMultBase(_secretKey, 0, publicKey, 0);
        Recipient = AgeRecipient.FromPublicKey(publicKey);
    }

    /// <summary>The public key that files for this identity are encrypted to.</summary>
    public AgeRecipient Recipient { get; }

    /// <summary>The scalar itself (not a copy, so none is left unzeroed); callers never change it.</summary>
    internal byte[] SecretKey => _secretKey;

    /// <summary>A new random identity (as age-keygen makes one).</summary>
    public static AgeIdentity Generate() => new(RandomNumberGenerator.GetBytes(BcX25519.ScalarSize));

    /// <summary>
    /// Parses "AGE-SECRET-KEY-1..." (surrounding white space ignored). Throws <see cref="AgeKeyException"/>,
    /// whose message never contains the text.
    /// </summary>
    public static AgeIdentity Parse(string text) =>
        TryParse(text, out var identity, out var error) ? identity : throw new AgeKeyException($"not a valid age identity: {error}");

    private static bool TryParse(string text, out AgeIdentity identity, out string error)
    {
        identity = null!;
        text = text.Trim();
        SecretRedactor.Register(text);
        error = "";
        if (text.Length == 0) error = "the value is empty";
        else if (text.StartsWith("AGE-SECRET-KEY-PQ-1", StringComparison.Ordinal)) error = "post-quantum (AGE-SECRET-KEY-PQ-1...) identities are not supported; use an X25519 identity";
        else if (text.StartsWith("AGE-PLUGIN-", StringComparison.Ordinal)) error = "age plugin identities are not supported";
        else if (text.StartsWith("age1", StringComparison.Ordinal)) error = "this is a recipient (a public key), not an identity: decrypting needs the secret key (AGE-SECRET-KEY-1...) that age-keygen wrote";
        else if (text.StartsWith("age-encryption.org/", StringComparison.Ordinal)) error = "this is an age-encrypted file (a passphrase-protected identity file?): decrypt it first with age -d";
        else if (text.StartsWith("-----BEGIN", StringComparison.Ordinal) || text.StartsWith("ssh-", StringComparison.Ordinal)) error = "SSH and PEM keys are not supported; use an age X25519 identity (AGE-SECRET-KEY-1...)";
        else if (!text.StartsWith(Prefix + "1", StringComparison.Ordinal)) error = "an age X25519 identity starts with AGE-SECRET-KEY-1 (in upper case)";
        if (error.Length > 0) return false;
        var decoded = Bech32.Decode(text, out var bech32Error);
        if (decoded is not { } d) { error = bech32Error!; return false; }
        if (d.Hrp != Prefix) { error = "an age X25519 identity starts with AGE-SECRET-KEY-1 (in upper case)"; return false; }
        if (d.Data.Length != BcX25519.ScalarSize)
        {
            CryptographicOperations.ZeroMemory(d.Data);
            error = $"it holds {d.Data.Length} bytes, not a 32-byte X25519 secret key";
            return false;
        }
        identity = new AgeIdentity(d.Data);
        return true;
    }

    /// <summary>
    /// Parses an identities list as `age -i` reads an age-keygen file: one identity a line, blank lines and
    /// lines starting with '#' ignored. Errors name <paramref name="source"/> and the line number, never the
    /// line's content. At least one identity is required.
    /// </summary>
    public static IReadOnlyList<AgeIdentity> ParseList(string text, string source)
    {
        var identities = new List<AgeIdentity>();
        var number = 0;
        foreach (var line in KeyLines.Split(text))
        {
            number++;
            if (KeyLines.IsIgnored(line)) continue;
            if (!TryParse(line, out var identity, out var error))
            {
                foreach (var parsed in identities) parsed.Dispose();
                throw new AgeKeyException($"{source} line {number}: not a valid age identity: {error}");
            }
            identities.Add(identity);
        }
        if (identities.Count == 0) throw new AgeKeyException($"{source} holds no identity (an AGE-SECRET-KEY-1... line, as age-keygen writes it)");
        return identities;
    }

    /// <summary>Reads an identities file, e.g. the key.txt that age-keygen -o wrote (see <see cref="ParseList"/>).</summary>
    public static IReadOnlyList<AgeIdentity> ParseFile(string path) => ParseList(KeyLines.ReadFile(path, "identities"), path);

    /// <summary>
    /// The secret key in its "AGE-SECRET-KEY-1..." form, for writing a key file. The only way to get the
    /// secret out; the returned text is registered with <see cref="SecretRedactor"/>.
    /// </summary>
    public string RevealSecretKey()
    {
        var text = Bech32.Encode(Prefix, _secretKey);
        SecretRedactor.Register(text);
        return text;
    }

    /// <summary>The public key only: "age identity for age1...".</summary>
    public override string ToString() => $"age identity for {Recipient}";

    public void Dispose() => CryptographicOperations.ZeroMemory(_secretKey);
}

/// <summary>The line rules that age's recipients and identities files share.</summary>
internal static class KeyLines
{
    /// <summary>Key files are small; a larger file is not one (age itself reads at most 16 MiB).</summary>
    private const long MaxFileBytes = 1 << 20;

    public static string[] Split(string text) => text.Split('\n').Select(l => l.EndsWith('\r') ? l[..^1] : l).ToArray();

    public static bool IsIgnored(string line) => line.Trim().Length == 0 || line.StartsWith('#');

    public static string ReadFile(string path, string kind)
    {
        try
        {
            using var file = File.OpenRead(path);
            if (file.Length > MaxFileBytes) throw new AgeKeyException($"{path} is {file.Length} bytes: too large for an age {kind} file");
            var bytes = new byte[file.Length];
            file.ReadExactly(bytes);
            try
            {
                return new UTF8Encoding(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true).GetString(bytes).TrimStart('\uFEFF');
            }
            catch (DecoderFallbackException)
            {
                throw new AgeKeyException($"{path} is not a text file (not valid UTF-8), so not an age {kind} file");
            }
            finally
            {
                CryptographicOperations.ZeroMemory(bytes);
            }
        }
        catch (FileNotFoundException)
        {
            throw new AgeKeyException($"the age {kind} file {path} does not exist");
        }
        catch (DirectoryNotFoundException)
        {
            throw new AgeKeyException($"the age {kind} file {path} does not exist");
        }
        catch (UnauthorizedAccessException)
        {
            throw new AgeKeyException($"the age {kind} file {path} cannot be read: permission denied");
        }
    }
}
