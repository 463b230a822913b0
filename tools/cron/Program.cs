using System.CommandLine;
using InfraTools.Cli;

// Skeleton: the command line and behaviour arrive with this tool's issue.
var root = new RootCommand("cron (not implemented yet)");
CommonOptions.AddTo(root, s3: true, metrics: true);
ToolHost.SetAction(root, "cron", _ => throw new ToolException(ExitCodes.Failure, "cron is not implemented yet"));
return ToolHost.Run("cron", root, args);
