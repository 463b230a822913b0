using System.Globalization;
using InfraTools.Files;
using Prometheus;

namespace InfraTools.Monitoring;

/// <summary>
/// Writes metrics (a batch run's gauges, or cron's prometheus-net registry) as a node_exporter textfile: Prometheus text format 0.0.4, no timestamps,
/// written to a temporary name that does not end in .prom in the same directory, fsynced, made 0644 (node_exporter
/// skips files it cannot read) and renamed over the target, so the collector never sees half a file.
/// </summary>
public static class TextfileMetrics
{
    /// <summary>A prometheus-net registry (cron's metrics).</summary>
    public static async Task WriteAsync(CollectorRegistry registry, string path, CancellationToken cancellationToken = default)
    {
        CheckPath(path);
        using var buffer = new MemoryStream();
        await registry.CollectAndExportAsTextAsync(buffer, ExpositionFormat.PrometheusText, cancellationToken).ConfigureAwait(false);
        await AtomicFile.WriteAsync(path, buffer.ToArray(), AtomicFile.ReadableByAll, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Exposition text already made (<see cref="GaugeFamilies"/>, a batch run's metrics).</summary>
    public static async Task WriteAsync(byte[] text, string path, CancellationToken cancellationToken = default)
    {
        CheckPath(path);
        await AtomicFile.WriteAsync(path, text, AtomicFile.ReadableByAll, cancellationToken).ConfigureAwait(false);
    }

    private static void CheckPath(string path)
    {
        if (!path.EndsWith(".prom", StringComparison.Ordinal))
            throw new ArgumentException($"metrics file '{path}' must end in .prom, or node_exporter's textfile collector ignores it", nameof(path));
    }

    /// <summary>
    /// The value of one sample in an existing textfile, e.g. the last success timestamp a failed run must keep.
    /// <paramref name="labels"/> is the exact label set as written, e.g. name="acme", or empty for none.
    /// Returns null when the file or the sample does not exist or cannot be read.
    /// </summary>
    public static double? ReadSample(string path, string metric, string labels = "")
    {
        string[] lines;
        try
        {
            lines = File.ReadAllLines(path);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return null;
        }
        var prefix = labels.Length == 0 ? metric + " " : $"{metric}{{{labels}}} ";
        foreach (var line in lines)
        {
            if (!line.StartsWith(prefix, StringComparison.Ordinal)) continue;
            var value = line[prefix.Length..].Trim().Split(' ')[0];
            if (double.TryParse(value, NumberStyles.Float, CultureInfo.InvariantCulture, out var parsed)) return parsed;
        }
        return null;
    }
}
