using System.CommandLine;
using InfraTools.Cli;

// Skeleton: the command line and behaviour arrive with this tool's issue.
var root = new RootCommand("backup (not implemented yet)");
CommonOptions.AddTo(root, s3: true, metrics: true);
ToolHost.SetAction(root, "backup", _ => throw new ToolException(ExitCodes.Failure, "backup is not implemented yet"));
return ToolHost.Run("backup", root, args);
