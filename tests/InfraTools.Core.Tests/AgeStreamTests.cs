using System.Security.Cryptography;
using System.Text;
using InfraTools.Crypto;

namespace InfraTools.Tests;

/// <summary>
/// Encryption and decryption in process: round trips at the chunk boundaries, sizes announced up front,
/// streaming without holding the file, and every failure (wrong identity, truncation, any altered byte)
/// reported as its own exception before anything is written, or with nothing left at the target.
/// </summary>
public class AgeStreamTests
{
    private const int Chunk = 64 * 1024;

    public static TheoryData<int> Sizes => new([0, 1, Chunk - 1, Chunk, Chunk + 1, 2 * Chunk, 3 * Chunk + 17, 5 * 1024 * 1024 + 3]);

    private static byte[] Random(int size) => RandomNumberGenerator.GetBytes(size);

    private static byte[] Encrypt(byte[] plaintext, params AgeRecipient[] recipients)
    {
        var output = new MemoryStream();
        Age.EncryptAsync(new MemoryStream(plaintext), output, recipients).GetAwaiter().GetResult();
        return output.ToArray();
    }

    private static byte[] Decrypt(byte[] ciphertext, params AgeIdentity[] identities)
    {
        var output = new MemoryStream();
        Age.DecryptAsync(new MemoryStream(ciphertext), output, identities).GetAwaiter().GetResult();
        return output.ToArray();
    }

    [Theory]
    [MemberData(nameof(Sizes))]
    public void Round_trips_at_chunk_boundaries_with_the_announced_length(int size)
    {
        using var identity = AgeIdentity.Generate();
        var plaintext = Random(size);
        using var encrypting = new AgeEncryptingStream(new MemoryStream(plaintext), [identity.Recipient]);
        var ciphertext = new MemoryStream();
        encrypting.CopyTo(ciphertext);
        Assert.Equal(AgeEncryptingStream.CiphertextLength(size, 1), ciphertext.Length);
        Assert.Equal(encrypting.Length, ciphertext.Length);
        var chunks = size == 0 ? 1 : (size + Chunk - 1) / Chunk;
        Assert.Equal(encrypting.HeaderLength + size + 16L * chunks, ciphertext.Length);
        Assert.Equal(plaintext, Decrypt(ciphertext.ToArray(), identity));
    }

    [Fact]
    public void The_header_is_the_age_v1_text_header()
    {
        using var identity = AgeIdentity.Generate();
        var ciphertext = Encrypt("hello"u8.ToArray(), identity.Recipient);
        var lines = Encoding.ASCII.GetString(ciphertext, 0, AgeEncryptingStream.CiphertextLength(0, 1) is var n ? (int)n - 32 : 0).Split('\n');
        Assert.Equal("age-encryption.org/v1", lines[0]);
        Assert.Matches("^-> X25519 [A-Za-z0-9+/]{43}$", lines[1]);
        Assert.Matches("^[A-Za-z0-9+/]{43}$", lines[2]);
        Assert.Matches("^--- [A-Za-z0-9+/]{43}$", lines[3]);
    }

    [Fact]
    public void Every_recipient_can_decrypt_and_others_cannot()
    {
        using var a = AgeIdentity.Generate();
        using var b = AgeIdentity.Generate();
        using var c = AgeIdentity.Generate();
        var plaintext = Random(Chunk + 5);
        var ciphertext = Encrypt(plaintext, a.Recipient, b.Recipient);
        Assert.Equal(AgeEncryptingStream.CiphertextLength(plaintext.Length, 2), ciphertext.Length);
        Assert.Equal(plaintext, Decrypt(ciphertext, a));
        Assert.Equal(plaintext, Decrypt(ciphertext, b));
        Assert.Equal(plaintext, Decrypt(ciphertext, c, b));
        var error = Assert.Throws<AgeNoMatchException>(() => Decrypt(ciphertext, c));
        Assert.Equal($"the file is not encrypted to this identity (public key {c.Recipient}): none of its 2 recipient stanzas (2 x X25519) opens with it", error.Message);
        Assert.DoesNotContain(c.RevealSecretKey(), error.Message);
    }

    [Fact]
    public void Each_encryption_is_different()
    {
        using var identity = AgeIdentity.Generate();
        var plaintext = Random(100);
        Assert.NotEqual(Encrypt(plaintext, identity.Recipient), Encrypt(plaintext, identity.Recipient));
    }

