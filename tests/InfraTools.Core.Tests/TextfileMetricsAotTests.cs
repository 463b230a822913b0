using System.Diagnostics;

namespace InfraTools.Tests;

/// <summary>The shared textfile writer, in the AOT binary, checked by promtool and scraped by a real node_exporter.</summary>
public class TextfileMetricsAotTests
{
    private static async Task<string> WriteSampleAsync(TempDir dir, bool registry = false)
    {
        var path = dir.Combine("driver.prom");
        var result = await ProcessRunner.RunAsync(RepoPaths.TestDriver, registry ? ["write-metrics", "--registry", path] : ["write-metrics", path]);
        Assert.True(result.ExitCode == 0, result.ToString());
        return path;
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Output_passes_promtool_check_metrics(bool registry)
    {
        using var dir = new TempDir();
        var path = await WriteSampleAsync(dir, registry);
        var check = await ProcessRunner.RunAsync("sh", ["-c", $"promtool check metrics < {path}"]);
        Assert.True(check.ExitCode == 0, check.ToString());
        Assert.Equal("", check.Output.Trim());
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Node_exporter_exposes_the_metrics_without_a_scrape_error(bool registry)
    {
        using var dir = new TempDir();
        await WriteSampleAsync(dir, registry);
        var port = Net.FreePort();
        using var exporter = Process.Start(ProcessRunner.StartInfo("prometheus-node-exporter",
            [$"--web.listen-address=127.0.0.1:{port}", "--collector.disable-defaults", "--collector.textfile", $"--collector.textfile.directory={dir.Path}"]))!;
        try
        {
            var metrics = await Net.GetWhenUpAsync($"http://127.0.0.1:{port}/metrics", TimeSpan.FromSeconds(30));
            var lines = metrics.Split('\n');
            Assert.Contains("s3_driver_objects 42", lines);
            Assert.Contains("s3_driver_bytes{name=\"acme\"} 1234", lines);
            Assert.Contains("node_textfile_scrape_error 0", lines);
            Assert.Contains(lines, l => l.StartsWith("s3_driver_last_success_timestamp_seconds ", StringComparison.Ordinal));
            // node_exporter parsed the escapes back and wrote them again: the value survived the round trip.
            if (!registry) Assert.Contains("s3_driver_escaped{path=\"a\\\"b\\\\c\\nd\"} 1", lines);
        }
        finally
        {
            exporter.Kill();
            await exporter.WaitForExitAsync();
        }
    }
}
