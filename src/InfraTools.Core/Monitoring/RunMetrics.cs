namespace InfraTools.Monitoring;

/// <summary>
/// The textfile metrics of one batch run, the same for every tool: PREFIX_last_success_timestamp_seconds (kept from
/// the previous file when this run failed), PREFIX_last_run_timestamp_seconds, PREFIX_last_run_success and
/// PREFIX_last_run_duration_seconds, plus whatever the tool adds. Every series carries the given constant labels.
/// </summary>
public sealed class RunMetrics
{
    private readonly GaugeFamilies _gauges;
    private readonly string[] _labelNames;
    private readonly string[] _labelValues;

    private RunMetrics(GaugeFamilies gauges, IReadOnlyList<(string Name, string Value)> labels)
    {
        _gauges = gauges;
        _labelNames = labels.Select(l => l.Name).ToArray();
        _labelValues = labels.Select(l => l.Value).ToArray();
    }

    /// <summary>Adds a gauge with the constant labels.</summary>
    public void Gauge(string name, string help, double value) => _gauges.Set(name, help, _labelNames, _labelValues, value);

    /// <summary>Adds a gauge with the constant labels plus one more label per value.</summary>
    public void Gauge(string name, string help, string label, IEnumerable<(string LabelValue, double Value)> values)
    {
        string[] names = [.. _labelNames, label];
        foreach (var (labelValue, value) in values) _gauges.Set(name, help, names, [.. _labelValues, labelValue], value);
    }

    /// <summary>Adds a gauge with the constant labels plus <paramref name="labels"/>, one series per entry of <paramref name="values"/>
    /// (its label values in the order of <paramref name="labels"/>). With no values the gauge is not written.</summary>
    public void Gauge(string name, string help, string[] labels, IEnumerable<(string[] LabelValues, double Value)> values)
    {
        string[] names = [.. _labelNames, .. labels];
        foreach (var (labelValues, value) in values) _gauges.Set(name, help, names, [.. _labelValues, .. labelValues], value);
    }

    /// <summary>Writes the file; without <paramref name="successMetrics"/> only the run's time and duration are standard (acme-restore reports an outcome instead).</summary>
    public static async Task WriteAsync(string path, string prefix, string what, IReadOnlyList<(string Name, string Value)> labels,
        DateTimeOffset started, TimeSpan duration, bool success, bool successMetrics, Action<RunMetrics> addMore)
    {
        var text = Render(path, prefix, what, labels, started, duration, success, successMetrics, addMore);
        await TextfileMetrics.WriteAsync(text, path).ConfigureAwait(false);
    }

    /// <summary>The file's content (the last success time kept from the file at <paramref name="path"/> when this run failed; null: none kept).</summary>
    public static byte[] Render(string? path, string prefix, string what, IReadOnlyList<(string Name, string Value)> labels,
        DateTimeOffset started, TimeSpan duration, bool success, bool successMetrics, Action<RunMetrics> addMore)
    {
        var gauges = new GaugeFamilies();
        var metrics = new RunMetrics(gauges, labels);
        var lastSuccessName = $"{prefix}_last_success_timestamp_seconds";
        var labelText = string.Join(',', labels.Select(l => $"{l.Name}=\"{l.Value}\""));
        var startedSeconds = started.ToUnixTimeMilliseconds() / 1000.0;
        var lastSuccess = success ? startedSeconds : path is null ? null : TextfileMetrics.ReadSample(path, lastSuccessName, labelText);
        if (successMetrics && lastSuccess is { } value) metrics.Gauge(lastSuccessName, $"Unix time at which the last fully successful {what} started.", value);
        metrics.Gauge($"{prefix}_last_run_timestamp_seconds", $"Unix time at which the last {what} started.", startedSeconds);
        if (successMetrics) metrics.Gauge($"{prefix}_last_run_success", $"1 if the last {what} succeeded completely, else 0.", success ? 1 : 0);
        metrics.Gauge($"{prefix}_last_run_duration_seconds", $"How long the last {what} took.", duration.TotalSeconds);
        addMore(metrics);
        return gauges.ToText();
    }
}
