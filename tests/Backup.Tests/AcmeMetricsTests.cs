using InfraTools.Backup.Acme;
using InfraTools.Cli;

namespace InfraTools.Tests;

/// <summary>The per-certificate metrics of backup push --acme, written as backup writes its textfile and checked by the real promtool.</summary>
public class AcmeMetricsTests
{
    private static async Task<string[]> WriteAsync(TempDir dir, AcmeFile file)
    {
        var path = dir.Combine("backup-acme.prom");
        var report = new RunReport("backup", "backup", [("name", "acme")]);
        report.Gauges.AddRange(AcmeMetrics.Gauges(file));
        await report.WriteAsync(path, success: true, Serilog.Core.Logger.None);
        return await File.ReadAllLinesAsync(path);
    }

    private static async Task AssertPromtoolAcceptsAsync(string path)
    {
        var check = await ProcessRunner.RunAsync("sh", ["-c", "promtool check metrics < \"$0\"", path]);
        Assert.True(check.ExitCode == 0, check.ToString());
        Assert.Equal("", check.Output.Trim());
    }

    [Fact]
    public async Task One_expiry_series_per_resolver_and_domain_with_the_latest_expiry_and_a_count_per_resolver()
    {
        using var dir = new TempDir("acme-metrics");
        var file = AcmeFile.Parse(AcmeJson.Build(
            "le{acct1; example.org www.example.org 2027-02-01; www.example.org 2027-03-01; !nokey broken.example.org 2027-04-01} dns{acct2; *.example.org 2027-01-15} staging{}"));

        var lines = await WriteAsync(dir, file);

        string Expiry(string resolver, string domain, string day) =>
            $"backup_acme_certificate_expiry_timestamp_seconds{{name=\"acme\",resolver=\"{resolver}\",domain=\"{domain}\"}} {AcmeJson.Day(day).ToUnixTimeSeconds()}";
        var expiries = lines.Where(l => l.StartsWith(AcmeMetrics.ExpiryTimestamp + "{", StringComparison.Ordinal)).ToList();
        Assert.Equal([Expiry("le", "example.org", "2027-02-01"), Expiry("le", "www.example.org", "2027-03-01"), Expiry("dns", "*.example.org", "2027-01-15")], expiries);
        var counts = lines.Where(l => l.StartsWith(AcmeMetrics.Certificates + "{", StringComparison.Ordinal)).ToList();
        Assert.Equal(["backup_acme_certificates{name=\"acme\",resolver=\"le\"} 2", "backup_acme_certificates{name=\"acme\",resolver=\"dns\"} 1", "backup_acme_certificates{name=\"acme\",resolver=\"staging\"} 0"], counts);
        Assert.Contains("# TYPE backup_acme_certificate_expiry_timestamp_seconds gauge", lines);
        AcmeJson.AssertNoSecrets(string.Join('\n', lines));
        await AssertPromtoolAcceptsAsync(dir.Combine("backup-acme.prom"));
    }

    [Fact]
    public async Task A_fresh_Traefiks_file_gives_a_zero_count_and_no_expiry_and_still_passes_promtool()
    {
        using var dir = new TempDir("acme-metrics");
        var lines = await WriteAsync(dir, AcmeFile.Parse(AcmeJson.Build("le{acct2}")));

        Assert.Contains("backup_acme_certificates{name=\"acme\",resolver=\"le\"} 0", lines);
        Assert.DoesNotContain(lines, l => l.StartsWith(AcmeMetrics.ExpiryTimestamp + "{", StringComparison.Ordinal));
        await AssertPromtoolAcceptsAsync(dir.Combine("backup-acme.prom"));
    }

    [Fact]
    public void The_metric_names_are_listed_for_the_alert_rules_and_the_dashboard()
    {
        // images/prometheus/metric-names.txt, section [backup-acme]: the names tests/Stack.Tests lets alerts.yml use.
        var lines = File.ReadAllLines(Path.Combine(RepoPaths.Root, "images", "prometheus", "metric-names.txt")).Select(l => l.Trim()).ToList();
        var start = lines.IndexOf("[backup-acme]");
        Assert.True(start >= 0, "no [backup-acme] section in metric-names.txt");
        var listed = lines.Skip(start + 1).TakeWhile(l => !l.StartsWith('[')).Where(l => l.Length > 0 && !l.StartsWith('#')).ToList();
        Assert.Equal(AcmeMetrics.Names.Order(StringComparer.Ordinal), listed.Order(StringComparer.Ordinal));
    }
}
