using System.Runtime.InteropServices;
using System.Text;

namespace InfraTools.Interop;

/// <summary>
/// The libc calls of the shared library, in one place: the file-system operations .NET either does not offer
/// (directory entries by their raw byte names, file types, flock on a directory, syncfs, rename without a
/// copy fallback, hard links) or does in a way that can block or follow links (open of a FIFO). Linked at
/// build time (DirectPInvoke libc), the same on glibc and musl. Structures are the kernel's 64-bit ones that
/// both C libraries share on x86-64 and arm64 (dirent64; statx is architecture-independent by design).
/// </summary>
public static unsafe partial class Libc
{
    private const string Name = "libc";

    public const int O_RDONLY = 0, O_WRONLY = 1, O_RDWR = 2;
    public const int O_CREAT = 0x40, O_EXCL = 0x80, O_NONBLOCK = 0x800, O_DIRECTORY = 0x10000, O_NOFOLLOW = 0x20000, O_CLOEXEC = 0x80000;
    public const int AT_FDCWD = -100;
    public const int AT_SYMLINK_NOFOLLOW = 0x100, AT_REMOVEDIR = 0x200, AT_EMPTY_PATH = 0x1000;
    public const int LOCK_EX = 2, LOCK_NB = 4;

    public const int EINTR = 4, ENOENT = 2, EACCES = 13, EEXIST = 17, EXDEV = 18, ENOTDIR = 20, EISDIR = 21, ENOSPC = 28, EROFS = 30,
        ELOOP = 40, ENAMETOOLONG = 36, ENOTEMPTY = 39, EPERM = 1, ENXIO = 6, EMLINK = 31;

    /// <summary>File types (the S_IFMT bits of st_mode).</summary>
    public const int S_IFMT = 0xF000, S_IFREG = 0x8000, S_IFDIR = 0x4000, S_IFLNK = 0xA000, S_IFIFO = 0x1000, S_IFSOCK = 0xC000, S_IFCHR = 0x2000, S_IFBLK = 0x6000;

    /// <summary>d_type values of a directory entry.</summary>
    public const byte DT_UNKNOWN = 0, DT_FIFO = 1, DT_CHR = 2, DT_DIR = 4, DT_BLK = 6, DT_REG = 8, DT_LNK = 10, DT_SOCK = 12;

    private const uint STATX_TYPE = 0x1, STATX_MODE = 0x2, STATX_NLINK = 0x4, STATX_MTIME = 0x40, STATX_INO = 0x100, STATX_SIZE = 0x200;
    private const uint STATX_BASIC = STATX_TYPE | STATX_MODE | STATX_NLINK | STATX_MTIME | STATX_INO | STATX_SIZE;

    /// <summary>What statx says about one file.</summary>
    public readonly record struct FileStatus(int Mode, long Size, long MtimeSeconds, uint MtimeNanoseconds, ulong Inode, uint Links, uint DevMajor, uint DevMinor)
    {
        public int Type => Mode & S_IFMT;
        public bool IsRegular => Type == S_IFREG;
        public bool IsDirectory => Type == S_IFDIR;
        public bool IsSymbolicLink => Type == S_IFLNK;
        public UnixFileMode Permissions => (UnixFileMode)(Mode & 0xFFF);

        /// <summary>The modification time as .NET reports it (File.GetLastWriteTimeUtc), to 100 ns.</summary>
        public DateTime LastWriteUtc => DateTime.UnixEpoch.AddTicks(MtimeSeconds * TimeSpan.TicksPerSecond + MtimeNanoseconds / 100);

        /// <summary>A short word for the type, for messages.</summary>
        public string TypeName => TypeNameOf(Type);
    }

    public static string TypeNameOf(int type) => type switch
    {
        S_IFREG => "regular file",
        S_IFDIR => "directory",
        S_IFLNK => "symbolic link",
        S_IFIFO => "FIFO",
        S_IFSOCK => "socket",
        S_IFCHR => "character device",
        S_IFBLK => "block device",
        _ => "special file",
    };

