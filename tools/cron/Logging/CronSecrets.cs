using InfraTools.Secrets;
using System.Text;
using InfraTools.Cli;
using InfraTools.Files;
using InfraTools.S3;

namespace InfraTools.Cron.Logging;

/// <summary>
/// The S3 credentials cron knows of, inherited or set in the crontab: their values, and the content of the
/// files their *_FILE variants name, are scrubbed from every log line, job output included, so a job that
/// prints its environment or its secret file does not leak them into the logs.
/// </summary>
public static class CronSecrets
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

    /// <summary>The file's text, or null when it is not a readable regular file (a FIFO is refused without blocking) or larger than a secret file.</summary>
    private static string? ReadSmallFile(string path)
    {
        try { return Encoding.UTF8.GetString(RegularFile.ReadAllBytes(path, followLinks: true, MaxFileBytes)); }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException) { return null; }
    }
}
