namespace InfraTools.Tests;

/// <summary>
/// backup push --acme, the AOT binary against the real S3 server: a fresh Traefik's acme.json never replaces a backup
/// with certificates unless --force, and the textfile carries the expiry of each certificate in S3 (promtool-checked).
/// </summary>
public class AcmePushTests
{
    private static readonly S3Server Server = S3Server.Shared;

    private static Task<ProcessResult> Backup(string timeZone, params string[] args) =>
        ProcessRunner.RunAsync(RepoPaths.Tool("backup"), args, Server.Environment(("TZ", timeZone)), timeout: TimeSpan.FromMinutes(2));

    private static async Task<byte[]?> RemoteAsync(string bucket, string key)
    {
        using var client = Server.Client();
        if (!await client.ListAsync(bucket, key).AnyAsync(o => o.Key == key)) return null;
        using var buffer = new MemoryStream();
        await client.GetAsync(bucket, key, (body, _, ct) => body.CopyToAsync(buffer, ct));
        return buffer.ToArray();
    }

    private static async Task<string[]> CheckedMetricsAsync(string path)
    {
        var check = await ProcessRunner.RunAsync("sh", ["-c", "promtool check metrics < \"$0\"", path]);
        Assert.True(check.ExitCode == 0, check.ToString());
        Assert.Equal("", check.Output.Trim());
        return await File.ReadAllLinesAsync(path);
    }

    [Fact]
    public async Task A_fresh_Traefiks_file_is_refused_over_a_backup_with_certificates_and_force_overrides()
    {
        var bucket = await Server.NewBucketAsync("acme-push");
        using var dir = new TempDir("acme-push");
        var target = $"s3://{bucket}/acme/acme.json";
        var metrics = dir.Combine("backup-acme.prom");
        var local = dir.Combine("acme.json");
        // 00:30:17Z on 2030-10-27 is 02:30:17 in Berlin twice (summer time ends at 03:00): the expiry must not depend on the zone.
        var expiry = new DateTimeOffset(2030, 10, 27, 0, 30, 17, TimeSpan.Zero);
        var (certificate, key) = AcmeJson.Certificate(expiry, "example.org", "www.example.org");
        var full = System.Text.Encoding.UTF8.GetBytes($$"""
            {
              "le": {
                "Account": { "Email": "ops@example.org", "Registration": { "body": { "status": "valid" }, "uri": "https://acme.example/acct/1" }, "PrivateKey": "{{key}}", "KeyType": "4096" },
                "Certificates": [ { "domain": { "main": "example.org", "sans": ["www.example.org"] }, "certificate": "{{certificate}}", "key": "{{key}}", "Store": "default" } ]
              }
            }
            """);

        // The first push: nothing in S3 yet, uploaded; the metrics say when each domain's certificate expires.
        await File.WriteAllBytesAsync(local, full);
        var first = await Backup("Europe/Berlin", "push", "--name", "acme", "--acme", "--metrics-file", metrics, local, target);
        Assert.True(first.ExitCode == 0, first.ToString());
        Assert.Equal(full, await RemoteAsync(bucket, "acme/acme.json"));
        var written = await CheckedMetricsAsync(metrics);
        Assert.Contains($"backup_acme_certificate_expiry_timestamp_seconds{{name=\"acme\",resolver=\"le\",domain=\"example.org\"}} {expiry.ToUnixTimeSeconds()}", written);
        Assert.Contains($"backup_acme_certificate_expiry_timestamp_seconds{{name=\"acme\",resolver=\"le\",domain=\"www.example.org\"}} {expiry.ToUnixTimeSeconds()}", written);
        Assert.Contains("backup_acme_certificates{name=\"acme\",resolver=\"le\"} 1", written);
        Assert.Contains("backup_last_run_success{name=\"acme\"} 1", written);

        // A fresh Traefik (no restore) wrote an empty account: refused, exit 5, one line, the object unchanged.
        var fresh = AcmeJson.Build("le{}");
        await File.WriteAllBytesAsync(local, fresh);
        var refused = await Backup("UTC", "push", "--name", "acme", "--acme", "--metrics-file", metrics, local, target);
        Assert.True(refused.ExitCode == 5, refused.ToString());
        var line = Assert.Single(refused.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries), l => l.Contains("nothing was uploaded", StringComparison.Ordinal));
        Assert.Contains("certificates of resolver le for example.org, www.example.org (expiring 2030-10-27)", line);
        Assert.Contains("the ACME account of resolver le", line);
        Assert.Contains("use --force", line);
        Assert.Equal(full, await RemoteAsync(bucket, "acme/acme.json"));
        // The metrics still describe what S3 holds (the alert keeps working), and the run is a failure.
        written = await CheckedMetricsAsync(metrics);
        Assert.Contains($"backup_acme_certificate_expiry_timestamp_seconds{{name=\"acme\",resolver=\"le\",domain=\"example.org\"}} {expiry.ToUnixTimeSeconds()}", written);
        Assert.Contains("backup_last_run_success{name=\"acme\"} 0", written);

