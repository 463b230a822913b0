namespace InfraTools.Sync;

/// <summary>
/// How a bucket side's objects differ from the files they hold: an encoding of the content (age encryption),
/// marked by a key suffix (an object PREFIX/PATH.age holds the file PATH). The bucket side applies it in its
/// listing (paths and content sizes), its reads and its writes, so the planner, the change detector, the runner
/// and the manifest work on files as ever: one engine, whatever the bytes in the bucket look like. An encoding
/// that differs on every run (encryption) cannot be compared by checksum, so only the manifest keeps an
/// unchanged file from being uploaded again.
/// </summary>
public interface IObjectTransform
{
    /// <summary>Marks the objects this transform wrote: the key of PATH is PREFIX + PATH + suffix.</summary>
    string KeySuffix { get; }

    /// <summary>True when this transform writes (a push that knows its recipients); a read-only one (a restore) only decodes.</summary>
    bool CanEncode { get; }

    /// <summary>
    /// Another value when the same file would be encoded for other readers (other recipients): a new manifest
    /// then, so that every file is written again for them.
    /// </summary>
    string Variant { get; }

    /// <summary>The content size of an object of <paramref name="storedSize"/> bytes as this transform writes it, or -1 if none.</summary>
    long ContentSize(long storedSize);

    /// <summary>The size of the encoding of <paramref name="contentSize"/> bytes of content.</summary>
    long StoredSize(long contentSize);

    /// <summary>The encoding of exactly <paramref name="contentSize"/> bytes of <paramref name="content"/>, <see cref="StoredSize"/> bytes long.</summary>
    Stream Encode(Stream content, long contentSize);

    /// <summary>
    /// Decodes <paramref name="stored"/> (the object <paramref name="name"/>) and hands the content to
    /// <paramref name="consume"/>, which must read it to its end. A damaged object is a
    /// <see cref="Storage.StoreException"/> (integrity) for that object only; a key that opens nothing stops the run.
    /// </summary>
    Task DecodeAsync(Stream stored, string name, Func<Stream, CancellationToken, Task> consume, CancellationToken cancellationToken);
}
