using InfraTools.Interop;
using System.Text;
using InfraTools.Monitoring;

namespace InfraTools.Tests;

/// <summary>Runs the acme-restore AOT binary against the real S3 server.</summary>
internal static class AcmeRestore
{
    public static string Binary => RepoPaths.Tool("acme-restore");

    /// <summary>What Traefik writes: resolver name to account and certificates (shortened, not a real key).</summary>
    public static readonly byte[] SampleAcmeJson = Encoding.UTF8.GetBytes("""
        {
          "letsencrypt": {
            "Account": {
              "Email": "ops@example.org",
              "Registration": { "body": { "status": "valid" }, "uri": "https://acme-v02.api.letsencrypt.org/acme/acct/123" },
              "PrivateKey": "MIIJKAIBAAKCAgEAtestkey",
              "KeyType": "4096"
            },
            "Certificates": [
              { "domain": { "main": "example.org" }, "certificate": "LS0tLS1CRUdJTiBDRVJU", "key": "LS0tLS1CRUdJTiBSU0Eg", "Store": "default" }
            ]
          }
        }
        """);

    public const UnixFileMode Mode0600 = UnixFileMode.UserRead | UnixFileMode.UserWrite;
    public const UnixFileMode Mode0644 = Mode0600 | UnixFileMode.GroupRead | UnixFileMode.OtherRead;

    /// <summary>A fresh bucket, with <paramref name="content"/> uploaded as acme.json unless null.</summary>
    public static async Task<string> BucketWithAsync(byte[]? content)
    {
        var bucket = await S3Server.Shared.NewBucketAsync("acme");
        if (content is not null)
        {
            using var client = S3Server.Shared.Client();
            await client.PutAsync(bucket, "acme.json", new MemoryStream(content), content.Length);
        }
        return bucket;
    }

    public static Task<ProcessResult> RunAsync(IEnumerable<string> args, IReadOnlyDictionary<string, string?>? environment = null) =>
        ProcessRunner.RunAsync(Binary, args, environment ?? S3Server.Shared.Environment());

    public static double? Outcome(string metricsFile, string outcome) =>
        TextfileMetrics.ReadSample(metricsFile, "acme_restore_last_run_outcome", $"outcome=\"{outcome}\"");

    /// <summary>Asserts the metrics say <paramref name="expected"/> is the outcome of the last run, and no other.</summary>
    public static void AssertOutcome(string metricsFile, string expected)
    {
        foreach (var outcome in new[] { "restored", "present", "no_backup", "invalid", "failed" })
            Assert.True(Outcome(metricsFile, outcome) == (outcome == expected ? 1 : 0),
                $"acme_restore_last_run_outcome{{outcome=\"{outcome}\"}} should be {(outcome == expected ? 1 : 0)}:\n{File.ReadAllText(metricsFile)}");
    }

    public static string[] Lines(string text, string level) =>
        text.Split('\n').Where(l => l.Contains($" {level} ", StringComparison.Ordinal)).ToArray();

    /// <summary>A TCP port on 127.0.0.1 with nothing listening, as an S3 endpoint that refuses connections.</summary>
    public static string ClosedEndpoint() => $"http://127.0.0.1:{Net.FreePort()}";
}

public class AcmeRestoreTests
{
    [Fact]
    public async Task A_missing_file_is_restored_byte_equal_with_mode_0600_in_a_created_directory()
    {
        var bucket = await AcmeRestore.BucketWithAsync(AcmeRestore.SampleAcmeJson);
        using var dir = new TempDir("acme");
        var file = dir.Combine("traefik", "acme", "acme.json");
        var metrics = dir.Combine("acme.prom");

        var result = await AcmeRestore.RunAsync(["--source", $"s3://{bucket}/acme.json", "--file", file, "--metrics-file", metrics]);

        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Equal(AcmeRestore.SampleAcmeJson, File.ReadAllBytes(file));
        Assert.Equal(AcmeRestore.Mode0600, File.GetUnixFileMode(file));
        Assert.Equal(["acme.json"], Directory.GetFiles(Path.GetDirectoryName(file)!).Select(Path.GetFileName));
        Assert.Contains($"restored {file} from s3://{bucket}/acme.json", result.Stderr);
        AcmeRestore.AssertOutcome(metrics, "restored");
    }

