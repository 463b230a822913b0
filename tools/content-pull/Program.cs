using InfraTools.Cli;
using InfraTools.ContentPull;

return ToolHost.Run(ContentPullCommand.Tool, ContentPullCommand.Create(), args);
