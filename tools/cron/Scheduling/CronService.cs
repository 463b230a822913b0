using System.Diagnostics;
using InfraTools.Cli;
using InfraTools.S3;
using InfraTools.Secrets;
using InfraTools.Cron.Crontab;
using InfraTools.Cron.Logging;
using InfraTools.Cron.Monitoring;
using InfraTools.Cron.Processes;

namespace InfraTools.Cron.Scheduling;

public sealed record CronSettings(
    string CrontabPath,
    bool Overlapping,
    bool PassthroughLogs,
    bool ReapOrphans,
    TimeSpan GracePeriod,
    bool Debug);

/// <summary>
/// The scheduler: one loop that sleeps until the earliest next run of any job (no timer per job), starts due
/// jobs, skips a tick whose job is still running (unless -overlapping), reloads the crontab on request
/// (keeping the current one when the new one is invalid) and stops gracefully: no new runs, running jobs get
/// the grace period, then SIGTERM to their process groups, then SIGKILL.
/// </summary>
public sealed class CronService : IDisposable
{
    /// <summary>Between SIGTERM and SIGKILL, for the grace period and for timeouts.</summary>
    public static readonly TimeSpan KillDelay = TimeSpan.FromSeconds(3);
    /// <summary>How long a finished job's output pipes may stay open (held by a background process) before the run is reported.</summary>
    private static readonly TimeSpan OutputLinger = TimeSpan.FromSeconds(1);
    /// <summary>The loop wakes at least this often, so a wall-clock jump is noticed.</summary>
    private static readonly TimeSpan MaxSleep = TimeSpan.FromSeconds(30);

    private readonly CronSettings _settings;
    private readonly CronLog _log;
    private readonly CronMetrics _metrics;
    private readonly Func<string, double?> _previousLastSuccess;
    private readonly IReadOnlyDictionary<string, string> _inheritedEnvironment;
    private readonly ChildProcesses _children;
    private readonly object _gate = new();
    private readonly Dictionary<string, JobState> _jobs = new(StringComparer.Ordinal);
    private readonly SemaphoreSlim _wake = new(0);
    private readonly CancellationTokenSource _stopping = new();
    private readonly TaskCompletionSource _forceStop = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly List<Task> _runTasks = [];
    private string? _stopSignal;
    private string? _reloadReason;
    private string? _lastReadText;
    private JobEnvironmentCache? _environment;

    public CronService(CronSettings settings, CronLog log, CronMetrics metrics, Func<string, double?> previousLastSuccess,
        IReadOnlyDictionary<string, string> inheritedEnvironment)
    {
        _settings = settings;
        _log = log;
        _metrics = metrics;
        _previousLastSuccess = previousLastSuccess;
        _inheritedEnvironment = inheritedEnvironment;
        _children = new ChildProcesses(settings.ReapOrphans, (pid, status) =>
            _log.Debug($"reaped orphaned process {pid} ({status})"));
    }

    /// <summary>False once a stop was requested (for /health).</summary>
    public bool Healthy => !_stopping.IsCancellationRequested;

    /// <summary>SIGTERM, SIGINT, SIGQUIT: stop after the running jobs (a second signal ends the grace period at once).</summary>
    public void RequestStop(string signalName)
    {
        lock (_gate)
        {
            if (_stopSignal is not null)
            {
                _forceStop.TrySetResult();
                return;
            }
            _stopSignal = signalName;
        }
        _wake.Release();
    }

    /// <summary>SIGUSR2 (always reloads) or a file change seen by -inotify (reloads if the content changed).</summary>
    public void RequestReload(string reason)
    {
        lock (_gate) _reloadReason ??= reason;
        _wake.Release();
    }

    public const string FileChangedReason = "crontab file changed";

