using System.Text.RegularExpressions;
using YamlDotNet.RepresentationModel;

namespace InfraTools.Tests;

/// <summary>The crontab baked into the backup image (the pull image runs content-pull --watch, no cron: ComposeTests).</summary>
public partial class CrontabTests
{
    public static TheoryData<string> Images => new(["backup"]);

    private static string CrontabPath(string image) => Stack.Path("images", image, "crontab");

    /// <summary>(options comment, schedule + command) of each job.</summary>
    private static List<(string Options, string Job)> Jobs(string image)
    {
        var lines = File.ReadAllLines(CrontabPath(image));
        var jobs = new List<(string, string)>();
        for (var i = 0; i < lines.Length; i++)
        {
            var line = lines[i].Trim();
            if (line.Length == 0 || line.StartsWith('#')) continue;
            Assert.False(EnvironmentLine().IsMatch(line), $"{image}/crontab:{i + 1}: settings come from the container's environment, not the crontab");
            jobs.Add((i > 0 ? lines[i - 1].Trim() : "", line));
        }
        return jobs;
    }

    [Theory]
    [MemberData(nameof(Images))]
    public async Task Cron_test_accepts_the_crontab(string image)
    {
        var result = await ProcessRunner.RunAsync(RepoPaths.Tool("cron"), ["-test", CrontabPath(image)], timeout: TimeSpan.FromSeconds(30));
        Assert.True(result.ExitCode == 0, $"cron -test images/{image}/crontab: {result}");
    }

    [Fact]
    public async Task Cron_test_rejects_a_broken_copy_of_a_crontab()
    {
        // Shows the acceptance above means something: the same crontab with day-of-week 61 is refused.
        using var dir = new TempDir("crontab");
        var broken = dir.Write("crontab", File.ReadAllText(CrontabPath("backup")).Replace("*/5 * * * * backup", "*/5 * * * 61 backup"));
        var result = await ProcessRunner.RunAsync(RepoPaths.Tool("cron"), ["-test", broken], timeout: TimeSpan.FromSeconds(30));
        Assert.True(result.ExitCode == 1, result.ToString());
    }

    [Theory]
    [MemberData(nameof(Images))]
    public void Every_job_is_named_and_writes_its_own_textfile_in_the_shared_directory(string image)
    {
        var jobs = Jobs(image);
        Assert.NotEmpty(jobs);
        var names = new HashSet<string>();
        var metricFiles = new HashSet<string>();
        foreach (var (options, job) in jobs)
        {
            var name = Regex.Match(options, "^# cron: .*\\bname=([a-z0-9-]+)");
            Assert.True(name.Success, $"{image}: '{job}' has no '# cron: name=...' line above it");
            Assert.True(names.Add(name.Groups[1].Value), $"{image}: job name {name.Groups[1].Value} is used twice");
            Assert.Matches("\\btimeout=\\d+[smh]\\b", options);
            var metrics = Regex.Match(job, "--metrics-file (\\S+)");
            Assert.True(metrics.Success, $"{image}: '{job}' writes no metrics");
            Assert.Matches("^/monitoring/[a-z0-9-]+\\.prom$", metrics.Groups[1].Value);
            Assert.True(metricFiles.Add(metrics.Groups[1].Value));
        }
        Assert.Contains("/srv/monitoring:/monitoring:rw", Stack.Service(image).Strings("volumes"));
    }

    [Theory]
    [MemberData(nameof(Images))]
    public void Every_variable_a_job_uses_is_set_in_the_container(string image)
    {
        var environment = Stack.Service(image).Map("environment").Entries().Select(e => e.Key).ToHashSet();
        foreach (var (_, job) in Jobs(image))
            foreach (Match m in ShellVariable().Matches(job))
                Assert.True(environment.Contains(m.Groups[1].Value), $"{image}: ${m.Groups[1].Value} is not set in docker-compose.yaml");
    }

    [Fact]
    public void The_pull_image_has_no_crontab_and_no_cron()
    {
        Assert.False(File.Exists(CrontabPath("pull")), "images/pull/crontab: the pull container runs content-pull --watch, not cron");
        var copied = new Dockerfile(Stack.ToolsDockerfile).Stage("pull").All("COPY").SelectMany(c => c.Arguments.Split(' ')).ToList();
        Assert.DoesNotContain(copied, a => a.EndsWith("/cron", StringComparison.Ordinal) || a.Contains("crontab", StringComparison.Ordinal));
    }

    [Fact]
    public void The_backup_jobs_push_acme_often_and_a_prometheus_snapshot_daily()
    {
        var jobs = Jobs("backup");
        var acme = jobs.Single(j => j.Options.Contains("name=backup-acme")).Job;
        Assert.StartsWith("*/5 * * * * backup push --name acme --acme ", acme);
        Assert.Contains("--metrics-file /monitoring/backup-acme.prom", acme);
        Assert.EndsWith("/acme/acme.json \"s3://$BACKUP_BUCKET/acme/acme.json\"", acme);
        var prometheus = jobs.Single(j => j.Options.Contains("name=backup-prometheus")).Job;
        Assert.Matches("^\\d+ \\d+ \\* \\* \\* backup push --name prometheus ", prometheus);
        Assert.Contains("--prometheus-snapshot http://prometheus:9090 --snapshot --keep-last 7 --keep-daily 7 --keep-weekly 4", prometheus);
        Assert.Contains("--metrics-file /monitoring/backup-prometheus.prom", prometheus);
        Assert.EndsWith("/prometheus \"s3://$BACKUP_BUCKET/prometheus/\"", prometheus);
        // Where acme-restore on a fresh server looks is where the backup puts it.
        Assert.Contains("--source=s3://$BACKUP_BUCKET/acme/acme.json".Replace("$BACKUP_BUCKET", "example-backups"), Stack.Service("traefik").Strings("command"));
    }

    [GeneratedRegex("^[A-Za-z_][A-Za-z0-9_]*=")]
    private static partial Regex EnvironmentLine();

    [GeneratedRegex("\\$\\{?([A-Za-z_][A-Za-z0-9_]*)")]
    private static partial Regex ShellVariable();
}