    /// <summary>The errno of the last failed call, as .NET's message ("Permission denied").</summary>
    public static string ErrorText(int errno) => Marshal.GetPInvokeErrorMessage(errno);

    public static int LastError => Marshal.GetLastPInvokeError();

    /// <summary>The .NET exception for a failed call on <paramref name="what"/>: "cannot open 'x': Permission denied".</summary>
    public static Exception Error(int errno, string what)
    {
        var message = $"{what}: {ErrorText(errno)}";
        return errno switch
        {
            ENOENT => new FileNotFoundException(message),
            EACCES or EPERM => new UnauthorizedAccessException(message),
            _ => new IOException(message, errno),
        };
    }

    /// <summary>A NUL-terminated copy of a path for libc.</summary>
    public static byte[] Bytes(string path)
    {
        var bytes = new byte[Encoding.UTF8.GetByteCount(path) + 1];
        Encoding.UTF8.GetBytes(path, bytes);
        return bytes;
    }

    /// <summary>A NUL-terminated copy of raw path bytes for libc.</summary>
    public static byte[] Bytes(ReadOnlySpan<byte> path)
    {
        var bytes = new byte[path.Length + 1];
        path.CopyTo(bytes);
        return bytes;
    }

    // --- files and directories -------------------------------------------------------------------------------

    [LibraryImport(Name, EntryPoint = "open", SetLastError = true)]
    private static partial int OpenRaw(byte* path, int flags, int mode);

    [LibraryImport(Name, EntryPoint = "openat", SetLastError = true)]
    private static partial int OpenAtRaw(int dirfd, byte* path, int flags, int mode);

    [LibraryImport(Name, EntryPoint = "close", SetLastError = true)]
    public static partial int Close(int fd);

    [LibraryImport(Name, EntryPoint = "fsync", SetLastError = true)]
    public static partial int Fsync(int fd);

    [LibraryImport(Name, EntryPoint = "syncfs", SetLastError = true)]
    public static partial int Syncfs(int fd);

    [LibraryImport(Name, EntryPoint = "flock", SetLastError = true)]
    public static partial int Flock(int fd, int operation);

    [LibraryImport(Name, EntryPoint = "statx", SetLastError = true)]
    private static partial int StatxRaw(int dirfd, byte* path, int flags, uint mask, byte* buffer);

    [LibraryImport(Name, EntryPoint = "unlinkat", SetLastError = true)]
    private static partial int UnlinkAtRaw(int dirfd, byte* path, int flags);

    [LibraryImport(Name, EntryPoint = "mkdir", SetLastError = true)]
    private static partial int MkdirRaw(byte* path, int mode);

    [LibraryImport(Name, EntryPoint = "chmod", SetLastError = true)]
    private static partial int ChmodRaw(byte* path, int mode);

    [LibraryImport(Name, EntryPoint = "rename", SetLastError = true)]
    private static partial int RenameRaw(byte* from, byte* to);

    [LibraryImport(Name, EntryPoint = "link", SetLastError = true)]
    private static partial int LinkRaw(byte* from, byte* to);

    [LibraryImport(Name, EntryPoint = "symlink", SetLastError = true)]
    private static partial int SymlinkRaw(byte* target, byte* path);

    [LibraryImport(Name, EntryPoint = "realpath", SetLastError = true)]
    private static partial byte* RealpathRaw(byte* path, byte* resolved);

    [LibraryImport(Name, EntryPoint = "fdopendir", SetLastError = true)]
    private static partial nint FdOpenDir(int fd);

    [LibraryImport(Name, EntryPoint = "readdir", SetLastError = true)]
    private static partial byte* ReadDir(nint dir);

    [LibraryImport(Name, EntryPoint = "closedir", SetLastError = true)]
    private static partial int CloseDir(nint dir);

    public static int Open(byte[] path, int flags, int mode = 0)
    {
        fixed (byte* p = path)
            while (true)
            {
                var fd = OpenRaw(p, flags | O_CLOEXEC, mode);
                if (fd >= 0 || LastError != EINTR) return fd;
            }
    }

