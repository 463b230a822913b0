using InfraTools.Cron.Crontab;
using InfraTools.Cron.Logging;
using InfraTools.Cron.Processes;

namespace InfraTools.Cron.Scheduling;

/// <summary>
/// A job across reloads: its definition, metrics label, next run, iteration counter and the runs still going,
/// which a reload keeps, so that a job never overlaps itself even across a reload. A reload matches a job by
/// its name option, else by what it is (schedule and command), not by the line it is on.
/// </summary>
internal sealed class JobState(CrontabJob definition, CrontabFile crontab, string name, CronLog log)
{
    public CrontabJob Definition { get; private set; } = definition;
    public CrontabFile Crontab { get; private set; } = crontab;
    /// <summary>The metrics label; kept across reloads (a job without a name option keeps the label it started with).</summary>
    public string Name { get; set; } = name;
    /// <summary>supercronic's fields: job.command, job.position, job.schedule (and job.name when the job has a name option).</summary>
    public CronLog Log { get; private set; } = JobLog(log, definition);
    /// <summary>argv and environment, encoded once per definition and crontab.</summary>
    public PreparedCommand? Command { get; set; }
    public DateTime? NextRun { get; set; }
    public ulong NextIteration { get; set; }
    public List<JobRun> Runs { get; } = [];
    /// <summary>No longer in the crontab; kept until its last run ends.</summary>
    public bool Removed { get; set; }

    public void Update(CrontabJob definition, CrontabFile crontab, CronLog log)
    {
        Definition = definition;
        Crontab = crontab;
        Log = JobLog(log, definition);
        Command = null;
    }

    private static CronLog JobLog(CronLog log, CrontabJob job)
    {
        var jobLog = log.With("job.command", job.Command).With("job.position", job.Position).With("job.schedule", job.Schedule);
        return job.Options.Name is { } name ? jobLog.With("job.name", name) : jobLog;
    }
}

/// <summary>One run of a job: scheduled time, and once started its process.</summary>
internal sealed class JobRun(JobState job, ulong iteration, DateTime scheduledAt)
{
    public JobState Job { get; } = job;
    public CrontabJob Definition { get; } = job.Definition;
    public CrontabFile Crontab { get; } = job.Crontab;
    public DateTime ScheduledAt { get; } = scheduledAt;
    public CronLog Log { get; } = job.Log.With("iteration", iteration);
    public SpawnedProcess? Process { get; set; }
    public bool Exited { get; set; }
    /// <summary>Completed when the run is over (ended, or never started).</summary>
    public TaskCompletionSource Finished { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    /// <summary>Cancelled when the process has exited (ends the timeout).</summary>
    public CancellationTokenSource Ended { get; } = new();
}
