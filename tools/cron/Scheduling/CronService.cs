using InfraTools.Interop;
using InfraTools.Time;
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
    /// <summary>
    /// After the job's shell exited, how long cron waits for the rest of its output (so that it is logged before
    /// the run's end) when the pipes stay open, held by a process the job left in the background. The run ends
    /// then; that process's output is still logged.
    /// </summary>
    private static readonly TimeSpan OutputLinger = TimeSpan.FromMilliseconds(50);
    /// <summary>The loop wakes at least this often, so a wall-clock jump is noticed.</summary>
    private static readonly TimeSpan MaxSleep = TimeSpan.FromSeconds(30);

    private readonly CronSettings _settings;
    private readonly CronLog _log;
    private readonly CronMetrics _metrics;
    private readonly Func<string, double?> _previousLastSuccess;
    private readonly IReadOnlyDictionary<string, string> _inheritedEnvironment;
    private readonly TimeProvider _time;
    private readonly IJobProcesses _children;
    private readonly object _gate = new();
    private readonly Dictionary<string, JobState> _jobs = new(StringComparer.Ordinal);
    private readonly SemaphoreSlim _wake = new(0);
    private bool _disposed; // under _gate
    private readonly CancellationTokenSource _stopping = new();
    private readonly TaskCompletionSource _forceStop = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private string? _stopSignal;
    private string? _reloadReason;
    private string? _lastReadText;
    private JobEnvironmentCache? _environment;

    /// <param name="time">The clock and timers (TimeProvider.System; a fake one in the in-process tests).</param>
    /// <param name="processes">How jobs are started (posix_spawn; a fake in the in-process tests).</param>
    public CronService(CronSettings settings, CronLog log, CronMetrics metrics, Func<string, double?> previousLastSuccess,
        IReadOnlyDictionary<string, string> inheritedEnvironment, TimeProvider? time = null, IJobProcesses? processes = null)
    {
        _settings = settings;
        _log = log;
        _metrics = metrics;
        _previousLastSuccess = previousLastSuccess;
        _inheritedEnvironment = inheritedEnvironment;
        _time = time ?? TimeProvider.System;
        _children = processes ?? new ChildProcesses(settings.ReapOrphans, (pid, status) =>
            _log.Debug($"reaped orphaned process {pid} ({status})"));
    }

    private DateTime Now => _time.GetUtcNow().UtcDateTime;

    /// <summary>False once a stop was requested (for /health).</summary>
    public bool Healthy => !_stopping.IsCancellationRequested;

    /// <summary>SIGTERM, SIGINT, SIGQUIT: stop after the running jobs (a second signal ends the grace period at once).</summary>
    /// <remarks>After <see cref="Dispose"/> a request is ignored: a late signal may arrive while the process exits.</remarks>
    public void RequestStop(string signalName)
    {
        lock (_gate)
        {
            if (_disposed) return;
            if (_stopSignal is not null)
            {
                _forceStop.TrySetResult();
                return;
            }
            _stopSignal = signalName;
            _wake.Release();
        }
    }

    /// <summary>SIGUSR2 (always reloads) or a file change seen by -inotify (reloads if the content changed).</summary>
    public void RequestReload(string reason)
    {
        lock (_gate)
        {
            if (_disposed) return;
            _reloadReason ??= reason;
            _wake.Release();
        }
    }

    public const string FileChangedReason = "crontab file changed";

    /// <summary>Reads and parses the crontab; logs notices (SHELL, USER, CRON_TZ) and, under -debug, how each line was read.</summary>
    public CrontabParseResult Read(out string? readError)
    {
        readError = null;
        string text;
        try
        {
            text = RawText.Read(_settings.CrontabPath);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            readError = $"cannot read crontab {_settings.CrontabPath}: {ex.Message}";
            return new CrontabParseResult(null, [], [], [], []);
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
        Load(crontab);
        while (Step(out var wake))
        {
            var sleep = wake - Now;
            if (sleep <= TimeSpan.Zero) continue;
            Sleep(sleep);
        }
    }

    /// <summary>Applies the first crontab (with its run-at-start jobs).</summary>
    internal void Load(CrontabFile crontab) => Apply(crontab, initial: true);

    /// <summary>
    /// One pass of the scheduler: a stop request ends it (false); a reload request reloads; every job whose
    /// next run is due is started (or skipped). <paramref name="wake"/> is when the next pass is needed.
    /// </summary>
    internal bool Step(out DateTime wake)
    {
        string? stop, reload;
        lock (_gate)
        {
            stop = _stopSignal;
            reload = _reloadReason;
            _reloadReason = null;
        }
        wake = default;
        if (stop is not null) return false;
        if (reload is not null) Reload(reload);

        var now = Now;
        DateTime? earliest = null;
        var due = new List<JobRun>();
        lock (_gate)
        {
            foreach (var job in _jobs.Values)
            {
                if (job.Removed || job.NextRun is not { } next) continue;
                if (next <= now) Tick(job, next, now, due);
                if (job.NextRun is { } n && (earliest is null || n < earliest)) earliest = n;
            }
        }
        Launch(due);
        wake = earliest is { } e && e - now < MaxSleep ? e : now + MaxSleep;
        return true;
    }

    /// <summary>Sleeps until <paramref name="sleep"/> has passed or a request wakes the loop.</summary>
    private void Sleep(TimeSpan sleep)
    {
        if (_time == TimeProvider.System)
        {
            // A timed futex wait wakes on time without a hop through the thread pool. Rounded up so the loop
            // does not wake a fraction of a millisecond early and spin.
            _wake.Wait((int)Math.Ceiling(sleep.TotalMilliseconds));
            return;
        }
        using var timer = _time.CreateTimer(_ => _wake.Release(), null, sleep, Timeout.InfiniteTimeSpan);
        _wake.Wait();
    }

    private void Reload(string reason)
    {
        if (reason == FileChangedReason)
        {
            string? text = null;
            try
            {
                text = RawText.Read(_settings.CrontabPath);
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

    /// <summary>S3 credentials set in the crontab itself (values, and the content of *_FILE files) are scrubbed from the logs like inherited ones.</summary>
    private static void RegisterSecrets(CrontabFile? crontab)
    {
        if (crontab is null) return;
        foreach (var (key, value) in crontab.Environment) CronSecrets.Register(key, value);
    }

    public static string FormatError(CrontabError error) => $"line {error.Line}: {error.Message}";

    private void Apply(CrontabFile crontab, bool initial)
    {
        var now = Now;
        var atStart = new List<JobRun>();
        lock (_gate)
        {
            var states = _jobs.Values.ToList();
            var matched = Match(crontab.Jobs, states);
            var named = crontab.Jobs.Where(j => j.Options.Name is not null).Select(j => j.Name).ToHashSet(StringComparer.Ordinal);
            var labels = new HashSet<string>(StringComparer.Ordinal);
            // Labels of removed jobs that still run stay theirs until the run ends.
            foreach (var state in states)
                if (!matched.ContainsValue(state) && state.Runs.Count > 0) labels.Add(state.Name);

            var next = new Dictionary<string, JobState>(StringComparer.Ordinal);
            foreach (var job in crontab.Jobs)
            {
                if (matched.TryGetValue(job, out var state))
                {
                    // A job without a name option keeps its label (and so its metrics) when only its line moved.
                    var label = job.Options.Name ?? (named.Contains(state.Name) || labels.Contains(state.Name) || state.Definition.Options.Name is not null
                        ? Unique(job.Name, labels) : state.Name);
                    if (label != state.Name)
                    {
                        _metrics.RemoveJob(state.Name);
                        _metrics.AddJob(label, _previousLastSuccess(label));
                        state.Name = label;
                    }
                    state.Update(job, crontab, _log);
                    state.Removed = false;
                }
                else
                {
                    var label = job.Options.Name ?? Unique(job.Name, labels);
                    state = new JobState(job, crontab, label, _log);
                    _metrics.AddJob(label, _previousLastSuccess(label));
                }
                labels.Add(state.Name);
                next[state.Name] = state;
                state.Command = new PreparedCommand([crontab.Shell, "-c", job.Command], JobEnvironment(crontab));
                state.NextRun = NextRun(state, now, now);
                if (state.NextRun is null) state.Log.Warn("job will never run: its schedule has no time in the future");
                if (initial && job.Options.RunAtStart)
                {
                    state.Log.Info("running at start (run-at-start)");
                    Start(state, now, jitter: null, atStart);
                }
            }
            foreach (var state in states)
            {
                if (matched.ContainsValue(state)) continue;
                if (state.Runs.Count == 0)
                {
                    _metrics.RemoveJob(state.Name);
                    continue;
                }
                if (!state.Removed) state.Log.Info("job removed from the crontab: no new runs, the running one finishes");
                state.Removed = true;
                state.NextRun = null;
                next[state.Name] = state;
            }
            _jobs.Clear();
            foreach (var (name, state) in next) _jobs[name] = state;
        }
        Launch(atStart);
    }

    /// <summary>
    /// Which current job each job of the new crontab is: the one with the same name option; else the one with
    /// the same schedule and command; else the one with the same command (its schedule was edited). A job that
    /// matches none is new.
    /// </summary>
    private static Dictionary<CrontabJob, JobState> Match(IReadOnlyList<CrontabJob> jobs, List<JobState> states)
    {
        var matched = new Dictionary<CrontabJob, JobState>();
        var free = new List<JobState>(states);
        void Pass(Func<CrontabJob, JobState, bool> same)
        {
            foreach (var job in jobs)
            {
                if (matched.ContainsKey(job)) continue;
                var state = free.FirstOrDefault(s => same(job, s));
                if (state is null) continue;
                matched[job] = state;
                free.Remove(state);
            }
        }
        Pass((job, state) => job.Options.Name is { } name && state.Definition.Options.Name == name);
        Pass((job, state) => state.Definition.Options.Name is null || job.Options.Name is null
            ? job.Schedule == state.Definition.Schedule && job.Command == state.Definition.Command
            : false);
        Pass((job, state) => (state.Definition.Options.Name is null || job.Options.Name is null) && job.Command == state.Definition.Command);
        return matched;
    }

    /// <summary><paramref name="label"/>, or with a suffix (_2, _3 ...) when a running job already has it.</summary>
    private static string Unique(string label, HashSet<string> taken)
    {
        if (!taken.Contains(label)) return label;
        for (var i = 2; ; i++)
            if (!taken.Contains($"{label}_{i}")) return $"{label}_{i}";
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

    /// <summary>A due tick (called under the lock); a run to start now is added to <paramref name="due"/>.</summary>
    private void Tick(JobState job, DateTime tick, DateTime now, List<JobRun> due)
    {
        var running = job.Runs;
        if (running.Count > 0)
        {
            var oldest = running[0];
            var since = $"{GoFormat.Time(oldest.ScheduledAt, job.Crontab.TimeZone)} ({GoDuration.Format(tick - oldest.ScheduledAt)} elapsed)";
            if (!_settings.Overlapping)
            {
                oldest.Log.Warn($"not starting: job is still running since {since}");
                _metrics.Skipped(job.Name);
                job.NextRun = NextRun(job, tick, now);
                return;
            }
            oldest.Log.Warn($"overlapping jobs: job is still running since {since}");
        }
        // Whole milliseconds: Task.Delay waits whole milliseconds, so the delay logged is the delay waited.
        var jitterMs = (long)job.Definition.Options.Jitter.TotalMilliseconds;
        Start(job, tick, jitterMs > 0 ? TimeSpan.FromMilliseconds(Random.Shared.NextInt64(jitterMs)) : null, due);
        job.NextRun = NextRun(job, tick, now);
    }

    /// <summary>Registers a run (called under the lock): to be started with the other due runs, or after its jitter.</summary>
    private void Start(JobState job, DateTime scheduledAt, TimeSpan? jitter, List<JobRun> due)
    {
        var run = new JobRun(job, job.NextIteration++, scheduledAt);
        job.Runs.Add(run);
        if (jitter is { } delay) _ = LaunchLaterAsync(run, delay);
        else due.Add(run);
    }

    private async Task LaunchLaterAsync(JobRun run, TimeSpan jitter)
    {
        run.Log.Debug($"delaying start by {GoDuration.Format(jitter)} (jitter)");
        try
        {
            await Task.Delay(jitter, _time, _stopping.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            run.Log.Info("not starting: cron is shutting down");
            Finish(run);
            return;
        }
        Launch([run]);
    }

    /// <summary>
    /// Starts the due runs together (in parallel when there are many, see <see cref="ChildProcesses"/>), then
    /// logs "starting" for each and follows it to its end off this thread.
    /// </summary>
    private void Launch(List<JobRun> runs)
    {
        if (runs.Count == 0) return;
        var requests = new SpawnRequest[runs.Count];
        var clocks = new long[runs.Count];
        try
        {
            for (var i = 0; i < runs.Count; i++)
            {
                var job = runs[i].Job;
                PreparedCommand command;
                lock (_gate) command = job.Command ??= new PreparedCommand([runs[i].Crontab.Shell, "-c", runs[i].Definition.Command], JobEnvironment(runs[i].Crontab));
                requests[i] = new SpawnRequest(command, capture: !_settings.PassthroughLogs);
                clocks[i] = Stopwatch.GetTimestamp();
            }
            var spawning = Stopwatch.GetTimestamp();
            _children.SpawnAll(requests);
            if (runs.Count > 1 && _log.DebugEnabled)
                _log.Debug($"started {runs.Count} due jobs in {GoDuration.Format(Stopwatch.GetElapsedTime(spawning))}");
        }
        catch (Exception ex)
        {
            foreach (var run in runs)
            {
                run.Log.Error(ex, $"unexpected error while starting the job ({ex.GetType().Name}: {ex.Message})", _settings.Debug);
                Finish(run);
            }
            return;
        }
        for (var i = 0; i < runs.Count; i++)
        {
            var run = runs[i];
            var request = requests[i];
            run.Log.Info("starting");
            if (request.Process is not { } process)
            {
                run.Log.With("job.exit_code", 127).Error($"error running command: {request.Error}");
                _metrics.Finished(run.Job.Name, null, Stopwatch.GetElapsedTime(clocks[i]), started: false);
                Finish(run);
                continue;
            }
            lock (_gate) run.Process = process;
            _metrics.Started(run.Job.Name);
            // The timeout counts from the start, whenever the thread pool gets to the rest.
            if (run.Definition.Options.Timeout is { } timeout) _ = EnforceTimeoutAsync(run, process, timeout, run.Ended.Token);
            var clock = clocks[i];
            // The run's output thread, timeout and exit are set up off the scheduler thread.
            _ = Task.Run(() => FollowAsync(run, process, clock));
        }
    }

    private async Task FollowAsync(JobRun run, SpawnedProcess process, long clock)
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

            var status = await process.Exited.ConfigureAwait(false);
            await run.Ended.CancelAsync().ConfigureAwait(false);
            lock (_gate) run.Exited = true;
            if (pump is not null && await Task.WhenAny(pump.Finished, Task.Delay(OutputLinger)).ConfigureAwait(false) != pump.Finished)
                run.Log.Debug("the job's output is still open (held by a process it left running); the run counts as finished");
            var duration = Stopwatch.GetElapsedTime(clock);

            if (status.Success) run.Log.Info("job succeeded");
            else run.Log.With("job.exit_code", status.ShellCode).With("job.duration", duration).Error($"error running command: {status}");
            _metrics.Finished(job.Name, status, duration, started: true);
            counted = true;

            if (!_settings.Overlapping && run.Definition.Expression.Next(run.ScheduledAt, run.Crontab.TimeZone) is { } shouldHaveStarted)
            {
                var late = Now - shouldHaveStarted;
                if (late > TimeSpan.Zero) job.Log.Warn($"job took too long to run: it should have started {GoDuration.Format(late)} ago");
            }
        }
        catch (Exception ex)
        {
            run.Log.Error(ex, $"unexpected error while running the job ({ex.GetType().Name}: {ex.Message})", _settings.Debug);
            if (!counted) _metrics.Finished(job.Name, null, Stopwatch.GetElapsedTime(clock), started: true);
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
        run.Finished.TrySetResult();
        run.Ended.Cancel();
        _wake.Release();
    }

    private async Task EnforceTimeoutAsync(JobRun run, SpawnedProcess process, TimeSpan timeout, CancellationToken exited)
    {
        try
        {
            await Task.Delay(timeout, _time, exited).ConfigureAwait(false);
            run.Log.Warn($"job timed out after {GoDuration.Format(timeout)}: sending SIGTERM to its process group");
            _children.SignalGroup(process.Pid, Libc.SIGTERM);
            await Task.Delay(KillDelay, _time, exited).ConfigureAwait(false);
            run.Log.Warn($"job still running {GoDuration.Format(KillDelay)} after SIGTERM: sending SIGKILL to its process group");
            _children.SignalGroup(process.Pid, Libc.SIGKILL);
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
        using var graceOver = new CancellationTokenSource();
        var grace = Task.Delay(_settings.GracePeriod, _time, graceOver.Token);
        _log.Info("waiting for jobs to finish");

        var all = RunningTasks();
        var finished = Task.WhenAll(all);
        if (all.Count > 0 && await Task.WhenAny(finished, grace, _forceStop.Task).ConfigureAwait(false) != finished)
        {
            var why = _forceStop.Task.IsCompleted ? "second stop signal" : $"grace period of {GoDuration.Format(_settings.GracePeriod)} is over";
            SignalRunning(Libc.SIGTERM, $"{why}: sending SIGTERM to the job's process group");
            if (await Task.WhenAny(finished, Task.Delay(KillDelay, _time)).ConfigureAwait(false) != finished)
            {
                SignalRunning(Libc.SIGKILL, $"job still running {GoDuration.Format(KillDelay)} after SIGTERM: sending SIGKILL to its process group");
                await Task.WhenAny(finished, Task.Delay(KillDelay, _time)).ConfigureAwait(false);
            }
        }
        await graceOver.CancelAsync().ConfigureAwait(false);
        _log.Info("exiting");
    }

    private List<Task> RunningTasks()
    {
        lock (_gate) return _jobs.Values.SelectMany(j => j.Runs).Select(r => r.Finished.Task).ToList();
    }

    /// <summary>For the in-process tests: completes when every run going on now has ended.</summary>
    internal Task RunsFinished() => Task.WhenAll(RunningTasks());

    /// <summary>For the in-process tests: the jobs as the scheduler has them now (label, runs going on, next run, next iteration).</summary>
    internal IReadOnlyList<(string Name, int Running, DateTime? NextRun, ulong NextIteration, bool Removed)> Jobs()
    {
        lock (_gate) return _jobs.Values.Select(j => (j.Name, j.Runs.Count, j.NextRun, j.NextIteration, j.Removed)).ToList();
    }

    private void SignalRunning(int signal, string message)
    {
        List<JobRun> runs;
        lock (_gate) runs = _jobs.Values.SelectMany(j => j.Runs).Where(r => r.Process is not null && !r.Exited).ToList();
        foreach (var run in runs)
        {
            run.Log.Warn(message);
            _children.SignalGroup(run.Process!.Pid, signal);
        }
    }

    public void Dispose()
    {
        lock (_gate) _disposed = true;
        _children.Dispose();
        _stopping.Dispose();
        _wake.Dispose();
    }
}

internal sealed record JobEnvironmentCache(CrontabFile Crontab, string[] Variables);
