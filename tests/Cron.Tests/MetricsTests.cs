using System.Globalization;

namespace InfraTools.Tests;

/// <summary>/metrics and /health on -prometheus-listen-address, and the --metrics-file textfile.</summary>
public class MetricsTests
{
    private static readonly Dictionary<string, string?> Utc = new() { ["TZ"] = "UTC" };

    private const string Crontab = """
        # cron: name=fails
        * * * * * * * exit 4
        * * * * * * * echo --password=hunter2-do-not-label
        # cron: name=sleeper
        * * * * * * * sleep 30
        """;

    private static double Sample(IEnumerable<string> lines, string series) =>
        double.Parse(lines.Single(l => l.StartsWith(series + " ", StringComparison.Ordinal)).Split(' ')[1], CultureInfo.InvariantCulture);

    [Fact]
    public async Task Metrics_server_exposes_per_job_metrics_labelled_by_name_and_health_and_exits_0()
    {
        using var dir = new TempDir("cron-metrics");
        var crontab = dir.Write("crontab", Crontab + "\n");
        var port = Net.FreePort();
        await using var cron = CronRun.Start(["-json", "-grace-period", "0s", "-prometheus-listen-address", $"127.0.0.1:{port}", crontab], Utc);
        // supercronic answers "OK" (no newline); health checks grep for it.
        Assert.Equal("OK", await Net.GetWhenUpAsync($"http://127.0.0.1:{port}/health", TimeSpan.FromSeconds(20)));
        await cron.WaitForAsync("error running command: exit status 4", count: 2);
        await cron.WaitForAsync("job succeeded");
        var text = await Net.GetWhenUpAsync($"http://127.0.0.1:{port}/metrics", TimeSpan.FromSeconds(5));
        var lines = text.Split('\n');

        Assert.True(Sample(lines, "cron_job_executions_total{job=\"fails\"}") >= 2);
        Assert.True(Sample(lines, "cron_job_failures_total{job=\"fails\"}") >= 2);
        Assert.Equal(4, Sample(lines, "cron_job_last_exit_code{job=\"fails\"}"));
        Assert.True(Sample(lines, "cron_job_failures_total{job=\"echo:3\"}") == 0);
        var lastSuccess = Sample(lines, "cron_job_last_success_timestamp_seconds{job=\"echo:3\"}");
        Assert.InRange(lastSuccess, DateTimeOffset.UtcNow.ToUnixTimeSeconds() - 60, DateTimeOffset.UtcNow.ToUnixTimeSeconds() + 1);
        Assert.Equal(1, Sample(lines, "cron_job_running{job=\"sleeper\"}"));
        Assert.True(Sample(lines, "cron_job_skipped_total{job=\"sleeper\"}") >= 1);
        Assert.True(Sample(lines, "cron_job_duration_seconds_count{job=\"fails\"}") >= 2);
        Assert.Contains(lines, l => l.StartsWith("cron_job_duration_seconds_bucket{job=\"fails\",le=\"0.1\"} ", StringComparison.Ordinal));
        Assert.DoesNotContain("hunter2", text);
        Assert.DoesNotContain("--password", text);

        var check = await ProcessRunner.RunAsync("promtool", ["check", "metrics"], stdin: text);
        Assert.True(check.ExitCode == 0, check.ToString());

        Assert.Equal(0, await cron.StopAsync(CronRun.SIGTERM, TimeSpan.FromSeconds(20)));
    }

    [Fact]
    public async Task The_metrics_file_is_kept_current_and_its_last_success_survives_a_restart()
    {
        using var dir = new TempDir("cron-metrics");
        var metrics = dir.Combine("cron.prom");
        var crontab = dir.Write("crontab", "# cron: name=pull\n* * * * * * * true\n");
        double lastSuccess;
        await using (var cron = CronRun.Start(["--metrics-file", metrics, crontab], Utc))
        {
            await cron.WaitForAsync("job succeeded", count: 2);
            Assert.Equal(0, await cron.StopAsync());
            var lines = File.ReadAllLines(metrics);
            Assert.True(Sample(lines, "cron_job_executions_total{job=\"pull\"}") >= 2);
            lastSuccess = Sample(lines, "cron_job_last_success_timestamp_seconds{job=\"pull\"}");
            Assert.Equal(0, Sample(lines, "cron_job_running{job=\"pull\"}"));
            var check = await ProcessRunner.RunAsync("sh", ["-c", $"promtool check metrics < {metrics}"]);
            Assert.True(check.ExitCode == 0, check.ToString());
        }

        // Restarted with a job that does not run soon: the file starts again, with the last success kept.
        File.WriteAllText(crontab, "# cron: name=pull\n@yearly true\n");
        await using (var cron = CronRun.Start([crontab], new Dictionary<string, string?>(Utc) { ["METRICS_FILE"] = metrics }))
        {
            await cron.WaitForAsync("read crontab");
            await Task.Delay(1500);
            Assert.Equal(0, await cron.StopAsync());
        }
        var after = File.ReadAllLines(metrics);
        Assert.Equal(0, Sample(after, "cron_job_executions_total{job=\"pull\"}"));
        Assert.Equal(lastSuccess, Sample(after, "cron_job_last_success_timestamp_seconds{job=\"pull\"}"));
        Assert.Equal(AtomicFileMode, File.GetUnixFileMode(metrics));
    }

    private const UnixFileMode AtomicFileMode = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead;

    [Fact]
    public async Task A_metrics_address_that_is_taken_is_one_line_and_exit_code_3()
    {
        using var dir = new TempDir("cron-metrics");
        var crontab = dir.Write("crontab", "@daily true\n");
        var listener = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        listener.Start();
        try
        {
            var port = ((System.Net.IPEndPoint)listener.LocalEndpoint).Port;
            var result = await ProcessRunner.RunAsync(CronRun.Binary, ["-prometheus-listen-address", $"127.0.0.1:{port}", crontab], Utc);
            Assert.Equal(3, result.ExitCode);
            Assert.Contains($"cannot listen on 127.0.0.1:{port} for metrics", result.Stderr);
        }
        finally
        {
            listener.Stop();
        }
    }
}
