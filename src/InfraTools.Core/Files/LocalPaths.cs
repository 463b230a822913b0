using InfraTools.Interop;

namespace InfraTools.Files;

/// <summary>Local paths compared as the kernel sees them: symbolic links resolved.</summary>
public static class LocalPaths
{
    /// <summary>
    /// The absolute path with every symbolic link resolved: realpath of the deepest part that exists, with the rest
    /// (not created yet) appended. Two spellings of one directory (through a link, with "..", relative) give one
    /// result.
    /// </summary>
    public static string Resolve(string path)
    {
        var full = Path.TrimEndingDirectorySeparator(Path.GetFullPath(path));
        var rest = new Stack<string>();
        var current = full;
        while (true)
        {
            if (Libc.RealPath(current, out _) is { } real)
            {
                foreach (var part in rest) real = Path.Join(real, part);
                return real;
            }
            var parent = Path.GetDirectoryName(current);
            if (parent is null || parent == current) return full;
            rest.Push(Path.GetFileName(current));
            current = parent;
        }
    }

    /// <summary>True if <paramref name="path"/> is <paramref name="directory"/> or below it (both already resolved).</summary>
    public static bool IsSameOrInside(string path, string directory) =>
        path == directory || path.StartsWith(directory.EndsWith('/') ? directory : directory + "/", StringComparison.Ordinal);
}
