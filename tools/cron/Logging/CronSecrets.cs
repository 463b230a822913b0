using InfraTools.Secrets;
using System.Runtime.InteropServices;
using System.Text;
using InfraTools.Cli;
using InfraTools.Cron.Processes;
using InfraTools.S3;

namespace InfraTools.Cron.Logging;

/// <summary>
/// The S3 credentials cron knows of, inherited or set in the crontab: their values, and the content of the
/// files their *_FILE variants name, are scrubbed from every log line, job output included, so a job that
/// prints its environment or its secret file does not leak them into the logs.
/// </summary>
public static unsafe class CronSecrets
{
    /// <summary>Longest secret file read (a credential is far shorter; a larger file is not a secret file).</summary>
    private const int MaxFileBytes = 65536;

    private static readonly HashSet<string> Credentials = S3SettingsReader.CredentialVariables.ToHashSet(StringComparer.Ordinal);

    /// <summary>Registers <paramref name="value"/> (or, for NAME_FILE, the file's content) if <paramref name="name"/> is a credential variable.</summary>
    public static void Register(string name, string? value)
    {
        if (string.IsNullOrEmpty(value) || !Credentials.Contains(name)) return;
        if (!name.EndsWith("_FILE", StringComparison.Ordinal)) SecretRedactor.Register(value);
        else if (ReadSmallFile(value) is { } content) SecretRedactor.Register(content.TrimEnd('\r', '\n'));
    }

    /// <summary>
    /// The file's text, or null when it cannot be read or is larger than a secret file. Opened non-blocking, so a
    /// FIFO nobody writes reads as empty instead of blocking cron.
    /// </summary>
    private static string? ReadSmallFile(string path)
    {
        var bytes = new byte[MaxFileBytes];
        var filled = 0;
        int fd;
        fixed (byte* p = Encoding.UTF8.GetBytes(path + "\0")) fd = Posix.open(p, Posix.O_RDONLY | Posix.O_NONBLOCK | Posix.O_CLOEXEC);
        if (fd < 0) return null;
        try
        {
            while (filled < bytes.Length)
            {
                nint n;
                fixed (byte* b = bytes) n = Posix.read(fd, b + filled, (nuint)(bytes.Length - filled));
                if (n < 0 && Marshal.GetLastPInvokeError() == Posix.EINTR) continue;
                if (n <= 0) break; // end of file, or an error (a directory, a FIFO without data)
                filled += (int)n;
            }
        }
        finally
        {
            Posix.close(fd);
        }
        return filled == bytes.Length ? null : Encoding.UTF8.GetString(bytes, 0, filled);
    }
}
