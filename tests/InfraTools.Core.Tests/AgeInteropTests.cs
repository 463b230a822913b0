using System.Security.Cryptography;
using InfraTools.Crypto;

namespace InfraTools.Tests;

/// <summary>
/// Interoperability with the real age (Debian's package, installed by scripts/install-deps.sh test): what we
/// encrypt, `age -d -i` decrypts byte-exact; what `age -r`/`age -R` encrypts, we decrypt byte-exact; keys made
/// by age-keygen work with us and ours with it; failures are failures on both sides. Identities are only ever
/// passed in files, never on a command line.
/// </summary>
public class AgeInteropTests
{
    private const int Chunk = 64 * 1024;

    public static TheoryData<int> Sizes => new([0, 1, Chunk - 1, Chunk, Chunk + 1, 3 * Chunk, 5 * 1024 * 1024 + 7]);

    private static async Task<ProcessResult> Run(string file, params string[] args)
    {
        try
        {
            return await ProcessRunner.RunAsync(file, args);
        }
        catch (System.ComponentModel.Win32Exception ex)
        {
            throw new InvalidOperationException($"{file} is missing ({ex.Message}): run scripts/install-deps.sh test, which installs Debian's age", ex);
        }
    }

    private static Task<ProcessResult> Age(params string[] args) => Run("age", args);

    /// <summary>`age -d -i KEY INPUT > OUTPUT`: through the shell, since age -o creates no file for an empty plaintext.</summary>
    private static Task<ProcessResult> AgeDecrypt(string keyFile, string input, string output) =>
        Run("sh", "-c", "exec age -d -i \"$1\" \"$2\" > \"$3\"", "sh", keyFile, input, output);

    /// <summary>age-keygen's key file and the public key it prints for it.</summary>
    private static async Task<(string KeyFile, string Recipient)> KeygenAsync(TempDir dir, string name)
    {
        var keyFile = dir.Combine(name);
        var made = await Run("age-keygen", "-o", keyFile);
        Assert.True(made.ExitCode == 0, made.ToString());
        var shown = await Run("age-keygen", "-y", keyFile);
        Assert.True(shown.ExitCode == 0, shown.ToString());
        return (keyFile, shown.Stdout.Trim());
    }

    private static string WriteRandom(TempDir dir, string name, int size)
    {
        var path = dir.Combine(name);
        File.WriteAllBytes(path, RandomNumberGenerator.GetBytes(size));
        return path;
    }

    private static async Task EncryptFileAsync(string input, string output, IReadOnlyList<AgeRecipient> recipients)
    {
        await using var source = File.OpenRead(input);
        await using var target = File.Create(output);
        await using var encrypting = new AgeEncryptingStream(source, recipients);
        await encrypting.CopyToAsync(target);
        Assert.Equal(encrypting.Length, target.Length);
    }

    private static async Task DecryptFileAsync(string input, string output, IReadOnlyList<AgeIdentity> identities)
    {
        await using var source = File.OpenRead(input);
        await Crypto.Age.DecryptToFileAsync(source, output, identities, Files.AtomicFile.OwnerOnly);
    }

    [Theory]
    [MemberData(nameof(Sizes))]
    public async Task What_we_encrypt_age_decrypts_byte_exact(int size)
    {
        using var dir = new TempDir("age-interop");
        var (keyFile, recipientText) = await KeygenAsync(dir, "key.txt");
        var plaintext = WriteRandom(dir, "plain", size);
        var encrypted = dir.Combine("plain.age");
        await EncryptFileAsync(plaintext, encrypted, [AgeRecipient.Parse(recipientText)]);

        var decrypted = dir.Combine("decrypted");
        var result = await AgeDecrypt(keyFile, encrypted, decrypted);
        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Equal(await File.ReadAllBytesAsync(plaintext), await File.ReadAllBytesAsync(decrypted));
    }

