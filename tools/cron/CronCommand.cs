using InfraTools.Time;
using System.CommandLine;
using System.Globalization;
using System.Runtime.InteropServices;
using InfraTools.Cli;
using InfraTools.Logging;
using InfraTools.Cron.Crontab;
using InfraTools.Cron.Logging;
using InfraTools.Cron.Monitoring;
using InfraTools.Cron.Processes;
using InfraTools.Cron.Scheduling;
using InfraTools.Monitoring;
using InfraTools.S3;
using InfraTools.Secrets;

namespace InfraTools.Cron;

/// <summary>A cron command line, bound once and already checked by the parser.</summary>
public sealed record CronOptions(
    string Crontab,
    bool Test,
    bool Inotify,
    bool NoReap,
    bool Overlapping,
    bool PassthroughLogs,
    string? PrometheusListenAddress,
    TimeSpan GracePeriod,
    int NextRuns,
    DateTime? From,
    bool Strict,
    bool Debug);

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
        GracePeriod.Validators.Add(result =>
        {
            var text = result.GetValueOrDefault<string>();
            if (!GoDuration.TryParse(text, out var grace) || grace < TimeSpan.Zero)
                result.AddError($"-grace-period '{text}' is not a duration such as 30s or 5m");
        });
        From.Validators.Add(result =>
        {
            if (result.GetValueOrDefault<string?>() is { } text && !DateTimeOffset.TryParse(text, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out _))
                result.AddError($"--from '{text}' is not a time such as 2026-03-28T12:00:00Z");
        });
        ToolHost.SetAction(root, Tool, Bind, (options, context) => new CronRun(options, context), Host);
        return root;
    }

    public const string Tool = "cron";

    /// <summary>cron on the shared host: supercronic's spelling of the log flags, logrus lines, its own stop signals.</summary>
    private static readonly HostSettings Host = new()
    {
        BindCommon = parse => new CommonSettings(new LogOptions(parse.GetValue(Json), parse.GetValue(Debug), parse.GetValue(Quiet)),
            parse.GetValue(CommonOptions.MetricsFile), new S3SettingsOverrides()),
        CreateLogger = (parse, common) => CronLog.Create(common.Log.Json, common.Log.Debug, common.Log.Quiet, parse.GetValue(SplitLogs)),
        LogFailure = (logger, ex, message, log) => new CronLog(logger).Error(ex, message, log.Debug && ex is not ToolException),
        StopSignalsCancel = false,
    };

    private static CronOptions Bind(ParseResult parse) => new(
        parse.GetValue(Crontab)!,
        parse.GetValue(Test),
        parse.GetValue(Inotify),
        parse.GetValue(NoReap),
        parse.GetValue(Overlapping),
        parse.GetValue(PassthroughLogs),
        parse.GetValue(PrometheusListenAddress),
        GoDuration.TryParse(parse.GetValue(GracePeriod)!, out var grace) ? grace : TimeSpan.Zero,
        parse.GetValue(NextRuns),
        parse.GetValue(From) is { } from ? DateTimeOffset.Parse(from, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal).UtcDateTime : null,
        parse.GetValue(Strict),
        parse.GetValue(Debug));

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
}
