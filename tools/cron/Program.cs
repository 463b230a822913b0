using InfraTools.Interop;
using InfraTools.Cli;
using InfraTools.Cron;

// Before anything else: a signal cron handles must not stay ignored because it was ignored when cron was
// started (`cron crontab &` in a non-interactive sh ignores SIGINT and SIGQUIT; .NET keeps an inherited
// "ignore", Go does not).
foreach (var signal in Libc.HandledSignals) Libc.ResetSignal(signal);

var root = CronCommand.Create();
// Name an unknown flag (e.g. supercronic's -sentry-dsn) instead of complaining about the token after it.
if (CronCommand.UnknownFlag(root, args) is { } flag)
{
    Console.Error.WriteLine($"cron: unknown flag '{flag}' (see 'cron --help')");
    return ExitCodes.Usage;
}
return ToolHost.Run("cron", root, args);