    [Theory]
    [MemberData(nameof(Sizes))]
    public async Task What_age_encrypts_we_decrypt_byte_exact(int size)
    {
        using var dir = new TempDir("age-interop");
        var (keyFile, recipient) = await KeygenAsync(dir, "key.txt");
        var plaintext = WriteRandom(dir, "plain", size);
        var encrypted = dir.Combine("plain.age");
        var result = await Age("-r", recipient, "-o", encrypted, plaintext);
        Assert.True(result.ExitCode == 0, result.ToString());

        var decrypted = dir.Combine("restored", "plain");
        await DecryptFileAsync(encrypted, decrypted, AgeIdentity.ParseFile(keyFile));
        Assert.Equal(await File.ReadAllBytesAsync(plaintext), await File.ReadAllBytesAsync(decrypted));
    }

    [Fact]
    public async Task Keys_made_by_age_keygen_and_by_us_are_the_same_keys_to_both()
    {
        using var dir = new TempDir("age-interop");
        var (keyFile, recipient) = await KeygenAsync(dir, "key.txt");
        var parsed = Assert.Single(AgeIdentity.ParseFile(keyFile));
        Assert.Equal(recipient, parsed.Recipient.ToString());

        using var ours = AgeIdentity.Generate();
        var ourKeyFile = dir.Write("ours.txt", $"# public key: {ours.Recipient}\n{ours.RevealSecretKey()}\n");
        var shown = await Run("age-keygen", "-y", ourKeyFile);
        Assert.True(shown.ExitCode == 0, shown.ToString());
        Assert.Equal(ours.Recipient.ToString(), shown.Stdout.Trim());
    }

    [Fact]
    public async Task Several_recipients_in_an_age_R_file_work_both_ways()
    {
        using var dir = new TempDir("age-interop");
        var (keyA, recipientA) = await KeygenAsync(dir, "a.txt");
        var (keyB, recipientB) = await KeygenAsync(dir, "b.txt");
        var recipientsFile = dir.Write("recipients.txt", $"# backup recipients\n{recipientA}\n\n# the offline key\n{recipientB}\n");
        var plaintext = WriteRandom(dir, "plain", 2 * Chunk + 1);
        var expected = await File.ReadAllBytesAsync(plaintext);

        var byAge = dir.Combine("by-age.age");
        var result = await Age("-R", recipientsFile, "-o", byAge, plaintext);
        Assert.True(result.ExitCode == 0, result.ToString());
        string[] keys = [keyA, keyB];
        Assert.NotEmpty(keys);
        foreach (var key in keys)
        {
            var output = dir.Combine($"by-age-{Path.GetFileName(key)}.out");
            await DecryptFileAsync(byAge, output, AgeIdentity.ParseFile(key));
            Assert.Equal(expected, await File.ReadAllBytesAsync(output));
        }

        var byUs = dir.Combine("by-us.age");
        var recipients = AgeRecipient.ParseFile(recipientsFile);
        Assert.Equal([recipientA, recipientB], recipients.Select(r => r.ToString()));
        await EncryptFileAsync(plaintext, byUs, recipients);
        foreach (var key in keys)
        {
            var output = dir.Combine($"by-us-{Path.GetFileName(key)}.out");
            var decrypted = await AgeDecrypt(key, byUs, output);
            Assert.True(decrypted.ExitCode == 0, decrypted.ToString());
            Assert.Equal(expected, await File.ReadAllBytesAsync(output));
        }

        // age -r twice, opened with an identities file that holds both keys (B's first).
        var twice = dir.Combine("twice.age");
        result = await Age("-r", recipientA, "-r", recipientB, "-o", twice, plaintext);
        Assert.True(result.ExitCode == 0, result.ToString());
        var bothKeys = dir.Write("both.txt", await File.ReadAllTextAsync(keyB) + await File.ReadAllTextAsync(keyA));
        var both = dir.Combine("twice.out");
        await DecryptFileAsync(twice, both, AgeIdentity.ParseFile(bothKeys));
        Assert.Equal(expected, await File.ReadAllBytesAsync(both));
    }