    /// <summary>Reads and parses the crontab; logs notices (SHELL, USER, CRON_TZ) and, under -debug, how each line was read.</summary>
    public CrontabParseResult Read(out string? readError)
    {
        readError = null;
        string text;
        try
        {
            text = File.ReadAllText(_settings.CrontabPath);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            readError = $"cannot read crontab {_settings.CrontabPath}: {ex.Message}";
            return new CrontabParseResult(null, [], [], []);
        }
        _lastReadText = text;
        var result = CrontabParser.Parse(text, _settings.CrontabPath, TimeZoneInfo.Local);
        RegisterSecrets(result.Crontab);
        foreach (var line in result.Debug) _log.Debug(line);
        foreach (var notice in result.Notices) _log.Write(notice.Level, notice.Message);
        return result;
    }

    /// <summary>Runs until a stop signal, then waits for (or stops) the running jobs. Returns the exit code (0).</summary>
    public async Task<int> RunAsync(CrontabFile crontab)
    {
        var loopEnded = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        // A dedicated thread that blocks until the next run wakes up on time (a timed futex wait) and starts the
        // due jobs itself, without a hop through the thread pool.
        var loop = new Thread(() =>
        {
            try
            {
                SchedulerLoop(crontab);
                loopEnded.TrySetResult();
            }
            catch (Exception ex)
            {
                loopEnded.TrySetException(ex);
            }
        }, maxStackSize: 256 * 1024) { IsBackground = true, Name = "scheduler" };
        loop.Start();
        try
        {
            await loopEnded.Task.ConfigureAwait(false);
        }
        finally
        {
            await ShutdownAsync(_stopSignal is { } signal ? $"received {signal}" : "the scheduler failed").ConfigureAwait(false);
        }
        return 0;
    }

    private void SchedulerLoop(CrontabFile crontab)
    {
        Apply(crontab, initial: true);
        while (true)
        {
            string? stop, reload;
            lock (_gate)
            {
                stop = _stopSignal;
                reload = _reloadReason;
                _reloadReason = null;
            }
            if (stop is not null) return;
            if (reload is not null)
            {
                Reload(reload);
                continue;
            }

            var now = DateTime.UtcNow;
            DateTime? earliest = null;
            lock (_gate)
            {
                foreach (var job in _jobs.Values)
                {
                    if (job.Removed || job.NextRun is not { } next) continue;
                    if (next <= now) Tick(job, next, now);
                    if (job.NextRun is { } n && (earliest is null || n < earliest)) earliest = n;
                }
            }
            var sleep = earliest is { } e ? e - DateTime.UtcNow : MaxSleep;
            if (sleep > MaxSleep) sleep = MaxSleep;
            if (sleep <= TimeSpan.Zero) continue;
            // Round up so the loop does not wake a fraction of a millisecond early and spin.
            _wake.Wait((int)Math.Ceiling(sleep.TotalMilliseconds));
        }
    }

    private void Reload(string reason)
    {
        if (reason == FileChangedReason)
        {
            string? text = null;
            try
            {
                text = File.ReadAllText(_settings.CrontabPath);
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                _log.Debug($"crontab changed but cannot be read yet: {ex.Message}");
            }
            if (text is null || text == _lastReadText)
            {
                _log.Debug("watched directory changed, crontab content did not");
                return;
            }
        }
        _log.Info($"{reason}, reloading crontab");
        _log.Info($"read crontab: {_settings.CrontabPath}");
        var result = Read(out var readError);
        if (readError is not null || result.Crontab is null)
        {
            if (readError is not null) _log.Error(readError);
            foreach (var error in result.Errors) _log.Error(FormatError(error));
            _log.Error($"keeping the current crontab: the new one is not valid ({CountBadLines(result, readError)}); fix it and save again or send SIGUSR2");
            return;
        }
        Apply(result.Crontab, initial: false);
    }

    private static string CountBadLines(CrontabParseResult result, string? readError) =>
        readError is not null ? "it cannot be read" : $"{result.Errors.Count} bad line{(result.Errors.Count == 1 ? "" : "s")}";

