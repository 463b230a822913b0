using InfraTools.Monitoring;
using InfraTools.Sync;
using Prometheus;

namespace InfraTools.ContentPull;

/// <summary>The textfile metrics of one run. The last-success timestamp only moves on a fully successful run.</summary>
internal static class ContentPullMetrics
{
    public const string LastSuccess = "content_pull_last_success_timestamp_seconds";

    public static async Task WriteAsync(string path, DateTimeOffset started, TimeSpan duration, bool success, MirrorStats? stats)
    {
        var registry = Metrics.NewCustomRegistry();
        var factory = Metrics.WithCustomRegistry(registry);
        var lastSuccess = success ? started.ToUnixTimeMilliseconds() / 1000.0 : TextfileMetrics.ReadSample(path, LastSuccess);
        if (lastSuccess is { } value)
            factory.CreateGauge(LastSuccess, "Unix time at which the last fully successful content pull started.").Set(value);
        factory.CreateGauge("content_pull_last_run_timestamp_seconds", "Unix time at which the last content pull started.")
            .Set(started.ToUnixTimeMilliseconds() / 1000.0);
        factory.CreateGauge("content_pull_last_run_success", "1 if the last content pull succeeded completely, else 0.").Set(success ? 1 : 0);
        factory.CreateGauge("content_pull_last_run_duration_seconds", "How long the last content pull took.").Set(duration.TotalSeconds);
        var files = factory.CreateGauge("content_pull_last_run_files", "Files per outcome in the last content pull.", "outcome");
        files.WithLabels("downloaded").Set(stats?.Downloaded ?? 0);
        files.WithLabels("deleted").Set(stats?.Deleted ?? 0);
        files.WithLabels("unchanged").Set(stats?.Unchanged ?? 0);
        files.WithLabels("failed").Set(stats?.Failed ?? 0);
        files.WithLabels("skipped").Set(stats?.Skipped ?? 0);
        factory.CreateGauge("content_pull_last_run_downloaded_bytes", "Bytes downloaded by the last content pull.").Set(stats?.DownloadedBytes ?? 0);
        await TextfileMetrics.WriteAsync(registry, path).ConfigureAwait(false);
    }
}
