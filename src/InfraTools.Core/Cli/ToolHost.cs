// The shared host of every tool: what a run gets and how its outcome becomes an exit code (ToolHost), the stop
// signals (SignalHandlers), and the run report behind the summary line and the textfile metrics (RunReport, Units).
using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using InfraTools.Crypto;
using InfraTools.Logging;
using InfraTools.Monitoring;
using InfraTools.S3;
using InfraTools.Secrets;
using InfraTools.Storage;
using InfraTools.Sync;
using Serilog;
using Serilog.Core;
using Serilog.Events;

namespace InfraTools.Cli;

/// <summary>What a command's run gets from the host: a logger, the shared settings, the environment and a stop signal. Never the ParseResult.</summary>
public sealed class ToolContext(string tool, CommonSettings common, ILogger log, Func<string, string?> environment, CancellationToken stopping)
{
    public string Tool { get; } = tool;
    public CommonSettings Common { get; } = common;
    public ILogger Log { get; } = log;
    public Func<string, string?> Environment { get; } = environment;
    /// <summary>Cancelled on SIGINT or SIGTERM.</summary>
    public CancellationToken Stopping { get; } = stopping;

    /// <summary>Reads the S3 connection settings (flags, then S3_*, then AWS_*; *_FILE secrets): exit 3 when one is missing or malformed.</summary>
    public S3Settings ReadS3Settings() => S3SettingsReader.Read(Common.S3, Environment);

    /// <summary>--metrics-file, else METRICS_FILE, else null; a name that does not end in .prom is a usage error.</summary>
    public string? MetricsPath => CommonOptions.MetricsPath(Common.MetricsFile, Environment);
}

/// <summary>A run's end: its exit code, and, for a tool that hands its process over to another program, what to exec.</summary>
public sealed record ToolResult(int ExitCode, IHandover? Handover = null)
{
    public static implicit operator ToolResult(int exitCode) => new(exitCode);
}

/// <summary>
/// What a tool may change about the host: how its shared flags are read (cron spells them as supercronic does),
/// its logger and how a failure that ended the run is logged (cron logs logrus lines), and whether SIGINT/SIGTERM
/// cancel the run's token (cron handles its stop signals itself: it stops scheduling and waits for its jobs).
/// </summary>
public sealed record HostSettings
{
    public Func<ParseResult, CommonSettings> BindCommon { get; init; } = CommonOptions.Bind;
    public Func<ParseResult, CommonSettings, Logger>? CreateLogger { get; init; }
    public Action<ILogger, Exception, string, LogOptions>? LogFailure { get; init; }
    public bool StopSignalsCancel { get; init; } = true;
}

/// <summary>One run of a command: its report (null for commands without textfile metrics) and the work.</summary>
public interface IToolRun
{
    RunReport? Report { get; }
    Task<ToolResult> RunAsync();
}

/// <summary>A program this process is replaced with (execve) once the host has flushed its log and released its signal handlers.</summary>
public interface IHandover
{
    /// <summary>Replaces the process; returns only if that failed, with the reason.</summary>
    string Exec();
}

/// <summary>
/// Runs a tool's command line the same way for every tool: options are bound once into the command's record
/// (the run never sees the ParseResult); parse and validation errors are one line and exit 2; expected failures
/// are one line and their documented exit code (<see cref="Describe"/>); anything else is one line and exit 1,
/// with the stack trace only under --debug; SIGINT/SIGTERM cancel the run's token; the run's report becomes the
/// summary line and the textfile metrics, also when the run failed; a hand-over execs after everything is closed.
/// </summary>
public static class ToolHost
{
    public static int Run(string tool, RootCommand root, string[] args)
    {
        var parse = root.Parse(args);
        if (parse.Errors.Count > 0)
        {
            Console.Error.WriteLine($"{tool}: {SecretRedactor.Redact(parse.Errors[0].Message)} (see '{tool} --help')");
            return ExitCodes.Usage;
        }
        _handover = null;
        var exitCode = parse.Invoke(new InvocationConfiguration { ProcessTerminationTimeout = null, EnableDefaultExceptionHandler = false });
        if (exitCode != ExitCodes.Ok || _handover is not { } handover) return exitCode;

        // The log is flushed and closed and the signal handlers are released: replace this process. Exec returns only if execve failed.
        var error = handover.Handover.Exec();
        using (var log = ToolLog.Create(tool, handover.Log)) log.Error("{Message}", error);
        return HandoverFailedExitCode;
    }

    /// <summary>The exit code when execve itself fails (as a shell reports a command it cannot execute).</summary>
    public const int HandoverFailedExitCode = 126;

    /// <summary>The hand-over a finished action asked for: one process runs one command, so one slot.</summary>
    private static (IHandover Handover, LogOptions Log)? _handover;

    /// <summary>
    /// Sets the command's action: <paramref name="bind"/> turns the parse result into the command's options record
    /// once, <paramref name="run"/> does the work with the record and a context.
    /// </summary>
    public static void SetAction<TOptions>(Command command, string tool, Func<ParseResult, TOptions> bind, Func<TOptions, ToolContext, IToolRun> create,
        HostSettings? host = null)
    {
        host ??= new HostSettings();
        command.SetAction((ParseResult parse, CancellationToken _) =>
        {
            var common = host.BindCommon(parse);
            return RunActionAsync(tool, common, host.CreateLogger?.Invoke(parse, common) ?? ToolLog.Create(tool, common.Log), host, bind(parse), create);
        });
    }

