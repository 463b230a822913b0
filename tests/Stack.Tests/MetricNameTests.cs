using System.Diagnostics;
using System.Text;
using System.Text.Json.Nodes;
using YamlDotNet.RepresentationModel;

namespace InfraTools.Tests;

/// <summary>The dashboard and the alert rules query only metrics that our tools or the exporters emit
/// (images/prometheus/metric-names.txt), and the exporters' part of that list is checked against the real ones.</summary>
public class MetricNameTests
{
    private static string DashboardDir => Stack.Path("images", "grafana", "dashboards");

    private static List<(string File, string Panel, string Expr)> DashboardExpressions() =>
        Directory.GetFiles(DashboardDir, "*.json")
            .SelectMany(f => PromQl.DashboardExpressions(JsonNode.Parse(File.ReadAllText(f))!).Select(e => (Path.GetFileName(f), e.Panel, e.Expr)))
            .ToList();

    private static List<(string Alert, string Expr)> AlertExpressions() =>
        Yaml.ParseFile(Path.Combine(Stack.PrometheusDir, "alerts.yml")).Maps("groups").SelectMany(g => g.Maps("rules"))
            .Select(r => (r.Scalar("alert")!, r.Scalar("expr")!)).ToList();

    [Theory]
    [InlineData("sum by (code) (rate(traefik_entrypoint_requests_total{entrypoint=\"websecure\"}[$__rate_interval]))", "traefik_entrypoint_requests_total")]
    [InlineData("time() - max(content_pull_last_success_timestamp_seconds)", "content_pull_last_success_timestamp_seconds")]
    [InlineData("count(ALERTS{alertstate=\"firing\"}) or vector(0)", "ALERTS")]
    [InlineData("histogram_quantile(0.95, sum by (job, le) (rate(cron_job_duration_seconds_bucket[5m])))", "cron_job_duration_seconds_bucket")]
    [InlineData("1 - node_memory_MemAvailable_bytes / node_memory_MemTotal_bytes", "node_memory_MemAvailable_bytes node_memory_MemTotal_bytes")]
    [InlineData("min by (cn) (traefik_tls_certs_not_after) - time() < 14 * 86400", "traefik_tls_certs_not_after")]
    [InlineData("up offset 5m unless on (job) ignoring(instance) group_left(a, b) other_metric", "other_metric up")]
    [InlineData("{__name__=\"by_name\", job=\"x\"} and 1e3 > bool some:recorded:rule", "by_name some:recorded:rule")]
    [InlineData("max_over_time(deriv(x_total[1h:5m])[1d:1h]) / sum without (le, code) (y)", "x_total y")]
    public void The_metric_name_extractor_finds_exactly_the_metrics(string expr, string expected)
    {
        Assert.Equal(expected.Split(' ').Order(), PromQl.MetricNames(expr).Order());
    }

    [Fact]
    public void The_dashboard_queries_only_known_metrics()
    {
        var expressions = DashboardExpressions();
        Assert.True(expressions.Count >= 20, $"only {expressions.Count} queries in the dashboards");
        var known = KnownMetrics.All;
        var unknown = expressions.SelectMany(e => PromQl.MetricNames(e.Expr).Where(n => !known.Contains(n)).Select(n => $"{e.File} '{e.Panel}': {n}")).ToList();
        Assert.True(unknown.Count == 0, "metrics no tool or exporter emits (or missing from metric-names.txt):\n" + string.Join('\n', unknown));
    }

    [Fact]
    public void The_alert_rules_query_only_known_metrics()
    {
        var known = KnownMetrics.All;
        var unknown = AlertExpressions().SelectMany(a => PromQl.MetricNames(a.Expr).Where(n => !known.Contains(n)).Select(n => $"{a.Alert}: {n}")).ToList();
        Assert.True(unknown.Count == 0, string.Join('\n', unknown));
    }

