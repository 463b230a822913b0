using InfraTools.Logging;
using Serilog;
using Serilog.Core;
using Serilog.Events;

namespace InfraTools.Cron.Logging;

/// <summary>
/// A logger whose events carry supercronic's fields (job.command, job.position, job.schedule, iteration,
/// channel) and a preformatted message, so that job output is never read as a message template.
/// </summary>
public sealed class CronLog(ILogger logger)
{
    private const string Template = "{" + LogrusFormatter.MessageProperty + "}";

    /// <summary>The process-wide logger: logrus text or JSON, to stderr, or with -split-logs info and below to stdout.</summary>
    public static Logger Create(bool json, bool debug, bool quiet, bool splitLogs) =>
        ToolLog.Create(
            new LogrusFormatter(json),
            quiet ? LogEventLevel.Warning : debug ? LogEventLevel.Debug : LogEventLevel.Information,
            splitLogs ? LogEventLevel.Warning : LogEventLevel.Verbose);

    public CronLog With(string field, object value) => new(logger.ForContext(field, value));

    public bool DebugEnabled => logger.IsEnabled(LogEventLevel.Debug);

    public void Debug(string message) => Write(LogEventLevel.Debug, message);

    public void Info(string message) => Write(LogEventLevel.Information, message);

    public void Warn(string message) => Write(LogEventLevel.Warning, message);

    public void Error(string message) => Write(LogEventLevel.Error, message);

    /// <summary>An unexpected failure: one line, with the stack trace only under -debug.</summary>
    public void Error(Exception exception, string message, bool withStackTrace)
    {
        var target = withStackTrace ? logger.ForContext(LogText.DebugDetails, true) : logger;
        target.Write(LogEventLevel.Error, exception, Template, message);
    }

    public void Write(LogEventLevel level, string message)
    {
        if (logger.IsEnabled(level)) logger.Write(level, Template, message);
    }
}