    private static async Task<int> RunActionAsync<TOptions>(string tool, CommonSettings common, Logger logger, HostSettings host, TOptions options,
        Func<TOptions, ToolContext, IToolRun> create)
    {
        using var log = logger;
        using var stopping = new CancellationTokenSource();
        var signal = 0;
        void OnSignal(PosixSignalContext context)
        {
            if (Interlocked.CompareExchange(ref signal, (int)context.Signal, 0) == 0) stopping.Cancel();
        }
        var context = new ToolContext(tool, common, log, Environment.GetEnvironmentVariable, stopping.Token);
        var run = create(options, context);
        var signals = new SignalHandlers();
        if (host.StopSignalsCancel)
        {
            signals.OnStop(PosixSignal.SIGINT, OnSignal);
            signals.OnStop(PosixSignal.SIGTERM, OnSignal);
        }
        string? metricsPath = null;
        var exitCode = ExitCodes.Failure;
        try
        {
            if (run.Report is not null) metricsPath = context.MetricsPath;
            var result = await run.RunAsync().ConfigureAwait(false);
            if (result.Handover is { } handover) _handover = (handover, common.Log);
            return exitCode = result.ExitCode;
        }
        catch (OperationCanceledException) when (stopping.IsCancellationRequested)
        {
            var name = signal == (int)PosixSignal.SIGINT ? "SIGINT" : "SIGTERM";
            log.Warning("stopped by {Signal} before finishing", name);
            return exitCode = signal == (int)PosixSignal.SIGINT ? ExitCodes.Interrupted : ExitCodes.Terminated;
        }
        catch (Exception ex)
        {
            var (code, message) = Describe(ex);
            (host.LogFailure ?? Error)(log, ex, message, common.Log);
            return exitCode = code;
        }
        finally
        {
            // The one place metrics are written: after every run that got past its command line, also a failed one.
            if (run.Report is { } report) await report.WriteAsync(metricsPath, exitCode == ExitCodes.Ok, log).ConfigureAwait(false);
            signals.Release(); // kept until exit if a stop signal arrived: a second one must not kill the stopped process
        }
    }

    /// <summary>The exit code and one-line message for an exception that ended a tool: the one map from failure kinds to exit codes.</summary>
    public static (int ExitCode, string Message) Describe(Exception ex) => ex switch
    {
        ToolException tool => (tool.ExitCode, tool.Message),
        StoreException store => (ExitCodeFor(store.Kind), store.Message),
        RefusedException refused => (ExitCodes.Refused, refused.Message),
        // A wrong, missing or malformed key is a setting to fix; a damaged file is an integrity failure (the stores' kind).
        AgeKeyException or AgeNoMatchException => (ExitCodes.Configuration, ex.Message),
        AgeException => (ExitCodes.S3Error, ex.Message),
        UnauthorizedAccessException => (ExitCodes.LocalIo, $"permission denied: {ex.Message}"),
        PathTooLongException => (ExitCodes.LocalIo, ex.Message),
        IOException => (ExitCodes.LocalIo, $"file system error: {ex.Message}"),
        _ => (ExitCodes.Failure, $"unexpected error ({ex.GetType().Name}: {ex.Message}); rerun with --debug for the stack trace"),
    };

    /// <summary>The documented exit code of each kind of object-store failure.</summary>
    public static int ExitCodeFor(StoreErrorKind kind) => kind switch
    {
        StoreErrorKind.Unreachable or StoreErrorKind.Interrupted => ExitCodes.S3Unreachable,
        StoreErrorKind.AuthenticationFailed => ExitCodes.S3AuthenticationFailed,
        StoreErrorKind.AccessDenied => ExitCodes.S3AccessDenied,
        StoreErrorKind.BucketNotFound => ExitCodes.S3BucketNotFound,
        StoreErrorKind.ObjectNotFound => ExitCodes.S3ObjectNotFound,
        _ => ExitCodes.S3Error,
    };

    /// <summary>Logs an error line; the stack trace is included only under --debug.</summary>
    public static void Error(ILogger log, Exception ex, string message, LogOptions options)
    {
        var logger = options.Debug ? log.ForContext(LogText.DebugDetails, true) : log;
        logger.Write(LogEventLevel.Error, ex, "{Message}", message);
    }
}

/// <summary>
/// A run's signal handlers, shared by the host and cron. A stop signal often comes twice (timeout(1) signals the
/// child, then its process group), and the second may arrive after the run ended: once a stop signal arrived the
/// handlers stay registered until the process exits and absorb it, instead of the default action killing a
/// process that stopped cleanly (143).
/// </summary>
public sealed class SignalHandlers
{
    private readonly List<PosixSignalRegistration> _registrations = [];
    private int _stopped;

    /// <summary>A stop signal: handled instead of its default action, and from then on the handlers stay.</summary>
    public void OnStop(PosixSignal signal, Action<PosixSignalContext> handler) =>
        On(signal, context =>
        {
            Volatile.Write(ref _stopped, 1);
            handler(context);
        });

    /// <summary>Any other signal (a reload): handled instead of its default action.</summary>
    public void On(PosixSignal signal, Action<PosixSignalContext> handler) =>
        _registrations.Add(PosixSignalRegistration.Create(signal, context =>
        {
            context.Cancel = true;
            handler(context);
        }));

    /// <summary>The run is over: the handlers go, unless a stop signal arrived (then they stay until the process exits).</summary>
    public void Release()
    {
        if (Volatile.Read(ref _stopped) != 0) return;
        foreach (var registration in _registrations) registration.Dispose();
    }
}

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

/// <summary>Sizes for people: 812 B, 12.3 KB, 1.2 MB.</summary>
public static class Units
{
    public static string FormatBytes(long bytes) => bytes switch
    {
        < 1024 => $"{bytes} B",
        < 1024 * 1024 => (bytes / 1024.0).ToString("0.0 KB", CultureInfo.InvariantCulture),
        _ => (bytes / 1024.0 / 1024.0).ToString("0.0 MB", CultureInfo.InvariantCulture),
    };
}
