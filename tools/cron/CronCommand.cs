using InfraTools.Time;
using System.CommandLine;
using System.Globalization;
using System.Runtime.InteropServices;
using InfraTools.Cli;
using InfraTools.Cron.Crontab;
using InfraTools.Cron.Logging;
using InfraTools.Cron.Monitoring;
using InfraTools.Cron.Processes;
using InfraTools.Cron.Scheduling;
using InfraTools.Monitoring;
using InfraTools.S3;
using InfraTools.Secrets;

namespace InfraTools.Cron;

/// <summary>
/// The command line: supercronic's flags as it spells them (-json, single dash) and GNU-style (--json), the
/// crontab argument, and what supercronic does not have (-grace-period, --metrics-file, --next-runs).
/// </summary>
public static class CronCommand
{
    private static Option<bool> Flag(string name, string description) => new($"--{name}", $"-{name}") { Description = description };

    private static readonly Option<bool> Debug = Flag("debug", "Enable debug logging");
    private static readonly Option<bool> Quiet = new("--quiet", "-quiet", "-q") { Description = "Do not log informational messages (takes precedence over -debug)" };
    private static readonly Option<bool> Json = Flag("json", "Enable JSON logging");
    private static readonly Option<bool> Test = Flag("test", "Test the crontab (does not run jobs): exit 0 if valid, else print each bad line and exit 1");
    private static readonly Option<bool> Inotify = Flag("inotify", "Reload the crontab when the file changes (also Kubernetes ConfigMap symlink swaps)");
    private static readonly Option<bool> NoReap = Flag("no-reap", "Do not reap orphaned processes (only the jobs themselves are waited for)");
    private static readonly Option<bool> Overlapping = Flag("overlapping", "Allow a job to start while its previous run is still going");
    private static readonly Option<bool> SplitLogs = Flag("split-logs", "Write debug and info logs to stdout, warnings and errors to stderr");
    private static readonly Option<bool> PassthroughLogs = Flag("passthrough-logs", "Pass the jobs' output through unchanged instead of logging each line");

    private static readonly Option<string?> PrometheusListenAddress = new("--prometheus-listen-address", "-prometheus-listen-address")
    {
        Description = $"Serve Prometheus metrics on /metrics and a health check on /health at ip[:port] (port defaults to {MetricsServer.DefaultPort}; 0.0.0.0 for all interfaces)",
        HelpName = "ADDR",
    };

    private static readonly Option<string> GracePeriod = new("--grace-period", "-grace-period")
    {
        Description = "On SIGTERM, SIGINT or SIGQUIT wait this long for running jobs, then send their process groups SIGTERM " +
                      $"and {GoDuration.Format(CronService.KillDelay)} later SIGKILL (e.g. 30s, 5m)",
        HelpName = "DURATION",
        DefaultValueFactory = _ => "5s",
    };

    private static readonly Option<int> NextRuns = new("--next-runs")
    {
        Description = "With -test: print each job's next N run times (job name, then the time in the crontab's time zone)",
        HelpName = "N",
    };

    private static readonly Option<bool> Strict = new("--strict")
    {
        Description = "With -test: also report every line supercronic would reject or read differently (exit 1 if any)",
    };

    private static readonly Option<string?> From = new("--from")
    {
        Description = "With --next-runs: count from this time (ISO 8601, e.g. 2026-03-28T12:00:00Z) instead of now",
        HelpName = "TIME",
    };

    private static readonly Argument<string> Crontab = new("CRONTAB") { Description = "The crontab file" };

    public static RootCommand Create()
    {
        var root = new RootCommand("Runs the jobs of a crontab: a drop-in replacement for supercronic");
        foreach (var option in root.Options)
        {
            if (option is VersionOption) option.Aliases.Add("-version");
            if (option is System.CommandLine.Help.HelpOption) option.Aliases.Add("-help");
        }
        foreach (Option option in new Option[] { Debug, Quiet, Json, Test, Inotify, NoReap, Overlapping, SplitLogs, PassthroughLogs,
                     PrometheusListenAddress, GracePeriod, CommonOptions.MetricsFile, NextRuns, From, Strict })
            root.Options.Add(option);
        root.Arguments.Add(Crontab);
        root.SetAction((parse, _) => RunAsync(parse));
        return root;
    }

