using InfraTools.Backup;
using InfraTools.Cli;

return ToolHost.Run(BackupCommand.Tool, BackupCommand.Create(), args);
