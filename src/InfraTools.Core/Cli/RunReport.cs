using System.Diagnostics;
using System.Globalization;
using InfraTools.Monitoring;
using InfraTools.Sync;
using InfraTools.Text;
using Serilog;

namespace InfraTools.Cli;

/// <summary>
/// One more gauge of a run's textfile: one value, or one value per label value (<see cref="Label"/>), or one per row of
/// label values (<see cref="Labels"/> and <see cref="Rows"/>; no rows: not written).
/// </summary>
public sealed record ReportGauge(string Name, string Help, double Value, string? Label = null, IReadOnlyList<(string LabelValue, double Value)>? Values = null)
{
    public IReadOnlyList<string>? Labels { get; init; }
    public IReadOnlyList<(string[] LabelValues, double Value)>? Rows { get; init; }
}

/// <summary>
/// What a batch run did, kept from its start, for the one shared writer (<see cref="WriteAsync"/>): the summary
/// line and the textfile metrics, written for every run that got past its command line, also a failed one.
/// </summary>
public sealed class RunReport(string metricPrefix, string what, IReadOnlyList<(string Name, string Value)>? labels = null)
{
    private readonly Stopwatch _clock = Stopwatch.StartNew();

    public string MetricPrefix { get; } = metricPrefix;
    public string What { get; } = what;
    public IReadOnlyList<(string Name, string Value)> Labels { get; } = labels ?? [];
    public DateTimeOffset Started { get; } = DateTimeOffset.UtcNow;
    public TimeSpan Elapsed => _clock.Elapsed;

    /// <summary>
    /// Freezes the report at the run's end (a long-running mode renders a finished run's gauges again later):
    /// <see cref="Elapsed"/> stops, and <see cref="Live"/> is evaluated once into <see cref="Gauges"/>, so that the
    /// kept report no longer holds the run (its closure held the run object, and through it the release directory
    /// and publisher of a pull, on the heap of an idle watcher: bench/RESULTS.md "Idle watcher").
    /// </summary>
    public void Stop()
    {
        _clock.Stop();
        if (Live is not { } live) return;
        Gauges.AddRange(live());
        Live = null;
    }

    /// <summary>Whether the file has PREFIX_last_success_timestamp_seconds and PREFIX_last_run_success (acme-restore reports an outcome instead).</summary>
    public bool SuccessMetrics { get; init; } = true;

    /// <summary>False for runs that change nothing (dry runs): no metrics file.</summary>
    public bool WritesMetrics { get; set; } = true;

    /// <summary>The run's own gauges, filled as it goes (they are written as they are when it fails half-way).</summary>
    public List<ReportGauge> Gauges { get; } = [];

    /// <summary>Gauges computed when the file is written, from counters the run keeps updating (e.g. <see cref="FilesByOutcome"/>).</summary>
    public Func<IEnumerable<ReportGauge>>? Live { get; set; }

    /// <summary>
    /// Logs the summary line of a sync run: "pulled s3://site/ into /srv/www: 12 downloaded (1.2 MB), 3 deleted, 4985
    /// unchanged, 0 failed, 0 skipped in 0.84 s", and the error line when it is incomplete.
    /// </summary>
    public void LogSync(ILogger log, string action, string source, string preposition, string target, SyncStats stats, string verb, bool complete)
    {
        log.Information("{Action} {Source} {Preposition} {Target}: {Transferred} {Verb} ({Bytes}), {Deleted} deleted, {Unchanged} unchanged, {Failed} failed, {Skipped} skipped in {Seconds} s",
            action, source, preposition, target, stats.Transferred, verb, Units.FormatBytes(stats.TransferredBytes), stats.Deleted, stats.Unchanged, stats.Failed,
            stats.Skipped, Elapsed.TotalSeconds.ToString("0.00", CultureInfo.InvariantCulture));
        if (!complete)
            log.Error("the {What} is incomplete: {Failed} failed and {Skipped} skipped (see above)", What, stats.Failed, stats.Skipped);
    }

    /// <summary>Writes the textfile metrics; a file that cannot be written is logged, never a reason to fail (or keep a program from starting).</summary>
    public async Task WriteAsync(string? path, bool success, ILogger log)
    {
        if (path is null || !WritesMetrics) return;
        try
        {
            await TextfileMetrics.WriteAsync(Render(path, success), path).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            log.Error("cannot write the metrics file {Path}: {Reason}", path, ex.Message);
        }
    }

    /// <summary>
    /// The textfile's content, with <paramref name="more"/> gauges (a long-running mode's own) after the run's; the
    /// last success time is kept from the file at <paramref name="path"/> when this run failed.
    /// </summary>
    public byte[] Render(string? path, bool success, IEnumerable<ReportGauge>? more = null) =>
        RunMetrics.Render(path, MetricPrefix, What, Labels, Started, Elapsed, success, SuccessMetrics, metrics =>
        {
            foreach (var gauge in Gauges.Concat(Live?.Invoke() ?? []).Concat(more ?? []))
            {
                if (gauge.Labels is { } names) metrics.Gauge(gauge.Name, gauge.Help, [.. names], gauge.Rows ?? []);
                else if (gauge.Label is null) metrics.Gauge(gauge.Name, gauge.Help, gauge.Value);
                else metrics.Gauge(gauge.Name, gauge.Help, gauge.Label, gauge.Values ?? []);
            }
        });

    /// <summary>A sync run's files per outcome (one label value per outcome) and the bytes it transferred.</summary>
    public static IEnumerable<ReportGauge> FilesByOutcome(SyncStats stats, string filesMetric, string filesHelp, string transferred, string bytesMetric, string bytesHelp) =>
    [
        new(filesMetric, filesHelp, 0, "outcome",
        [
            (transferred, stats.Transferred), ("deleted", stats.Deleted), ("unchanged", stats.Unchanged), ("failed", stats.Failed), ("skipped", stats.Skipped),
        ]),
        new(bytesMetric, bytesHelp, stats.TransferredBytes),
    ];
}
