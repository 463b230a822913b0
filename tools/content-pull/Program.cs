using System.CommandLine;
using InfraTools.Cli;

// Skeleton: the command line and behaviour arrive with this tool's issue.
var root = new RootCommand("content-pull (not implemented yet)");
CommonOptions.AddTo(root, s3: true, metrics: true);
ToolHost.SetAction(root, "content-pull", _ => throw new ToolException(ExitCodes.Failure, "content-pull is not implemented yet"));
return ToolHost.Run("content-pull", root, args);
