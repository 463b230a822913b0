namespace InfraTools.Tests;

/// <summary>The acme-restore findings of the hardening issue.</summary>
public class AcmeRestoreHardeningTests
{
    private static readonly TimeSpan Bounded = TimeSpan.FromSeconds(90);

    // 5 ---------------------------------------------------------------------------------------------------------

    [Fact]
    public async Task A_dangling_acme_json_symlink_is_restored_through_and_Traefik_starts()
    {
        var bucket = await AcmeRestore.BucketWithAsync(AcmeRestore.SampleAcmeJson);
        using var dir = new TempDir("acme");
        var target = dir.Combine("volume", "acme.json");
        var link = dir.Combine("acme.json");
        File.CreateSymbolicLink(link, target);

        var result = await AcmeRestore.RunAsync(["--source", $"s3://{bucket}/acme.json", "--file", link, "--", "sh", "-c", "echo traefik-started"]);

        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Equal("traefik-started\n", result.Stdout);
        Assert.Equal(AcmeRestore.SampleAcmeJson, File.ReadAllBytes(target));
        Assert.Equal(target, new FileInfo(link).LinkTarget);
        Assert.Equal(AcmeRestore.Mode0600, File.GetUnixFileMode(target));
    }

    [Fact]
    public async Task A_symlink_to_an_empty_file_counts_as_missing_and_is_restored()
    {
        var bucket = await AcmeRestore.BucketWithAsync(AcmeRestore.SampleAcmeJson);
        using var dir = new TempDir("acme");
        var target = dir.Write("volume/acme.json", "");
        var link = dir.Combine("acme.json");
        File.CreateSymbolicLink(link, target);
        var metrics = dir.Combine("acme.prom");

        var result = await AcmeRestore.RunAsync(["--source", $"s3://{bucket}/acme.json", "--file", link, "--metrics-file", metrics]);

        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.DoesNotContain("is present", result.Stderr);
        Assert.Equal(AcmeRestore.SampleAcmeJson, File.ReadAllBytes(target));
        Assert.NotNull(new FileInfo(link).LinkTarget);
        AcmeRestore.AssertOutcome(metrics, "restored");
    }

    // 6 ---------------------------------------------------------------------------------------------------------

    [Fact]
    public async Task An_endpoint_that_is_not_S3_is_a_failure_not_a_missing_backup()
    {
        using var web = new FaultyS3(upstream: null); // a plain web server: 404 pages for everything
        using var dir = new TempDir("acme");
        var file = dir.Combine("acme.json");
        var metrics = dir.Combine("acme.prom");
        var env = web.Environment(S3Server.Shared);

        var optional = await AcmeRestore.RunAsync(["--source", "s3://backups/acme.json", "--file", file, "--metrics-file", metrics, "--", "true"], env);
        Assert.True(optional.ExitCode == 0, optional.ToString());
        Assert.DoesNotContain("no backup", optional.Stderr);
        Assert.Contains("not an S3 error", optional.Stderr);
        AcmeRestore.AssertOutcome(metrics, "failed");

        var required = await AcmeRestore.RunAsync(["--source", "s3://backups/acme.json", "--file", file, "--required", "--", "true"], env);
        Assert.True(required.ExitCode == 11, required.ToString());
        Assert.False(File.Exists(file));
    }

    // 18 --------------------------------------------------------------------------------------------------------

    [Fact]
    public async Task The_64_MiB_cap_holds_for_a_body_without_a_length()
    {
        using var s3 = FaultyS3.InFrontOf(S3Server.Shared);
        var huge = new byte[100 << 20];
        Array.Fill(huge, (byte)' ');
        huge[0] = (byte)'{';
        huge[^1] = (byte)'}';
        s3.When(r => r.IsGetObject, new Fault.Answer(_ => new FaultResponse { Body = huge, Headers = { ("Content-Type", "application/json"), ("ETag", "\"x\"") } },
            Then: new Fault.Chunked()));
        using var dir = new TempDir("acme");
        var file = dir.Combine("acme.json");
        var metrics = dir.Combine("acme.prom");

        var result = await ProcessRunner.RunAsync("/usr/bin/time", ["-f", "maxrss_kb=%M", AcmeRestore.Binary, "--source", "s3://backups/acme.json", "--file", file, "--metrics-file", metrics],
            s3.Environment(S3Server.Shared), timeout: Bounded);

        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Contains("larger than 64 MiB", result.Stderr);
        AcmeRestore.AssertOutcome(metrics, "invalid");
        Assert.False(File.Exists(file));
        var rss = long.Parse(result.Stderr.Split('\n').Last(l => l.StartsWith("maxrss_kb=", StringComparison.Ordinal))["maxrss_kb=".Length..]);
        Assert.True(rss < 256 * 1024, $"peak RSS {rss} KB: the body was not capped while reading");
    }
}
