// Writing state safely: replace a file atomically (AtomicFile) under an advisory lock (FileLock).
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using InfraTools.Interop;

namespace InfraTools.Files;

/// <summary>
/// The names of a writer's temporary files: ".NAME.tmp-TAG-N" in the target's directory (hidden, so web servers
/// that deny dot-files never serve them), NAME shortened so the whole name fits NAME_MAX (255 bytes) whatever
/// the target's length. TAG is 16 random hex digits: a run that keeps its tag in its state directory can later
/// recognise exactly its own leftovers (a user's ".x.tmp-1-2" is never taken for one); a tag nobody recorded
/// makes leftovers that are never removed automatically.
/// </summary>
public sealed class TempNames
{
    private const string Marker = ".tmp-";
    private static long _counter;

    public string Tag { get; }

    public TempNames(string tag)
    {
        if (tag.Length != 16 || !tag.All(char.IsAsciiHexDigitLower)) throw new ArgumentException("a tag is 16 lower-case hex digits", nameof(tag));
        Tag = tag;
    }

    /// <summary>A new random tag.</summary>
    public static TempNames Random() => new(Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(8)));

    /// <summary>The names of this process when nobody records a tag (restores, metrics files).</summary>
    public static TempNames Process { get; } = Random();

    public string PathFor(string path)
    {
        var full = Path.GetFullPath(path);
        var dir = Path.GetDirectoryName(full)!;
        var suffix = $"{Marker}{Tag}-{Interlocked.Increment(ref _counter).ToString(CultureInfo.InvariantCulture)}";
        var name = Truncate(Path.GetFileName(full), FileNames.MaxNameBytes - 1 - suffix.Length);
        return Path.Join(dir, "." + name + suffix);
    }

    /// <summary>True for names <see cref="PathFor"/> of this tag creates.</summary>
    public bool IsOurs(string fileName)
    {
        if (!fileName.StartsWith('.')) return false;
        var dash = fileName.LastIndexOf('-');
        if (dash < 0 || dash == fileName.Length - 1 || fileName.AsSpan(dash + 1).ContainsAnyExceptInRange('0', '9')) return false;
        var marker = Marker + Tag;
        return dash >= marker.Length && fileName.AsSpan(0, dash).EndsWith(marker, StringComparison.Ordinal);
    }

    /// <summary>The longest prefix of <paramref name="name"/> of at most <paramref name="maxBytes"/> UTF-8 bytes, cut between characters.</summary>
    private static string Truncate(string name, int maxBytes)
    {
        if (Encoding.UTF8.GetByteCount(name) <= maxBytes) return name;
        var bytes = 0;
        var end = 0;
        foreach (var rune in name.EnumerateRunes())
        {
            if (bytes + rune.Utf8SequenceLength > maxBytes) break;
            bytes += rune.Utf8SequenceLength;
            end += rune.Utf16SequenceLength;
        }
        return name[..end];
    }
}

/// <summary>Limits of Linux file names that every writer must respect.</summary>
public static class FileNames
{
    /// <summary>Longest file name Linux file systems accept, in bytes (NAME_MAX).</summary>
    public const int MaxNameBytes = 255;
}

/// <summary>
/// Replaces a file so that readers see either the old or the new content, never a mix: the data goes to a
/// hidden temporary file in the same directory (<see cref="TempNames"/>), is flushed to disk, gets its final
/// mode, and is renamed over the target with rename(2) (never a copy).
/// </summary>
public static class AtomicFile
{
    public const UnixFileMode ReadableByAll = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead;
    public const UnixFileMode OwnerOnly = UnixFileMode.UserRead | UnixFileMode.UserWrite;

