using InfraTools.Interop;

namespace InfraTools.Files;

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