    [Fact]
    public async Task Wrong_identity_truncated_and_altered_files_from_age_fail_and_write_nothing()
    {
        using var dir = new TempDir("age-interop");
        var (_, recipient) = await KeygenAsync(dir, "key.txt");
        var (otherKey, _) = await KeygenAsync(dir, "other.txt");
        var plaintext = WriteRandom(dir, "plain", 3 * Chunk + 1000);
        var encrypted = dir.Combine("plain.age");
        var result = await Age("-r", recipient, "-o", encrypted, plaintext);
        Assert.True(result.ExitCode == 0, result.ToString());
        var bytes = await File.ReadAllBytesAsync(encrypted);
        var target = dir.Combine("target");

        await Assert.ThrowsAsync<AgeNoMatchException>(() => DecryptFileAsync(encrypted, target, AgeIdentity.ParseFile(otherKey)));
        Assert.False(File.Exists(target));

        var identity = AgeIdentity.ParseFile(dir.Combine("key.txt"));
        int[] cuts = [bytes.Length - 1, bytes.Length - 1000 - 16, bytes.Length / 2, 100];
        Assert.NotEmpty(cuts);
        foreach (var cut in cuts)
        {
            var truncated = dir.Combine($"cut-{cut}.age");
            await File.WriteAllBytesAsync(truncated, bytes[..cut]);
            var error = await Assert.ThrowsAnyAsync<AgeIntegrityException>(() => DecryptFileAsync(truncated, target, identity));
            Assert.Contains("truncated", error.Message);
            Assert.False(File.Exists(target));
        }
        int[] flips = [30, bytes.Length / 2, bytes.Length - 1];
        Assert.NotEmpty(flips);
        foreach (var flip in flips)
        {
            var altered = (byte[])bytes.Clone();
            altered[flip] ^= 0x10;
            var path = dir.Combine($"flip-{flip}.age");
            await File.WriteAllBytesAsync(path, altered);
            await Assert.ThrowsAnyAsync<AgeException>(() => DecryptFileAsync(path, target, identity));
            Assert.False(File.Exists(target));
        }
        Assert.DoesNotContain(Directory.GetFiles(dir.Path), f => Path.GetFileName(f).StartsWith(".target", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Age_refuses_our_files_when_the_identity_is_wrong_or_they_were_cut_or_altered()
    {
        using var dir = new TempDir("age-interop");
        var (keyFile, recipient) = await KeygenAsync(dir, "key.txt");
        var (otherKey, _) = await KeygenAsync(dir, "other.txt");
        var plaintext = WriteRandom(dir, "plain", 2 * Chunk + 10);
        var encrypted = dir.Combine("plain.age");
        await EncryptFileAsync(plaintext, encrypted, [AgeRecipient.Parse(recipient)]);
        var bytes = await File.ReadAllBytesAsync(encrypted);

        var cases = new List<(string Name, byte[] File, string Key)>
        {
            ("wrong identity", bytes, otherKey),
            ("cut after a full chunk", bytes[..^26], keyFile),
            ("cut inside the last chunk", bytes[..^1], keyFile),
        };
        foreach (var position in new[] { 40, 180, bytes.Length - 5 })
        {
            var altered = (byte[])bytes.Clone();
            altered[position] ^= 0x01;
            cases.Add(($"byte {position} altered", altered, keyFile));
        }
        Assert.NotEmpty(cases);
        foreach (var (name, file, key) in cases)
        {
            var path = dir.Combine("case.age");
            await File.WriteAllBytesAsync(path, file);
            var result = await AgeDecrypt(key, path, dir.Combine("case.out"));
            Assert.True(result.ExitCode != 0, $"{name}: age accepted it\n{result}");
        }
        // The intact file, for contrast, decrypts.
        var ok = await AgeDecrypt(keyFile, encrypted, dir.Combine("ok.out"));
        Assert.True(ok.ExitCode == 0, ok.ToString());
    }
}
