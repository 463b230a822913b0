using InfraTools.Monitoring;
using Prometheus;

namespace InfraTools.AcmeRestore;

/// <summary>The acme_restore_* textfile metrics of one run.</summary>
public static class RestoreMetrics
{
    /// <summary>The outcome label values, in the order they are written.</summary>
    public static readonly (Outcome Outcome, string Label)[] Outcomes =
    [
        (Outcome.Restored, "restored"),
        (Outcome.Present, "present"),
        (Outcome.NoBackup, "no_backup"),
        (Outcome.Invalid, "invalid"),
        (Outcome.Failed, "failed"),
    ];

    public static string Label(Outcome outcome) => Outcomes.First(o => o.Outcome == outcome).Label;

    public static async Task WriteAsync(string path, Outcome outcome, DateTimeOffset started, TimeSpan duration, CancellationToken cancellationToken)
    {
        var registry = Metrics.NewCustomRegistry();
        var factory = Metrics.WithCustomRegistry(registry);
        factory.CreateGauge("acme_restore_last_run_timestamp_seconds", "Unix time the last acme-restore run started.")
            .Set(started.ToUnixTimeMilliseconds() / 1000.0);
        var outcomes = factory.CreateGauge("acme_restore_last_run_outcome",
            "Outcome of the last acme-restore run: 1 for the outcome it had, 0 for the others.", "outcome");
        foreach (var (value, label) in Outcomes) outcomes.WithLabels(label).Set(value == outcome ? 1 : 0);
        factory.CreateGauge("acme_restore_last_run_duration_seconds", "How long the last acme-restore run took before starting the command.")
            .Set(duration.TotalSeconds);
        await TextfileMetrics.WriteAsync(registry, path, cancellationToken).ConfigureAwait(false);
    }
}
