using InfraTools.Files;

namespace InfraTools.Cli;

/// <summary>Reading a file a setting points at (S3_*_FILE, an age key file): one place that words its errors.</summary>
internal static class SettingFile
{
    /// <summary>
    /// Reads a regular file of at most <paramref name="maxBytes"/> (links followed; a FIFO nobody writes would
    /// block the read forever, so only regular files are read). A failure is a configuration error (exit 3):
    /// "<paramref name="label"/>: REASON; <paramref name="fix"/>", REASON being <paramref name="tooLarge"/> for a file too large.
    /// </summary>
    public static byte[] Read(string path, long maxBytes, string label, string tooLarge, string fix)
    {
        try
        {
            return RegularFile.ReadAllBytes(path, followLinks: true, maxBytes);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            var reason = ex switch
            {
                FileNotFoundException or DirectoryNotFoundException => "no such file",
                UnauthorizedAccessException => "permission denied",
                _ when ex.Message.Contains("not a regular file", StringComparison.Ordinal) => "it is not a regular file",
                _ when ex.Message.Contains("larger than", StringComparison.Ordinal) => tooLarge,
                _ => "cannot read it",
            };
            throw new ConfigurationException($"{label}: {reason}; {fix}");
        }
    }
}
