using InfraTools.Interop;
using System.Globalization;
using System.Runtime.InteropServices;
using InfraTools.Cli;
using InfraTools.Cron.Crontab;
using InfraTools.Cron.Logging;
using InfraTools.Cron.Monitoring;
using InfraTools.Cron.Processes;
using InfraTools.Cron.Scheduling;
using InfraTools.Monitoring;

namespace InfraTools.Cron;

/// <summary>
/// One cron process on the shared host: check the crontab (-test), or read it and run its jobs until a stop
/// signal, serving and writing the metrics. cron handles its own stop signals (it stops scheduling, then waits
/// for the running jobs for the grace period) and SIGUSR2 (reload).
/// </summary>
public sealed class CronRun(CronOptions options, ToolContext context) : IToolRun
{
    /// <summary>cron's metrics are live (served, and written by <see cref="MetricsFileWriter"/>), not one batch report.</summary>
    public RunReport? Report => null;

    public async Task<ToolResult> RunAsync()
    {
        var log = new CronLog(context.Log);
        var path = options.Crontab;
        RegisterSecrets();
        var metricsPath = context.MetricsPath;
        var settings = new CronSettings(path, options.Overlapping, options.PassthroughLogs, !options.NoReap, options.GracePeriod, options.Debug);

        if (options.Test) return TestCrontab(path, log, options.NextRuns, options.From, options.Strict);

        var metrics = new CronMetrics();
        using var service = new CronService(settings, log, metrics,
            job => metricsPath is null ? null : TextfileMetrics.ReadSample(metricsPath, CronMetrics.LastSuccessName, $"job=\"{job}\""),
            InheritedEnvironment());

        // As PID 1 cron reaps orphans (unless -no-reap). Otherwise they are the real PID 1's (tini, docker --init):
        // supercronic warns "process reaping disabled, not pid 1" at every start; nothing is wrong, so cron says
        // it at debug level only (a warning on every start trips log alerts).
        if (Libc.getpid() == 1) log.Info(settings.ReapOrphans ? "reaping dead processes" : "process reaping disabled (-no-reap)");
        else if (settings.ReapOrphans) log.Debug("process reaping disabled, not pid 1");

        // Registered before the crontab is read, so that a signal during start-up is not lost.
        var signals = new SignalHandlers();
        signals.OnStop(PosixSignal.SIGTERM, _ => service.RequestStop("terminated"));
        signals.OnStop(PosixSignal.SIGINT, _ => service.RequestStop("interrupt"));
        signals.OnStop(PosixSignal.SIGQUIT, _ => service.RequestStop("quit"));
        signals.On((PosixSignal)Libc.SIGUSR2, _ => service.RequestReload("received user defined signal 2"));
        try
        {
            return await RunServiceAsync(service, log, path, metrics, metricsPath).ConfigureAwait(false);
        }
        finally
        {
            signals.Release();
        }
    }

    private async Task<int> RunServiceAsync(CronService service, CronLog log, string path, CronMetrics metrics, string? metricsPath)
    {
        log.Info($"read crontab: {path}");
        var result = service.Read(out var readError);
        if (readError is not null) throw new ToolException(ExitCodes.LocalIo, readError);
        if (result.Crontab is null)
        {
            foreach (var error in result.Errors) log.Error(CronService.FormatError(error));
            throw new ConfigurationException($"{path} has {result.Errors.Count} bad line{(result.Errors.Count == 1 ? "" : "s")} (check it with: cron -test {path})");
        }

        MetricsFileWriter? fileWriter = null;
        if (metricsPath is not null)
        {
            fileWriter = new MetricsFileWriter(metrics.Registry, metricsPath, log);
            metrics.Changed += fileWriter.MarkChanged;
        }
        await using var server = options.PrometheusListenAddress is { Length: > 0 } address
            ? MetricsServer.Start(address, metrics.Registry, () => service.Healthy)
            : null;
        if (server is not null) log.Info($"serving metrics on http://{server.Endpoint}/metrics");

        if (options.Inotify) log.Info("using inotify to detect crontab file changes");
        using var watcher = options.Inotify
            ? new CrontabWatcher(path, () => service.RequestReload(CronService.FileChangedReason), log)
            : null;

        using var stopWriter = new CancellationTokenSource();
        var writing = fileWriter?.RunAsync(stopWriter.Token) ?? Task.CompletedTask;
        var exitCode = await service.RunAsync(result.Crontab).ConfigureAwait(false);
        await stopWriter.CancelAsync().ConfigureAwait(false);
        await writing.ConfigureAwait(false);
        if (fileWriter is not null) await fileWriter.WriteAsync().ConfigureAwait(false);
        return exitCode;
    }

    /// <summary>-test: 0 and "crontab is valid", or each bad line with its number and 1. With --next-runs, the coming run times.</summary>
    private static int TestCrontab(string path, CronLog log, int nextRuns, DateTime? from, bool strict)
    {
        log.Info($"read crontab: {path}");
        string text;
        try
        {
            text = RawText.Read(path);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            log.Error($"cannot read crontab {path}: {ex.Message}");
            return 1;
        }
        var result = CrontabParser.Parse(text, path, TimeZoneInfo.Local, strict);
        foreach (var line in result.Debug) log.Debug(line);
        foreach (var notice in result.Notices) log.Write(notice.Level, notice.Message);
        if (result.Crontab is null)
        {
            foreach (var error in result.Errors) log.Error(CronService.FormatError(error));
            log.Error($"crontab is not valid: {result.Errors.Count} bad line{(result.Errors.Count == 1 ? "" : "s")}");
            return 1;
        }
        if (result.Incompatibilities.Count > 0)
        {
            foreach (var line in result.Incompatibilities) log.Error(CronService.FormatError(line));
            var count = result.Incompatibilities.Count;
            log.Error($"crontab is valid for cron, but not for supercronic: {count} line{(count == 1 ? "" : "s")} (--strict)");
            return 1;
        }
        if (nextRuns > 0)
        {
            var start = from ?? DateTime.UtcNow;
            var zone = result.Crontab.TimeZone;
            foreach (var job in result.Crontab.Jobs)
            {
                var t = start;
                for (var i = 0; i < nextRuns && job.Expression.Next(t, zone) is { } next; i++, t = next)
                {
                    var local = new DateTimeOffset(next).ToOffset(zone.GetUtcOffset(next));
                    Console.Out.WriteLine($"{job.Name}\t{local.ToString("yyyy-MM-ddTHH:mm:sszzz", CultureInfo.InvariantCulture)}");
                }
            }
            Console.Out.Flush();
        }
        log.Info(strict ? "crontab is valid (also for supercronic)" : "crontab is valid");
        return 0;
    }

    private static Dictionary<string, string> InheritedEnvironment()
    {
        var environment = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (System.Collections.DictionaryEntry entry in Environment.GetEnvironmentVariables())
            environment[(string)entry.Key] = (string?)entry.Value ?? "";
        return environment;
    }

    /// <summary>The S3 credentials cron inherits (and the content of their *_FILE variants) are scrubbed from every log line.</summary>
    private static void RegisterSecrets()
    {
        foreach (var name in S3SettingsReader.CredentialVariables) CronSecrets.Register(name, Environment.GetEnvironmentVariable(name));
    }
}
