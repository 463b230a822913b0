using System.Security.Cryptography;
using System.Text;
using InfraTools.Monitoring;

namespace InfraTools.Tests;

/// <summary>
/// backup push --encrypt-to and restore --identity-file: the AOT binary against the real S3 server and
/// Debian's age (scripts/install-deps.sh test). Identities only ever travel in files or the environment.
/// </summary>
public class EncryptionTests
{
    private static readonly S3Server Server = S3Server.Shared;

    private static Task<ProcessResult> Backup(params string[] args) => Backup(Server.Environment(), args);

    private static Task<ProcessResult> Backup(Dictionary<string, string?> env, params string[] args) =>
        ProcessRunner.RunAsync(RepoPaths.Tool("backup"), args, env, timeout: TimeSpan.FromMinutes(5));

    private static async Task<ProcessResult> BackupOk(params string[] args)
    {
        var result = await Backup(args);
        Assert.True(result.ExitCode == 0, string.Join(' ', args) + "\n" + result);
        return result;
    }

    private static async Task<ProcessResult> Run(string file, params string[] args)
    {
        try { return await ProcessRunner.RunAsync(file, args); }
        catch (System.ComponentModel.Win32Exception ex)
        {
            throw new InvalidOperationException($"{file} is missing ({ex.Message}): run scripts/install-deps.sh test, which installs Debian's age", ex);
        }
    }

    /// <summary>age-keygen's key file, the public key it prints for it, and the secret key line itself (to look for it in logs).</summary>
    internal static async Task<(string KeyFile, string Recipient, string Secret)> KeygenAsync(TempDir dir, string name)
    {
        var keyFile = dir.Combine(name);
        var made = await Run("age-keygen", "-o", keyFile);
        Assert.True(made.ExitCode == 0, made.ToString());
        var shown = await Run("age-keygen", "-y", keyFile);
        Assert.True(shown.ExitCode == 0, shown.ToString());
        var secret = File.ReadAllLines(keyFile).Single(l => l.StartsWith("AGE-SECRET-KEY-1", StringComparison.Ordinal));
        return (keyFile, shown.Stdout.Trim(), secret);
    }

    /// <summary>Debian's age -d -i KEY on <paramref name="ciphertext"/>: the plaintext (through the shell: age -o writes no file for an empty plaintext).</summary>
    private static async Task<byte[]> AgeDecryptAsync(TempDir dir, string keyFile, byte[] ciphertext)
    {
        var input = dir.Combine($"in-{Guid.NewGuid():N}.age");
        var output = dir.Combine($"out-{Guid.NewGuid():N}");
        await File.WriteAllBytesAsync(input, ciphertext);
        var result = await Run("sh", "-c", "exec age -d -i \"$1\" \"$2\" > \"$3\"", "sh", keyFile, input, output);
        Assert.True(result.ExitCode == 0, result.ToString());
        return await File.ReadAllBytesAsync(output);
    }

    private static async Task<byte[]> DownloadAsync(string bucket, string key)
    {
        using var client = Server.Client();
        using var buffer = new MemoryStream();
        await client.GetAsync(bucket, key, (stream, _, ct) => stream.CopyToAsync(buffer, ct));
        return buffer.ToArray();
    }

    private static async Task<Dictionary<string, string>> ETagsAsync(string bucket, string prefix)
    {
        using var client = Server.Client();
        return await client.ListAsync(bucket, prefix).ToDictionaryAsync(o => o.Key, o => o.ETag, StringComparer.Ordinal);
    }

    private static async Task UploadAsync(string bucket, string key, byte[] content)
    {
        using var client = Server.Client();
        await client.PutAsync(bucket, key, new MemoryStream(content), content.Length);
    }

    private static string[] ErrorLines(ProcessResult result) => result.Output.Split('\n').Where(l => l.Contains(" ERR ", StringComparison.Ordinal)).ToArray();

    /// <summary>Plaintext that cannot appear in a ciphertext by chance: a marker repeated through the file.</summary>
    private static byte[] Marked(int size, string marker)
    {
        var bytes = new byte[size];
        var pattern = Encoding.ASCII.GetBytes(marker);
        for (var i = 0; i < size; i++) bytes[i] = pattern[i % pattern.Length];
        return bytes;
    }

