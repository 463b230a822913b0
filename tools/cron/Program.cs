using InfraTools.Cli;
using InfraTools.Cron;

var root = CronCommand.Create();
// Name an unknown flag (e.g. supercronic's -sentry-dsn) instead of complaining about the token after it.
if (CronCommand.UnknownFlag(root, args) is { } flag)
{
    Console.Error.WriteLine($"cron: unknown flag '{flag}' (see 'cron --help')");
    return ExitCodes.Usage;
}
return ToolHost.Run("cron", root, args);
