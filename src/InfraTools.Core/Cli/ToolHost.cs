using System.CommandLine;
using System.Runtime.InteropServices;
using InfraTools.Logging;
using InfraTools.S3;
using Serilog;
using Serilog.Core;
using Serilog.Events;

namespace InfraTools.Cli;

/// <summary>What a tool's action gets: its parsed command line, a logger, settings readers and a stop signal.</summary>
public sealed class ToolContext(string tool, ParseResult parse, Logger log, Func<string, string?> environment, CancellationToken stopping)
{
    public string Tool { get; } = tool;
    public ParseResult Parse { get; } = parse;
    public ILogger Log { get; } = log;
    public Func<string, string?> Environment { get; } = environment;
    /// <summary>Cancelled on SIGINT or SIGTERM.</summary>
    public CancellationToken Stopping { get; } = stopping;

    public S3Settings ReadS3Settings() => S3SettingsReader.Read(CommonOptions.S3Overrides(Parse), Environment);

    public string? MetricsPath => CommonOptions.MetricsPath(Parse, Environment);
}

/// <summary>
/// Runs a tool's command line the same way for every tool: parse errors are one line and exit 2, expected
/// failures (<see cref="ToolException"/>) are one line and their own exit code, anything else is one line and
/// exit 1 with the stack trace only under --debug, and SIGINT/SIGTERM cancel the action's token.
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
        return parse.Invoke(new InvocationConfiguration { ProcessTerminationTimeout = null, EnableDefaultExceptionHandler = false });
    }

    /// <summary>Sets <paramref name="action"/> as the command's action, wrapped in the shared logging and error handling.</summary>
    public static void SetAction(Command command, string tool, Func<ToolContext, Task<int>> action)
    {
        command.SetAction((ParseResult parse, CancellationToken _) => RunActionAsync(tool, parse, action));
    }

    private static async Task<int> RunActionAsync(string tool, ParseResult parse, Func<ToolContext, Task<int>> action)
    {
        var logOptions = CommonOptions.LogOptions(parse);
        using var log = ToolLog.Create(tool, logOptions);
        using var stopping = new CancellationTokenSource();
        var signal = 0;
        void OnSignal(PosixSignalContext context)
        {
            context.Cancel = true;
            if (Interlocked.CompareExchange(ref signal, (int)context.Signal, 0) == 0) stopping.Cancel();
        }
        using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, OnSignal);
        using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, OnSignal);

        var context = new ToolContext(tool, parse, log, Environment.GetEnvironmentVariable, stopping.Token);
        try
        {
            return await action(context).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (stopping.IsCancellationRequested)
        {
            var name = signal == (int)PosixSignal.SIGINT ? "SIGINT" : "SIGTERM";
            log.Warning("stopped by {Signal} before finishing", name);
            return signal == (int)PosixSignal.SIGINT ? ExitCodes.Interrupted : ExitCodes.Terminated;
        }
        catch (Exception ex)
        {
            var (code, message) = Describe(ex);
            Error(log, logOptions, ex, message);
            return code;
        }
    }

    /// <summary>The exit code and one-line message for an exception that ended a tool.</summary>
    public static (int ExitCode, string Message) Describe(Exception ex) => ex switch
    {
        ToolException tool => (tool.ExitCode, tool.Message),
        UnauthorizedAccessException => (ExitCodes.LocalIo, $"permission denied: {ex.Message}"),
        PathTooLongException => (ExitCodes.LocalIo, ex.Message),
        IOException => (ExitCodes.LocalIo, $"file system error: {ex.Message}"),
        _ => (ExitCodes.Failure, $"unexpected error ({ex.GetType().Name}: {ex.Message}); rerun with --debug for the stack trace"),
    };

    /// <summary>Logs an error line; the stack trace is included only under --debug.</summary>
    public static void Error(ILogger log, LogOptions options, Exception ex, string message)
    {
        var logger = options.Debug ? log.ForContext(LogText.DebugDetails, true) : log;
        logger.Write(LogEventLevel.Error, ex, "{Message}", message);
    }
}
