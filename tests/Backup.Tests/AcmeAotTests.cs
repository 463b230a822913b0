namespace InfraTools.Tests;

/// <summary>
/// The acme.json parser, guard and metrics in a Native AOT binary (the test driver compiles tools/backup/Acme in,
/// with the tools' AOT settings and InvariantGlobalization): X.509 parsing, the verdict and a textfile promtool accepts.
/// </summary>
public class AcmeAotTests
{
    private static Task<ProcessResult> Driver(IEnumerable<string> args, string? timeZone = null) =>
        ProcessRunner.RunAsync(RepoPaths.TestDriver, ["acme", .. args], timeZone is null ? null : new Dictionary<string, string?> { ["TZ"] = timeZone });

    [Fact]
    public async Task The_AOT_binary_reads_domains_and_exact_expiries_in_any_time_zone()
    {
        using var dir = new TempDir("acme-aot");
        // 00:30:17Z on 2026-10-25 is 02:30:17 in Berlin twice (summer time ends at 03:00): X509Certificate2 gives local time.
        var ambiguous = new DateTimeOffset(2026, 10, 25, 0, 30, 17, TimeSpan.Zero);
        var (certificate, key) = AcmeJson.Certificate(ambiguous, "example.org", "www.example.org");
        var (late, lateKey) = AcmeJson.Certificate(new DateTimeOffset(2051, 1, 2, 3, 4, 5, TimeSpan.Zero), "later.example.org");
        var file = dir.Write("acme.json", $$"""
            {
              "le": {
                "Account": null,
                "Certificates": [
                  { "domain": { "main": "example.org", "sans": ["www.example.org"] }, "certificate": "{{certificate}}", "key": "{{key}}", "Store": "default" },
                  { "domain": { "main": "later.example.org" }, "certificate": "{{late}}", "key": "{{lateKey}}", "Store": "default" },
                  { "domain": { "main": "broken.example.org" }, "certificate": "bm90IGEgY2VydA==", "key": "{{lateKey}}", "Store": "default" }
                ]
              }
            }
            """);

        string[] zones = ["UTC", "Europe/Berlin", "America/St_Johns"];
        Assert.NotEmpty(zones);
        foreach (var zone in zones)
        {
            var result = await Driver([file], zone);
            Assert.True(result.ExitCode == 0, result.ToString());
            var lines = result.Stdout.Split('\n');
            Assert.Contains("layout=resolvers", lines);
            Assert.Contains("resolver=le account=no certificates=3", lines);
            Assert.Contains("certificate resolver=le main=example.org sans=www.example.org not-after=2026-10-25T00:30:17Z usable=yes", lines);
            Assert.Contains("certificate resolver=le main=later.example.org sans= not-after=2051-01-02T03:04:05Z usable=yes", lines);
            Assert.Contains("certificate resolver=le main=broken.example.org sans= not-after=- usable=no", lines);
            Assert.Contains("problem: certificate 3 (broken.example.org) of resolver le: the certificate holds no PEM CERTIFICATE block", lines);
            AcmeJson.AssertNoSecrets(result.Output);
        }
    }

    [Fact]
    public async Task The_AOT_binary_refuses_a_fresh_Traefiks_file_over_a_full_backup_and_writes_metrics_promtool_accepts()
    {
        using var dir = new TempDir("acme-aot");
        var full = dir.Combine("remote.json");
        await File.WriteAllBytesAsync(full, AcmeJson.Build("le{acct1; example.org www.example.org 2027-02-01}"));
        var fresh = dir.Combine("acme.json");
        await File.WriteAllBytesAsync(fresh, AcmeJson.Build("le{acct2}"));
        var metrics = dir.Combine("backup-acme.prom");

        var refused = await Driver([fresh, "--remote", full, "--now", "2026-12-01T00:00:00Z"]);
        Assert.True(refused.ExitCode == 0, refused.ToString());
        Assert.Contains("guard=refused", refused.Stdout.Split('\n'));
        Assert.Contains("refusal: the copy in S3 holds certificates of resolver le for example.org, www.example.org (expiring 2027-02-01) that the local acme.json lacks: " +
            "a fresh Traefik that started without a restore? nothing was uploaded; use --force to replace it", refused.Stdout.Split('\n'));

        var allowed = await Driver([full, "--remote", fresh, "--now", "2026-12-01T00:00:00Z", "--metrics-file", metrics]);
        Assert.True(allowed.ExitCode == 0, allowed.ToString());
        Assert.Contains("guard=allowed", allowed.Stdout.Split('\n'));
        var first = await Driver([fresh, "--remote", dir.Combine("absent.json")]);
        Assert.Contains("guard=allowed", first.Stdout.Split('\n'));

        var written = await File.ReadAllLinesAsync(metrics);
        var expiry = new DateTimeOffset(2027, 2, 1, 0, 0, 0, TimeSpan.Zero).ToUnixTimeSeconds();
        Assert.Contains($"backup_acme_certificate_expiry_timestamp_seconds{{name=\"acme\",resolver=\"le\",domain=\"www.example.org\"}} {expiry}", written);
        Assert.Contains("backup_acme_certificates{name=\"acme\",resolver=\"le\"} 1", written);
        var check = await ProcessRunner.RunAsync("sh", ["-c", "promtool check metrics < \"$0\"", metrics]);
        Assert.True(check.ExitCode == 0, check.ToString());
        Assert.Equal("", check.Output.Trim());
        AcmeJson.AssertNoSecrets(refused.Output + allowed.Output + string.Join('\n', written));
    }

    [Fact]
    public async Task The_AOT_binary_reads_a_Traefik_v1_file()
    {
        using var dir = new TempDir("acme-aot");
        var file = dir.Combine("acme.json");
        await File.WriteAllBytesAsync(file, AcmeJson.Legacy.Value);

        var result = await Driver([file]);

        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Contains("layout=legacy", result.Stdout.Split('\n'));
        Assert.Contains("certificate resolver=default main=v1.example.org sans= not-after=2027-02-01T00:00:00Z usable=yes", result.Stdout.Split('\n'));
        Assert.DoesNotContain("problem:", result.Stdout, StringComparison.Ordinal);
    }
}