        // --require-json alone (today's behaviour) would have replaced it: the guard is what refuses.
        var withoutGuard = await Backup("UTC", "push", "--require-json", local, $"s3://{bucket}/plain/acme.json");
        Assert.True(withoutGuard.ExitCode == 0, withoutGuard.ToString());

        // --acme implies --require-json: a half-written file is never uploaded, also with --force.
        await File.WriteAllTextAsync(local, "{\"le\": {\"Account\": ");
        var torn = await Backup("UTC", "push", "--acme", "--force", local, target);
        Assert.True(torn.ExitCode == 5, torn.ToString());
        Assert.Contains("not uploaded", torn.Stderr);
        Assert.Equal(full, await RemoteAsync(bucket, "acme/acme.json"));
        await File.WriteAllBytesAsync(local, fresh);

        // --force replaces it, with a warning that says what is lost.
        var forced = await Backup("UTC", "push", "--name", "acme", "--acme", "--force", "--metrics-file", metrics, local, target);
        Assert.True(forced.ExitCode == 0, forced.ToString());
        Assert.Contains("--force", forced.Stderr);
        Assert.Equal(fresh, await RemoteAsync(bucket, "acme/acme.json"));
        written = await CheckedMetricsAsync(metrics);
        Assert.Contains("backup_acme_certificates{name=\"acme\",resolver=\"le\"} 0", written);
        Assert.DoesNotContain(written, l => l.StartsWith("backup_acme_certificate_expiry_timestamp_seconds{", StringComparison.Ordinal));
        AcmeJson.AssertNoSecrets(first.Output + refused.Output + forced.Output + string.Join('\n', written));
    }

    [Fact]
    public async Task With_snapshots_the_guard_compares_with_the_newest_complete_snapshot()
    {
        var bucket = await Server.NewBucketAsync("acme-snap");
        using var dir = new TempDir("acme-snap");
        var local = dir.Combine("acme.json");
        await File.WriteAllBytesAsync(local, AcmeJson.Build("le{acct1; example.org 2031-02-01}"));
        var first = await Backup("UTC", "push", "--acme", "--snapshot", local, $"s3://{bucket}/acme/");
        Assert.True(first.ExitCode == 0, first.ToString());

        await File.WriteAllBytesAsync(local, AcmeJson.Build("le{acct1; example.org 2030-12-01}")); // an older certificate
        var refused = await Backup("UTC", "push", "--acme", "--snapshot", "--keep-last", "1", local, $"s3://{bucket}/acme/");
        Assert.True(refused.ExitCode == 5, refused.ToString());
        Assert.Contains("a later certificate of resolver le for example.org (expiring 2031-02-01, the local one 2030-12-01)", refused.Stderr);
        using var client = Server.Client();
        Assert.Equal(2, await client.ListAsync(bucket, "acme/").CountAsync()); // the first snapshot and its marker, nothing more
    }
}
