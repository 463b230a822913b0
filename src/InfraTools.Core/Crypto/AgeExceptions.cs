namespace InfraTools.Crypto;

/// <summary>
/// A file that cannot be decrypted, or a key that cannot be read. The message is one line for the operator;
/// it never contains secret key material (identities are never quoted, only their public keys).
/// </summary>
public abstract class AgeException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>
/// Not an age v1 file, or its header is malformed (the CCTV test kit's "header failure"): wrong version line,
/// bad stanza syntax, non-canonical base64, an X25519 stanza with a wrong share or body length, a low-order share.
/// </summary>
public sealed class AgeFormatException(string message) : AgeException(message);

/// <summary>The header is well formed, but none of the identities opens any of its stanzas ("no match").</summary>
public sealed class AgeNoMatchException(string message) : AgeException(message);

/// <summary>
/// The file does not authenticate: the header MAC does not match (the header was altered), a payload chunk
/// fails authentication (altered, or cut inside a chunk), or data follows the final chunk ("HMAC failure",
/// "payload failure"). Plaintext already read from an <see cref="AgeDecryptingStream"/> must be discarded.
/// </summary>
public class AgeIntegrityException(string message) : AgeException(message);

/// <summary>
/// The file ends early: inside the header, before the payload, or after a chunk that was not the final one.
/// A subtype of <see cref="AgeIntegrityException"/>: a cut file is as unusable as an altered one.
/// </summary>
public sealed class AgeTruncatedException(string message) : AgeIntegrityException(message);

/// <summary>A malformed recipient or identity, or a recipients/identities file that holds none; names the line.</summary>
public sealed class AgeKeyException(string message) : AgeException(message);