    [Fact]
    public async Task An_empty_file_counts_as_missing_and_is_replaced()
    {
        var bucket = await AcmeRestore.BucketWithAsync(AcmeRestore.SampleAcmeJson);
        using var dir = new TempDir("acme");
        var file = dir.Write("acme.json", "");
        File.SetUnixFileMode(file, AcmeRestore.Mode0644);

        var result = await AcmeRestore.RunAsync(["--source", $"s3://{bucket}/acme.json", "--file", file]);

        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Equal(AcmeRestore.SampleAcmeJson, File.ReadAllBytes(file));
        Assert.Equal(AcmeRestore.Mode0600, File.GetUnixFileMode(file));
    }

    [Fact]
    public async Task A_present_file_is_left_untouched()
    {
        var bucket = await AcmeRestore.BucketWithAsync(AcmeRestore.SampleAcmeJson);
        using var dir = new TempDir("acme");
        var file = dir.Write("acme.json", """{"letsencrypt":{"Certificates":null}}""");
        File.SetUnixFileMode(file, AcmeRestore.Mode0600);
        var written = new DateTime(2024, 1, 2, 3, 4, 5, DateTimeKind.Utc);
        File.SetLastWriteTimeUtc(file, written);
        var metrics = dir.Combine("acme.prom");

        var result = await AcmeRestore.RunAsync(["--source", $"s3://{bucket}/acme.json", "--file", file, "--metrics-file", metrics]);

        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Equal("""{"letsencrypt":{"Certificates":null}}""", File.ReadAllText(file));
        Assert.Equal(written, File.GetLastWriteTimeUtc(file));
        Assert.Equal(AcmeRestore.Mode0600, File.GetUnixFileMode(file));
        Assert.Contains($"{file} is present", result.Stderr);
        Assert.Empty(AcmeRestore.Lines(result.Stderr, "WRN"));
        AcmeRestore.AssertOutcome(metrics, "present");
    }

    [Fact]
    public async Task A_present_file_that_is_not_json_or_too_open_is_left_untouched_with_warnings()
    {
        var bucket = await AcmeRestore.BucketWithAsync(AcmeRestore.SampleAcmeJson);
        using var dir = new TempDir("acme");
        var file = dir.Write("acme.json", "{\"letsencrypt\": {");
        File.SetUnixFileMode(file, AcmeRestore.Mode0644);
        var metrics = dir.Combine("acme.prom");

        var result = await AcmeRestore.RunAsync(["--source", $"s3://{bucket}/acme.json", "--file", file, "--metrics-file", metrics]);

        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Equal("{\"letsencrypt\": {", File.ReadAllText(file));
        Assert.Equal(AcmeRestore.Mode0644, File.GetUnixFileMode(file));
        var warnings = AcmeRestore.Lines(result.Stderr, "WRN");
        Assert.Contains(warnings, w => w.Contains("is not a valid acme.json") && w.Contains("delete it to restore"));
        Assert.Contains(warnings, w => w.Contains("mode 0644") && w.Contains("chmod 600"));
        AcmeRestore.AssertOutcome(metrics, "present");
    }

    [Fact]
    public async Task A_missing_backup_is_logged_and_the_command_still_starts()
    {
        var bucket = await AcmeRestore.BucketWithAsync(null);
        using var dir = new TempDir("acme");
        var file = dir.Combine("acme.json");
        var metrics = dir.Combine("acme.prom");

        var result = await AcmeRestore.RunAsync(["--source", $"s3://{bucket}/acme.json", "--file", file, "--metrics-file", metrics, "--required",
            "--", "sh", "-c", "echo traefik-started"]);

        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Equal("traefik-started\n", result.Stdout);
        Assert.Contains($"no backup at s3://{bucket}/acme.json yet", result.Stderr);
        Assert.False(File.Exists(file));
        AcmeRestore.AssertOutcome(metrics, "no_backup");
    }

