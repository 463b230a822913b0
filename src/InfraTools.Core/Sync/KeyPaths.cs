using System.Text;
using InfraTools.Files;

namespace InfraTools.Sync;

/// <summary>
/// Which relative paths (object keys without their prefix, local names) are safe below a directory: none that
/// could write outside it or cannot be represented as a file (absolute paths, "." and ".." segments, empty
/// segments, backslashes, NUL and other control characters, names longer than the file system allows).
/// </summary>
public static class KeyPaths
{
    /// <summary>Longest file name Linux file systems accept, in bytes (NAME_MAX).</summary>
    public const int MaxNameBytes = FileNames.MaxNameBytes;
    /// <summary>Longest relative path accepted, in bytes; PATH_MAX is 4096 including the destination.</summary>
    public const int MaxPathBytes = 3800;

    /// <summary>Null if <paramref name="relative"/> ('/'-separated) is a safe path below a directory, else the reason.</summary>
    public static string? CheckRelativePath(string relative)
    {
        if (relative.StartsWith('/')) return "is an absolute path";
        if (relative.Contains('\\')) return "contains a backslash";
        foreach (var c in relative)
            if (char.IsControl(c)) return c == '\0' ? "contains a NUL character" : "contains a control character";
        if (Encoding.UTF8.GetByteCount(relative) > MaxPathBytes) return $"is longer than {MaxPathBytes} bytes";
        foreach (var segment in relative.Split('/'))
        {
            if (segment.Length == 0) return "has an empty path segment";
            if (segment is "." or "..") return $"has a '{segment}' path segment";
            if (Encoding.UTF8.GetByteCount(segment) > MaxNameBytes) return $"has a name longer than {MaxNameBytes} bytes";
        }
        return null;
    }

    /// <summary>The absolute local path of a relative path that passed <see cref="CheckRelativePath"/>.</summary>
    public static string LocalPath(string root, string relative) => Path.Join(root, relative);
}
