namespace InfraTools.Tests;

/// <summary>
/// acme-restore with an age-encrypted backup (--source ending in .age): the AOT binary against the real S3 server,
/// with files encrypted by Debian's age and by backup push --encrypt-to. The identity comes from a file or the
/// environment, never from the command line, and never reaches the command's environment.
/// </summary>
public class EncryptionTests
{
    private static async Task<ProcessResult> Run(string file, params string[] args)
    {
        try { return await ProcessRunner.RunAsync(file, args); }
        catch (System.ComponentModel.Win32Exception ex)
        {
            throw new InvalidOperationException($"{file} is missing ({ex.Message}): run scripts/install-deps.sh test, which installs Debian's age", ex);
        }
    }

    private static async Task<(string KeyFile, string Recipient, string Secret)> KeygenAsync(TempDir dir, string name)
    {
        var keyFile = dir.Combine(name);
        Assert.Equal(0, (await Run("age-keygen", "-o", keyFile)).ExitCode);
        var shown = await Run("age-keygen", "-y", keyFile);
        Assert.True(shown.ExitCode == 0, shown.ToString());
        return (keyFile, shown.Stdout.Trim(), File.ReadAllLines(keyFile).Single(l => l.StartsWith("AGE-SECRET-KEY-1", StringComparison.Ordinal)));
    }

    private static async Task<string> BucketWithEncryptedAsync(TempDir dir, string recipient, byte[] content)
    {
        var plain = dir.Combine("plain.json");
        File.WriteAllBytes(plain, content);
        var encrypted = await Run("age", "-r", recipient, "-o", dir.Combine("acme.json.age"), plain);
        Assert.True(encrypted.ExitCode == 0, encrypted.ToString());
        File.Delete(plain);
        var bucket = await S3Server.Shared.NewBucketAsync("acme-enc");
        var bytes = File.ReadAllBytes(dir.Combine("acme.json.age"));
        using var client = S3Server.Shared.Client();
        await client.PutAsync(bucket, "acme.json.age", new MemoryStream(bytes), bytes.Length);
        return bucket;
    }

    [Fact]
    public async Task A_backup_encrypted_by_age_is_restored_byte_exact_and_the_identity_stays_out_of_the_command()
    {
        using var dir = new TempDir("acme-enc");
        var (keyFile, recipient, secret) = await KeygenAsync(dir, "key.txt");
        var bucket = await BucketWithEncryptedAsync(dir, recipient, AcmeRestore.SampleAcmeJson);

        var file = dir.Combine("traefik", "acme.json");
        var result = await AcmeRestore.RunAsync(["--source", $"s3://{bucket}/acme.json.age", "--file", file, "--identity-file", keyFile, "--required"]);
        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Equal(AcmeRestore.SampleAcmeJson, File.ReadAllBytes(file));
        Assert.Equal(AcmeRestore.Mode0600, File.GetUnixFileMode(file));
        Assert.Equal(["acme.json"], Directory.GetFiles(Path.GetDirectoryName(file)!).Select(Path.GetFileName));

        // The key itself in AGE_IDENTITY: the restore works, and the command (env) sees neither variable nor key.
        File.Delete(file);
        var env = S3Server.Shared.Environment(("AGE_IDENTITY", secret));
        var handed = await AcmeRestore.RunAsync(["--source", $"s3://{bucket}/acme.json.age", "--file", file, "--required", "--", "/usr/bin/env"], env);
        Assert.True(handed.ExitCode == 0, handed.ToString());
        Assert.Equal(AcmeRestore.SampleAcmeJson, File.ReadAllBytes(file));
        Assert.DoesNotContain("AGE_IDENTITY", handed.Stdout);
        Assert.DoesNotContain(secret, handed.Output);
        Assert.Contains("AGE_IDENTITY", handed.Stderr); // named among the removed variables
    }

    [Fact]
    public async Task A_backup_pushed_with_encrypt_to_is_restored_by_acme_restore()
    {
        using var dir = new TempDir("acme-enc");
        var (keyFile, recipient, _) = await KeygenAsync(dir, "key.txt");
        var bucket = await S3Server.Shared.NewBucketAsync("acme-enc");
        var acme = dir.Combine("live", "acme.json");
        Directory.CreateDirectory(Path.GetDirectoryName(acme)!);
        File.WriteAllBytes(acme, AcmeRestore.SampleAcmeJson);
        var push = await ProcessRunner.RunAsync(RepoPaths.Tool("backup"),
            ["push", acme, $"s3://{bucket}/traefik/acme.json", "--require-json", "--encrypt-to", recipient, "--state-dir", dir.Combine("state")], S3Server.Shared.Environment());
        Assert.True(push.ExitCode == 0, push.ToString());

        var file = dir.Combine("fresh", "acme.json");
        var result = await AcmeRestore.RunAsync(["--source", $"s3://{bucket}/traefik/acme.json.age", "--file", file, "--required"],
            S3Server.Shared.Environment(("AGE_IDENTITY_FILE", keyFile)));
        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Equal(AcmeRestore.SampleAcmeJson, File.ReadAllBytes(file));
    }

    [Fact]
    public async Task No_or_a_wrong_identity_and_damaged_backups_fail_in_one_line_and_write_nothing()
    {
        using var dir = new TempDir("acme-enc");
        var (keyFile, recipient, _) = await KeygenAsync(dir, "key.txt");
        var (wrongKey, _, wrongSecret) = await KeygenAsync(dir, "wrong.txt");
        var bucket = await BucketWithEncryptedAsync(dir, recipient, AcmeRestore.SampleAcmeJson);
        var good = File.ReadAllBytes(dir.Combine("acme.json.age"));
        using (var client = S3Server.Shared.Client())
        {
            var tampered = (byte[])good.Clone();
            tampered[^30] ^= 0x40;
            await client.PutAsync(bucket, "tampered.json.age", new MemoryStream(tampered), tampered.Length);
            await client.PutAsync(bucket, "truncated.json.age", new MemoryStream(good[..^17]), good.Length - 17);
        }
        var cases = new (string Key, string[] Identity, int Exit, string Says)[]
        {
            ("acme.json.age", [], 3, "no identity was given"),
            ("acme.json.age", ["--identity-file", wrongKey], 3, "cannot decrypt"),
            ("tampered.json.age", ["--identity-file", keyFile], 11, "cannot be decrypted"),
            ("truncated.json.age", ["--identity-file", keyFile], 11, "cannot be decrypted"),
        };
        foreach (var (key, identity, exit, says) in cases)
        {
            var target = dir.Combine($"t-{key}", "acme.json");
            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            var result = await AcmeRestore.RunAsync(["--source", $"s3://{bucket}/{key}", "--file", target, "--required", .. identity]);
            Assert.True(result.ExitCode == exit, $"{key} {string.Join(' ', identity)}: {result}");
            var errors = AcmeRestore.Lines(result.Stderr, "ERR");
            Assert.True(errors.Length == 1 && errors[0].Contains(says), result.ToString());
            Assert.Empty(Directory.EnumerateFileSystemEntries(Path.GetDirectoryName(target)!));
            Assert.DoesNotContain(wrongSecret, result.Output);
        }
    }
}
