using InfraTools.Files;

namespace InfraTools.Crypto;

/// <summary>
/// age v1 encryption (age-encryption.org/v1, X25519 recipients) of whole streams and files, compatible with
/// the standard age tool both ways: what this encrypts, `age -d -i key.txt` decrypts, and what `age -r` or
/// `age -R` encrypts, this decrypts. Streaming, 64 KiB at a time. See docs/encryption.md.
/// </summary>
public static class Age
{
    /// <summary>Encrypts <paramref name="plaintext"/> (to its end) into <paramref name="ciphertext"/> for <paramref name="recipients"/>.</summary>
    public static async Task EncryptAsync(Stream plaintext, Stream ciphertext, IReadOnlyList<AgeRecipient> recipients, CancellationToken cancellationToken = default)
    {
        await using var encrypting = new AgeEncryptingStream(plaintext, recipients, leaveOpen: true);
        await encrypting.CopyToAsync(ciphertext, AgeFormat.EncryptedChunkSize, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Decrypts <paramref name="ciphertext"/> into <paramref name="plaintext"/>. The header (identity, MAC) is
    /// checked before anything is written; but if it throws later (<see cref="AgeIntegrityException"/>: a chunk
    /// altered, the file truncated), <paramref name="plaintext"/> holds a partial result that must be discarded.
    /// To write a file, use <see cref="DecryptToFileAsync"/>, which never leaves partial output.
    /// Returns the recipient whose identity opened the file.
    /// </summary>
    public static async Task<AgeRecipient> DecryptAsync(Stream ciphertext, Stream plaintext, IReadOnlyList<AgeIdentity> identities, CancellationToken cancellationToken = default)
    {
        await using var decrypting = await AgeDecryptingStream.OpenAsync(ciphertext, identities, leaveOpen: true, cancellationToken).ConfigureAwait(false);
        await decrypting.CopyToAsync(plaintext, AgeFormat.ChunkSize, cancellationToken).ConfigureAwait(false);
        return decrypting.Recipient;
    }

    /// <summary>
    /// Decrypts <paramref name="ciphertext"/> into the file <paramref name="path"/>, all or nothing: the header is
    /// checked before any file is created, the plaintext goes to a hidden temporary file in the target's own
    /// directory (<see cref="AtomicFile"/>: mode 0600 while written, fsynced), and only a completely
    /// authenticated file is renamed over <paramref name="path"/> with <paramref name="mode"/>. On any failure
    /// the temporary file is removed and <paramref name="path"/> is untouched (absent if it was absent).
    /// Returns the recipient whose identity opened the file.
    /// </summary>
    public static async Task<AgeRecipient> DecryptToFileAsync(Stream ciphertext, string path, IReadOnlyList<AgeIdentity> identities, UnixFileMode mode,
        CancellationToken cancellationToken = default)
    {
        await using var decrypting = await AgeDecryptingStream.OpenAsync(ciphertext, identities, leaveOpen: true, cancellationToken).ConfigureAwait(false);
        await AtomicFile.WriteAsync(path, async file => await decrypting.CopyToAsync(file, AgeFormat.ChunkSize, cancellationToken).ConfigureAwait(false),
            mode, cancellationToken: cancellationToken).ConfigureAwait(false);
        return decrypting.Recipient;
    }
}
