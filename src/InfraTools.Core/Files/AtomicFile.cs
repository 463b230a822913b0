using System.Runtime.InteropServices;

namespace InfraTools.Files;

/// <summary>
/// Replaces a file so that readers see either the old or the new content, never a mix: the data goes to a
/// hidden temporary file in the same directory (".name.tmp-PID-N", which web servers configured to deny
/// dot-files never serve), is flushed to disk, gets its final mode, and is renamed over the target.
/// </summary>
public static class AtomicFile
{
    public const UnixFileMode ReadableByAll = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead;
    public const UnixFileMode OwnerOnly = UnixFileMode.UserRead | UnixFileMode.UserWrite;

    /// <summary>Every temporary name this class creates starts with '.' and contains this marker.</summary>
    public const string TempMarker = ".tmp-";

    private static long _counter;

    public static string TempPathFor(string path)
    {
        var dir = Path.GetDirectoryName(Path.GetFullPath(path))!;
        var name = Path.GetFileName(path);
        var unique = $"{Environment.ProcessId}-{Interlocked.Increment(ref _counter)}";
        // Keep the name within NAME_MAX (255 bytes) however long the target's name is.
        if (name.Length > 200) name = name[..200];
        return Path.Combine(dir, $".{name}{TempMarker}{unique}");
    }

    /// <summary>True for names created by <see cref="TempPathFor"/> (leftovers of a crashed run).</summary>
    public static bool IsTempName(string fileName) => fileName.StartsWith('.') && fileName.Contains(TempMarker, StringComparison.Ordinal);

    public static async Task WriteAsync(string path, ReadOnlyMemory<byte> content, UnixFileMode mode, CancellationToken cancellationToken = default)
    {
        await WriteAsync(path, async stream => await stream.WriteAsync(content, cancellationToken).ConfigureAwait(false), mode, null, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Writes through <paramref name="write"/> into a temporary file and renames it over <paramref name="path"/>.
    /// The parent directory is created if missing. On any failure the temporary file is removed and the target
    /// is untouched. <paramref name="lastWriteTime"/>, if given, is set before the rename. The data is fsynced
    /// before the rename, so not even a power loss leaves an empty file at the target.
    /// </summary>
    public static async Task WriteAsync(string path, Func<FileStream, Task> write, UnixFileMode mode, DateTimeOffset? lastWriteTime = null,
        CancellationToken cancellationToken = default)
    {
        var temp = TempPathFor(path);
        try
        {
            await using (var stream = CreateTemporary(temp))
            {
                await write(stream).ConfigureAwait(false);
                cancellationToken.ThrowIfCancellationRequested();
                stream.Flush(flushToDisk: true);
            }
            File.SetUnixFileMode(temp, mode);
            if (lastWriteTime is { } time) File.SetLastWriteTimeUtc(temp, time.UtcDateTime);
            File.Move(temp, path, overwrite: true);
        }
        catch
        {
            TryDelete(temp);
            throw;
        }
    }

    private static FileStream CreateTemporary(string temp)
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
            Directory.CreateDirectory(Path.GetDirectoryName(temp)!);
            return new FileStream(temp, options);
        }
    }

    /// <summary>Makes a completed rename durable by fsyncing the directory that holds it.</summary>
    public static void SyncDirectory(string dir)
    {
        var fd = Open(dir, 0 /* O_RDONLY */);
        if (fd < 0) return;
        try { _ = Fsync(fd); } finally { _ = Close(fd); }
    }

    private static void TryDelete(string path)
    {
        try { File.Delete(path); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }

    [DllImport("libc", EntryPoint = "open", SetLastError = true)]
    private static extern int Open([MarshalAs(UnmanagedType.LPUTF8Str)] string path, int flags);

    [DllImport("libc", EntryPoint = "fsync", SetLastError = true)]
    private static extern int Fsync(int fd);

    [DllImport("libc", EntryPoint = "close", SetLastError = true)]
    private static extern int Close(int fd);
}
