using InfraTools.AcmeRestore;
using InfraTools.Cli;
using InfraTools.Logging;

var command = new AcmeRestoreCommand();
var exitCode = ToolHost.Run(AcmeRestoreCommand.Tool, command.Root, args);
if (exitCode != ExitCodes.Ok || command.Handover is not { } handover) return exitCode;

// Here, on the main thread, the log is flushed and closed and the signal handlers are released: replace this
// process with the command. Exec returns only if execve failed.
var error = handover.Exec();
using (var log = ToolLog.Create(AcmeRestoreCommand.Tool, command.LogOptions)) log.Error("{Message}", error);
return HandoverExitCodes.NotExecutable;
