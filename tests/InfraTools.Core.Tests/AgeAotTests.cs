using System.Security.Cryptography;

namespace InfraTools.Tests;

/// <summary>
/// The age code in a Native AOT binary (the test driver's age-encrypt/age-decrypt), against the real age:
/// both directions byte-exact, and a wrong identity, a truncated or an altered file fail with one clear
/// line, a non-zero exit, no secret in the output and nothing at the target.
/// </summary>
public class AgeAotTests
{
    private static Task<ProcessResult> Driver(params string[] args) => ProcessRunner.RunAsync(RepoPaths.TestDriver, args);

    private static async Task<(string KeyFile, string Recipient, string Secret)> KeygenAsync(TempDir dir, string name)
    {
        var keyFile = dir.Combine(name);
        var made = await ProcessRunner.RunAsync("age-keygen", ["-o", keyFile]);
        Assert.True(made.ExitCode == 0, made.ToString());
        var recipient = (await ProcessRunner.RunAsync("age-keygen", ["-y", keyFile])).Stdout.Trim();
        var secret = File.ReadAllLines(keyFile).Single(l => l.StartsWith("AGE-SECRET-KEY-1", StringComparison.Ordinal));
        return (keyFile, recipient, secret);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(3 * 65536 + 5)]
    public async Task The_AOT_binary_encrypts_for_age_and_decrypts_what_age_encrypted(int size)
    {
        using var dir = new TempDir("age-aot");
        var (keyFile, recipient, secret) = await KeygenAsync(dir, "key.txt");
        var plaintext = dir.Combine("plain");
        await File.WriteAllBytesAsync(plaintext, RandomNumberGenerator.GetBytes(size));

        var ours = dir.Combine("ours.age");
        var encrypted = await Driver("age-encrypt", "-r", recipient, plaintext, ours);
        Assert.True(encrypted.ExitCode == 0, encrypted.ToString());
        var byAge = await ProcessRunner.RunAsync("sh", ["-c", "exec age -d -i \"$1\" \"$2\" > \"$3\"", "sh", keyFile, ours, dir.Combine("by-age")]);
        Assert.True(byAge.ExitCode == 0, byAge.ToString());
        Assert.Equal(await File.ReadAllBytesAsync(plaintext), await File.ReadAllBytesAsync(dir.Combine("by-age")));

        var theirs = dir.Combine("theirs.age");
        var result = await ProcessRunner.RunAsync("age", ["-r", recipient, "-o", theirs, plaintext]);
        Assert.True(result.ExitCode == 0, result.ToString());
        var decrypted = await Driver("age-decrypt", "-i", keyFile, theirs, dir.Combine("restored"));
        Assert.True(decrypted.ExitCode == 0, decrypted.ToString());
        Assert.Equal(await File.ReadAllBytesAsync(plaintext), await File.ReadAllBytesAsync(dir.Combine("restored")));
        Assert.DoesNotContain(secret, decrypted.Output);
    }

    [Fact]
    public async Task The_AOT_binary_fails_with_one_line_and_writes_nothing()
    {
        using var dir = new TempDir("age-aot");
        var (keyFile, recipient, secret) = await KeygenAsync(dir, "key.txt");
        var (otherKey, _, otherSecret) = await KeygenAsync(dir, "other.txt");
        var plaintext = dir.Combine("plain");
        await File.WriteAllBytesAsync(plaintext, RandomNumberGenerator.GetBytes(2 * 65536 + 100));
        var encrypted = dir.Combine("plain.age");
        Assert.Equal(0, (await ProcessRunner.RunAsync("age", ["-r", recipient, "-o", encrypted, plaintext])).ExitCode);
        var bytes = await File.ReadAllBytesAsync(encrypted);
        var altered = (byte[])bytes.Clone();
        altered[^3] ^= 0x20;

        var cases = new List<(string Name, byte[] File, string Key, int Exit, string Message)>
        {
            ("wrong identity", bytes, otherKey, 3, "the file is not encrypted to this identity"),
            ("truncated", bytes[..^50], keyFile, 11, "the file is truncated"),
            ("altered", altered, keyFile, 11, "the file is truncated or was altered"),
            ("not age", await File.ReadAllBytesAsync(plaintext), keyFile, 11, "the file is not age-encrypted"),
        };
        Assert.NotEmpty(cases);
        foreach (var (name, file, key, exit, message) in cases)
        {
            var input = dir.Combine($"{name}.age");
            await File.WriteAllBytesAsync(input, file);
            var target = dir.Combine($"{name}.out");
            var result = await Driver("age-decrypt", "-i", key, input, target);
            Assert.True(result.ExitCode == exit, $"{name}: {result}");
            Assert.Contains(message, result.Stderr);
            Assert.Single(result.Stderr.Trim().Split('\n'));
            Assert.Equal("", result.Stdout);
            Assert.False(File.Exists(target), $"{name}: {target} was written");
            Assert.DoesNotContain(secret, result.Output);
            Assert.DoesNotContain(otherSecret, result.Output);
        }
        Assert.Empty(Directory.GetFiles(dir.Path, ".*"));
    }

    [Fact]
    public async Task A_secret_key_in_a_recipients_file_is_refused_by_line_without_printing_it()
    {
        using var dir = new TempDir("age-aot");
        var (keyFile, recipient, secret) = await KeygenAsync(dir, "key.txt");
        var recipients = dir.Write("recipients.txt", $"# ok\n{recipient}\n{secret}\n");
        var plaintext = dir.Write("plain", "x");
        var result = await Driver("age-encrypt", "-R", recipients, plaintext, dir.Combine("out.age"));
        Assert.True(result.ExitCode == 3, result.ToString());
        Assert.Contains("recipients.txt line 3: not a valid age recipient: this is an identity (a secret key)", result.Stderr);
        Assert.DoesNotContain(secret, result.Output);
        Assert.DoesNotContain(secret[20..50], result.Output);
        Assert.False(File.Exists(dir.Combine("out.age")));
        _ = keyFile;
    }
}
