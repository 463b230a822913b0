using System.Text.RegularExpressions;
using YamlDotNet.RepresentationModel;

namespace InfraTools.Tests;

/// <summary>The Prometheus configuration and alert rules, checked by promtool and against the compose file.</summary>
public class PrometheusTests
{
    private static string Config => Path.Combine(Stack.PrometheusDir, "prometheus.yml");
    private static string Rules => Path.Combine(Stack.PrometheusDir, "alerts.yml");
    private static string RuleTests => Path.Combine(Stack.PrometheusDir, "alerts.test.yml");

    private static Task<ProcessResult> Promtool(params string[] args) =>
        ProcessRunner.RunAsync("promtool", args, workingDirectory: Stack.PrometheusDir, timeout: TimeSpan.FromMinutes(2));

    [Fact]
    public async Task Promtool_accepts_the_configuration()
    {
        var result = await Promtool("check", "config", Config);
        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Contains("1 rule files found", result.Output);
    }

    [Fact]
    public async Task Promtool_accepts_the_rules()
    {
        var result = await Promtool("check", "rules", Rules);
        Assert.True(result.ExitCode == 0, result.ToString());
    }

    [Fact]
    public async Task Promtool_rule_unit_tests_pass()
    {
        var result = await Promtool("test", "rules", RuleTests);
        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Contains("SUCCESS", result.Output);
    }

    [Fact]
    public async Task Promtool_rule_unit_tests_fail_when_an_alert_threshold_changes()
    {
        // The unit tests pin the thresholds: the same rules with "content not pulled" at 10 minutes (the
        // cron-every-minute design's, which the 10-minute resync would trip) instead of 30 must fail them.
        using var dir = new TempDir("rules");
        File.WriteAllText(dir.Combine("alerts.yml"), File.ReadAllText(Rules).Replace("content_pull_last_success_timestamp_seconds > 1800", "content_pull_last_success_timestamp_seconds > 600"));
        File.Copy(RuleTests, dir.Combine("alerts.test.yml"));
        var result = await ProcessRunner.RunAsync("promtool", ["test", "rules", dir.Combine("alerts.test.yml")], workingDirectory: dir.Path);
        Assert.True(result.ExitCode != 0, result.ToString());
        Assert.Contains("alertname: ContentNotPulled", result.Output);
    }

    [Fact]
    public void Every_alert_has_unit_tests_that_show_it_firing_and_silent()
    {
        var alerts = Yaml.ParseFile(Rules).Maps("groups").SelectMany(g => g.Maps("rules")).Select(r => r.Scalar("alert")!).ToList();
        var cases = Yaml.ParseFile(RuleTests).Maps("tests").SelectMany(t => t.Maps("alert_rule_test")).ToList();
        foreach (var alert in alerts)
        {
            var mine = cases.Where(c => c.Scalar("alertname") == alert).ToList();
            Assert.True(mine.Any(c => c.Get("exp_alerts") is YamlSequenceNode { Children.Count: > 0 }), $"{alert}: no test shows it firing");
            Assert.True(mine.Any(c => c.Get("exp_alerts") is YamlSequenceNode { Children.Count: 0 }), $"{alert}: no test shows it silent");
        }
    }

    [Fact]
    public void The_alerts_the_issue_asks_for_exist_with_their_thresholds()
    {
        var rules = Yaml.ParseFile(Rules).Maps("groups").SelectMany(g => g.Maps("rules")).ToDictionary(r => r.Scalar("alert")!, r => r.Scalar("expr")!);
        // content-pull --watch makes a full pull every 10 minutes (--resync in docker-compose.yaml): three missed.
        Assert.Equal("time() - content_pull_last_success_timestamp_seconds > 1800", rules["ContentNotPulled"]);
        Assert.Contains("--resync", Stack.Service("pull").Strings("command"));
        Assert.Equal("10m", Stack.Service("pull").Strings("command").SkipWhile(a => a != "--resync").ElementAt(1));
        // The watcher: unhealthy (no pull since its start, or its textfile's heartbeat stopped), or its polls fail.
        Assert.Equal("content_pull_watch_healthy == 0 or time() - content_pull_watch_heartbeat_timestamp_seconds > 180", rules["ContentPullWatcherUnhealthy"]);
        Assert.Equal("content_pull_watch_last_poll_success == 0", rules["ContentPullPollFailing"]);
        Assert.Equal("time() - backup_last_success_timestamp_seconds{name=\"acme\"} > 86400", rules["AcmeBackupStale"]);
        Assert.Matches("^time\\(\\) - backup_last_success_timestamp_seconds\\{name=\"prometheus\"\\} > \\d+$", rules["PrometheusBackupStale"]);
        Assert.Equal("increase(cron_job_failures_total[15m]) > 0", rules["CronJobFailing"]);
        Assert.Equal("node_textfile_scrape_error > 0", rules["TextfileScrapeError"]);
    }

