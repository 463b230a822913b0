using System.Text;
using InfraTools.Interop;

namespace InfraTools.Sync;

/// <summary>A regular file found under the root: size and modification time, from one statx.</summary>
public readonly record struct LocalFile(long Size, DateTime LastWriteUtc);

/// <summary>A name under the root that is not valid UTF-8 (so no object key can match it), by its raw bytes.</summary>
public sealed record UndecodableEntry(byte[] RawRelativePath, bool IsDirectory)
{
    /// <summary>The path for messages: invalid bytes shown as \xNN.</summary>
    public string Display => LocalTree.DisplayName(RawRelativePath);
}

/// <summary>
/// What a directory tree holds, read without following symbolic links and without opening any file:
/// regular files with size and mtime, directories, and everything else (symbolic links, FIFOs, sockets,
/// devices: never followed, never opened), keyed by '/'-separated path relative to the root. Excluded paths are
/// never read (an excluded directory is not even opened). A directory that cannot be read is listed in
/// <see cref="Unreadable"/> instead of failing the scan; names that are not UTF-8 are kept by their bytes.
/// </summary>
public sealed class LocalTree
{
    public Dictionary<string, LocalFile> Files { get; } = new(StringComparer.Ordinal);
    public HashSet<string> Directories { get; } = new(StringComparer.Ordinal);
    /// <summary>Entries that are neither regular files nor directories, with their type ("symbolic link", "FIFO"...).</summary>
    public Dictionary<string, string> Others { get; } = new(StringComparer.Ordinal);
    /// <summary>Temporary files this tool's earlier runs left behind (names only <see cref="Files.TempNames"/> of the run's tag can have).</summary>
    public List<string> LeftoverTemporaryFiles { get; } = [];
    /// <summary>Directories that could not be read, with the reason: their content is unknown.</summary>
    public List<(string Path, string Reason)> Unreadable { get; } = [];
    /// <summary>Entries whose name is not valid UTF-8 (a directory is not descended).</summary>
    public List<UndecodableEntry> Undecodable { get; } = [];

    /// <summary>
    /// Scans <paramref name="root"/>; a missing root is an empty tree. <paramref name="isLeftover"/> recognises our
    /// own temporary files by name. With <paramref name="onFile"/> each regular file is handed to it instead of
    /// being added to <see cref="Files"/> (a caller that builds its own map of 100,000 files does not hold two).
    /// </summary>
    public static LocalTree Scan(string root, GlobFilter? exclude = null, Func<string, bool>? isLeftover = null, Action<string, LocalFile>? onFile = null)
    {
        var tree = new LocalTree();
        var fd = Libc.Open(root, Libc.O_RDONLY | Libc.O_DIRECTORY);
        if (fd < 0)
        {
            var errno = Libc.LastError;
            if (errno == Libc.ENOENT) return tree;
            if (errno == Libc.ENOTDIR) throw new IOException($"'{root}' is not a directory");
            throw new IOException($"cannot read directory '{root}': {Libc.ErrorText(errno)}");
        }
        var pending = new Stack<(string Full, string Relative, byte[] Raw, int Fd)>();
        pending.Push((root, "", [], fd));
        var entries = new List<Libc.DirectoryEntry>();
        while (pending.Count > 0)
        {
            var (full, relative, raw, dirfd) = pending.Pop();
            if (dirfd < 0)
            {
                dirfd = Libc.Open(full, Libc.O_RDONLY | Libc.O_DIRECTORY | Libc.O_NOFOLLOW);
                if (dirfd < 0)
                {
                    tree.Unreadable.Add((relative, Libc.ErrorText(Libc.LastError)));
                    continue;
                }
            }
            try
            {
                entries.Clear();
                var errno = Libc.ReadDirectory(dirfd, entries);
                if (errno != 0)
                {
                    if (relative.Length == 0) throw new IOException($"cannot read directory '{root}': {Libc.ErrorText(errno)}");
                    tree.Unreadable.Add((relative, Libc.ErrorText(errno)));
                    continue;
                }
                tree.AddEntries(dirfd, full, relative, raw, entries, exclude, isLeftover, onFile, pending);
            }
            finally
            {
                Libc.Close(dirfd);
            }
        }
        return tree;
    }

