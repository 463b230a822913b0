using System.Collections;
using System.Runtime.InteropServices;
using InfraTools.Interop;
using InfraTools.Cli;


namespace InfraTools.AcmeRestore;

/// <summary>Exit codes of a failed hand-over, the same a shell uses.</summary>
public static class HandoverExitCodes
{
    /// <summary>The command exists but cannot be executed (not executable, a directory, wrong format).</summary>
    public const int NotExecutable = 126;
    /// <summary>The command was not found (no such file, not in PATH).</summary>
    public const int NotFound = 127;
}

/// <summary>
/// The command acme-restore replaces itself with: its resolved path, its arguments and the environment it gets
/// (the inherited one without the scrubbed variables).
/// </summary>
public sealed class Handover : IHandover
{
    /// <summary>execvp's fallback when PATH is not set.</summary>
    private const string DefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

    public string Path { get; }
    public IReadOnlyList<string> Arguments { get; }
    public IReadOnlyList<KeyValuePair<string, string>> Environment { get; }
    /// <summary>The scrubbed variables that were set, so were removed (names only).</summary>
    public IReadOnlyList<string> Removed { get; }

    private Handover(string path, IReadOnlyList<string> arguments, IReadOnlyList<KeyValuePair<string, string>> environment, IReadOnlyList<string> removed)
    {
        Path = path;
        Arguments = arguments;
        Environment = environment;
        Removed = removed;
    }

    /// <summary>The variables to remove: every S3 credential variable, plus <paramref name="scrub"/>, minus <paramref name="keep"/>.</summary>
    public static IReadOnlySet<string> ScrubList(IEnumerable<string> scrub, IEnumerable<string> keep)
    {
        var scrubbed = scrub.ToList();
        var kept = keep.ToList();
        foreach (var name in scrubbed.Concat(kept)) CheckName(name);
        if (scrubbed.Intersect(kept, StringComparer.Ordinal).FirstOrDefault() is { } both)
            throw new UsageException($"{both} is given to both --scrub and --keep: give it to only one of them");
        var set = new SortedSet<string>(S3SettingsReader.CredentialVariables.Concat(AgeSettingsReader.IdentityVariables), StringComparer.Ordinal);
        set.UnionWith(scrubbed);
        set.ExceptWith(kept);
        return set;
    }

    /// <summary>
    /// Resolves <paramref name="command"/> like execvp (through PATH unless it contains a '/'), using the PATH of
    /// the environment the command will get. Throws a <see cref="ToolException"/> with exit code 127 (not found)
    /// or 126 (not executable) if there is nothing to run.
    /// </summary>
    public static Handover Prepare(IReadOnlyList<string> command, IReadOnlySet<string> scrub)
    {
        var environment = new List<KeyValuePair<string, string>>();
        var removed = new List<string>();
        foreach (DictionaryEntry entry in System.Environment.GetEnvironmentVariables())
        {
            var name = (string)entry.Key;
            if (scrub.Contains(name)) removed.Add(name);
            else environment.Add(new(name, (string?)entry.Value ?? ""));
        }
        environment.Sort((a, b) => string.CompareOrdinal(a.Key, b.Key));
        removed.Sort(StringComparer.Ordinal);
        var searchPath = environment.FirstOrDefault(e => e.Key == "PATH").Value ?? DefaultPath;
        return new Handover(Resolve(command[0], searchPath), command, environment, removed);
    }

    internal static string Resolve(string command, string searchPath)
    {
        if (command.Length == 0) throw new ToolException(HandoverExitCodes.NotFound, "the command after -- is an empty string: give the program to start, e.g. -- traefik");
        if (command.Contains('/'))
        {
            if (Directory.Exists(command)) throw new ToolException(HandoverExitCodes.NotExecutable, $"cannot start {command}: it is a directory");
            if (!File.Exists(command)) throw new ToolException(HandoverExitCodes.NotFound, $"cannot start {command}: no such file");
            if (!IsExecutable(command)) throw new ToolException(HandoverExitCodes.NotExecutable, $"cannot start {command}: it is not executable (chmod +x it)");
            return command;
        }
        string? notExecutable = null;
        foreach (var dir in searchPath.Split(':'))
        {
            // An empty PATH entry means the current directory, as for execvp.
            var candidate = System.IO.Path.Combine(dir.Length == 0 ? "." : dir, command);
            if (!File.Exists(candidate)) continue;
            if (IsExecutable(candidate)) return candidate;
            notExecutable ??= candidate;
        }
        if (notExecutable is not null)
            throw new ToolException(HandoverExitCodes.NotExecutable, $"cannot start {command}: {notExecutable} is not executable (chmod +x it)");
        throw new ToolException(HandoverExitCodes.NotFound, $"cannot start {command}: command not found in PATH ({searchPath})");
    }

    /// <summary>
    /// Replaces this process with the command (same PID, same open stdin/stdout/stderr). Returns only if execve
    /// failed, with the error message. Call it from the main thread after everything is flushed and disposed.
    /// </summary>
    public string Exec()
    {
        var path = Marshal.StringToCoTaskMemUTF8(Path);
        var argv = NullTerminated(Arguments);
        var envp = NullTerminated(Environment.Select(e => $"{e.Key}={e.Value}"));
        // execve keeps ignored and blocked signals. Start the command the way Docker starts PID 1: nothing blocked
        // (whatever the parent of acme-restore blocked, Traefik must get SIGTERM), and SIGPIPE back to its default
        // action (the .NET runtime ignores it).
        Libc.UnblockAllSignals();
        Libc.ResetSignal(Libc.SIGPIPE);
        var errno = Libc.Execve(path, argv, envp);
        return $"cannot start {Path}: {Libc.ErrorText(errno)}";
    }

    private static IntPtr[] NullTerminated(IEnumerable<string> values) =>
        [.. values.Select(Marshal.StringToCoTaskMemUTF8), IntPtr.Zero];

    private static void CheckName(string name)
    {
        if (name.Length == 0 || name.Contains('='))
            throw new UsageException($"'{name}' is not an environment variable name: give --scrub and --keep a name such as EXOSCALE_SECRET");
    }

    private static bool IsExecutable(string path) => Libc.CanExecute(path);
}
