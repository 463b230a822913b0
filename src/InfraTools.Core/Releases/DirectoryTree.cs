using System.Text;
using InfraTools.Interop;
using InfraTools.Sync;

namespace InfraTools.Releases;

/// <summary>
/// Removes a directory tree the way a release must be removed: by raw names (a name that is not UTF-8 is removed
/// like any other), relative to open directory descriptors (no path is resolved twice, and nothing outside the
/// tree can be reached through a symbolic link: links are removed, never followed).
/// </summary>
public static class DirectoryTree
{
    /// <summary>
    /// Deletes <paramref name="path"/>: a directory with everything below it, or a file or link. A missing path is
    /// nothing to do. <paramref name="progress"/> is called after each removed entry with the running count.
    /// Returns the number of entries removed (the top one included).
    /// </summary>
    public static long Delete(string path, Action<long>? progress = null)
    {
        var full = Path.TrimEndingDirectorySeparator(Path.GetFullPath(path));
        var parent = Path.GetDirectoryName(full) ?? throw new ArgumentException("cannot delete the root directory", nameof(path));
        var fd = Libc.Open(parent, Libc.O_RDONLY | Libc.O_DIRECTORY);
        if (fd < 0) return Libc.LastError == Libc.ENOENT ? 0 : throw Libc.Error(Libc.LastError, $"cannot delete '{full}'");
        try { return DeleteAt(fd, Encoding.UTF8.GetBytes(Path.GetFileName(full)), full, progress); }
        finally { Libc.Close(fd); }
    }

    /// <summary>Deletes the entry <paramref name="name"/> (raw bytes) of the directory open at <paramref name="dirfd"/>, as <see cref="Delete"/> does.</summary>
    public static long DeleteAt(int dirfd, byte[] name, string display, Action<long>? progress = null)
    {
        long count = 0;
        DeleteEntry(dirfd, name, display, Libc.DT_UNKNOWN, ref count, progress);
        return count;
    }

    private static void DeleteEntry(int dirfd, byte[] rawName, string display, byte type, ref long count, Action<long>? progress)
    {
        var name = Libc.Bytes(rawName);
        var isDirectory = type == Libc.DT_DIR;
        if (type == Libc.DT_UNKNOWN)
        {
            var errno = Libc.Stat(dirfd, name, followLinks: false, out var status);
            if (errno == Libc.ENOENT) return;
            if (errno != 0) throw Libc.Error(errno, $"cannot delete '{display}'");
            isDirectory = status.IsDirectory;
        }
        if (isDirectory)
        {
            var fd = Libc.OpenAt(dirfd, name, Libc.O_RDONLY | Libc.O_DIRECTORY | Libc.O_NOFOLLOW);
            if (fd < 0)
            {
                if (Libc.LastError == Libc.ENOENT) return;
                throw Libc.Error(Libc.LastError, $"cannot delete '{display}'");
            }
            try
            {
                var entries = new List<Libc.DirectoryEntry>();
                var errno = Libc.ReadDirectory(fd, entries);
                if (errno != 0) throw Libc.Error(errno, $"cannot read directory '{display}' to delete it");
                foreach (var entry in entries)
                {
                    if (entry.Type is not (Libc.DT_DIR or Libc.DT_UNKNOWN))
                    {
                        // The common case, a file or link: one unlinkat, and a name for messages only if it fails.
                        var unlinked = Libc.UnlinkAt(fd, Libc.Bytes(entry.Name), directory: false);
                        if (unlinked != 0 && unlinked != Libc.ENOENT) throw Libc.Error(unlinked, $"cannot delete '{display}/{LocalTree.DisplayName(entry.Name)}'");
                        count++;
                        progress?.Invoke(count);
                        continue;
                    }
                    DeleteEntry(fd, entry.Name, display + "/" + LocalTree.DisplayName(entry.Name), entry.Type, ref count, progress);
                }
            }
            finally
            {
                Libc.Close(fd);
            }
        }
        var result = Libc.UnlinkAt(dirfd, name, isDirectory);
        if (result != 0 && result != Libc.ENOENT) throw Libc.Error(result, $"cannot delete '{display}'");
        count++; // not inside the call: progress?.Invoke(++count) skips the increment when progress is null
        progress?.Invoke(count);
    }
}