    [Fact]
    public async Task An_encrypted_tree_push_stores_only_age_files_that_age_decrypts_a_second_push_uploads_nothing_and_restore_decrypts()
    {
        var bucket = await Server.NewBucketAsync("enc-tree");
        using var dir = new TempDir("backup-enc");
        var (keyFile, recipient, secret) = await KeygenAsync(dir, "key.txt");
        var source = dir.Combine("source");
        var files = new Dictionary<string, byte[]>(StringComparer.Ordinal)
        {
            ["empty.txt"] = [],
            ["a/secret.txt"] = Marked(1000, "PLAINTEXT-SECRET-"),
            ["a/b/two-chunks.bin"] = Marked(64 * 1024 + 1, "CHUNKY-PLAINTEXT-"),
            ["random.bin"] = RandomNumberGenerator.GetBytes(300 * 1024),
        };
        foreach (var (path, content) in files)
        {
            Directory.CreateDirectory(Path.GetDirectoryName(Path.Combine(source, path))!);
            File.WriteAllBytes(Path.Combine(source, path), content);
        }
        var metrics = dir.Combine("backup.prom");
        var push = new[] { "push", source, $"s3://{bucket}/tree/", "--encrypt-to", recipient, "--state-dir", dir.Combine("state"), "--metrics-file", metrics };

        var first = await BackupOk(push);
        Assert.Equal(4, TextfileMetrics.ReadSample(metrics, "backup_last_run_uploaded_files", "name=\"default\""));
        var stored = await ETagsAsync(bucket, "tree/");
        Assert.Equal(files.Keys.Select(k => $"tree/{k}.age").Order(StringComparer.Ordinal), stored.Keys.Order(StringComparer.Ordinal));
        foreach (var (path, content) in files)
        {
            var ciphertext = await DownloadAsync(bucket, $"tree/{path}.age");
            Assert.StartsWith("age-encryption.org/v1\n", Encoding.ASCII.GetString(ciphertext, 0, 22));
            Assert.False(ciphertext.AsSpan().IndexOf("PLAINTEXT-"u8) >= 0, $"{path}: the stored bytes hold plaintext");
            if (content.Length > 0) Assert.False(ciphertext.AsSpan().IndexOf(content.AsSpan(0, Math.Min(content.Length, 64))) >= 0, $"{path}: plaintext stored");
            Assert.Equal(content, await AgeDecryptAsync(dir, keyFile, ciphertext));
        }

        // Unchanged files are not uploaded again, though a new encryption would differ: the manifest knows them.
        await BackupOk(push);
        Assert.Equal(0, TextfileMetrics.ReadSample(metrics, "backup_last_run_uploaded_files", "name=\"default\""));
        Assert.Equal(stored, await ETagsAsync(bucket, "tree/"));
        // A changed file is; so are all of them for another recipient set (the manifest is per recipient set).
        File.WriteAllBytes(Path.Combine(source, "a/secret.txt"), Marked(1001, "PLAINTEXT-SECRET-"));
        await BackupOk(push);
        Assert.Equal(1, TextfileMetrics.ReadSample(metrics, "backup_last_run_uploaded_files", "name=\"default\""));
        var (_, other, _) = await KeygenAsync(dir, "other.txt");
        await BackupOk([.. push, "--encrypt-to", other]);
        Assert.Equal(4, TextfileMetrics.ReadSample(metrics, "backup_last_run_uploaded_files", "name=\"default\""));
        files["a/secret.txt"] = Marked(1001, "PLAINTEXT-SECRET-");

        var restored = dir.Combine("restored");
        var restore = await BackupOk("restore", $"s3://{bucket}/tree/", restored, "--identity-file", keyFile);
        Assert.Equal(files.Keys.Order(StringComparer.Ordinal),
            Directory.EnumerateFiles(restored, "*", SearchOption.AllDirectories).Select(f => Path.GetRelativePath(restored, f)).Order(StringComparer.Ordinal));
        foreach (var (path, content) in files) Assert.Equal(content, File.ReadAllBytes(Path.Combine(restored, path)));

        // No identity, or the wrong one: one error line, exit 3, and DEST is not even created.
        var (wrongKey, _, wrongSecret) = await KeygenAsync(dir, "wrong.txt");
        foreach (var args in new[] { Array.Empty<string>(), ["--identity-file", wrongKey] })
        {
            var failed = await Backup(["restore", $"s3://{bucket}/tree/", dir.Combine("not-restored"), .. args]);
            Assert.True(failed.ExitCode == 3, failed.ToString());
            Assert.Single(ErrorLines(failed));
            Assert.False(Directory.Exists(dir.Combine("not-restored")), failed.ToString());
        }
        foreach (var output in new[] { first.Output, restore.Output })
        {
            Assert.DoesNotContain(secret, output);
            Assert.DoesNotContain(wrongSecret, output);
        }
    }

