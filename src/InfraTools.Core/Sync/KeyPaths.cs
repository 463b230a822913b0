using System.Text;
using InfraTools.Files;

namespace InfraTools.Sync;

/// <summary>What an object key means for a local tree.</summary>
public enum KeyKind
{
    /// <summary>A file at <see cref="MappedKey.RelativePath"/>.</summary>
    File,
    /// <summary>A folder marker ("dir/"): a directory at <see cref="MappedKey.RelativePath"/>.</summary>
    Folder,
    /// <summary>The marker of the prefix itself ("prefix/"): nothing to create.</summary>
    Root,
    /// <summary>Cannot be mapped safely; <see cref="MappedKey.Problem"/> says why.</summary>
    Unsafe,
}

public readonly record struct MappedKey(KeyKind Kind, string RelativePath, string? Problem);

/// <summary>
/// Maps object keys to paths below a destination directory and back, refusing every key that could write
/// outside it or cannot be represented as a file: absolute paths, "." and ".." segments, empty segments,
/// backslashes, NUL and other control characters, and names longer than the file system allows.
/// </summary>
public static class KeyPaths
{
    /// <summary>Longest file name Linux file systems accept, in bytes (NAME_MAX).</summary>
    public const int MaxNameBytes = FileNames.MaxNameBytes;
    /// <summary>Longest relative path accepted, in bytes; PATH_MAX is 4096 including the destination.</summary>
    public const int MaxPathBytes = 3800;

    public static MappedKey Map(string key, string prefix)
    {
        if (!key.StartsWith(prefix, StringComparison.Ordinal)) return Unsafe(key, "is outside the prefix");
        var relative = key[prefix.Length..];
        if (relative.Length == 0) return new MappedKey(KeyKind.Root, "", null);
        var folder = relative.EndsWith('/');
        if (folder) relative = relative[..^1];
        if (relative.Length == 0) return Unsafe(key, "has an empty path segment");
        var problem = CheckRelativePath(relative);
        if (problem is not null) return Unsafe(key, problem);
        return new MappedKey(folder ? KeyKind.Folder : KeyKind.File, relative, null);
    }

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

    private static MappedKey Unsafe(string key, string problem) => new(KeyKind.Unsafe, "", problem);
}
