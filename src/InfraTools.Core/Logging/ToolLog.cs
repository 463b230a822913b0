using InfraTools.Secrets;
using Serilog;
using Serilog.Core;
using Serilog.Events;
using Serilog.Formatting;

namespace InfraTools.Logging;

/// <summary>How much a tool logs and in which format (the --json, --debug and --quiet flags).</summary>
public sealed record LogOptions(bool Json = false, bool Debug = false, bool Quiet = false)
{
    public LogEventLevel MinimumLevel => Debug ? LogEventLevel.Debug : Quiet ? LogEventLevel.Warning : LogEventLevel.Information;
}

/// <summary>Builds the Serilog logger every tool uses: console sink, stderr, secrets redacted from every line.</summary>
public static class ToolLog
{
    public static Logger Create(string tool, LogOptions options) =>
        Create(options.Json ? new JsonLineFormatter(tool) : new TextLineFormatter(), options.MinimumLevel, LogEventLevel.Verbose);

    /// <summary>A logger with any formatter; events from <paramref name="standardErrorFromLevel"/> up go to stderr, the rest to stdout.</summary>
    public static Logger Create(ITextFormatter formatter, LogEventLevel minimumLevel, LogEventLevel standardErrorFromLevel) =>
        new LoggerConfiguration()
            .MinimumLevel.Is(minimumLevel)
            .WriteTo.Console(new RedactingFormatter(formatter), standardErrorFromLevel: standardErrorFromLevel)
            .CreateLogger();
}

/// <summary>Formats with the inner formatter, then removes every registered secret value from the line.</summary>
public sealed class RedactingFormatter(ITextFormatter inner) : ITextFormatter
{
    public void Format(LogEvent logEvent, TextWriter output)
    {
        var buffer = new StringWriter();
        inner.Format(logEvent, buffer);
        output.Write(SecretRedactor.Redact(buffer.ToString()));
    }
}