    public static int Open(string path, int flags, int mode = 0) => Open(Bytes(path), flags, mode);

    public static int OpenAt(int dirfd, byte[] name, int flags, int mode = 0)
    {
        fixed (byte* p = name)
            while (true)
            {
                var fd = OpenAtRaw(dirfd, p, flags | O_CLOEXEC, mode);
                if (fd >= 0 || LastError != EINTR) return fd;
            }
    }

    /// <summary>statx of <paramref name="name"/> relative to <paramref name="dirfd"/> (or of the fd itself with an empty name); errno on failure.</summary>
    public static int Stat(int dirfd, byte[] name, bool followLinks, out FileStatus status)
    {
        var buffer = stackalloc byte[256];
        var flags = followLinks ? 0 : AT_SYMLINK_NOFOLLOW;
        if (name.Length <= 1) flags |= AT_EMPTY_PATH;
        int result;
        fixed (byte* p = name) result = StatxRaw(dirfd, p, flags, STATX_BASIC, buffer);
        if (result != 0)
        {
            status = default;
            return LastError;
        }
        status = new FileStatus(
            Mode: *(ushort*)(buffer + 28),
            Size: *(long*)(buffer + 40),
            MtimeSeconds: *(long*)(buffer + 112),
            MtimeNanoseconds: *(uint*)(buffer + 120),
            Inode: *(ulong*)(buffer + 32),
            Links: *(uint*)(buffer + 16),
            DevMajor: *(uint*)(buffer + 136),
            DevMinor: *(uint*)(buffer + 140));
        return 0;
    }

    private static readonly byte[] EmptyName = [0];

    public static int Stat(int fd, out FileStatus status) => Stat(fd, EmptyName, followLinks: false, out status);

    public static int Stat(string path, bool followLinks, out FileStatus status) => Stat(AT_FDCWD, Bytes(path), followLinks, out status);

    /// <summary>Removes a file (or with <paramref name="directory"/> an empty directory) by its raw name; errno on failure.</summary>
    public static int UnlinkAt(int dirfd, byte[] name, bool directory)
    {
        fixed (byte* p = name) return UnlinkAtRaw(dirfd, p, directory ? AT_REMOVEDIR : 0) == 0 ? 0 : LastError;
    }

    /// <summary>mkdir with exactly <paramref name="mode"/> (chmod after mkdir, so the umask does not matter); errno on failure, EEXIST if it exists.</summary>
    public static int MakeDirectory(string path, UnixFileMode mode)
    {
        var bytes = Bytes(path);
        fixed (byte* p = bytes)
        {
            if (MkdirRaw(p, 0x1C0) != 0) return LastError;
            return ChmodRaw(p, (int)mode) == 0 ? 0 : LastError;
        }
    }

    /// <summary>rename(2): atomic within one file system, EXDEV across them (never a copy); errno on failure.</summary>
    public static int Rename(string from, string to)
    {
        var a = Bytes(from);
        var b = Bytes(to);
        fixed (byte* pa = a)
        fixed (byte* pb = b)
            return RenameRaw(pa, pb) == 0 ? 0 : LastError;
    }

    /// <summary>link(2): a new name for the same inode; EXDEV across file systems; errno on failure.</summary>
    public static int Link(string existing, string newPath)
    {
        var a = Bytes(existing);
        var b = Bytes(newPath);
        fixed (byte* pa = a)
        fixed (byte* pb = b)
            return LinkRaw(pa, pb) == 0 ? 0 : LastError;
    }

    /// <summary>symlink(2): <paramref name="path"/> becomes a link whose content is <paramref name="target"/> (may be relative); errno on failure.</summary>
    public static int Symlink(string target, string path)
    {
        var a = Bytes(target);
        var b = Bytes(path);
        fixed (byte* pa = a)
        fixed (byte* pb = b)
            return SymlinkRaw(pa, pb) == 0 ? 0 : LastError;
    }

