namespace InfraTools.Tests;

/// <summary>
/// The names in images/prometheus/metric-names.txt that belong to our batch tools are exactly the ones the real
/// AOT binaries write: each tool is run against the real S3 server and its textfile is read back.
/// </summary>
public class ToolMetricsTests
{
    private static IEnumerable<string> NamesIn(string metricsFile) =>
        File.ReadAllLines(metricsFile).Where(l => l.Length > 0 && !l.StartsWith('#')).Select(l => l.Split('{', ' ')[0]);

    private static async Task RunOk(string tool, Dictionary<string, string?> env, params string[] args)
    {
        var result = await ProcessRunner.RunAsync(RepoPaths.Tool(tool), args, env);
        Assert.True(result.ExitCode == 0, $"{tool} {string.Join(' ', args)}\n{result}");
    }

    [Fact]
    public async Task The_listed_metrics_of_content_pull_backup_and_acme_restore_are_the_ones_they_write()
    {
        var server = S3Server.Shared;
        var env = server.Environment();
        var bucket = await server.NewBucketAsync("metricnames");
        using var dir = new TempDir("metrics");
        var acme = dir.Write("acme/acme.json", "{\"letsencrypt\":{}}");
        var monitoring = dir.Combine("monitoring");

        await RunOk("backup", env, "push", "--name", "acme", "--require-json", "--metrics-file", Path.Combine(monitoring, "backup-acme.prom"), acme, $"s3://{bucket}/acme/acme.json");
        // --releases, as the pull service runs it: the release gauges come with the run's own.
        await RunOk("content-pull", env, $"s3://{bucket}/acme/", dir.Combine("www"), "--releases", "--state-dir", dir.Combine("state"), "--metrics-file", Path.Combine(monitoring, "content-pull.prom"));
        await RunOk("acme-restore", env, "--source", $"s3://{bucket}/acme/acme.json", "--file", dir.Combine("traefik", "acme.json"), "--metrics-file", Path.Combine(monitoring, "acme-restore.prom"));

        var written = Directory.GetFiles(monitoring, "*.prom").SelectMany(NamesIn).ToHashSet(StringComparer.Ordinal);
        var listed = new[] { "content-pull", "backup", "acme-restore" }.SelectMany(tool => KnownMetrics.BySource[tool]).ToHashSet(StringComparer.Ordinal);
        Assert.Equal(listed.Order(), written.Order());

        // The watch mode (in release mode): the pull's names and its own, in one file; SIGTERM ends it with 0.
        var watchMetrics = dir.Combine("watch", "content-pull.prom");
        var watch = await ProcessRunner.RunAsync("timeout", ["--preserve-status", "-s", "TERM", "3", RepoPaths.Tool("content-pull"), $"s3://{bucket}/acme/", dir.Combine("www2"),
            "--releases", "--state-dir", dir.Combine("state2"), "--metrics-file", watchMetrics, "--watch", "--poll", "200ms"], env);
        Assert.True(watch.ExitCode == 0, watch.ToString());
        var watchListed = KnownMetrics.BySource["content-pull"].Concat(KnownMetrics.BySource["content-pull-watch"]).ToHashSet(StringComparer.Ordinal);
        Assert.Equal(watchListed.Order(), NamesIn(watchMetrics).ToHashSet(StringComparer.Ordinal).Order());
    }

    [Fact]
    public async Task The_listed_metrics_of_cron_are_the_ones_it_writes()
    {
        using var dir = new TempDir("metrics");
        var crontab = dir.Write("crontab", "# cron: name=every-second\n* * * * * * * true\n");
        var metrics = dir.Combine("cron.prom");
        var run = await ProcessRunner.RunAsync("timeout", ["--preserve-status", "-s", "TERM", "3", RepoPaths.Tool("cron"), "--metrics-file", metrics, crontab]);
        Assert.True(run.ExitCode == 0, run.ToString());
        var written = NamesIn(metrics).ToHashSet(StringComparer.Ordinal);
        Assert.Equal(KnownMetrics.BySource["cron"].Order(), written.Order());
    }
}