    [Fact]
    public void A_wrong_identity_fails_before_anything_is_written()
    {
        using var right = AgeIdentity.Generate();
        using var wrong = AgeIdentity.Generate();
        var ciphertext = Encrypt(Random(3 * Chunk), right.Recipient);
        var output = new MemoryStream();
        Assert.Throws<AgeNoMatchException>(() => Age.DecryptAsync(new MemoryStream(ciphertext), output, [wrong]).GetAwaiter().GetResult());
        Assert.Equal(0, output.Length);
    }

    /// <summary>Every cut of a three-chunk file is refused: inside the header, before the nonce, between and inside chunks.</summary>
    [Fact]
    public void Every_truncation_is_refused()
    {
        using var identity = AgeIdentity.Generate();
        var ciphertext = Encrypt(Random(2 * Chunk + 100), identity.Recipient);
        var header = (int)AgeEncryptingStream.CiphertextLength(0, 1) - 32;
        int[] cuts = [1, 10, 21, 22, 30, header - 1, header, header + 8, header + 16, header + 17, header + 16 + Chunk, header + 16 + Chunk + 16,
            header + 16 + 2 * (Chunk + 16), header + 16 + 2 * (Chunk + 16) + 50, ciphertext.Length - 1];
        Assert.NotEmpty(cuts);
        foreach (var cut in cuts)
        {
            var error = Assert.ThrowsAny<AgeException>(() => Decrypt(ciphertext[..cut], identity));
            Assert.True(error is AgeIntegrityException, $"cut at {cut}: {error.GetType().Name}: {error.Message}");
            Assert.Contains("truncated", error.Message);
        }
        // Cut exactly after a full chunk: that one is certain, not "truncated or altered".
        var atBoundary = Assert.Throws<AgeTruncatedException>(() => Decrypt(ciphertext[..(header + 16 + Chunk + 16)], identity));
        Assert.Equal("the file is truncated: it ends after its first 64 KiB chunk, without the final chunk", atBoundary.Message);
        Assert.Equal("the file is truncated: it ends right after its header, without any payload chunk",
            Assert.Throws<AgeTruncatedException>(() => Decrypt(ciphertext[..(header + 16)], identity)).Message);
    }

    /// <summary>Flipping any single bit, anywhere in the file, is detected (sampled every 97 bytes and at every structural edge).</summary>
    [Fact]
    public void Any_altered_byte_is_refused()
    {
        using var identity = AgeIdentity.Generate();
        var ciphertext = Encrypt(Random(2 * Chunk + 100), identity.Recipient);
        var header = (int)AgeEncryptingStream.CiphertextLength(0, 1) - 32;
        var positions = Enumerable.Range(0, ciphertext.Length).Where(i => i % 97 == 0 || i < header + 20 || Math.Abs(i - (header + 16 + Chunk + 16)) < 20 || i >= ciphertext.Length - 20).ToList();
        Assert.True(positions.Count > 1000);
        foreach (var position in positions)
        {
            var altered = (byte[])ciphertext.Clone();
            altered[position] ^= 0x04;
            var error = Assert.ThrowsAny<AgeException>(() => Decrypt(altered, identity));
            Assert.True(error is AgeFormatException or AgeIntegrityException or AgeNoMatchException, $"byte {position}: {error.GetType().Name}");
        }
    }

    [Fact]
    public void Altered_header_payload_and_trailing_data_have_their_own_messages()
    {
        using var identity = AgeIdentity.Generate();
        var ciphertext = Encrypt(Random(2 * Chunk + 100), identity.Recipient);
        var header = (int)AgeEncryptingStream.CiphertextLength(0, 1) - 32;

        // The MAC line's last base64 character changes the MAC: "altered", not a parse error.
        var mac = (byte[])ciphertext.Clone();
        mac[header - 2] = (byte)(mac[header - 2] == (byte)'A' ? 'E' : 'A');
        var macError = Assert.Throws<AgeIntegrityException>(() => Decrypt(mac, identity));
        Assert.StartsWith("the file was altered: its header MAC does not match", macError.Message);

        var payload = (byte[])ciphertext.Clone();
        payload[header + 16 + Chunk + 16 + 5] ^= 1;
        Assert.Equal("the file was altered: chunk 2 does not authenticate", Assert.Throws<AgeIntegrityException>(() => Decrypt(payload, identity)).Message);

        var trailing = ciphertext.Concat("x"u8.ToArray()).ToArray();
        Assert.Contains("truncated or was altered", Assert.Throws<AgeIntegrityException>(() => Decrypt(trailing, identity)).Message);

        var exact = Encrypt(Random(Chunk), identity.Recipient);
        Assert.Equal("the file was altered: data follows its final chunk",
            Assert.Throws<AgeIntegrityException>(() => Decrypt([.. exact, .. Random(Chunk + 16)], identity)).Message);
    }

