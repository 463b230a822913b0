using System.IO.Enumeration;
using InfraTools.Files;

namespace InfraTools.Sync;

/// <summary>A regular file found under the root: size and modification time, from one lstat.</summary>
public readonly record struct LocalFile(long Size, DateTime LastWriteUtc);

/// <summary>
/// What a directory tree holds, read without following symbolic links and without opening any file:
/// files with size and mtime, directories, and symbolic links, keyed by
/// '/'-separated path relative to the root. Temporary files left by a crashed run are listed apart.
/// </summary>
public sealed class LocalTree
{
    public Dictionary<string, LocalFile> Files { get; } = new(StringComparer.Ordinal);
    public HashSet<string> Directories { get; } = new(StringComparer.Ordinal);
    /// <summary>Symbolic links: never followed, never read.</summary>
    public HashSet<string> Others { get; } = new(StringComparer.Ordinal);
    /// <summary>Temporary files (<see cref="AtomicFile.IsTempName"/>) left behind by an interrupted run.</summary>
    public List<string> LeftoverTemporaryFiles { get; } = [];

    public bool IsEmpty => Files.Count == 0 && Directories.Count == 0 && Others.Count == 0;

    public static LocalTree Scan(string root)
    {
        var tree = new LocalTree();
        if (!Directory.Exists(root)) return tree;
        var rootLength = Path.TrimEndingDirectorySeparator(Path.GetFullPath(root)).Length + 1;
        var options = new EnumerationOptions
        {
            RecurseSubdirectories = true,
            AttributesToSkip = 0,
            IgnoreInaccessible = false,
            ReturnSpecialDirectories = false,
        };
        var entries = new FileSystemEnumerable<Entry>(Path.GetFullPath(root), (ref FileSystemEntry e) =>
        {
            var full = e.ToFullPath();
            var isLink = (e.Attributes & FileAttributes.ReparsePoint) != 0;
            return new Entry(full[rootLength..], e.IsDirectory && !isLink, isLink, e.IsDirectory || isLink ? 0 : e.Length,
                e.LastWriteTimeUtc.UtcDateTime, e.FileName.ToString());
        }, options)
        {
            // Do not descend into symbolic links to directories.
            ShouldRecursePredicate = (ref FileSystemEntry e) => (e.Attributes & FileAttributes.ReparsePoint) == 0,
        };
        foreach (var entry in entries)
        {
            if (entry.IsDirectory) tree.Directories.Add(entry.Relative);
            else if (entry.IsLink) tree.Others.Add(entry.Relative);
            else if (AtomicFile.IsTempName(entry.Name)) tree.LeftoverTemporaryFiles.Add(entry.Relative);
            else tree.Files[entry.Relative] = new LocalFile(entry.Size, entry.LastWriteUtc);
        }
        return tree;
    }

    private readonly record struct Entry(string Relative, bool IsDirectory, bool IsLink, long Size, DateTime LastWriteUtc, string Name);
}