    /// <summary>The first argument that looks like a flag but is none of cron's, or null.</summary>
    public static string? UnknownFlag(RootCommand root, IReadOnlyList<string> args)
    {
        var options = root.Options.SelectMany(o => o.Aliases.Append(o.Name).Select(a => (Alias: a, Option: o)))
            .ToDictionary(p => p.Alias, p => p.Option, StringComparer.Ordinal);
        for (var i = 0; i < args.Count; i++)
        {
            var arg = args[i];
            if (arg == "--") break;
            if (arg.Length < 2 || arg[0] != '-') continue;
            var name = arg.Split('=', ':')[0];
            if (!options.TryGetValue(name, out var option)) return name;
            if (option.ValueType != typeof(bool) && name == arg) i++; // the next argument is the option's value
        }
        return null;
    }

    private static async Task<int> RunAsync(ParseResult parse)
    {
        var debug = parse.GetValue(Debug);
        using var logger = CronLog.Create(parse.GetValue(Json), debug, parse.GetValue(Quiet), parse.GetValue(SplitLogs));
        var log = new CronLog(logger);
        try
        {
            return await RunAsync(parse, log).ConfigureAwait(false);
        }
        catch (Exception ex)
        {
            var (code, message) = ToolHost.Describe(ex);
            if (ex is ToolException) log.Error(message);
            else log.Error(ex, message, debug);
            return code;
        }
    }

    private static async Task<int> RunAsync(ParseResult parse, CronLog log)
    {
        var path = parse.GetValue(Crontab)!;
        RegisterSecrets();
        if (!GoDuration.TryParse(parse.GetValue(GracePeriod)!, out var grace) || grace < TimeSpan.Zero)
            throw new UsageException($"-grace-period '{parse.GetValue(GracePeriod)}' is not a duration such as 30s or 5m");
        var metricsPath = CommonOptions.MetricsPath(parse.GetValue(CommonOptions.MetricsFile), Environment.GetEnvironmentVariable);
        var settings = new CronSettings(path, parse.GetValue(Overlapping), parse.GetValue(PassthroughLogs), !parse.GetValue(NoReap), grace, parse.GetValue(Debug));

        if (parse.GetValue(Test)) return TestCrontab(path, log, parse.GetValue(NextRuns), parse.GetValue(From), parse.GetValue(Strict));

        var metrics = new CronMetrics();
        using var service = new CronService(settings, log, metrics,
            job => metricsPath is null ? null : TextfileMetrics.ReadSample(metricsPath, CronMetrics.LastSuccessName, $"job=\"{job}\""),
            InheritedEnvironment());

        // As PID 1 cron reaps orphans (unless -no-reap). Otherwise they are the real PID 1's (tini, docker --init):
        // supercronic warns "process reaping disabled, not pid 1" at every start; nothing is wrong, so cron says
        // it at debug level only (a warning on every start trips log alerts).
        if (Posix.getpid() == 1) log.Info(settings.ReapOrphans ? "reaping dead processes" : "process reaping disabled (-no-reap)");
        else if (settings.ReapOrphans) log.Debug("process reaping disabled, not pid 1");

        // Registered before the crontab is read, so that a signal during start-up is not lost.
        using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, c => Stop(c, service, "terminated"));
        using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, c => Stop(c, service, "interrupt"));
        using var sigquit = PosixSignalRegistration.Create(PosixSignal.SIGQUIT, c => Stop(c, service, "quit"));
        using var sigusr2 = PosixSignalRegistration.Create((PosixSignal)Posix.SIGUSR2, c =>
        {
            c.Cancel = true;
            service.RequestReload("received user defined signal 2");
        });

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
        await using var server = parse.GetValue(PrometheusListenAddress) is { Length: > 0 } address
            ? MetricsServer.Start(address, metrics.Registry, () => service.Healthy)
            : null;
        if (server is not null) log.Info($"serving metrics on http://{server.Endpoint}/metrics");

        if (parse.GetValue(Inotify)) log.Info("using inotify to detect crontab file changes");
        using var watcher = parse.GetValue(Inotify)
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

    private static void Stop(PosixSignalContext context, CronService service, string name)
    {
        context.Cancel = true;
        service.RequestStop(name);
    }

    /// <summary>-test: 0 and "crontab is valid", or each bad line with its number and 1. With --next-runs, the coming run times.</summary>
    private static int TestCrontab(string path, CronLog log, int nextRuns, string? fromText, bool strict)
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
            var from = DateTime.UtcNow;
            if (fromText is not null)
            {
                if (!DateTimeOffset.TryParse(fromText, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var parsed))
                    throw new UsageException($"--from '{fromText}' is not a time such as 2026-03-28T12:00:00Z");
                from = parsed.UtcDateTime;
            }
            var zone = result.Crontab.TimeZone;
            foreach (var job in result.Crontab.Jobs)
            {
                var t = from;
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
