using InfraTools.Files;
using InfraTools.Monitoring;
using Prometheus;

namespace InfraTools.Tests;

public class TextfileMetricsTests
{
    [Fact]
    public async Task Writes_an_atomic_world_readable_file_without_timestamps()
    {
        using var dir = new TempDir();
        var path = dir.Combine("tool.prom");
        var registry = Metrics.NewCustomRegistry();
        var factory = Metrics.WithCustomRegistry(registry);
        factory.CreateGauge("tool_last_success_timestamp_seconds", "Last success.").Set(1700000000);
        factory.CreateGauge("tool_files", "Files.", "name").WithLabels("acme").Set(3);

        await TextfileMetrics.WriteAsync(registry, path);

        var lines = File.ReadAllLines(path);
        Assert.Contains("tool_last_success_timestamp_seconds 1700000000", lines);
        Assert.Contains("tool_files{name=\"acme\"} 3", lines);
        // A sample line is "name{labels} value"; a timestamp would be a third field.
        Assert.All(lines.Where(l => !l.StartsWith('#')), l => Assert.Equal(2, l.Split(' ').Length));
        Assert.Equal(AtomicFile.ReadableByAll, File.GetUnixFileMode(path));
        Assert.Equal(["tool.prom"], Directory.GetFiles(dir.Path).Select(Path.GetFileName));
        Assert.Equal(1700000000, TextfileMetrics.ReadSample(path, "tool_last_success_timestamp_seconds"));
        Assert.Equal(3, TextfileMetrics.ReadSample(path, "tool_files", "name=\"acme\""));
        Assert.Null(TextfileMetrics.ReadSample(path, "tool_files", "name=\"other\""));
        Assert.Null(TextfileMetrics.ReadSample(dir.Combine("missing.prom"), "tool_files"));
    }

    [Fact]
    public async Task Refuses_a_name_node_exporter_would_ignore()
    {
        using var dir = new TempDir();
        await Assert.ThrowsAsync<ArgumentException>(() => TextfileMetrics.WriteAsync(Metrics.NewCustomRegistry(), dir.Combine("tool.txt")));
    }

    [Fact]
    public async Task A_failed_write_leaves_the_old_file_and_no_temporary_file()
    {
        using var dir = new TempDir();
        var path = dir.Write("keep.prom", "old\n");
        await Assert.ThrowsAsync<InvalidOperationException>(() =>
            AtomicFile.WriteAsync(path, async stream =>
            {
                await stream.WriteAsync("new"u8.ToArray());
                throw new InvalidOperationException("disk trouble");
            }, AtomicFile.ReadableByAll));
        Assert.Equal("old\n", File.ReadAllText(path));
        Assert.Single(Directory.GetFiles(dir.Path));
    }
}
