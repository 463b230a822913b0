namespace InfraTools.Cli;

/// <summary>
/// An expected failure with a message for the operator: the tool prints it as one line and exits with
/// <see cref="ExitCode"/>. The message says what is wrong and what to do.
/// </summary>
public class ToolException(int exitCode, string message, Exception? inner = null) : Exception(message, inner)
{
    public int ExitCode { get; } = exitCode;
}

/// <summary>A missing or malformed setting; names the variable or flag.</summary>
public sealed class ConfigurationException(string message) : ToolException(ExitCodes.Configuration, message);

/// <summary>A bad command-line argument.</summary>
public sealed class UsageException(string message) : ToolException(ExitCodes.Usage, message);
