using System.Security.Cryptography;
using System.Text;
using InfraTools.Storage;
using InfraTools.Sync;

namespace InfraTools.Crypto;

/// <summary>
/// age encryption as a bucket side's transform (docs/encryption.md): the object of PATH is PATH.age, an age v1
/// file to <paramref name="recipients"/>, readable with `age -d -i KEY`. A push knows only the recipients, a
/// restore only the identities. Decoding checks the header before the content is handed on, so a wrong
/// identity creates no file; a damaged object fails as it is read, and its partial plaintext is discarded by
/// the writer (an atomic file in the target's directory).
/// </summary>
public sealed class AgeObjectTransform(IReadOnlyList<AgeRecipient> recipients, IReadOnlyList<AgeIdentity> identities, string identityHint) : IObjectTransform
{
    /// <summary>The key suffix of encrypted objects.</summary>
    public const string Suffix = ".age";

    public string KeySuffix => Suffix;

    public bool CanEncode => recipients.Count > 0;

    /// <summary>A fingerprint of the recipient set (public keys only, order ignored).</summary>
    public string Variant { get; } = recipients.Count == 0 ? ""
        : "age:" + Convert.ToHexStringLower(SHA256.HashData(Encoding.ASCII.GetBytes(string.Join("\n", recipients.Select(r => r.ToString()).Order(StringComparer.Ordinal)))))[..16];

    public long StoredSize(long contentSize) => AgeEncryptingStream.CiphertextLength(contentSize, recipients.Count);

    /// <summary>The plaintext size of an age file of <paramref name="storedSize"/> bytes with this push's header (as many X25519 stanzas as recipients); -1 if there is none.</summary>
    public long ContentSize(long storedSize)
    {
        if (recipients.Count == 0) return -1;
        var payload = storedSize - AgeFormat.HeaderSize(recipients.Count) - AgeFormat.NonceSize;
        if (payload < AgeFormat.TagSize) return -1;
        var chunks = (payload + AgeFormat.EncryptedChunkSize - 1) / AgeFormat.EncryptedChunkSize;
        var content = payload - chunks * AgeFormat.TagSize;
        return content >= 0 && StoredSize(content) == storedSize ? content : -1;
    }

    public Stream Encode(Stream content, long contentSize) => new AgeEncryptingStream(content, recipients, contentSize, leaveOpen: true);

    public async Task DecodeAsync(Stream stored, string name, Func<Stream, CancellationToken, Task> consume, CancellationToken cancellationToken)
    {
        if (identities.Count == 0) throw new AgeKeyException($"{name} is encrypted (age) and no identity was given: {identityHint}");
        AgeDecryptingStream decrypting;
        try
        {
            decrypting = await AgeDecryptingStream.OpenAsync(stored, identities, leaveOpen: true, cancellationToken).ConfigureAwait(false);
        }
        catch (AgeNoMatchException ex)
        {
            throw new AgeNoMatchException($"cannot decrypt {name}: {ex.Message}");
        }
        catch (AgeException ex)
        {
            throw Damaged(name, ex);
        }
        await using (decrypting.ConfigureAwait(false))
        {
            try
            {
                await consume(decrypting, cancellationToken).ConfigureAwait(false);
            }
            catch (AgeException ex)
            {
                throw Damaged(name, ex);
            }
        }
    }

    /// <summary>
    /// Reads the header of one encrypted object (a ranged get of its first 64 KiB) and throws what a restore
    /// would meet for every object: no identity given (<see cref="AgeKeyException"/>) or none of them opens it
    /// (<see cref="AgeNoMatchException"/>). Any other problem is that object's own, left to its restore.
    /// </summary>
    public async Task CheckIdentityAsync(IObjectStore store, string bucket, StoredObject item, CancellationToken cancellationToken)
    {
        var name = $"s3://{bucket}/{item.Key}";
        if (identities.Count == 0) throw new AgeKeyException($"{name} is encrypted (age) and no identity was given: {identityHint}");
        if (item.Size <= 0) return;
        try
        {
            await store.GetAsync(bucket, item.Key, async (stream, _, ct) =>
            {
                await using var header = await AgeDecryptingStream.OpenAsync(stream, identities, leaveOpen: true, ct).ConfigureAwait(false);
            }, new GetOptions(Range: (0, Math.Min(item.Size, HeaderProbeBytes) - 1)), cancellationToken).ConfigureAwait(false);
        }
        catch (AgeNoMatchException ex)
        {
            throw new AgeNoMatchException($"cannot decrypt {name}: {ex.Message}");
        }
        catch (AgeException)
        {
            // Damaged or not an age file: its own restore reports it.
        }
    }

    /// <summary>How much of an object the identity check reads: an age header with hundreds of recipients fits.</summary>
    private const long HeaderProbeBytes = 64 * 1024;

    private static StoreException Damaged(string name, AgeException ex) =>
        new(StoreErrorKind.IntegrityCheckFailed, $"{name} cannot be decrypted: {ex.Message}", ex);
}