    private void AddEntries(int dirfd, string directory, string relative, byte[] rawRelative, List<Libc.DirectoryEntry> entries,
        GlobFilter? exclude, Func<string, bool>? isLeftover, Action<string, LocalFile>? onFile, Stack<(string, string, byte[], int)> pending)
    {
        foreach (var entry in entries)
        {
            var rawPath = rawRelative.Length == 0 ? entry.Name : [.. rawRelative, (byte)'/', .. entry.Name];
            var type = entry.Type;
            Libc.FileStatus status = default;
            if (type is Libc.DT_UNKNOWN or Libc.DT_REG)
            {
                var errno = Libc.Stat(dirfd, Libc.Bytes(entry.Name), followLinks: false, out status);
                if (errno == Libc.ENOENT) continue; // gone since readdir
                if (errno != 0)
                {
                    Unreadable.Add((DisplayName(rawPath), Libc.ErrorText(errno)));
                    continue;
                }
                type = TypeOf(status.Type);
            }
            if (!System.Text.Unicode.Utf8.IsValid(entry.Name))
            {
                Undecodable.Add(new UndecodableEntry(rawPath, type == Libc.DT_DIR));
                continue;
            }
            var name = Encoding.UTF8.GetString(entry.Name);
            var path = relative.Length == 0 ? name : relative + "/" + name;
            if (exclude is not null && exclude.ExcludesEntry(path)) continue;
            switch (type)
            {
                case Libc.DT_DIR:
                    Directories.Add(path);
                    pending.Push((Path.Join(directory, name), path, rawPath, -1));
                    break;
                case Libc.DT_REG:
                    if (isLeftover is not null && isLeftover(name)) LeftoverTemporaryFiles.Add(path);
                    else if (onFile is not null) onFile(path, new LocalFile(status.Size, status.LastWriteUtc));
                    else Files[path] = new LocalFile(status.Size, status.LastWriteUtc);
                    break;
                default:
                    Others[path] = Libc.TypeNameOf(ModeOf(type));
                    break;
            }
        }
    }

    private static byte TypeOf(int mode) => mode switch
    {
        Libc.S_IFREG => Libc.DT_REG,
        Libc.S_IFDIR => Libc.DT_DIR,
        Libc.S_IFLNK => Libc.DT_LNK,
        Libc.S_IFIFO => Libc.DT_FIFO,
        Libc.S_IFSOCK => Libc.DT_SOCK,
        Libc.S_IFCHR => Libc.DT_CHR,
        _ => Libc.DT_BLK,
    };

    private static int ModeOf(byte type) => type switch
    {
        Libc.DT_LNK => Libc.S_IFLNK,
        Libc.DT_FIFO => Libc.S_IFIFO,
        Libc.DT_SOCK => Libc.S_IFSOCK,
        Libc.DT_CHR => Libc.S_IFCHR,
        _ => Libc.S_IFBLK,
    };

    /// <summary>A raw path for messages: valid UTF-8 as text, each invalid byte as \xNN.</summary>
    public static string DisplayName(ReadOnlySpan<byte> raw)
    {
        var sb = new StringBuilder();
        var i = 0;
        while (i < raw.Length)
        {
            var status = System.Text.Rune.DecodeFromUtf8(raw[i..], out var rune, out var consumed);
            if (status == System.Buffers.OperationStatus.Done)
            {
                if (Rune.IsControl(rune)) sb.Append($"\\x{rune.Value:x2}");
                else sb.Append(rune.ToString());
                i += consumed;
            }
            else
            {
                sb.Append($"\\x{raw[i]:x2}");
                i++;
            }
        }
        return sb.ToString();
    }
}