    [Fact]
    public void The_dashboard_shows_traffic_host_and_container_health_and_the_freshness_of_pulls_and_backups()
    {
        var used = DashboardExpressions().SelectMany(e => PromQl.MetricNames(e.Expr)).ToHashSet();
        // Freshness from our tools' metrics.
        Assert.Contains("content_pull_last_success_timestamp_seconds", used);
        Assert.Contains("backup_last_success_timestamp_seconds", used);
        Assert.Contains(used, n => n.StartsWith("cron_job_", StringComparison.Ordinal));
        Assert.Contains(used, n => n.StartsWith("acme_restore_", StringComparison.Ordinal));
        // Site traffic, host, containers.
        Assert.Contains(used, n => n.StartsWith("traefik_", StringComparison.Ordinal));
        Assert.Contains(used, n => n.StartsWith("nginx_", StringComparison.Ordinal));
        Assert.Contains(used, n => n.StartsWith("node_", StringComparison.Ordinal));
        Assert.Contains(used, n => n.StartsWith("container_", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Every_dashboard_query_is_valid_promql()
    {
        // promtool parses each query as a recording rule (Grafana's $__rate_interval replaced by 5m).
        using var dir = new TempDir("dashboard-rules");
        var yaml = new StringBuilder("groups:\n  - name: dashboard\n    rules:\n");
        var i = 0;
        foreach (var (_, _, expr) in DashboardExpressions())
            yaml.Append($"      - record: dashboard_query_{i++}\n        expr: '{PromQl.WithoutGrafanaVariables(expr).Replace("'", "''")}'\n");
        var file = dir.Write("dashboard.rules.yml", yaml.ToString());
        var result = await ProcessRunner.RunAsync("promtool", ["check", "rules", file]);
        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Contains($"SUCCESS: {i} rules found", result.Output);
    }

    [Fact]
    public void The_dashboard_uses_the_provisioned_datasource_and_is_provisioned_from_the_image()
    {
        var datasource = Yaml.ParseFile(Stack.Path("images", "grafana", "provisioning", "datasources", "prometheus.yaml")).Maps("datasources").Single();
        Assert.Equal("http://prometheus:9090", datasource.Scalar("url"));
        var uid = datasource.Scalar("uid");
        foreach (var file in Directory.GetFiles(DashboardDir, "*.json"))
        {
            var dashboard = JsonNode.Parse(File.ReadAllText(file))!;
            Assert.False(string.IsNullOrEmpty(dashboard["uid"]?.GetValue<string>()), $"{file}: no uid");
            Assert.DoesNotContain("${DS_", File.ReadAllText(file)); // an export for sharing, not for provisioning
            foreach (var panel in PromQl.Panels(dashboard["panels"]!.AsArray()).Where(p => p["type"]?.GetValue<string>() != "row"))
            {
                Assert.Equal(uid, panel["datasource"]?["uid"]?.GetValue<string>());
                Assert.All(panel["targets"]!.AsArray(), t => Assert.Equal(uid, t!["datasource"]?["uid"]?.GetValue<string>()));
            }
        }
        var provider = Yaml.ParseFile(Stack.Path("images", "grafana", "provisioning", "dashboards", "infra-tools.yaml")).Maps("providers").Single();
        var copies = new Dockerfile(Stack.Path("images", "grafana", "Dockerfile")).All("COPY").Select(c => c.Arguments).ToList();
        Assert.Contains($"dashboards/ {provider.Map("options").Scalar("path")}/", copies);
        Assert.Contains("provisioning/ /etc/grafana/provisioning/", copies);
    }

    [Fact]
    public async Task Node_exporter_really_exposes_every_node_metric_in_the_list()
    {
        using var textfiles = new TempDir("textfile");
        textfiles.Write("sample.prom", "# TYPE sample gauge\nsample 1\n");
        var port = Net.FreePort();
        using var exporter = Process.Start(ProcessRunner.StartInfo("prometheus-node-exporter",
            [$"--web.listen-address=127.0.0.1:{port}", $"--collector.textfile.directory={textfiles.Path}"]))!;
        try
        {
            var exposed = ExposedNames(await Net.GetWhenUpAsync($"http://127.0.0.1:{port}/metrics", TimeSpan.FromSeconds(30)));
            var missing = KnownMetrics.BySource["node_exporter"].Where(n => !exposed.Contains(n)).ToList();
            Assert.True(missing.Count == 0, "node_exporter does not expose: " + string.Join(", ", missing));
        }
        finally
        {
            exporter.Kill();
            await exporter.WaitForExitAsync();
        }
    }

    /// <summary>Metric names in a Prometheus text exposition (series lines, not comments).</summary>
    public static HashSet<string> ExposedNames(string exposition) =>
        exposition.Split('\n').Where(l => l.Length > 0 && !l.StartsWith('#'))
            .Select(l => l.Split('{', ' ')[0]).ToHashSet(StringComparer.Ordinal);
}