    public static async Task WriteAsync(string path, ReadOnlyMemory<byte> content, UnixFileMode mode, CancellationToken cancellationToken = default)
    {
        await WriteAsync(path, async stream => await stream.WriteAsync(content, cancellationToken).ConfigureAwait(false), mode, null, null, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Writes through <paramref name="write"/> into a temporary file and renames it over <paramref name="path"/>.
    /// The parent directory is created if missing (mode 0755 whatever the umask, or <paramref name="directoryMode"/>).
    /// On any failure the temporary file is removed and the target is untouched. <paramref name="lastWriteTime"/>,
    /// if given, is set before the rename. The data is fsynced before the rename, so not even a power loss leaves
    /// an empty file at the target. <paramref name="names"/> (default: this process's) names the temporary file.
    /// Without <paramref name="flushToDisk"/> the caller makes the file system durable itself, once for many files
    /// (a release's staging tree is synced with one syncfs before it is published).
    /// </summary>
    public static async Task WriteAsync(string path, Func<FileStream, Task> write, UnixFileMode mode, DateTimeOffset? lastWriteTime = null,
        TempNames? names = null, CancellationToken cancellationToken = default, UnixFileMode? directoryMode = null, bool flushToDisk = true)
    {
        var temp = (names ?? TempNames.Process).PathFor(path);
        try
        {
            await using (var stream = CreateTemporary(temp, directoryMode ?? FileModes.WebReadable.Directory))
            {
                await write(stream).ConfigureAwait(false);
                cancellationToken.ThrowIfCancellationRequested();
                stream.Flush(flushToDisk);
            }
            File.SetUnixFileMode(temp, mode);
            if (lastWriteTime is { } time) File.SetLastWriteTimeUtc(temp, time.UtcDateTime);
            Rename(temp, path);
        }
        catch
        {
            TryDelete(temp);
            throw;
        }
    }

    /// <summary>rename(2), with .NET's exceptions for its errors; never falls back to copying.</summary>
    public static void Rename(string from, string to)
    {
        var errno = Libc.Rename(from, to);
        if (errno == 0) return;
        if (errno == Libc.EXDEV) throw new IOException($"cannot rename '{from}' to '{to}': they are on different file systems, and a rename cannot cross them");
        throw Libc.Error(errno, $"cannot rename '{from}' to '{to}'");
    }

    private static FileStream CreateTemporary(string temp, UnixFileMode directoryMode)
    {
        var options = new FileStreamOptions
        {
            Mode = FileMode.CreateNew,
            Access = FileAccess.Write,
            Share = FileShare.ReadWrite,
            BufferSize = 0,
            UnixCreateMode = OwnerOnly,
        };
        try
        {
            return new FileStream(temp, options);
        }
        catch (DirectoryNotFoundException)
        {
            Directories.Create(Path.GetDirectoryName(temp)!, directoryMode);
            return new FileStream(temp, options);
        }
    }

    /// <summary>Makes a completed rename durable by fsyncing the directory that holds it.</summary>
    public static void SyncDirectory(string dir)
    {
        var fd = Libc.Open(dir, Libc.O_RDONLY | Libc.O_DIRECTORY);
        if (fd < 0) return;
        try { _ = Libc.Fsync(fd); } finally { _ = Libc.Close(fd); }
    }

    private static void TryDelete(string path)
    {
        try { File.Delete(path); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}

/// <summary>Directory creation with exact modes.</summary>
public static class Directories
{
    /// <summary>
    /// Creates <paramref name="path"/> and its missing parents, each with exactly <paramref name="mode"/>
    /// (Directory.CreateDirectory would give 0777 minus the umask). Existing directories are left as they are.
    /// </summary>
    public static void Create(string path, UnixFileMode mode)
    {
        var full = Path.TrimEndingDirectorySeparator(Path.GetFullPath(path));
        if (Directory.Exists(full)) return;
        var parent = Path.GetDirectoryName(full);
        if (parent is not null && parent != full) Create(parent, mode);
        var errno = Libc.MakeDirectory(full, mode);
        if (errno is 0 or Libc.EEXIST) return;
        throw Libc.Error(errno, $"cannot create directory '{full}'");
    }
}

/// <summary>
/// An exclusive advisory lock (flock) on a lock file or on a directory itself, held until disposed. The tools
/// turn off .NET's implicit locking of every opened file (System.IO.DisableFileLocking: two syscalls per file
/// saved), so the locks that matter are taken here explicitly. Locking a directory (its inode, reached through
/// any path) is what keeps two runs from writing one destination however it is spelled.
/// </summary>
public sealed class FileLock : IDisposable
{
    private int _fd;

    private FileLock(int fd) => _fd = fd;

    /// <summary>Takes the lock on a lock file (created if missing), or returns null at once if another process holds it.</summary>
    public static FileLock? TryAcquire(string path)
    {
        var fd = Libc.Open(path, Libc.O_RDWR | Libc.O_CREAT | Libc.O_NOFOLLOW, 0x1A4);
        if (fd < 0) throw Libc.Error(Libc.LastError, $"cannot open the lock file '{path}'");
        return Lock(fd);
    }

    /// <summary>Takes the lock on an existing directory, or returns null at once if another process holds it.</summary>
    public static FileLock? TryAcquireDirectory(string path)
    {
        var fd = Libc.Open(path, Libc.O_RDONLY | Libc.O_DIRECTORY);
        if (fd < 0) throw Libc.Error(Libc.LastError, $"cannot open the directory '{path}' to lock it");
        return Lock(fd);
    }

    private static FileLock? Lock(int fd)
    {
        if (Libc.Flock(fd, Libc.LOCK_EX | Libc.LOCK_NB) == 0) return new FileLock(fd);
        Libc.Close(fd);
        return null;
    }

    /// <summary>The lock file's content (through the locked descriptor: a second open would meet the lock).</summary>
    public string ReadContent()
    {
        using var handle = new Microsoft.Win32.SafeHandles.SafeFileHandle(_fd, ownsHandle: false);
        var buffer = new byte[4096];
        var read = RandomAccess.Read(handle, buffer, 0);
        return System.Text.Encoding.UTF8.GetString(buffer, 0, read);
    }

    /// <summary>Replaces the lock file's content and makes it durable.</summary>
    public void WriteContent(string text)
    {
        using var handle = new Microsoft.Win32.SafeHandles.SafeFileHandle(_fd, ownsHandle: false);
        var bytes = System.Text.Encoding.UTF8.GetBytes(text);
        RandomAccess.SetLength(handle, 0);
        RandomAccess.Write(handle, bytes, 0);
        if (Libc.Fsync(_fd) != 0) throw Libc.Error(Libc.LastError, "cannot write the lock file");
    }

    public void Dispose()
    {
        var fd = Interlocked.Exchange(ref _fd, -1);
        if (fd >= 0) Libc.Close(fd);
    }
}
