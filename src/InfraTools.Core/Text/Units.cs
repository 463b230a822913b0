using System.Globalization;

namespace InfraTools.Text;

/// <summary>Sizes for people: 812 B, 12.3 KB, 1.2 MB.</summary>
public static class Units
{
    public static string FormatBytes(long bytes) => bytes switch
    {
        < 1024 => $"{bytes} B",
        < 1024 * 1024 => (bytes / 1024.0).ToString("0.0 KB", CultureInfo.InvariantCulture),
        _ => (bytes / 1024.0 / 1024.0).ToString("0.0 MB", CultureInfo.InvariantCulture),
    };
}