    [Theory]
    [InlineData("{\"letsencrypt\": {\"Account\": ", "it is not valid JSON")]
    [InlineData("[1, 2, 3]", "JSON array, not an object")]
    [InlineData("", "it is empty")]
    public async Task A_backup_that_is_not_a_json_object_is_not_installed_and_the_command_still_starts(string content, string reason)
    {
        var bucket = await AcmeRestore.BucketWithAsync(Encoding.UTF8.GetBytes(content));
        using var dir = new TempDir("acme");
        var file = dir.Combine("acme", "acme.json");
        var metrics = dir.Combine("acme.prom");

        var result = await AcmeRestore.RunAsync(["--source", $"s3://{bucket}/acme.json", "--file", file, "--metrics-file", metrics, "--required",
            "--", "sh", "-c", "echo traefik-started"]);

        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Equal("traefik-started\n", result.Stdout);
        var warning = Assert.Single(AcmeRestore.Lines(result.Stderr, "WRN"));
        Assert.Contains($"s3://{bucket}/acme.json is not a valid acme.json", warning);
        Assert.Contains(reason, warning);
        Assert.Contains("not installed", warning);
        Assert.False(File.Exists(file));
        Assert.False(Directory.Exists(Path.GetDirectoryName(file)) && Directory.EnumerateFileSystemEntries(Path.GetDirectoryName(file)!).Any());
        AcmeRestore.AssertOutcome(metrics, "invalid");
    }

    [Fact]
    public async Task Unreachable_S3_is_retried_until_the_timeout_then_the_command_starts()
    {
        using var dir = new TempDir("acme");
        var file = dir.Combine("acme.json");
        var metrics = dir.Combine("acme.prom");
        var env = S3Server.Shared.Environment(("S3_ENDPOINT", AcmeRestore.ClosedEndpoint()));

        var result = await AcmeRestore.RunAsync(["--source", "s3://backups/acme.json", "--file", file, "--metrics-file", metrics, "--timeout", "3s",
            "--", "sh", "-c", "echo traefik-started"], env);

        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Equal("traefik-started\n", result.Stdout);
        // Waits of 0.5 s and 1 s; the next 2 s wait would pass the 3 s deadline (three attempts unless the machine is very slow).
        var retries = AcmeRestore.Lines(result.Stderr, "WRN");
        Assert.True(retries.Length >= 2, result.ToString());
        Assert.All(retries, r => Assert.Contains("cannot reach the S3 endpoint", r));
        Assert.Contains("attempt 1 failed", retries[0]);
        Assert.Contains("retrying in 500ms", retries[0]);
        Assert.Contains("retrying in 1s", retries[1]);
        var error = Assert.Single(AcmeRestore.Lines(result.Stderr, "ERR"));
        Assert.Contains($"gave up after {retries.Length + 1} attempts", error);
        Assert.Contains("starting the command without it", error);
        Assert.False(File.Exists(file));
        AcmeRestore.AssertOutcome(metrics, "failed");
    }

    [Fact]
    public async Task Unreachable_S3_with_required_exits_6_without_starting_the_command()
    {
        using var dir = new TempDir("acme");
        var file = dir.Combine("acme.json");
        var metrics = dir.Combine("acme.prom");
        var env = S3Server.Shared.Environment(("S3_ENDPOINT", AcmeRestore.ClosedEndpoint()));

        var result = await AcmeRestore.RunAsync(["--source", "s3://backups/acme.json", "--file", file, "--metrics-file", metrics, "--timeout", "1s", "--required",
            "--", "sh", "-c", "echo traefik-started"], env);

        Assert.True(result.ExitCode == 6, result.ToString());
        Assert.Equal("", result.Stdout);
        var error = Assert.Single(AcmeRestore.Lines(result.Stderr, "ERR"));
        Assert.Contains("cannot reach the S3 endpoint", error);
        Assert.Contains("--required: not starting the command", error);
        Assert.False(File.Exists(file));
        AcmeRestore.AssertOutcome(metrics, "failed");
    }