    [Theory]
    [InlineData("", typeof(AgeFormatException), "the file is empty")]
    [InlineData("{\"acme\": {}}", typeof(AgeFormatException), "not age-encrypted")]
    [InlineData("age-encryption.org/v2\n", typeof(AgeFormatException), "other than v1")]
    [InlineData("-----BEGIN AGE ENCRYPTED FILE-----\n", typeof(AgeFormatException), "ASCII-armored")]
    [InlineData("age-encryption.org/v1\n-> X25519", typeof(AgeTruncatedException), "inside the age header")]
    [InlineData("age-encrypt", typeof(AgeTruncatedException), "inside the age header")]
    [InlineData("age-encryption.org/v1\n--- AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n", typeof(AgeFormatException), "no recipient stanza")]
    [InlineData("age-encryption.org/v1\n-> scrypt c2FsdHNhbHRzYWx0c2FsdA 18\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n--- AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n", typeof(AgeNoMatchException), "passphrase")]
    public void Files_that_are_not_age_v1_are_named_for_what_they_are(string content, Type type, string message)
    {
        using var identity = AgeIdentity.Generate();
        var error = Assert.ThrowsAny<AgeException>(() => Decrypt(Encoding.ASCII.GetBytes(content), identity));
        Assert.IsType(type, error);
        Assert.Contains(message, error.Message);
    }

    [Fact]
    public void A_source_that_delivers_another_length_than_announced_fails_the_read()
    {
        using var identity = AgeIdentity.Generate();
        using var shorter = new AgeEncryptingStream(new MemoryStream(Random(100)), [identity.Recipient], plaintextLength: 101);
        Assert.Equal(AgeEncryptingStream.CiphertextLength(101, 1), shorter.Length);
        Assert.Contains("ended after 100 bytes instead of 101", Assert.Throws<IOException>(() => shorter.CopyTo(Stream.Null)).Message);
        using var longer = new AgeEncryptingStream(new MemoryStream(Random(Chunk + 2)), [identity.Recipient], plaintextLength: Chunk + 1);
        Assert.Contains("longer than the 65537 bytes announced", Assert.Throws<IOException>(() => longer.CopyTo(Stream.Null)).Message);
        using var unknown = new AgeEncryptingStream(new NonSeekable(new MemoryStream(Random(10))), [identity.Recipient]);
        Assert.Throws<NotSupportedException>(() => unknown.Length);
    }

    /// <summary>
    /// 64 MiB through a pull chain of non-seekable streams (source, encryption, decryption) on one thread, with a
    /// few MiB allocated by that thread in all: nothing holds the file. (Per-thread counting, so tests running in
    /// parallel do not count.)
    /// </summary>
    [Fact]
    public void Streams_without_holding_the_file_in_memory()
    {
        using var identity = AgeIdentity.Generate();
        const long size = 64L * 1024 * 1024 + 12345;
        var sourceHash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var sinkHash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var before = GC.GetAllocatedBytesForCurrentThread();
        long length = 0;
        using (var encrypting = new AgeEncryptingStream(new Pattern(size, sourceHash), [identity.Recipient], size))
        using (var decrypting = AgeDecryptingStream.Open(encrypting, [identity]))
        {
            var buffer = new byte[100_000];
            int n;
            while ((n = decrypting.Read(buffer)) > 0)
            {
                sinkHash.AppendData(buffer, 0, n);
                length += n;
            }
        }
        var allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.Equal(size, length);
        Assert.Equal(sourceHash.GetHashAndReset(), sinkHash.GetHashAndReset());
        Assert.True(allocated < 8 * 1024 * 1024, $"allocated {allocated} bytes for a {size}-byte file");
    }