    /// <summary>S3 credentials set in the crontab itself are scrubbed from the logs like inherited ones.</summary>
    private static void RegisterSecrets(CrontabFile? crontab)
    {
        if (crontab is null) return;
        var credentials = S3SettingsReader.CredentialVariables.ToHashSet(StringComparer.Ordinal);
        foreach (var (key, value) in crontab.Environment)
            if (credentials.Contains(key) && !key.EndsWith("_FILE", StringComparison.Ordinal)) SecretRedactor.Register(value);
    }

    public static string FormatError(CrontabError error) => $"line {error.Line}: {error.Message}";

    private void Apply(CrontabFile crontab, bool initial)
    {
        var now = DateTime.UtcNow;
        lock (_gate)
        {
            var names = crontab.Jobs.Select(j => j.Name).ToHashSet(StringComparer.Ordinal);
            foreach (var state in _jobs.Values.ToList())
            {
                if (names.Contains(state.Name) || state.Removed) continue;
                state.Removed = true;
                state.NextRun = null;
                if (state.Runs.Count == 0) Forget(state);
                else state.Log.Info("job removed from the crontab: no new runs, the running one finishes");
            }
            foreach (var job in crontab.Jobs)
            {
                if (_jobs.TryGetValue(job.Name, out var state))
                {
                    state.Update(job, crontab, _log);
                    state.Removed = false;
                }
                else
                {
                    state = new JobState(job, crontab, _log);
                    _jobs[job.Name] = state;
                    _metrics.AddJob(job.Name, _previousLastSuccess(job.Name));
                }
                state.NextRun = NextRun(state, now, now);
                if (state.NextRun is null) state.Log.Warn("job will never run: its schedule has no time in the future");
                if (initial && job.Options.RunAtStart)
                {
                    state.Log.Info("running at start (run-at-start)");
                    Start(state, now, jitter: TimeSpan.Zero);
                }
            }
        }
    }

    private void Forget(JobState state)
    {
        _jobs.Remove(state.Name);
        _metrics.RemoveJob(state.Name);
    }

    /// <summary>The next run after <paramref name="after"/>; if that is already past (cron fell behind), the next after now.</summary>
    private DateTime? NextRun(JobState job, DateTime after, DateTime now)
    {
        var zone = job.Crontab.TimeZone;
        var next = job.Definition.Expression.Next(after, zone);
        if (next is { } n && n <= now) next = job.Definition.Expression.Next(now, zone);
        // Never schedule at or before the time just handled: a next run that does not move forward is how
        // supercronic looped at a daylight-saving change (issue 86).
        if (next is { } m && m <= after) next = job.Definition.Expression.Next(after.AddSeconds(1), zone);
        if (next is { } r && job.Log.DebugEnabled) job.Log.Debug($"job will run next at {GoFormat.Time(r, zone)}");
        return next;
    }

    /// <summary>A due tick (called under the lock).</summary>
    private void Tick(JobState job, DateTime tick, DateTime now)
    {
        var running = job.Runs;
        if (running.Count > 0)
        {
            var oldest = running[0];
            var since = $"{GoFormat.Time(oldest.ScheduledAt, job.Crontab.TimeZone)} ({GoFormat.Duration(tick - oldest.ScheduledAt)} elapsed)";
            if (!_settings.Overlapping)
            {
                oldest.Log.Warn($"not starting: job is still running since {since}");
                _metrics.Skipped(job.Name);
                job.NextRun = NextRun(job, tick, now);
                return;
            }
            oldest.Log.Warn($"overlapping jobs: job is still running since {since}");
        }
        var jitter = job.Definition.Options.Jitter;
        Start(job, tick, jitter > TimeSpan.Zero ? TimeSpan.FromTicks(Random.Shared.NextInt64(jitter.Ticks)) : TimeSpan.Zero);
        job.NextRun = NextRun(job, tick, now);
    }

