// The local side of the sync engine: reading, writing and deleting files (LocalSide) and the scan of a tree
// (LocalTree).
using System.Buffers;
using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Text;
using InfraTools.Files;
using InfraTools.Interop;
using InfraTools.S3;
using InfraTools.Storage;

namespace InfraTools.Sync;

/// <summary>
/// A local directory tree as a sync side. It is read without following links or opening anything but regular
/// files (<see cref="LocalTree"/>); every file it receives is written atomically (hidden temporary name, checked,
/// fsynced, given its mode and the object's time as mtime, renamed into place), directories are created one
/// component at a time with exact modes and never through a symbolic link, and nothing outside the root is ever
/// touched. With <paramref name="syncEachFile"/> false a received file is not fsynced on its own: the caller syncs
/// the whole file system once before anything is served from the tree (a release's staging tree).
/// </summary>
public sealed class LocalSide(string root, FileModes modes, GlobFilter exclude, TempNames names, Func<string, bool>? isLeftover = null, bool syncEachFile = true,
    IReadOnlyManifest? known = null)
    : ISyncSide
{
    private readonly string _root = Path.GetFullPath(root);
    private readonly ConcurrentDictionary<string, bool> _directoriesReady = new(StringComparer.Ordinal);
    private const int CopyBufferBytes = 64 * 1024;
    /// <summary>
    /// The copy buffers of this side's downloads (one per transfer in flight). Not the process's shared pool: that
    /// one keeps what it was given until a full collection trims it, which an idle watcher never has, so a pull's
    /// buffers stayed resident between pulls; this one is garbage with the run.
    /// </summary>
    private readonly ArrayPool<byte> _buffers = ArrayPool<byte>.Create(CopyBufferBytes, 64);

    public string Root => _root;
    public bool IsTree => true;
    public string ReceiveVerb => "download";

    public string Describe(string path) => path.Length == 0 ? _root : Path.Join(_root, path);
    public string NameOf(string path) => path;
    public string ExplainUnsafe(string problem) => $"its name {problem}, so it could not be restored";

    public Task<SideListing> ListAsync(CancellationToken cancellationToken) => Task.Run(() =>
    {
        var listing = new SideListing(known?.Count ?? 0);
        var tree = LocalTree.Scan(_root, exclude, isLeftover, (path, file) =>
        {
            var shared = known.Share(path); // the manifest's string: the scan's copy is garbage at once
            listing.Files[shared] = new SyncFile(shared, file.Size, null, file.LastWriteUtc, new DateTimeOffset(file.LastWriteUtc));
        });
        listing.Directories.UnionWith(tree.Directories);
        foreach (var (path, type) in tree.Others) listing.Others[path] = type;
        listing.Unreadable.AddRange(tree.Unreadable);
        listing.Undecodable.AddRange(tree.Undecodable);
        listing.Leftovers.AddRange(tree.LeftoverTemporaryFiles);
        return listing;
    }, cancellationToken);

    public async Task ReadAsync(SyncFile file, Func<Stream, SourceInfo, CancellationToken, Task> consume, CancellationToken cancellationToken)
    {
        await using var stream = RegularFile.OpenRead(Describe(file.Path));
        await consume(stream, new SourceInfo(stream.Length, null, file.Modified), cancellationToken).ConfigureAwait(false);
    }

    public async Task<Written> WriteAsync(SyncFile source, Stream content, SourceInfo info, CancellationToken cancellationToken)
    {
        var path = Describe(source.Path);
        EnsureDirectory(Path.GetDirectoryName(source.Path) ?? "");
        var expectedSize = info.Size >= 0 ? info.Size : source.Size;
        var etag = info.ETag ?? source.ETag ?? "";
        var modified = info.Modified == DateTimeOffset.UnixEpoch ? source.Modified : info.Modified;
        long written = 0;
        // Decoded content (decrypted) is checked by its decoder while it is read, and only reaches the target's own
        // directory, in the hidden temporary file that becomes the file once all of it has been read and checked.
        await AtomicFile.WriteAsync(path, async output => written = await CopyCheckedAsync(content, output, info.Authenticated ? null : expectedSize,
                info.Size >= 0, info.Authenticated ? "" : etag, source.Name, cancellationToken).ConfigureAwait(false),
            modes.File, modified, names, cancellationToken, modes.Directory, syncEachFile).ConfigureAwait(false);
        return new Written(written, etag, File.GetLastWriteTimeUtc(path));
    }

    public Task<string> ChecksumAsync(SyncFile file, CancellationToken cancellationToken) =>
        ObjectChecksum.ComputeETagAsync(Describe(file.Path), cancellationToken);

    public Written Adopt(SyncFile source, SyncFile here)
    {
        var path = Describe(here.Path);
        File.SetLastWriteTimeUtc(path, source.Modified.UtcDateTime);
        return new Written(here.Size, source.ETag, File.GetLastWriteTimeUtc(path));
    }

    public Task<IReadOnlyList<(string Path, string Error)>> DeleteFilesAsync(IReadOnlyList<string> paths, CancellationToken cancellationToken)
    {
        var failures = new List<(string, string)>();
        foreach (var path in paths)
        {
            cancellationToken.ThrowIfCancellationRequested();
            try { File.Delete(Describe(path)); }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException) { failures.Add((path, ex.Message)); }
        }
        return Task.FromResult<IReadOnlyList<(string, string)>>(failures);
    }

    public Task<IReadOnlyList<(string Path, string? Error)>> DeleteDirectoriesAsync(IReadOnlyList<string> paths, CancellationToken cancellationToken)
    {
        var results = new List<(string, string?)>();
        foreach (var path in paths)
        {
            var full = Describe(path);
            try
            {
                if (!Directory.Exists(full) || Directory.EnumerateFileSystemEntries(full).Any()) continue; // gone, or holds excluded files
                Directory.Delete(full);
                _directoriesReady.TryRemove(path, out _);
                results.Add((path, null));
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                results.Add((path, ex.Message));
            }
        }
        return Task.FromResult<IReadOnlyList<(string, string?)>>(results);
    }

    public IReadOnlyList<(string Path, string Error)> DeleteUndecodable(IReadOnlyList<UndecodableEntry> entries)
    {
        var failures = new List<(string, string)>();
        foreach (var entry in entries)
        {
            var errno = DeleteRaw(entry.RawRelativePath, entry.IsDirectory);
            if (errno != 0) failures.Add((entry.Display, Libc.ErrorText(errno)));
        }
        return failures;
    }

    public IReadOnlyList<(string Path, string Error)> CreateDirectories(IReadOnlyList<string> paths)
    {
        var failures = new List<(string, string)>();
        foreach (var path in paths)
        {
            try { EnsureDirectory(path); }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException) { failures.Add((path, ex.Message)); }
        }
        return failures;
    }

    public void RemoveLeftovers(IReadOnlyList<string> paths)
    {
        foreach (var path in paths)
        {
            try { File.Delete(Describe(path)); } catch (IOException) { } catch (UnauthorizedAccessException) { }
        }
    }

    /// <summary>
    /// Copies an object's content, checking its length (the announced one, else the listing's: a chunked answer
    /// announces none) and, for single-part objects, its MD5 against the ETag.
    /// </summary>
    private async Task<long> CopyCheckedAsync(Stream body, Stream output, long? expectedSize, bool announced, string etag, string name, CancellationToken cancellationToken)
    {
        using var md5 = ObjectChecksum.IsMultipartETag(etag) || etag.Length != 32 ? null : IncrementalHash.CreateHash(HashAlgorithmName.MD5);
        var buffer = _buffers.Rent(CopyBufferBytes);
        long total = 0;
        try
        {
            int read;
            while ((read = await body.ReadAsync(buffer, cancellationToken).ConfigureAwait(false)) > 0)
            {
                md5?.AppendData(buffer, 0, read);
                await output.WriteAsync(buffer.AsMemory(0, read), cancellationToken).ConfigureAwait(false);
                total += read;
            }
        }
        finally
        {
            _buffers.Return(buffer);
        }
        if (expectedSize is not null && total != expectedSize)
            throw new StoreException(StoreErrorKind.IntegrityCheckFailed, $"download of {name} got {total} bytes, the {(announced ? "server announced" : "listing said")} {expectedSize}");
        if (md5 is not null && Convert.ToHexStringLower(md5.GetHashAndReset()) != etag)
            throw new StoreException(StoreErrorKind.IntegrityCheckFailed, $"download of {name} does not match its ETag {etag}");
        return total;
    }

    /// <summary>Creates a directory below the root one component at a time, refusing to pass through a symbolic link.</summary>
    private void EnsureDirectory(string relative)
    {
        if (relative.Length == 0 || _directoriesReady.ContainsKey(relative)) return;
        EnsureDirectory(Path.GetDirectoryName(relative) ?? "");
        var full = Describe(relative);
        var info = new DirectoryInfo(full);
        if (info.LinkTarget is not null) throw new IOException($"'{relative}' is a symbolic link; not writing through it");
        if (!info.Exists)
        {
            if (File.Exists(full)) throw new IOException($"'{relative}' is a file where a directory is needed");
            Directories.Create(full, modes.Directory);
        }
        _directoriesReady[relative] = true;
    }

    /// <summary>Removes a file, or a directory with everything in it, named by raw bytes below the root; errno on failure.</summary>
    private int DeleteRaw(byte[] relative, bool directory)
    {
        var path = RawPath(relative);
        if (!directory) return Libc.UnlinkAt(Libc.AT_FDCWD, path, directory: false);
        var fd = Libc.Open(path, Libc.O_RDONLY | Libc.O_DIRECTORY | Libc.O_NOFOLLOW);
        if (fd < 0) return Libc.LastError;
        var entries = new List<Libc.DirectoryEntry>();
        var errno = Libc.ReadDirectory(fd, entries);
        Libc.Close(fd);
        if (errno != 0) return errno;
        foreach (var entry in entries)
        {
            byte[] child = [.. relative, (byte)'/', .. entry.Name];
            var isDirectory = entry.Type == Libc.DT_DIR
                || entry.Type == Libc.DT_UNKNOWN && Libc.Stat(Libc.AT_FDCWD, RawPath(child), followLinks: false, out var status) == 0 && status.IsDirectory;
            errno = DeleteRaw(child, isDirectory);
            if (errno != 0) return errno;
        }
        return Libc.UnlinkAt(Libc.AT_FDCWD, path, directory: true);
    }

    private byte[] RawPath(byte[] relative) => Libc.Bytes([.. Encoding.UTF8.GetBytes(_root + "/"), .. relative]);
}

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