    [Fact]
    public async Task An_endpoint_that_never_answers_is_given_up_at_the_timeout()
    {
        // Accepts connections and never answers: each attempt must be cut at the deadline, not at the client's 120 s.
        using var silent = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        silent.Start();
        var accepted = new System.Collections.Concurrent.ConcurrentBag<System.Net.Sockets.TcpClient>();
        _ = Task.Run(async () =>
        {
            try { while (true) accepted.Add(await silent.AcceptTcpClientAsync()); } catch (Exception) { }
        });
        using var dir = new TempDir("acme");
        var metrics = dir.Combine("acme.prom");
        var env = S3Server.Shared.Environment(("S3_ENDPOINT", $"http://127.0.0.1:{((System.Net.IPEndPoint)silent.LocalEndpoint).Port}"));

        var result = await AcmeRestore.RunAsync(["--source", "s3://backups/acme.json", "--file", dir.Combine("acme.json"), "--metrics-file", metrics,
            "--timeout", "2s", "--required"], env);

        Assert.True(result.ExitCode == 6, result.ToString());
        Assert.Contains("within --timeout 2s", Assert.Single(AcmeRestore.Lines(result.Stderr, "ERR")));
        AcmeRestore.AssertOutcome(metrics, "failed");
        silent.Stop();
        foreach (var client in accepted) client.Dispose();
    }

