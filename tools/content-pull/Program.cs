using InfraTools.Cli;
using InfraTools.ContentPull;

return ToolHost.Run(ContentPullCli.Tool, ContentPullCli.Create(), args);