    [Fact]
    public async Task A_file_encrypted_by_age_restores_byte_exact_and_a_damaged_one_fails_in_one_line_leaving_nothing()
    {
        var bucket = await Server.NewBucketAsync("enc-file");
        using var dir = new TempDir("backup-enc");
        var (keyFile, recipient, secret) = await KeygenAsync(dir, "key.txt");
        var plain = dir.Combine("plain.bin");
        File.WriteAllBytes(plain, RandomNumberGenerator.GetBytes(200 * 1024 + 3));
        var encrypted = await Run("age", "-r", recipient, "-o", dir.Combine("plain.bin.age"), plain);
        Assert.True(encrypted.ExitCode == 0, encrypted.ToString());
        var ciphertext = File.ReadAllBytes(dir.Combine("plain.bin.age"));
        await UploadAsync(bucket, "files/data.bin.age", ciphertext);

        // Named with or without .age; into a directory it gets its name without .age.
        var target = dir.Combine("out", "data.bin");
        var restore = await BackupOk("restore", $"s3://{bucket}/files/data.bin.age", target, "--identity-file", keyFile);
        Assert.Equal(File.ReadAllBytes(plain), File.ReadAllBytes(target));
        Assert.DoesNotContain(secret, restore.Output);
        Directory.CreateDirectory(dir.Combine("into"));
        var fromEnvironment = await Backup(Server.Environment(("AGE_IDENTITY_FILE", keyFile)), "restore", $"s3://{bucket}/files/data.bin", dir.Combine("into"));
        Assert.True(fromEnvironment.ExitCode == 0, fromEnvironment.ToString());
        Assert.Equal(File.ReadAllBytes(plain), File.ReadAllBytes(dir.Combine("into", "data.bin")));

        var tampered = (byte[])ciphertext.Clone();
        tampered[^100] ^= 1;
        var (wrongKey, _, _) = await KeygenAsync(dir, "wrong.txt");
        var cases = new (string Name, byte[] Content, string Key, int Exit, string Says)[]
        {
            ("tampered", tampered, keyFile, 11, "cannot be decrypted"),
            ("truncated", ciphertext[..^20], keyFile, 11, "cannot be decrypted"),
            ("header-only", ciphertext[..150], keyFile, 11, "cannot be decrypted"),
            ("wrong-identity", ciphertext, wrongKey, 3, "cannot decrypt"),
        };
        foreach (var (name, content, key, exit, says) in cases)
        {
            await UploadAsync(bucket, $"bad/{name}.age", content);
            var into = dir.Combine("bad", name);
            Directory.CreateDirectory(into);
            var failed = await Backup("restore", $"s3://{bucket}/bad/{name}.age", Path.Combine(into, name), "--identity-file", key);
            Assert.True(failed.ExitCode == exit, $"{name}: {failed}");
            Assert.Single(ErrorLines(failed));
            Assert.Contains(says, failed.Stderr);
            Assert.Empty(Directory.EnumerateFileSystemEntries(into)); // no file, no temporary file
        }
    }

