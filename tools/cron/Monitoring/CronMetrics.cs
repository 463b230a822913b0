using System.Threading.Channels;
using InfraTools.Cron.Logging;
using InfraTools.Cron.Processes;
using InfraTools.Monitoring;
using Prometheus;

namespace InfraTools.Cron.Monitoring;

/// <summary>
/// The per-job metrics, labelled by job name (the name option or a default without the command's arguments),
/// never by the raw command, which may hold secrets. Counters start at 0 when a job is loaded, so that
/// increase(cron_job_failures_total[15m]) sees the first failure.
/// </summary>
public sealed class CronMetrics
{
    public const string LastSuccessName = "cron_job_last_success_timestamp_seconds";

    private static readonly double[] DurationBuckets = [0.1, 0.5, 1, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200];

    private readonly Counter _executions;
    private readonly Counter _failures;
    private readonly Counter _skipped;
    private readonly Gauge _running;
    private readonly Histogram _duration;
    private readonly Gauge _lastSuccess;
    private readonly Gauge _lastExitCode;

    private readonly TimeProvider _time;

    public CronMetrics(TimeProvider? time = null)
    {
        _time = time ?? TimeProvider.System;
        Registry = Metrics.NewCustomRegistry();
        var factory = Metrics.WithCustomRegistry(Registry);
        _executions = factory.CreateCounter("cron_job_executions_total", "Job runs that ended (succeeded or failed).", "job");
        _failures = factory.CreateCounter("cron_job_failures_total", "Job runs that failed: non-zero exit, killed by a signal or timeout, or could not start.", "job");
        _skipped = factory.CreateCounter("cron_job_skipped_total", "Scheduled runs not started because the previous run of the job was still going.", "job");
        _running = factory.CreateGauge("cron_job_running", "Runs of the job going on now.", "job");
        _duration = factory.CreateHistogram("cron_job_duration_seconds", "How long job runs took.",
            new HistogramConfiguration { LabelNames = ["job"], Buckets = DurationBuckets });
        _lastSuccess = factory.CreateGauge(LastSuccessName, "Unix time the job last succeeded.", "job");
        _lastExitCode = factory.CreateGauge("cron_job_last_exit_code", "Exit code of the job's last run (128 + signal number when killed by a signal).", "job");
    }

    public CollectorRegistry Registry { get; }

    /// <summary>Raised after every change, for the textfile writer.</summary>
    public event Action? Changed;

    public void AddJob(string job, double? lastSuccess)
    {
        _executions.WithLabels(job);
        _failures.WithLabels(job);
        _skipped.WithLabels(job);
        _running.WithLabels(job);
        _duration.WithLabels(job);
        if (lastSuccess is { } timestamp) _lastSuccess.WithLabels(job).Set(timestamp);
        Changed?.Invoke();
    }

    public void RemoveJob(string job)
    {
        foreach (var collector in new Collector[] { _executions, _failures, _skipped, _running, _duration, _lastSuccess, _lastExitCode })
        {
            switch (collector)
            {
                case Counter c: c.RemoveLabelled(job); break;
                case Gauge g: g.RemoveLabelled(job); break;
                case Histogram h: h.RemoveLabelled(job); break;
            }
        }
        Changed?.Invoke();
    }

    public void Started(string job)
    {
        _running.WithLabels(job).Inc();
        Changed?.Invoke();
    }

    public void Skipped(string job)
    {
        _skipped.WithLabels(job).Inc();
        Changed?.Invoke();
    }

    /// <summary>A run ended; <paramref name="started"/> says whether a process ran (it counts as running until now).</summary>
    public void Finished(string job, ExitStatus? status, TimeSpan duration, bool started)
    {
        if (started) _running.WithLabels(job).Dec();
        _executions.WithLabels(job).Inc();
        _duration.WithLabels(job).Observe(duration.TotalSeconds);
        _lastExitCode.WithLabels(job).Set(status?.ShellCode ?? 127);
        if (status is { Success: true }) _lastSuccess.WithLabels(job).Set(_time.GetUtcNow().ToUnixTimeMilliseconds() / 1000.0);
        else _failures.WithLabels(job).Inc();
        Changed?.Invoke();
    }
}

/// <summary>
/// Keeps the --metrics-file textfile current: rewritten (atomically) after changes, at most once a second,
/// and once more when cron stops. A write error is logged once, and again only after a write succeeded.
/// </summary>
public sealed class MetricsFileWriter(CollectorRegistry registry, string path, CronLog log)
{
    private readonly Channel<bool> _dirty = Channel.CreateBounded<bool>(new BoundedChannelOptions(1) { FullMode = BoundedChannelFullMode.DropWrite });
    private readonly SemaphoreSlim _writing = new(1, 1);
    private bool _failing;

    public string Path { get; } = path;

    public void MarkChanged() => _dirty.Writer.TryWrite(true);

    public async Task RunAsync(CancellationToken stopping)
    {
        try
        {
            while (await _dirty.Reader.WaitToReadAsync(stopping).ConfigureAwait(false))
            {
                _dirty.Reader.TryRead(out _);
                await WriteAsync().ConfigureAwait(false);
                await Task.Delay(TimeSpan.FromSeconds(1), stopping).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) when (stopping.IsCancellationRequested)
        {
        }
    }

    public async Task WriteAsync()
    {
        await _writing.WaitAsync().ConfigureAwait(false);
        try
        {
            await TextfileMetrics.WriteAsync(registry, Path).ConfigureAwait(false);
            if (_failing) log.Info($"metrics file {Path} written again");
            _failing = false;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            if (!_failing) log.Warn($"cannot write metrics file {Path}: {ex.Message} (jobs keep running; the file is retried after the next change)");
            _failing = true;
        }
        finally
        {
            _writing.Release();
        }
    }
}
