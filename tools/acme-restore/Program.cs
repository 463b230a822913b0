using System.CommandLine;
using InfraTools.Cli;

// Skeleton: the command line and behaviour arrive with this tool's issue.
var root = new RootCommand("acme-restore (not implemented yet)");
CommonOptions.AddTo(root, s3: true, metrics: true);
ToolHost.SetAction(root, "acme-restore", _ => throw new ToolException(ExitCodes.Failure, "acme-restore is not implemented yet"));
return ToolHost.Run("acme-restore", root, args);