    [Fact]
    public void Every_scrape_target_is_a_service_of_the_compose_file_on_the_port_it_listens_on()
    {
        var jobs = Yaml.ParseFile(Config).Maps("scrape_configs").ToDictionary(j => j.Scalar("job_name")!,
            j => j.Maps("static_configs").SelectMany(c => c.Strings("targets")).ToList());
        Assert.Equal(["cadvisor", "content-pull", "cron", "nginx", "node", "prometheus", "traefik"], jobs.Keys.Order());
        var expected = new Dictionary<string, string[]>
        {
            ["prometheus"] = ["localhost:9090"],
            ["node"] = ["node-exporter:9100"],
            ["cadvisor"] = ["cadvisor:8080"],
            ["nginx"] = ["nginx-exporter:9113"],
            ["traefik"] = ["traefik:8082"],
            ["cron"] = ["backup:9746"],
            ["content-pull"] = ["pull:9746"],
        };
        foreach (var (job, targets) in expected) Assert.Equal(targets, jobs[job]);
        foreach (var target in jobs.Values.SelectMany(t => t).Where(t => !t.StartsWith("localhost", StringComparison.Ordinal)))
        {
            var service = Stack.Service(target.Split(':')[0]);
            Assert.Contains("backend", service.Map("networks").Entries().Select(e => e.Key));
        }
        Assert.Contains("--entryPoints.metrics.address=:8082", Stack.Service("traefik").Strings("command"));
        Assert.Contains("--metrics.prometheus.entryPoint=metrics", Stack.Service("traefik").Strings("command"));
        foreach (var tool in new[] { "pull", "backup" })
            Assert.Contains("0.0.0.0:9746", new Dockerfile(Stack.ToolsDockerfile).Stage(tool).All("ENTRYPOINT").Single().ExecForm!);
        // The watcher's scrape keeps only `up`: its content_pull_* series come from the textfile (node job) once.
        var watcher = Yaml.ParseFile(Config).Maps("scrape_configs").Single(j => j.Scalar("job_name") == "content-pull");
        var drop = Assert.Single(watcher.Maps("metric_relabel_configs"));
        Assert.Equal(["__name__"], drop.Strings("source_labels"));
        Assert.Equal((".+", "drop"), (drop.Scalar("regex"), drop.Scalar("action")));
        // The cron metrics carry a `job` label (the job's name) that must not be renamed to exported_job.
        var cronJob = Yaml.ParseFile(Config).Maps("scrape_configs").Single(j => j.Scalar("job_name") == "cron");
        Assert.Equal("true", cronJob.Scalar("honor_labels"));
        // nginx-exporter reads the internal stub_status server of nginx.conf.
        Assert.Contains("--nginx.scrape-uri=http://nginx:8081/stub_status", Stack.Service("nginx-exporter").Strings("command"));
        Assert.Matches(new Regex("listen 8081;[^}]*location = /stub_status", RegexOptions.Singleline), File.ReadAllText(Stack.Path("images", "nginx", "nginx.conf")));
    }

    [Fact]
    public void The_image_bakes_the_files_promtool_checked()
    {
        var copies = new Dockerfile(Stack.Path("images", "prometheus", "Dockerfile")).All("COPY").Select(c => c.Arguments).ToList();
        Assert.Contains("prometheus.yml /etc/prometheus/prometheus.yml", copies);
        Assert.Contains("alerts.yml /etc/prometheus/alerts.yml", copies);
        Assert.Contains("--config.file=/etc/prometheus/prometheus.yml", Stack.Service("prometheus").Strings("command"));
        Assert.Equal(["alerts.yml"], Yaml.ParseFile(Config).Strings("rule_files"));
    }
}