    /// <summary>realpath(3) of an existing path: absolute, no symbolic links, no . or ..; null with errno if it cannot be resolved.</summary>
    public static string? RealPath(string path, out int errno)
    {
        var input = Bytes(path);
        var output = new byte[4097];
        fixed (byte* pi = input)
        fixed (byte* po = output)
        {
            if (RealpathRaw(pi, po) == null)
            {
                errno = LastError;
                return null;
            }
        }
        errno = 0;
        return Encoding.UTF8.GetString(output, 0, Array.IndexOf(output, (byte)0));
    }

    /// <summary>One entry of a directory: its raw name and d_type.</summary>
    public readonly record struct DirectoryEntry(byte[] Name, byte Type);

    /// <summary>
    /// Adds the entries of the directory open at <paramref name="fd"/> (without "." and "..") to
    /// <paramref name="entries"/>. The fd stays open and owned by the caller. Returns errno instead of throwing.
    /// </summary>
    public static int ReadDirectory(int fd, List<DirectoryEntry> entries)
    {
        // fdopendir takes over the fd it is given; give it a duplicate so closedir leaves ours open.
        var copy = Dup(fd);
        if (copy < 0) return LastError;
        var dir = FdOpenDir(copy);
        if (dir == 0)
        {
            var errno = LastError;
            Close(copy);
            return errno;
        }
        try
        {
            while (true)
            {
                Marshal.SetLastPInvokeError(0);
                var entry = ReadDir(dir);
                if (entry == null) return LastError;
                var type = entry[18];
                var name = entry + 19;
                var length = 0;
                while (name[length] != 0) length++;
                if (length == 1 && name[0] == '.' || length == 2 && name[0] == '.' && name[1] == '.') continue;
                entries.Add(new DirectoryEntry(new ReadOnlySpan<byte>(name, length).ToArray(), type));
            }
        }
        finally
        {
            CloseDir(dir);
        }
    }

    [LibraryImport(Name, EntryPoint = "fcntl", SetLastError = true)]
    private static partial int Fcntl(int fd, int command, int argument);

    /// <summary>A close-on-exec duplicate of <paramref name="fd"/> (F_DUPFD_CLOEXEC).</summary>
    public static int Dup(int fd) => Fcntl(fd, 1030, 0);

    // --- processes and signals ---------------------------------------------------------------------------------

    /// <summary>Signal numbers (x86-64 and arm64 Linux share them).</summary>
    public const int SIGHUP = 1, SIGINT = 2, SIGQUIT = 3, SIGKILL = 9, SIGUSR2 = 12, SIGPIPE = 13, SIGTERM = 15, SIGCHLD = 17, SIGSTOP = 19;

    /// <summary>A generous upper bound of sigset_t (128 bytes in glibc and musl); all zero is the empty set.</summary>
    public const int SigSetSize = 256;

    private const int SIG_SETMASK = 2;
    private const int X_OK = 1;

    [LibraryImport(Name, EntryPoint = "access", SetLastError = true)]
    private static partial int AccessRaw(byte* path, int mode);

    [LibraryImport(Name, EntryPoint = "execve", SetLastError = true)]
    private static partial int ExecveRaw(nint path, nint* argv, nint* envp);

    [LibraryImport(Name, EntryPoint = "pthread_sigmask")]
    private static partial int PthreadSigmask(int how, byte* set, byte* oldSet);

    [LibraryImport(Name, EntryPoint = "kill", SetLastError = true)]
    public static partial int Kill(int pid, int signal);

    /// <summary>True if this process may execute <paramref name="path"/> (access X_OK).</summary>
    public static bool CanExecute(string path)
    {
        var bytes = Bytes(path);
        fixed (byte* p = bytes) return AccessRaw(p, X_OK) == 0;
    }

    /// <summary>Unblocks every signal of the calling thread.</summary>
    public static void UnblockAllSignals()
    {
        var empty = stackalloc byte[SigSetSize];
        new Span<byte>(empty, SigSetSize).Clear();
        _ = PthreadSigmask(SIG_SETMASK, empty, null);
    }

