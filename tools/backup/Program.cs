using InfraTools.Backup;
using InfraTools.Cli;

return ToolHost.Run(BackupCli.Tool, BackupCli.Create(), args);
