using System.Diagnostics;
using System.Text;
using System.Text.Json;
using InfraTools.Monitoring;

namespace InfraTools.Tests;

/// <summary>backup push and restore: the AOT binary against the real S3 server (and a real Prometheus).</summary>
public class BackupTests
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

    private static Dictionary<string, byte[]> Tree(string root) =>
        Directory.EnumerateFiles(root, "*", SearchOption.AllDirectories)
            .ToDictionary(f => Path.GetRelativePath(root, f), File.ReadAllBytes, StringComparer.Ordinal);

    private static void AssertSameTree(string expectedRoot, string actualRoot)
    {
        var expected = Tree(expectedRoot);
        var actual = Tree(actualRoot);
        Assert.Equal(expected.Keys.Order(StringComparer.Ordinal), actual.Keys.Order(StringComparer.Ordinal));
        foreach (var (path, content) in expected) Assert.True(content.AsSpan().SequenceEqual(actual[path]), $"{path} differs");
    }

    private static async Task<List<string>> KeysAsync(string bucket, string prefix = "")
    {
        using var client = Server.Client();
        return await client.ListAsync(bucket, prefix).Select(o => o.Key).ToListAsync();
    }

    /// <summary>Nested directories, empty files, a multipart-sized file and non-ASCII names.</summary>
    private static void WriteSampleTree(string root)
    {
        var random = new Random(11);
        Directory.CreateDirectory(Path.Combine(root, "a", "b", "c"));
        Directory.CreateDirectory(Path.Combine(root, "ünïcødé dir"));
        File.WriteAllBytes(Path.Combine(root, "empty.txt"), []);
        File.WriteAllBytes(Path.Combine(root, "a", "b", "c", "empty-deep"), []);
        File.WriteAllText(Path.Combine(root, "ünïcødé dir", "çafé ☕.txt"), "non-ascii names");
        for (var i = 0; i < 40; i++)
        {
            var data = new byte[random.Next(1, 5000)];
            random.NextBytes(data);
            File.WriteAllBytes(Path.Combine(root, "a", i % 2 == 0 ? "b" : "", $"file-{i}.bin"), data);
        }
        var big = new byte[21 * 1024 * 1024 + 7]; // above the multipart threshold, two parts
        random.NextBytes(big);
        File.WriteAllBytes(Path.Combine(root, "a", "big.bin"), big);
    }

    [Fact]
    public async Task Push_then_restore_round_trips_a_tree_byte_for_byte_and_a_second_push_uploads_nothing()
    {
        var bucket = await Server.NewBucketAsync("roundtrip");
        using var dir = new TempDir("backup");
        var source = dir.Combine("source");
        WriteSampleTree(source);
        var metrics = dir.Combine("monitoring", "backup-tree.prom");
        var common = new[] { "--state-dir", dir.Combine("state"), "--metrics-file", metrics, "--name", "tree" };

        await BackupOk(["push", source, $"s3://{bucket}/tree/", .. common]);
        Assert.Equal(44, TextfileMetrics.ReadSample(metrics, "backup_last_run_uploaded_files", "name=\"tree\""));
        Assert.Equal(1, TextfileMetrics.ReadSample(metrics, "backup_last_run_success", "name=\"tree\""));
        using (var client = Server.Client())
            Assert.EndsWith("-2", (await client.StatAsync(bucket, "tree/a/big.bin")).ETag);

        var second = await BackupOk(["push", source, $"s3://{bucket}/tree/", .. common]);
        Assert.Equal(0, TextfileMetrics.ReadSample(metrics, "backup_last_run_uploaded_files", "name=\"tree\""));
        Assert.Contains("0 uploaded", second.Stderr);
        var check = await ProcessRunner.RunAsync("sh", ["-c", $"promtool check metrics < {metrics}"]);
        Assert.True(check.ExitCode == 0, check.ToString());

        var restored = dir.Combine("restored");
        await BackupOk("restore", $"s3://{bucket}/tree/", restored);
        AssertSameTree(source, restored);
        Assert.True(Directory.Exists(Path.Combine(restored, "a", "b", "c")));
    }

    [Fact]
    public async Task Only_changed_files_are_uploaded_and_delete_removes_what_is_gone()
    {
        var bucket = await Server.NewBucketAsync("changes");
        using var dir = new TempDir("backup");
        var source = dir.Combine("source");
        WriteSampleTree(source);
        var common = new[] { "--state-dir", dir.Combine("state"), "--delete" };
        await BackupOk(["push", source, $"s3://{bucket}/t/", .. common]);

        var sameSize = Path.Combine(source, "a", "file-1.bin");
        var bytes = File.ReadAllBytes(sameSize);
        bytes[0] ^= 0xFF;
        File.WriteAllBytes(sameSize, bytes);
        File.Delete(Path.Combine(source, "a", "b", "file-0.bin"));
        File.WriteAllText(Path.Combine(source, "new.txt"), "new");

        var result = await BackupOk(["push", source, $"s3://{bucket}/t/", .. common, "--debug"]);
        Assert.Contains("2 uploaded", result.Stderr);
        Assert.Contains("1 deleted", result.Stderr);
        Assert.DoesNotContain("t/a/b/file-0.bin", await KeysAsync(bucket));
        var restored = dir.Combine("restored");
        await BackupOk("restore", $"s3://{bucket}/t/", restored);
        AssertSameTree(source, restored);
    }

    [Fact]
    public async Task Without_a_manifest_unchanged_files_are_recognised_by_checksum()
    {
        var bucket = await Server.NewBucketAsync("nostate");
        using var dir = new TempDir("backup");
        var source = dir.Combine("source");
        WriteSampleTree(source);
        await BackupOk("push", source, $"s3://{bucket}/t/", "--state-dir", dir.Combine("state-1"));
        var result = await BackupOk("push", source, $"s3://{bucket}/t/", "--state-dir", dir.Combine("state-2"));
        Assert.Contains("0 uploaded", result.Stderr);
        Assert.Contains("44 unchanged", result.Stderr);
    }

    [Fact]
    public async Task An_empty_source_with_delete_is_refused_and_the_backup_kept()
    {
        var bucket = await Server.NewBucketAsync("emptysrc");
        using var dir = new TempDir("backup");
        var source = dir.Combine("source");
        WriteSampleTree(source);
        await BackupOk("push", source, $"s3://{bucket}/t/", "--state-dir", dir.Combine("state"), "--delete");
        var before = await KeysAsync(bucket);
        var empty = dir.Combine("empty");
        Directory.CreateDirectory(empty);

        var result = await Backup("push", empty, $"s3://{bucket}/t/", "--state-dir", dir.Combine("state"), "--delete");
        Assert.Equal(5, result.ExitCode);
        Assert.Contains("refusing to delete the backup", Assert.Single(result.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries)));
        Assert.Equal(before, await KeysAsync(bucket));

        var missing = await Backup("push", dir.Combine("nope"), $"s3://{bucket}/t/");
        Assert.Equal(5, missing.ExitCode);
        Assert.Contains("does not exist", missing.Stderr);
    }

    [Fact]
    public async Task A_half_written_acme_json_is_never_uploaded_and_never_replaces_the_good_copy()
    {
        var bucket = await Server.NewBucketAsync("acme");
        using var dir = new TempDir("backup");
        var acme = dir.Combine("acme", "acme.json");
        Directory.CreateDirectory(Path.GetDirectoryName(acme)!);
        var good = """{"letsencrypt":{"Account":{"Email":"ops@example.org"},"Certificates":[{"domain":{"main":"example.org"}}]}}""";
        File.WriteAllText(acme, good);
        var target = $"s3://{bucket}/acme/acme.json";
        var metrics = dir.Combine("backup-acme.prom");
        await BackupOk("push", "--name", "acme", "--require-json", "--metrics-file", metrics, acme, target);
        var lastSuccess = TextfileMetrics.ReadSample(metrics, "backup_last_success_timestamp_seconds", "name=\"acme\"");

        foreach (var broken in new[] { "", good[..40], "[1,2,3]" })
        {
            File.WriteAllText(acme, broken);
            var result = await Backup("push", "--name", "acme", "--require-json", "--metrics-file", metrics, acme, target);
            Assert.Equal(5, result.ExitCode);
            Assert.Contains("not uploaded, the copy in S3 was left as it is", result.Stderr);
            Assert.Equal(0, TextfileMetrics.ReadSample(metrics, "backup_last_run_success", "name=\"acme\""));
            Assert.Equal(lastSuccess, TextfileMetrics.ReadSample(metrics, "backup_last_success_timestamp_seconds", "name=\"acme\""));
        }
        var restored = dir.Combine("restored.json");
        await BackupOk("restore", target, restored);
        Assert.Equal(good, File.ReadAllText(restored));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(restored));
    }

    [Fact]
    public async Task A_file_caught_mid_write_is_read_again_until_it_parses()
    {
        var bucket = await Server.NewBucketAsync("midwrite");
        using var dir = new TempDir("backup");
        var acme = dir.Combine("acme.json");
        var complete = """{"Account":{"Email":"a@b.c"},"Certificates":[]}""";
        File.WriteAllText(acme, complete[..20]);
        var push = ProcessRunner.RunAsync(RepoPaths.Tool("backup"), ["push", "--require-json", acme, $"s3://{bucket}/acme.json"], Server.Environment());
        await Task.Delay(1500); // Traefik finishes writing while backup waits between attempts
        File.WriteAllText(acme, complete);
        var result = await push;
        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Contains("is not valid JSON", result.Stderr);
        var restored = dir.Combine("back.json");
        await BackupOk("restore", $"s3://{bucket}/acme.json", restored);
        Assert.Equal(complete, File.ReadAllText(restored));
    }

    [Fact]
    public async Task Snapshots_are_timestamped_pruned_and_only_complete_ones_are_restored()
    {
        var bucket = await Server.NewBucketAsync("snapshots");
        using var dir = new TempDir("backup");
        var source = dir.Combine("source");
        Directory.CreateDirectory(source);
        using var client = Server.Client();
        // An interrupted push from long ago: no completion marker.
        await client.PutAsync(bucket, "snap/20000101T000000Z/partial.txt", new MemoryStream("x"u8.ToArray()), 1);

        var versions = new List<string>();
        for (var i = 0; i < 3; i++)
        {
            File.WriteAllText(Path.Combine(source, "data.txt"), $"version {i}");
            versions.Add($"version {i}");
            await BackupOk("push", source, $"s3://{bucket}/snap/", "--snapshot", "--keep-last", "2");
            await Task.Delay(1100); // snapshot names have one-second resolution
        }
        var names = (await KeysAsync(bucket, "snap/")).Select(k => k.Split('/')[1]).Distinct().ToList();
        Assert.Equal(2, names.Count);
        Assert.DoesNotContain("20000101T000000Z", names);

        var latest = dir.Combine("latest");
        await BackupOk("restore", $"s3://{bucket}/snap/", latest);
        Assert.Equal("version 2", File.ReadAllText(Path.Combine(latest, "data.txt")));
        Assert.Equal(["data.txt"], Directory.GetFiles(latest).Select(Path.GetFileName)); // not the marker

        var older = dir.Combine("older");
        await BackupOk("restore", "--snapshot", names[0], $"s3://{bucket}/snap/", older);
        Assert.Equal("version 1", File.ReadAllText(Path.Combine(older, "data.txt")));

        await client.PutAsync(bucket, "snap/29990101T000000Z/partial.txt", new MemoryStream("x"u8.ToArray()), 1);
        var incomplete = await Backup("restore", "--snapshot", "29990101T000000Z", $"s3://{bucket}/snap/", dir.Combine("x"));
        Assert.Equal(5, incomplete.ExitCode);
        Assert.Contains("incomplete", incomplete.Stderr);
        var stillLatest = dir.Combine("latest-again");
        await BackupOk("restore", "--snapshot", "latest", $"s3://{bucket}/snap/", stillLatest);
        Assert.Equal("version 2", File.ReadAllText(Path.Combine(stillLatest, "data.txt")));
    }

    [Fact]
    public async Task Restore_refuses_a_non_empty_destination_unless_forced()
    {
        var bucket = await Server.NewBucketAsync("restoreguard");
        using var dir = new TempDir("backup");
        var source = dir.Combine("source");
        Directory.CreateDirectory(source);
        File.WriteAllText(Path.Combine(source, "a.txt"), "from backup");
        await BackupOk("push", source, $"s3://{bucket}/t/");
        var dest = dir.Combine("dest");
        Directory.CreateDirectory(dest);
        File.WriteAllText(Path.Combine(dest, "a.txt"), "local");
        File.WriteAllText(Path.Combine(dest, "other.txt"), "kept");

        var refused = await Backup("restore", $"s3://{bucket}/t/", dest);
        Assert.Equal(5, refused.ExitCode);
        Assert.Contains("is not empty", refused.Stderr);
        Assert.Equal("local", File.ReadAllText(Path.Combine(dest, "a.txt")));

        await BackupOk("restore", "--force", $"s3://{bucket}/t/", dest);
        Assert.Equal("from backup", File.ReadAllText(Path.Combine(dest, "a.txt")));
        Assert.Equal("kept", File.ReadAllText(Path.Combine(dest, "other.txt")));
    }

    [Fact]
    public async Task Secrets_never_appear_in_logs_and_failures_are_one_line()
    {
        var bucket = await Server.NewBucketAsync("secrets");
        using var dir = new TempDir("backup");
        var file = dir.Write("f.txt", "x");
        var env = Server.Environment(("S3_SECRET_KEY", "backup-wrong-secret-value"));
        var metrics = dir.Combine("b.prom");
        var result = await Backup(env, "push", file, $"s3://{bucket}/f.txt", "--debug", "--metrics-file", metrics, "--name", "f");
        Assert.Equal(7, result.ExitCode);
        Assert.DoesNotContain("backup-wrong-secret-value", result.Output);
        Assert.Equal(0, TextfileMetrics.ReadSample(metrics, "backup_last_run_success", "name=\"f\""));

        var ok = await Backup(Server.Environment(), "push", file, $"s3://{bucket}/f.txt", "--debug", "--json");
        Assert.Equal(0, ok.ExitCode);
        Assert.DoesNotContain(Server.SecretKey, ok.Output);
        Assert.All(ok.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries), line => JsonDocument.Parse(line).Dispose());
    }

    [Fact]
    public async Task A_Prometheus_snapshot_is_backed_up_and_its_restore_serves_the_old_samples()
    {
        var bucket = await Server.NewBucketAsync("prometheus");
        using var dir = new TempDir("prom");
        var data = dir.Combine("data");
        var port = Net.FreePort();
        var config = dir.Write("prometheus.yml", $$"""
            global:
              scrape_interval: 1s
            scrape_configs:
              - job_name: self
                static_configs:
                  - targets: ['127.0.0.1:{{port}}']
            """);
        // One persisted block from two days ago (backfilled), beside the head that each snapshot cuts anew.
        var backfillTime = (DateTimeOffset.UtcNow.ToUnixTimeSeconds() - 2 * 86400) / 7200 * 7200;
        var openMetrics = dir.Write("backfill.om", "# TYPE backfilled gauge\n" +
            string.Concat(Enumerable.Range(0, 120).Select(m => $"backfilled{{series=\"a\"}} {m} {backfillTime + 60 * m}\n")) + "# EOF\n");
        var backfill = await ProcessRunner.RunAsync("promtool", ["tsdb", "create-blocks-from", "openmetrics", "--quiet", openMetrics, data], timeout: TimeSpan.FromMinutes(2));
        Assert.True(backfill.ExitCode == 0, backfill.ToString());
        var block = Path.GetFileName(Assert.Single(Directory.GetDirectories(data)));
        var blockBytes = Directory.EnumerateFiles(Path.Combine(data, block), "*", SearchOption.AllDirectories).Sum(f => new FileInfo(f).Length);
        var metrics = dir.Combine("backup-prometheus.prom");
        double sampleTime;
        using (var prometheus = StartPrometheus(config, data, port, adminApi: true))
        {
            try
            {
                sampleTime = await WaitForSampleAsync(port);
                var result = await BackupOk("push", "--name", "prometheus", "--prometheus-snapshot", $"http://127.0.0.1:{port}", "--snapshot",
                    "--metrics-file", metrics, data, $"s3://{bucket}/prometheus/");
                Assert.Contains("Prometheus made snapshot", result.Stderr);
                Assert.Empty(Directory.GetDirectories(Path.Combine(data, "snapshots"))); // deleted after the upload
                var firstKeys = await KeysAsync(bucket, "prometheus/");
                var firstManifest = Assert.Single(firstKeys, k => k.StartsWith("prometheus/snapshots/", StringComparison.Ordinal));
                Assert.Contains($"prometheus/blocks/{block}/index", firstKeys);

                // The next day's push (a second later here) uploads only the new head cut: the backfilled block is reused.
                await Task.Delay(1100);
                await BackupOk("push", "--name", "prometheus", "--prometheus-snapshot", $"http://127.0.0.1:{port}", "--snapshot", "--keep-last", "1",
                    "--metrics-file", metrics, data, $"s3://{bucket}/prometheus/");
                var lines = await File.ReadAllLinesAsync(metrics);
                Assert.Contains($"backup_last_run_reused_bytes{{name=\"prometheus\"}} {blockBytes}", lines);
                Assert.Contains("backup_last_run_pruned_snapshots{name=\"prometheus\"} 1", lines);
                var uploaded = double.Parse(lines.Single(l => l.StartsWith("backup_last_run_uploaded_bytes{", StringComparison.Ordinal)).Split(' ')[1], System.Globalization.CultureInfo.InvariantCulture);
                Assert.InRange(uploaded, 1, double.Parse(lines.Single(l => l.StartsWith("backup_snapshot_bytes{", StringComparison.Ordinal)).Split(' ')[1], System.Globalization.CultureInfo.InvariantCulture) - blockBytes);
                var secondKeys = await KeysAsync(bucket, "prometheus/");
                Assert.DoesNotContain(firstManifest, secondKeys); // pruned: --keep-last 1
                Assert.Single(secondKeys, k => k.StartsWith("prometheus/snapshots/", StringComparison.Ordinal));
                Assert.Contains($"prometheus/blocks/{block}/index", secondKeys); // still named by the kept snapshot
            }
            finally
            {
                prometheus.Kill();
                await prometheus.WaitForExitAsync();
            }
        }

        var restored = dir.Combine("restored");
        await BackupOk("restore", $"s3://{bucket}/prometheus/", restored);
        var emptyConfig = dir.Write("empty.yml", "global:\n  scrape_interval: 1m\n");
        var port2 = Net.FreePort();
        using var second = StartPrometheus(emptyConfig, restored, port2, adminApi: false);
        try
        {
            await Net.GetWhenUpAsync($"http://127.0.0.1:{port2}/-/ready", TimeSpan.FromSeconds(60));
            var answer = await Net.GetWhenUpAsync($"http://127.0.0.1:{port2}/api/v1/query?query=up&time={sampleTime.ToString(System.Globalization.CultureInfo.InvariantCulture)}", TimeSpan.FromSeconds(10));
            using var json = JsonDocument.Parse(answer);
            var series = json.RootElement.GetProperty("data").GetProperty("result");
            Assert.Equal(1, series.GetArrayLength());
            Assert.Equal("self", series[0].GetProperty("metric").GetProperty("job").GetString());
            var backfilled = await Net.GetWhenUpAsync($"http://127.0.0.1:{port2}/api/v1/query?query=backfilled&time={backfillTime + 60 * 30}", TimeSpan.FromSeconds(10));
            using var old = JsonDocument.Parse(backfilled);
            Assert.Equal("30", old.RootElement.GetProperty("data").GetProperty("result")[0].GetProperty("value")[1].GetString());
        }
        finally
        {
            second.Kill();
            await second.WaitForExitAsync();
        }
    }

    [Fact]
    public async Task A_refused_snapshot_request_is_a_clear_error()
    {
        var bucket = await Server.NewBucketAsync("promdown");
        using var dir = new TempDir("prom");
        var result = await Backup("push", "--prometheus-snapshot", $"http://127.0.0.1:{Net.FreePort()}", dir.Path, $"s3://{bucket}/p/");
        Assert.Equal(13, result.ExitCode);
        Assert.Contains("cannot reach Prometheus", Assert.Single(result.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries)));
    }

    private static Process StartPrometheus(string config, string data, int port, bool adminApi)
    {
        var admin = adminApi ? "--web.enable-admin-api" : "";
        var log = Path.Combine(Path.GetDirectoryName(config)!, $"prometheus-{port}.log");
        return Process.Start(ProcessRunner.StartInfo("sh", ["-c",
            $"exec prometheus --config.file={config} --storage.tsdb.path={data} --web.listen-address=127.0.0.1:{port} {admin} > {log} 2>&1"]))!;
    }

    /// <summary>Waits until Prometheus has scraped itself a few times; returns the time of a stored `up` sample.</summary>
    private static async Task<double> WaitForSampleAsync(int port)
    {
        await Net.GetWhenUpAsync($"http://127.0.0.1:{port}/-/ready", TimeSpan.FromSeconds(60));
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (DateTime.UtcNow < deadline)
        {
            var answer = await Net.GetWhenUpAsync($"http://127.0.0.1:{port}/api/v1/query?query=up[1m]", TimeSpan.FromSeconds(10));
            using var json = JsonDocument.Parse(answer);
            var result = json.RootElement.GetProperty("data").GetProperty("result");
            if (result.GetArrayLength() > 0 && result[0].GetProperty("values").GetArrayLength() >= 3)
                return result[0].GetProperty("values")[0][0].GetDouble();
            await Task.Delay(500);
        }
        throw new TimeoutException("Prometheus stored no samples of its own scrape within 60 s");
    }
}