    /// <summary>execve(2) with NUL-terminated arrays of UTF-8 strings; returns errno (it returns only on failure).</summary>
    public static int Execve(nint path, nint[] argv, nint[] envp)
    {
        fixed (nint* a = argv)
        fixed (nint* e = envp)
        {
            _ = ExecveRaw(path, a, e);
            return LastError;
        }
    }

    // --- child processes (cron: posix_spawn, waitpid, pipes, poll, rlimits) -----------------------------------
    // System.Diagnostics.Process reaps children itself, which would race with cron's own waitpid(-1) reaper when
    // it runs as PID 1 (supercronic issues 88 and 171): cron owns its children with these calls.

    public const int WNOHANG = 1;

    public const short POSIX_SPAWN_SETPGROUP = 0x02;
    public const short POSIX_SPAWN_SETSIGDEF = 0x04;
    public const short POSIX_SPAWN_SETSIGMASK = 0x08;

    public const short POLLIN = 0x001;

    public const int RLIMIT_NOFILE = 7;

    /// <summary>The signals cron handles (stop, reload, children): each starts with its default disposition.</summary>
    public static readonly int[] HandledSignals = [SIGINT, SIGQUIT, SIGTERM, SIGUSR2, SIGCHLD];

    /// <summary>Generous upper bounds of glibc's and musl's opaque posix_spawn types (80 and 336 bytes on 64-bit Linux).</summary>
    public const int FileActionsSize = 256;
    public const int SpawnAttrSize = 1024;

    [StructLayout(LayoutKind.Sequential)]
    public struct RLimit
    {
        public ulong Current;
        public ulong Maximum;
    }

    [StructLayout(LayoutKind.Sequential)]
    public struct PollFd
    {
        public int Fd;
        public short Events;
        public short Revents;
    }

    [LibraryImport(Name, SetLastError = true)]
    public static partial int pipe2(int* fds, int flags);

    [LibraryImport(Name, SetLastError = true)]
    public static partial nint read(int fd, byte* buffer, nuint count);

    [LibraryImport(Name, SetLastError = true)]
    public static partial nint write(int fd, byte* buffer, nuint count);

    [LibraryImport(Name, SetLastError = true)]
    public static partial int poll(PollFd* fds, nuint count, int timeoutMilliseconds);

    [LibraryImport(Name, SetLastError = true)]
    public static partial int waitpid(int pid, int* status, int options);

    [LibraryImport(Name)]
    public static partial int getpid();

    [LibraryImport(Name, SetLastError = true)]
    public static partial int getrlimit(int resource, RLimit* limit);

    [LibraryImport(Name, SetLastError = true)]
    public static partial int setrlimit(int resource, RLimit* limit);

    /// <summary>signal(2) with SIG_DFL (0): the default disposition, also for a signal inherited as ignored.</summary>
    [LibraryImport(Name, EntryPoint = "signal")]
    public static partial nint ResetSignal(int signal, nint handler = 0);

    [LibraryImport(Name)]
    public static partial int posix_spawn_file_actions_init(void* actions);

    [LibraryImport(Name)]
    public static partial int posix_spawn_file_actions_destroy(void* actions);

    [LibraryImport(Name)]
    public static partial int posix_spawn_file_actions_adddup2(void* actions, int fd, int newFd);

    [LibraryImport(Name)]
    public static partial int posix_spawnattr_init(void* attributes);

    [LibraryImport(Name)]
    public static partial int posix_spawnattr_destroy(void* attributes);

    [LibraryImport(Name)]
    public static partial int posix_spawnattr_setflags(void* attributes, short flags);

    [LibraryImport(Name)]
    public static partial int posix_spawnattr_setpgroup(void* attributes, int processGroup);

    [LibraryImport(Name)]
    public static partial int posix_spawnattr_setsigmask(void* attributes, void* signals);

    [LibraryImport(Name)]
    public static partial int posix_spawnattr_setsigdefault(void* attributes, void* signals);

