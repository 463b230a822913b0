using InfraTools.Cli;
using InfraTools.Cron;

return ToolHost.Run("cron", CronCommand.Create(), args);
