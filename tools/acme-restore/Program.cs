using InfraTools.AcmeRestore;
using InfraTools.Cli;

return ToolHost.Run(AcmeRestoreCli.Tool, AcmeRestoreCli.Create(), args);