    /// <summary>Returns 0 or an errno value (posix_spawn does not use errno).</summary>
    [LibraryImport(Name)]
    public static partial int posix_spawnp(int* pid, byte* file, void* actions, void* attributes, byte** argv, byte** envp);

    [LibraryImport(Name)]
    public static partial int sigemptyset(void* set);

    [LibraryImport(Name)]
    public static partial int sigfillset(void* set);

    [LibraryImport(Name)]
    public static partial int sigdelset(void* set, int signal);

    /// <summary>
    /// The .NET runtime's own SIGCHLD hook (what System.Diagnostics.Process registers). Without a registered
    /// callback, the runtime itself calls waitpid(-1) on SIGCHLD when the process is PID 1, which would steal the
    /// jobs' exit statuses; with one, it calls the callback instead. Arguments: reapAll, configureConsole.
    /// </summary>
    [LibraryImport("libSystem.Native", EntryPoint = "SystemNative_RegisterForSigChld")]
    public static partial void RegisterForSigChld(delegate* unmanaged<int, int, int> handler);

    public static int ExitCode(int status) => (status >> 8) & 0xff;

    public static bool Signaled(int status) => (status & 0x7f) != 0 && (status & 0x7f) != 0x7f;

    public static int TermSignal(int status) => status & 0x7f;

    /// <summary>Signal names as Go prints them ("signal: terminated"), which is what supercronic logs.</summary>
    public static string SignalName(int signal) => signal switch
    {
        1 => "hangup",
        2 => "interrupt",
        3 => "quit",
        4 => "illegal instruction",
        5 => "trace/breakpoint trap",
        6 => "aborted",
        7 => "bus error",
        8 => "floating point exception",
        9 => "killed",
        10 => "user defined signal 1",
        11 => "segmentation fault",
        12 => "user defined signal 2",
        13 => "broken pipe",
        14 => "alarm clock",
        15 => "terminated",
        _ => $"signal {signal}",
    };

    // --- memory ---------------------------------------------------------------------------------------------

    private const int MADV_PAGEOUT = 21;

    [LibraryImport(Name, EntryPoint = "madvise", SetLastError = true)]
    private static partial int MadviseRaw(nint address, nuint length, int advice);

    /// <summary>
    /// Asks the kernel to reclaim now the pages of this process's read-only file mappings (its code and
    /// read-only data, and those of the libraries), madvise(MADV_PAGEOUT) (Linux 5.4+). Clean pages mapped by
    /// this process alone leave memory; pages shared with another process stay. What is touched again is read
    /// back on the next fault. Returns the bytes of the mappings advised, 0 if /proc/self/maps cannot be read
    /// or the kernel does not know the advice.
    /// </summary>
    public static long PageOutFileMappings()
    {
        string[] lines;
        try
        {
            lines = File.ReadAllLines("/proc/self/maps");
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return 0;
        }
        long advised = 0;
        foreach (var line in lines)
        {
            // "start-end perms offset dev inode path": a file mapping has an inode other than 0 and a path
            var fields = line.Split(' ', 6, StringSplitOptions.RemoveEmptyEntries);
            if (fields.Length < 6 || fields[4] == "0" || !fields[5].StartsWith('/') || fields[1].Length < 4 || fields[1][0] != 'r' || fields[1][1] == 'w') continue;
            var dash = fields[0].IndexOf('-');
            if (dash < 0
                || !ulong.TryParse(fields[0].AsSpan(0, dash), System.Globalization.NumberStyles.HexNumber, null, out var start)
                || !ulong.TryParse(fields[0].AsSpan(dash + 1), System.Globalization.NumberStyles.HexNumber, null, out var end)
                || end <= start) continue;
            if (MadviseRaw((nint)start, (nuint)(end - start), MADV_PAGEOUT) != 0)
            {
                if (LastError == 22 /* EINVAL: a kernel before 5.4 */) return advised;
                continue;
            }
            advised += (long)(end - start);
        }
        return advised;
    }
}
