// Local paths and the modes of what the tools create (LocalPaths, FileModes).
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

/// <summary>File and directory modes given to what a tool creates, whatever the process umask.</summary>
public sealed record FileModes(UnixFileMode File, UnixFileMode Directory)
{
    /// <summary>0644 files, 0755 directories: readable by a web server running as another user.</summary>
    public static readonly FileModes WebReadable = new(AtomicFile.ReadableByAll, (UnixFileMode)0x1ED);

    /// <summary>0600 files, 0700 directories.</summary>
    public static readonly FileModes Private = new(AtomicFile.OwnerOnly, (UnixFileMode)0x1C0);

    /// <summary>FILE[:DIR] in octal; without DIR, directories get the file mode plus x wherever it has r. Null if malformed.</summary>
    public static FileModes? ParseChmod(string text)
    {
        var parts = text.Split(':');
        if (parts.Length > 2 || !parts.All(IsOctal)) return null;
        var file = Convert.ToInt32(parts[0], 8);
        var directory = parts.Length == 2 ? Convert.ToInt32(parts[1], 8) : file | ((file & 0x124) >> 2);
        return new FileModes((UnixFileMode)file, (UnixFileMode)directory);
    }

    /// <summary>Modes from an octal umask: files 0666 and directories 0777 without the masked bits. Null if malformed.</summary>
    public static FileModes? FromUmask(string text)
    {
        if (!IsOctal(text)) return null;
        var mask = Convert.ToInt32(text, 8);
        return new FileModes((UnixFileMode)(0x1B6 & ~mask), (UnixFileMode)(0x1FF & ~mask));
    }

    private static bool IsOctal(string text) => text.Length is > 0 and <= 4 && text.All(c => c is >= '0' and <= '7');
}
