using System.Text.RegularExpressions;
using InfraTools.Backup.Acme;

namespace InfraTools.Tests;

/// <summary>
/// The BackedUpCertificateExpiresSoon alert (images/prometheus/alerts.yml) on the metrics of backup push --acme: its
/// promtool unit tests use the labels the metrics really carry, and they fail when its threshold changes.
/// (tests/Stack.Tests runs promtool check rules / test rules on the files as they are.)
/// </summary>
public class AcmeAlertTests
{
    private static string PrometheusDir => Path.Combine(RepoPaths.Root, "images", "prometheus");
    private const string Expression = "min by (resolver, domain) (backup_acme_certificate_expiry_timestamp_seconds) - time() < 14 * 86400";

    [Fact]
    public void The_rule_queries_the_expiry_metric_and_its_tests_use_the_labels_the_metric_has()
    {
        var rules = File.ReadAllText(Path.Combine(PrometheusDir, "alerts.yml"));
        Assert.Contains("- alert: BackedUpCertificateExpiresSoon\n        expr: " + Expression + "\n        for: 1h\n", rules, StringComparison.Ordinal);
        var series = Regex.Matches(File.ReadAllText(Path.Combine(PrometheusDir, "alerts.test.yml")), "series: '" + AcmeMetrics.ExpiryTimestamp + "\\{([^}]*)\\}'")
            .Select(m => m.Groups[1].Value).ToList();
        Assert.NotEmpty(series);
        foreach (var labels in series)
        {
            var names = labels.Split(',').Select(l => l.Split('=')[0].Trim()).Where(n => n is not ("instance" or "job")).Order(StringComparer.Ordinal);
            // name from RunMetrics, resolver and domain from AcmeMetrics (see AcmeMetricsTests for the written series).
            Assert.Equal(["domain", "name", "resolver"], names);
        }
    }

    [Theory]
    [InlineData("< 14 * 86400", "< 15 * 86400")]
    [InlineData("< 14 * 86400", "< 13 * 86400")]
    public async Task The_rule_tests_fail_when_the_rule_changes(string from, string to)
    {
        using var dir = new TempDir("acme-rules");
        var rules = File.ReadAllText(Path.Combine(PrometheusDir, "alerts.yml"));
        Assert.Contains(Expression, rules, StringComparison.Ordinal);
        File.WriteAllText(dir.Combine("alerts.yml"), rules.Replace(Expression, Expression.Replace(from, to, StringComparison.Ordinal), StringComparison.Ordinal));
        // Only this alert's test group (the last one), so that the mutated rule is all that is evaluated
        // (tests/Stack.Tests runs the whole file on the rules as they are).
        var tests = File.ReadAllText(Path.Combine(PrometheusDir, "alerts.test.yml"));
        var group = tests.IndexOf("  # backup push --acme:", StringComparison.Ordinal);
        Assert.True(group > 0, "no backup push --acme test group in alerts.test.yml");
        File.WriteAllText(dir.Combine("alerts.test.yml"), tests[..tests.IndexOf("tests:\n", StringComparison.Ordinal)] + "tests:\n" + tests[group..]);

        var result = await ProcessRunner.RunAsync("promtool", ["test", "rules", dir.Combine("alerts.test.yml")], workingDirectory: dir.Path);

        Assert.True(result.ExitCode != 0, result.ToString());
        Assert.Contains("alertname: BackedUpCertificateExpiresSoon", result.Output, StringComparison.Ordinal);
    }
}
