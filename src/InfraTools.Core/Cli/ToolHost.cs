using System.CommandLine;
using System.Runtime.InteropServices;
using InfraTools.Crypto;
using InfraTools.Logging;
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