    [Fact]
    public async Task DecryptToFile_writes_the_whole_file_or_leaves_the_target_as_it_was()
    {
        using var dir = new TempDir("age-file");
        using var identity = AgeIdentity.Generate();
        using var wrong = AgeIdentity.Generate();
        var plaintext = Random(3 * Chunk + 9);
        var ciphertext = Encrypt(plaintext, identity.Recipient);
        var target = dir.Combine("acme.json");

        await Age.DecryptToFileAsync(new MemoryStream(ciphertext), target, [identity], Files.AtomicFile.OwnerOnly);
        Assert.Equal(plaintext, await File.ReadAllBytesAsync(target));
        Assert.Equal(Files.AtomicFile.OwnerOnly, File.GetUnixFileMode(target));

        var altered = (byte[])ciphertext.Clone();
        altered[^1] ^= 1; // the last chunk: fails only after three chunks were decrypted into the temporary file
        var failures = new (byte[] File, AgeIdentity Identity, Type Error)[]
        {
            (ciphertext, wrong, typeof(AgeNoMatchException)),
            (ciphertext[..^100], identity, typeof(AgeIntegrityException)),
            (ciphertext[..^25], identity, typeof(AgeTruncatedException)), // right after the third full chunk
            (altered, identity, typeof(AgeIntegrityException)),
        };
        Assert.NotEmpty(failures);
        foreach (var (file, id, type) in failures)
        {
            var fresh = dir.Combine($"fresh-{type.Name}-{file.Length}");
            Assert.IsType(type, await Assert.ThrowsAnyAsync<AgeException>(() => Age.DecryptToFileAsync(new MemoryStream(file), fresh, [id], Files.AtomicFile.OwnerOnly)));
            Assert.False(File.Exists(fresh));
            Assert.IsType(type, await Assert.ThrowsAnyAsync<AgeException>(() => Age.DecryptToFileAsync(new MemoryStream(file), target, [id], Files.AtomicFile.OwnerOnly)));
            Assert.Equal(plaintext, await File.ReadAllBytesAsync(target));
        }
        // No temporary file is left behind either.
        Assert.Equal(["acme.json"], Directory.GetFiles(dir.Path).Select(Path.GetFileName));
    }

    [Fact]
    public void Synchronous_and_small_reads_give_the_same_plaintext()
    {
        using var identity = AgeIdentity.Generate();
        var plaintext = Random(2 * Chunk + 3);
        var ciphertext = Encrypt(plaintext, identity.Recipient);
        using var stream = AgeDecryptingStream.Open(new NonSeekable(new MemoryStream(ciphertext)), [identity]);
        Assert.Equal(identity.Recipient, stream.Recipient);
        var output = new MemoryStream();
        var buffer = new byte[333];
        int n;
        while ((n = stream.Read(buffer, 0, buffer.Length)) > 0) output.Write(buffer, 0, n);
        Assert.Equal(plaintext, output.ToArray());
        Assert.Equal(0, stream.Read(buffer));
    }

    [Fact]
    public void A_failure_is_sticky()
    {
        using var identity = AgeIdentity.Generate();
        var ciphertext = Encrypt(Random(2 * Chunk), identity.Recipient);
        ciphertext[^20] ^= 1;
        using var stream = AgeDecryptingStream.Open(new MemoryStream(ciphertext), [identity]);
        var buffer = new byte[2 * Chunk];
        Assert.Equal(Chunk, stream.Read(buffer));
        var first = Assert.Throws<AgeIntegrityException>(() => stream.Read(buffer));
        Assert.Same(first, Assert.Throws<AgeIntegrityException>(() => stream.Read(buffer)));
    }

    private sealed class NonSeekable(Stream inner) : Stream
    {
        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
        public override void Flush() { }
        public override int Read(byte[] buffer, int offset, int count) => inner.Read(buffer, offset, Math.Min(count, 1000));
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }

    /// <summary>A non-seekable source of pseudo-random bytes that hashes what it hands out.</summary>
    private sealed class Pattern(long size, IncrementalHash hash) : Stream
    {
        private long _left = size;
        private uint _state = 12345;
        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
        public override void Flush() { }
        public override int Read(byte[] buffer, int offset, int count)
        {
            var n = (int)Math.Min(count, _left);
            for (var i = 0; i < n; i++) { _state = _state * 1664525 + 1013904223; buffer[offset + i] = (byte)(_state >> 24); }
            _left -= n;
            hash.AppendData(buffer, offset, n);
            return n;
        }
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
