using InfraTools.Interop;
using System.Collections.Concurrent;
using InfraTools.Cron.Crontab;
using InfraTools.Cron.Logging;
using InfraTools.Cron.Monitoring;
using InfraTools.Cron.Processes;
using InfraTools.Cron.Scheduling;
using Microsoft.Extensions.Time.Testing;
using Serilog;
using Serilog.Core;
using Serilog.Events;

namespace InfraTools.Tests.InProcess;

/// <summary>Log events formatted as cron prints them (logrus text), kept in memory.</summary>
public sealed class MemoryLog : ILogEventSink
{
    private readonly LogrusFormatter _formatter = new(json: false);
    private readonly List<string> _lines = [];

    public void Emit(LogEvent logEvent)
    {
        var writer = new StringWriter();
        _formatter.Format(logEvent, writer);
        lock (_lines) _lines.Add(writer.ToString().TrimEnd('\n'));
    }

    public IReadOnlyList<string> Lines
    {
        get { lock (_lines) return _lines.ToList(); }
    }

    public IReadOnlyList<LogLine> Logs => Lines.Select(LogLine.TryParse).OfType<LogLine>().ToList();

    public string Text => string.Join('\n', Lines);

    public CronLog CreateLog() => new(new LoggerConfiguration().MinimumLevel.Debug().WriteTo.Sink(this).CreateLogger());
}

/// <summary>Job processes that only pretend: each spawn is recorded, and the test decides when and how it ends.</summary>
public sealed class FakeProcesses(TimeProvider time) : IJobProcesses
{
    private int _nextPid = 1000;
    private readonly ConcurrentDictionary<int, FakeProcess> _processes = new();
    private readonly List<FakeProcess> _spawned = [];

    /// <summary>A process that ignores SIGTERM (only SIGKILL ends it).</summary>
    public bool IgnoreSigterm { get; set; }

    public IReadOnlyList<FakeProcess> Spawned
    {
        get { lock (_spawned) return _spawned.ToList(); }
    }

    public IReadOnlyList<FakeProcess> Running => Spawned.Where(p => !p.Exited.IsCompleted).ToList();

    public List<(int Pid, int Signal)> Signals { get; } = [];

    public void SpawnAll(IReadOnlyList<SpawnRequest> requests)
    {
        foreach (var request in requests)
        {
            var pid = Interlocked.Increment(ref _nextPid);
            var process = new FakeProcess(pid, request.Command.Argv, request.Command.Environment, time.GetUtcNow().UtcDateTime);
            _processes[pid] = process;
            lock (_spawned) _spawned.Add(process);
            request.Process = new SpawnedProcess(pid, -1, -1, process.Exited);
        }
    }

    public bool SignalGroup(int processGroup, int signal)
    {
        lock (Signals) Signals.Add((processGroup, signal));
        if (!_processes.TryGetValue(processGroup, out var process) || process.Exited.IsCompleted) return false;
        if (signal == Libc.SIGKILL || (signal == Libc.SIGTERM && !IgnoreSigterm)) process.End(new ExitStatus(null, signal));
        return true;
    }

    public void Dispose()
    {
    }
}

public sealed class FakeProcess(int pid, IReadOnlyList<string> argv, IReadOnlyList<string> environment, DateTime startedAt)
{
    public DateTime StartedAt { get; } = startedAt;
    private readonly TaskCompletionSource<ExitStatus> _exited = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public int Pid { get; } = pid;
    public IReadOnlyList<string> Argv { get; } = argv;
    public IReadOnlyList<string> Environment { get; } = environment;
    public string Command => Argv[^1];
    public Task<ExitStatus> Exited => _exited.Task;

    public void End(ExitStatus status) => _exited.TrySetResult(status);

    public void Exit(int code = 0) => End(new ExitStatus(code, null));
}

/// <summary>
/// The scheduler on fake time with fake processes: load a crontab, then move the clock and let the scheduler
/// take one pass (<see cref="Advance"/>); nothing sleeps, no process starts.
/// </summary>
public sealed class Scheduler : IDisposable
{
    public static readonly DateTimeOffset NewYear2026 = new(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);

    private readonly TempDir _dir = new("cron-inprocess");

    public Scheduler(string crontab, DateTimeOffset? start = null, bool overlapping = false, TimeSpan? grace = null)
    {
        Time = new FakeTimeProvider(start ?? NewYear2026);
        Processes = new FakeProcesses(Time);
        Path = _dir.Write("crontab", crontab);
        Metrics = new CronMetrics(Time);
        var settings = new CronSettings(Path, overlapping, PassthroughLogs: false, ReapOrphans: false, grace ?? TimeSpan.FromSeconds(5), Debug: true);
        Service = new CronService(settings, Log.CreateLog(), Metrics, _ => null, new Dictionary<string, string> { ["INHERITED"] = "yes" }, Time, Processes);
        var result = Service.Read(out var error);
        Assert.Null(error);
        Assert.True(result.Crontab is not null, string.Join('\n', result.Errors));
        Service.Load(result.Crontab);
    }

    public FakeTimeProvider Time { get; }
    public FakeProcesses Processes { get; }
    public MemoryLog Log { get; } = new();
    public CronMetrics Metrics { get; }
    public CronService Service { get; }
    public string Path { get; }

    public DateTime Now => Time.GetUtcNow().UtcDateTime;

    /// <summary>Moves the clock by <paramref name="by"/> in steps of at most <paramref name="step"/> (a second), with one scheduler pass after each.</summary>
    public void Advance(TimeSpan by, TimeSpan? step = null)
    {
        var most = step ?? TimeSpan.FromSeconds(1);
        var end = Time.GetUtcNow() + by;
        while (Time.GetUtcNow() < end)
        {
            var left = end - Time.GetUtcNow();
            Time.Advance(left < most ? left : most);
            Assert.True(Service.Step(out _));
        }
    }

    /// <summary>The metrics as /metrics serves them.</summary>
    public async Task<string[]> MetricsAsync()
    {
        using var stream = new MemoryStream();
        await Metrics.Registry.CollectAndExportAsTextAsync(stream);
        return System.Text.Encoding.UTF8.GetString(stream.ToArray()).Split('\n');
    }

    /// <summary>A scheduler pass without moving the clock (e.g. after a reload request).</summary>
    public void Step() => Assert.True(Service.Step(out _));

    /// <summary>Rewrites the crontab file.</summary>
    public void Rewrite(string crontab) => File.WriteAllText(Path, crontab);

    /// <summary>Waits (bounded) until <paramref name="condition"/> holds: runs end on the thread pool.</summary>
    public static async Task EventuallyAsync(Func<bool> condition, string what)
    {
        for (var i = 0; i < 400 && !condition(); i++) await Task.Delay(25);
        Assert.True(condition(), what);
    }

    public Task LoggedAsync(string message) =>
        EventuallyAsync(() => Log.Logs.Any(l => l.Message == message), $"no log line '{message}' in\n{Log.Text}");

    public (string Name, int Running, DateTime? NextRun, ulong NextIteration, bool Removed) Job(string name) =>
        Service.Jobs().Single(j => j.Name == name);

    public void Dispose()
    {
        Service.Dispose();
        _dir.Dispose();
    }
}
