using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace InfraTools.Files;

/// <summary>
/// An exclusive advisory lock (flock) on a lock file, held until disposed. The tools turn off .NET's
/// implicit locking of every opened file (System.IO.DisableFileLocking: two syscalls per file saved), so
/// the locks that matter are taken here explicitly.
/// </summary>
public sealed class FileLock : IDisposable
{
    private const int LockExclusive = 2, LockNonBlocking = 4;
    private readonly FileStream _file;

    private FileLock(FileStream file) => _file = file;

    /// <summary>Takes the lock, or returns null at once if another process holds it.</summary>
    public static FileLock? TryAcquire(string path)
    {
        var file = new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.ReadWrite);
        if (Flock(file.SafeFileHandle, LockExclusive | LockNonBlocking) == 0) return new FileLock(file);
        file.Dispose();
        return null;
    }

    public void Dispose() => _file.Dispose();

    [DllImport("libc", EntryPoint = "flock", SetLastError = true)]
    private static extern int Flock(SafeFileHandle fd, int operation);
}