    /// <summary>Starts a run (called under the lock); the run registers itself in the job at once.</summary>
    private void Start(JobState job, DateTime scheduledAt, TimeSpan jitter)
    {
        var run = new JobRun(job, job.NextIteration++, scheduledAt);
        job.Runs.Add(run);
        _runTasks.RemoveAll(t => t.IsCompleted);
        _runTasks.Add(jitter > TimeSpan.Zero ? LaunchLaterAsync(run, jitter) : Launch(run));
    }

    private async Task LaunchLaterAsync(JobRun run, TimeSpan jitter)
    {
        run.Log.Debug($"delaying start by {GoFormat.Duration(jitter)} (jitter)");
        try
        {
            await Task.Delay(jitter, _stopping.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            run.Log.Info("not starting: cron is shutting down");
            Finish(run);
            return;
        }
        await Launch(run).ConfigureAwait(false);
    }

    /// <summary>Logs "starting" and spawns the job at once; the returned task follows it to its end.</summary>
    private Task Launch(JobRun run)
    {
        try
        {
            run.Log.Info("starting");
            var clock = Stopwatch.StartNew();
            SpawnedProcess process;
            try
            {
                process = _children.Spawn([run.Crontab.Shell, "-c", run.Definition.Command], JobEnvironment(run.Crontab), capture: !_settings.PassthroughLogs);
            }
            catch (SpawnException ex)
            {
                run.Log.With("job.exit_code", 127).Error($"error running command: {ex.Message}");
                _metrics.Finished(run.Job.Name, null, clock.Elapsed, started: false);
                Finish(run);
                return Task.CompletedTask;
            }
            lock (_gate) run.Process = process;
            _metrics.Started(run.Job.Name);
            // The run's output thread, timeout and exit are set up off the scheduler thread, which goes on to
            // start the next due job at once.
            return Task.Run(() => FollowAsync(run, process, clock));
        }
        catch (Exception ex)
        {
            run.Log.Error(ex, $"unexpected error while starting the job ({ex.GetType().Name}: {ex.Message})", _settings.Debug);
            Finish(run);
            return Task.CompletedTask;
        }
    }

    private async Task FollowAsync(JobRun run, SpawnedProcess process, Stopwatch clock)
    {
        var job = run.Job;
        var counted = false;
        try
        {
            var pump = process.StdoutFd >= 0
                ? OutputPump.Start(process.StdoutFd, process.StderrFd, (channel, line, truncated) =>
                {
                    var log = run.Log.With("channel", channel);
                    log.Info(line);
                    if (truncated) log.Warn("last line exceeded buffer size, continuing...");
                })
                : null;

            using var exited = new CancellationTokenSource();
            if (run.Definition.Options.Timeout is { } timeout) _ = EnforceTimeoutAsync(run, process, timeout, exited.Token);

            var status = await process.Exited.ConfigureAwait(false);
            await exited.CancelAsync().ConfigureAwait(false);
            lock (_gate) run.Exited = true;
            if (pump is not null && await Task.WhenAny(pump.Finished, Task.Delay(OutputLinger)).ConfigureAwait(false) != pump.Finished)
                run.Log.Debug("the job's output is still open (held by a process it left running); the run counts as finished");
            var duration = clock.Elapsed;

            if (status.Success) run.Log.Info("job succeeded");
            else run.Log.With("job.exit_code", status.ShellCode).With("job.duration", duration).Error($"error running command: {status}");
            _metrics.Finished(job.Name, status, duration, started: true);
            counted = true;

            if (!_settings.Overlapping && run.Definition.Expression.Next(run.ScheduledAt, run.Crontab.TimeZone) is { } shouldHaveStarted)
            {
                var late = DateTime.UtcNow - shouldHaveStarted;
                if (late > TimeSpan.Zero) job.Log.Warn($"job took too long to run: it should have started {GoFormat.Duration(late)} ago");
            }
        }
        catch (Exception ex)
        {
            run.Log.Error(ex, $"unexpected error while running the job ({ex.GetType().Name}: {ex.Message})", _settings.Debug);
            if (!counted) _metrics.Finished(job.Name, null, clock.Elapsed, started: true);
        }
        finally
        {
            Finish(run);
        }
    }

    /// <summary>The run is over: the job may start again, and a job removed by a reload is forgotten after its last run.</summary>
    private void Finish(JobRun run)
    {
        var job = run.Job;
        lock (_gate)
        {
            job.Runs.Remove(run);
            if (job.Removed && job.Runs.Count == 0 && _jobs.TryGetValue(job.Name, out var current) && current == job) Forget(job);
        }
        _wake.Release();
    }

    private static async Task EnforceTimeoutAsync(JobRun run, SpawnedProcess process, TimeSpan timeout, CancellationToken exited)
    {
        try
        {
            await Task.Delay(timeout, exited).ConfigureAwait(false);
            run.Log.Warn($"job timed out after {GoFormat.Duration(timeout)}: sending SIGTERM to its process group");
            ChildProcesses.SignalGroup(process.Pid, Posix.SIGTERM);
            await Task.Delay(KillDelay, exited).ConfigureAwait(false);
            run.Log.Warn($"job still running {GoFormat.Duration(KillDelay)} after SIGTERM: sending SIGKILL to its process group");
            ChildProcesses.SignalGroup(process.Pid, Posix.SIGKILL);
        }
        catch (OperationCanceledException)
        {
        }
    }

    /// <summary>cron's own environment overridden by the crontab's NAME=value lines; built once per crontab.</summary>
    private string[] JobEnvironment(CrontabFile crontab)
    {
        if (_environment is { } cached && cached.Crontab == crontab) return cached.Variables;
        var merged = new Dictionary<string, string>(_inheritedEnvironment, StringComparer.Ordinal);
        foreach (var (key, value) in crontab.Environment) merged[key] = value;
        var variables = merged.Select(p => $"{p.Key}={p.Value}").ToArray();
        _environment = new JobEnvironmentCache(crontab, variables);
        return variables;
    }

    private async Task ShutdownAsync(string reason)
    {
        _log.Info($"{reason}, shutting down");
        await _stopping.CancelAsync().ConfigureAwait(false);
        _log.Info("waiting for jobs to finish");

        var all = RunningTasks();
        var finished = Task.WhenAll(all);
        if (all.Count > 0 && await Task.WhenAny(finished, Task.Delay(_settings.GracePeriod), _forceStop.Task).ConfigureAwait(false) != finished)
        {
            var why = _forceStop.Task.IsCompleted ? "second stop signal" : $"grace period of {GoFormat.Duration(_settings.GracePeriod)} is over";
            SignalRunning(Posix.SIGTERM, $"{why}: sending SIGTERM to the job's process group");
            if (await Task.WhenAny(finished, Task.Delay(KillDelay)).ConfigureAwait(false) != finished)
            {
                SignalRunning(Posix.SIGKILL, $"job still running {GoFormat.Duration(KillDelay)} after SIGTERM: sending SIGKILL to its process group");
                await Task.WhenAny(finished, Task.Delay(KillDelay)).ConfigureAwait(false);
            }
        }
        _log.Info("exiting");
    }

    private List<Task> RunningTasks()
    {
        lock (_gate) return _runTasks.Where(t => !t.IsCompleted).ToList();
    }

    private void SignalRunning(int signal, string message)
    {
        List<JobRun> runs;
        lock (_gate) runs = _jobs.Values.SelectMany(j => j.Runs).Where(r => r.Process is not null && !r.Exited).ToList();
        foreach (var run in runs)
        {
            run.Log.Warn(message);
            ChildProcesses.SignalGroup(run.Process!.Pid, signal);
        }
    }

    public void Dispose()
    {
        _children.Dispose();
        _stopping.Dispose();
        _wake.Dispose();
    }
}

internal sealed record JobEnvironmentCache(CrontabFile Crontab, string[] Variables);