    [Fact]
    public async Task An_encrypted_single_file_push_goes_to_name_age_and_is_not_uploaded_again_while_unchanged()
    {
        var bucket = await Server.NewBucketAsync("enc-single");
        using var dir = new TempDir("backup-enc");
        var (keyFile, recipient, _) = await KeygenAsync(dir, "key.txt");
        var recipients = dir.Write("recipients.txt", $"# backup key\n{recipient}\n");
        var acme = dir.Write("acme.json", "{\"letsencrypt\":{\"Account\":{\"PrivateKey\":\"PLAINTEXT-PRIVATE-KEY\"}}}");
        var metrics = dir.Combine("acme.prom");
        var common = new[] { "--require-json", "--name", "acme", "--state-dir", dir.Combine("state"), "--metrics-file", metrics };

        await BackupOk(["push", acme, $"s3://{bucket}/traefik/acme.json", "--encrypt-to-file", recipients, .. common]);
        var stored = await ETagsAsync(bucket, "traefik/");
        Assert.Equal(["traefik/acme.json.age"], stored.Keys);
        var ciphertext = await DownloadAsync(bucket, "traefik/acme.json.age");
        Assert.False(ciphertext.AsSpan().IndexOf("PLAINTEXT-"u8) >= 0);
        Assert.Equal(File.ReadAllBytes(acme), await AgeDecryptAsync(dir, keyFile, ciphertext));

        // The recipients from the environment this time: the same set, so the same manifest, and nothing uploaded.
        var again = await Backup(Server.Environment(("BACKUP_ENCRYPT_TO", recipient)), ["push", acme, $"s3://{bucket}/traefik/acme.json", .. common]);
        Assert.True(again.ExitCode == 0, again.ToString());
        Assert.Equal(0, TextfileMetrics.ReadSample(metrics, "backup_last_run_uploaded_files", "name=\"acme\""));
        Assert.Equal(stored, await ETagsAsync(bucket, "traefik/"));

        File.WriteAllText(acme, "{\"letsencrypt\":{}}");
        await BackupOk(["push", acme, $"s3://{bucket}/traefik/acme.json", "--encrypt-to", recipient, .. common]);
        Assert.Equal(1, TextfileMetrics.ReadSample(metrics, "backup_last_run_uploaded_files", "name=\"acme\""));
        Assert.Equal(File.ReadAllBytes(acme), await AgeDecryptAsync(dir, keyFile, await DownloadAsync(bucket, "traefik/acme.json.age")));

        // An identity is no recipient: refused in one line, exit 3, nothing uploaded, and the secret not echoed.
        var secret = File.ReadAllLines(keyFile).Single(l => l.StartsWith("AGE-SECRET-KEY-1", StringComparison.Ordinal));
        var refused = await Backup(Server.Environment(("BACKUP_ENCRYPT_TO", secret)), ["push", acme, $"s3://{bucket}/other/", .. common]);
        Assert.True(refused.ExitCode == 3, refused.ToString());
        Assert.Single(ErrorLines(refused));
        Assert.DoesNotContain(secret, refused.Output);
        Assert.Empty(await ETagsAsync(bucket, "other/"));
    }

    [Fact]
    public async Task With_acme_an_encrypted_copy_is_not_replaced_by_a_fresh_Traefik_file_unless_forced()
    {
        var bucket = await Server.NewBucketAsync("enc-acme");
        using var dir = new TempDir("backup-enc-acme");
        var (_, recipient, _) = await KeygenAsync(dir, "key.txt");
        var acme = dir.Write("traefik/acme.json", Encoding.UTF8.GetString(AcmeJson.Build("le{acct1; example.org 2030-01-01}")));
        string[] push = ["push", "--name", "acme", "--acme", "--encrypt-to", recipient, "--state-dir", dir.Combine("state"), acme, $"s3://{bucket}/acme/acme.json"];
        await BackupOk(push);
        var stored = await ETagsAsync(bucket, "acme/");
        Assert.Equal(["acme/acme.json.age"], stored.Keys);

        // A fresh server: no state, and Traefik wrote a file without certificates or account.
        File.WriteAllBytes(acme, AcmeJson.Build("le{}"));
        string[] fresh = ["push", "--name", "acme", "--acme", "--encrypt-to", recipient, "--state-dir", dir.Combine("fresh-state"), acme, $"s3://{bucket}/acme/acme.json"];
        var refused = await Backup(fresh);
        Assert.True(refused.ExitCode == 5, refused.ToString());
        Assert.Contains("cannot be read without the identity", refused.Stderr);
        Assert.Equal(stored, await ETagsAsync(bucket, "acme/"));

        var forced = await Backup([.. fresh, "--force"]);
        Assert.True(forced.ExitCode == 0, forced.ToString());
        Assert.NotEqual(stored["acme/acme.json.age"], (await ETagsAsync(bucket, "acme/"))["acme/acme.json.age"]);
    }
}
