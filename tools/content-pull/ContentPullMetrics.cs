using InfraTools.Monitoring;
using InfraTools.Sync;

namespace InfraTools.ContentPull;

/// <summary>The textfile metrics of one run. The last-success timestamp only moves on a fully successful run.</summary>
internal static class ContentPullMetrics
{
    public static Task WriteAsync(string path, DateTimeOffset started, TimeSpan duration, bool success, MirrorStats? stats) =>
        RunMetrics.WriteAsync(path, "content_pull", "content pull", [], started, duration, success, metrics =>
        {
            metrics.Gauge("content_pull_last_run_files", "Files per outcome in the last content pull.", "outcome",
            [
                ("downloaded", stats?.Downloaded ?? 0), ("deleted", stats?.Deleted ?? 0), ("unchanged", stats?.Unchanged ?? 0),
                ("failed", stats?.Failed ?? 0), ("skipped", stats?.Skipped ?? 0),
            ]);
            metrics.Gauge("content_pull_last_run_downloaded_bytes", "Bytes downloaded by the last content pull.", stats?.DownloadedBytes ?? 0);
        });
}