    [Fact]
    public async Task SIGTERM_while_waiting_for_S3_stops_without_starting_the_command()
    {
        using var dir = new TempDir("acme");
        var metrics = dir.Combine("acme.prom");
        var env = S3Server.Shared.Environment(("S3_ENDPOINT", AcmeRestore.ClosedEndpoint()));
        using var process = System.Diagnostics.Process.Start(ProcessRunner.StartInfo(AcmeRestore.Binary,
            ["--source", "s3://backups/acme.json", "--file", dir.Combine("acme.json"), "--metrics-file", metrics, "--timeout", "5m",
             "--", "sh", "-c", "echo traefik-started"], env))!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(1));
        try
        {
            // Retrying: the first warning says so.
            while (await process.StandardError.ReadLineAsync(timeout.Token) is { } line && !line.Contains("retrying in")) { }
            Assert.Equal(0, Libc.Kill(process.Id, Libc.SIGTERM));
            var rest = await process.StandardError.ReadToEndAsync(timeout.Token);
            await process.WaitForExitAsync(timeout.Token);
            Assert.True(process.ExitCode == 143, rest);
            Assert.Contains("stopped by SIGTERM", rest);
            Assert.Equal("", await stdout);
            AcmeRestore.AssertOutcome(metrics, "failed");
        }
        finally
        {
            if (!process.HasExited) process.Kill();
        }
    }

    [Fact]
    public async Task Wrong_credentials_are_not_retried_and_never_logged()
    {
        var bucket = await AcmeRestore.BucketWithAsync(AcmeRestore.SampleAcmeJson);
        using var dir = new TempDir("acme");
        var file = dir.Combine("acme.json");
        var env = S3Server.Shared.Environment(("S3_SECRET_KEY", "wrong-secret-acme-restore-4711"));

        // A 10 minute --timeout: retrying would outlast the test's own 3 minute limit.
        var result = await AcmeRestore.RunAsync(["--source", $"s3://{bucket}/acme.json", "--file", file, "--timeout", "10m", "--required", "--debug",
            "--", "sh", "-c", "echo traefik-started"], env);

        Assert.True(result.ExitCode == 7, result.ToString());
        Assert.Equal("", result.Stdout);
        Assert.Empty(AcmeRestore.Lines(result.Stderr, "WRN"));
        Assert.Contains("rejected the credentials", result.Stderr);
        Assert.DoesNotContain("wrong-secret-acme-restore-4711", result.Output);
        Assert.DoesNotContain(S3Server.Shared.AccessKey, result.Output);
        Assert.False(File.Exists(file));
    }

    [Fact]
    public async Task A_missing_bucket_fails_with_required_and_is_logged_without_it()
    {
        using var dir = new TempDir("acme");
        var file = dir.Combine("acme.json");
        string[] args = ["--source", "s3://no-such-bucket-acme-restore/acme.json", "--file", file, "--", "sh", "-c", "echo traefik-started"];

        var required = await AcmeRestore.RunAsync(["--required", .. args]);
        Assert.True(required.ExitCode == 8, required.ToString());
        Assert.Equal("", required.Stdout);
        Assert.Contains("bucket 'no-such-bucket-acme-restore' does not exist", required.Stderr);

        var optional = await AcmeRestore.RunAsync(args);
        Assert.True(optional.ExitCode == 0, optional.ToString());
        Assert.Equal("traefik-started\n", optional.Stdout);
        Assert.Contains("bucket 'no-such-bucket-acme-restore' does not exist", Assert.Single(AcmeRestore.Lines(optional.Stderr, "ERR")));
        Assert.False(File.Exists(file));
    }

    [Fact]
    public async Task A_file_that_cannot_be_written_is_a_local_error()
    {
        var bucket = await AcmeRestore.BucketWithAsync(AcmeRestore.SampleAcmeJson);
        using var dir = new TempDir("acme");
        var blocker = dir.Write("not-a-directory", "x");
        var file = Path.Combine(blocker, "acme.json");
        var metrics = dir.Combine("acme.prom");

        var result = await AcmeRestore.RunAsync(["--source", $"s3://{bucket}/acme.json", "--file", file, "--metrics-file", metrics, "--required"]);

        Assert.True(result.ExitCode == 12, result.ToString());
        Assert.Contains($"could not restore {file}: cannot write {file}", Assert.Single(AcmeRestore.Lines(result.Stderr, "ERR")));
        Assert.Equal("x", File.ReadAllText(blocker));
        AcmeRestore.AssertOutcome(metrics, "failed");
    }

    [Fact]
    public async Task Metrics_pass_promtool_for_every_kind_of_run()
    {
        var bucket = await AcmeRestore.BucketWithAsync(AcmeRestore.SampleAcmeJson);
        using var dir = new TempDir("acme");
        var file = dir.Combine("acme.json");
        var metrics = dir.Combine("acme.prom");
        var before = DateTimeOffset.UtcNow.ToUnixTimeSeconds();

        var restored = await AcmeRestore.RunAsync(["--source", $"s3://{bucket}/acme.json", "--file", file, "--metrics-file", metrics]);
        Assert.True(restored.ExitCode == 0, restored.ToString());
        await AssertPromtoolAcceptsAsync(metrics);
        AcmeRestore.AssertOutcome(metrics, "restored");
        var timestamp = TextfileMetrics.ReadSample(metrics, "acme_restore_last_run_timestamp_seconds");
        Assert.True(timestamp >= before - 1 && timestamp <= DateTimeOffset.UtcNow.ToUnixTimeSeconds() + 1, $"timestamp {timestamp}");
        Assert.True(TextfileMetrics.ReadSample(metrics, "acme_restore_last_run_duration_seconds") >= 0);
        Assert.Equal(AcmeRestore.Mode0644, File.GetUnixFileMode(metrics));

        // METRICS_FILE works like --metrics-file; a failed run overwrites the outcome.
        var env = S3Server.Shared.Environment(("S3_ENDPOINT", AcmeRestore.ClosedEndpoint()), ("METRICS_FILE", metrics));
        var failed = await AcmeRestore.RunAsync(["--source", $"s3://{bucket}/acme.json", "--file", dir.Combine("other.json"), "--timeout", "1s"], env);
        Assert.True(failed.ExitCode == 0, failed.ToString());
        await AssertPromtoolAcceptsAsync(metrics);
        AcmeRestore.AssertOutcome(metrics, "failed");
    }

    private static async Task AssertPromtoolAcceptsAsync(string metrics)
    {
        var check = await ProcessRunner.RunAsync("sh", ["-c", $"promtool check metrics < '{metrics}'"]);
        Assert.True(check.ExitCode == 0 && check.Output.Trim() == "", check + "\n" + File.ReadAllText(metrics));
    }

    [Fact]
    public async Task Secrets_never_appear_in_the_logs_of_a_restore_even_with_debug_and_json()
    {
        var bucket = await AcmeRestore.BucketWithAsync(AcmeRestore.SampleAcmeJson);
        using var dir = new TempDir("acme");
        var secretFile = dir.Write("secret", S3Server.Shared.SecretKey + "\n");
        var env = S3Server.Shared.Environment(("S3_SECRET_KEY", null), ("S3_SECRET_KEY_FILE", secretFile));

        foreach (var format in new[] { "--debug", "--json" })
        {
            var file = dir.Combine(format.TrimStart('-'), "acme.json");
            var result = await AcmeRestore.RunAsync(["--source", $"s3://{bucket}/acme.json", "--file", file, format, "--", "sh", "-c", "echo traefik-started"], env);
            Assert.True(result.ExitCode == 0, result.ToString());
            Assert.True(File.Exists(file));
            Assert.DoesNotContain(S3Server.Shared.SecretKey, result.Output);
            Assert.DoesNotContain(S3Server.Shared.AccessKey, result.Output);
        }
    }

    [Fact]
    public async Task A_missing_setting_stops_before_anything_even_when_the_file_is_present()
    {
        using var dir = new TempDir("acme");
        var file = dir.Write("acme.json", "{}");
        var env = S3Server.Shared.Environment(("S3_ENDPOINT", null));

        var result = await AcmeRestore.RunAsync(["--source", "s3://backups/acme.json", "--file", file, "--", "sh", "-c", "echo traefik-started"], env);

        Assert.True(result.ExitCode == 3, result.ToString());
        Assert.Equal("", result.Stdout);
        Assert.Contains("S3_ENDPOINT", Assert.Single(result.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries)));
        Assert.Equal("{}", File.ReadAllText(file));
    }

    [Theory]
    [InlineData("--timeout", "60", "is not a duration")]
    [InlineData("--timeout", "0s", "must be more than 0")]
    [InlineData("--source", "s3://backups/traefik/", "names a folder")]
    [InlineData("--scrub", "S3_ENDPOINT=x", "is not an environment variable name")]
    public async Task Bad_arguments_are_one_line_and_exit_code_2_and_start_nothing(string option, string value, string message)
    {
        using var dir = new TempDir("acme");
        string[] args = ["--source", "s3://backups/acme.json", "--file", dir.Combine("acme.json")];
        args = option == "--source" ? ["--source", value, "--file", dir.Combine("acme.json")] : [.. args, option, value];

        var result = await AcmeRestore.RunAsync([.. args, "--", "sh", "-c", "echo traefik-started"]);

        Assert.True(result.ExitCode == 2, result.ToString());
        Assert.Equal("", result.Stdout);
        Assert.Contains(message, Assert.Single(result.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries)));
        Assert.False(File.Exists(dir.Combine("acme.json")));
    }

    [Fact]
    public async Task A_variable_both_scrubbed_and_kept_is_a_usage_error()
    {
        using var dir = new TempDir("acme");
        var result = await AcmeRestore.RunAsync(["--source", "s3://backups/acme.json", "--file", dir.Combine("acme.json"),
            "--scrub", "AWS_ACCESS_KEY_ID", "--keep", "AWS_ACCESS_KEY_ID", "--", "true"]);
        Assert.True(result.ExitCode == 2, result.ToString());
        Assert.Contains("AWS_ACCESS_KEY_ID is given to both --scrub and --keep", result.Stderr);
    }

    [Theory]
    [InlineData("1m30s")]
    [InlineData("1.5s")]
    [InlineData("500ms")]
    [InlineData("2m")]
    public async Task Go_style_durations_are_accepted(string timeout)
    {
        var bucket = await AcmeRestore.BucketWithAsync(AcmeRestore.SampleAcmeJson);
        using var dir = new TempDir("acme");
        var result = await AcmeRestore.RunAsync(["--source", $"s3://{bucket}/acme.json", "--file", dir.Combine("acme.json"), "--timeout", timeout]);
        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.True(File.Exists(dir.Combine("acme.json")));
    }
}
