using System.Runtime.InteropServices;

namespace InfraTools.Cron.Processes;

/// <summary>
/// The libc calls cron needs to own its children: System.Diagnostics.Process reaps children itself, which
/// would race with cron's own waitpid(-1) reaper when it runs as PID 1 (supercronic issues 88 and 171).
/// Linux only (x86-64 and arm64 share these constants); linked directly (DirectPInvoke) in the AOT binary.
/// </summary>
internal static unsafe partial class Posix
{
    private const string Libc = "libc";

    public const int EINTR = 4;

    public const int WNOHANG = 1;

    public const int O_RDONLY = 0;
    public const int O_NONBLOCK = 0x800;
    public const int O_CLOEXEC = 0x80000;

    public const short POSIX_SPAWN_SETPGROUP = 0x02;
    public const short POSIX_SPAWN_SETSIGDEF = 0x04;
    public const short POSIX_SPAWN_SETSIGMASK = 0x08;

    public const int SIGINT = 2;
    public const int SIGQUIT = 3;
    public const int SIGKILL = 9;
    public const int SIGUSR2 = 12;
    public const int SIGTERM = 15;
    public const int SIGCHLD = 17;
    public const int SIGSTOP = 19;

    public const short POLLIN = 0x001;

    public const int RLIMIT_NOFILE = 7;

    /// <summary>The signals cron handles (stop, reload, children): each starts with its default disposition.</summary>
    public static readonly int[] HandledSignals = [SIGINT, SIGQUIT, SIGTERM, SIGUSR2, SIGCHLD];

    /// <summary>Generous upper bounds of glibc's and musl's opaque types (80, 336 and 128 bytes on 64-bit Linux).</summary>
    public const int FileActionsSize = 256;
    public const int SpawnAttrSize = 1024;
    public const int SigSetSize = 256;

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

    [LibraryImport(Libc, SetLastError = true)]
    public static partial int pipe2(int* fds, int flags);

    [LibraryImport(Libc, SetLastError = true)]
    public static partial int close(int fd);

    [LibraryImport(Libc, SetLastError = true)]
    public static partial nint read(int fd, byte* buffer, nuint count);

    [LibraryImport(Libc, SetLastError = true)]
    public static partial nint write(int fd, byte* buffer, nuint count);

    [LibraryImport(Libc, SetLastError = true)]
    public static partial int poll(PollFd* fds, nuint count, int timeoutMilliseconds);

    [LibraryImport(Libc, SetLastError = true)]
    public static partial int waitpid(int pid, int* status, int options);

    [LibraryImport(Libc, SetLastError = true)]
    public static partial int kill(int pid, int signal);

    [LibraryImport(Libc)]
    public static partial int getpid();

    [LibraryImport(Libc, SetLastError = true)]
    public static partial int open(byte* path, int flags);

    [LibraryImport(Libc, SetLastError = true)]
    public static partial int getrlimit(int resource, RLimit* limit);

    [LibraryImport(Libc, SetLastError = true)]
    public static partial int setrlimit(int resource, RLimit* limit);

    /// <summary>signal(2) with SIG_DFL (0): the default disposition, also for a signal inherited as ignored.</summary>
    [LibraryImport(Libc, EntryPoint = "signal")]
    public static partial nint ResetSignal(int signal, nint handler = 0);

    [LibraryImport(Libc)]
    public static partial int posix_spawn_file_actions_init(void* actions);

    [LibraryImport(Libc)]
    public static partial int posix_spawn_file_actions_destroy(void* actions);

    [LibraryImport(Libc)]
    public static partial int posix_spawn_file_actions_adddup2(void* actions, int fd, int newFd);

    [LibraryImport(Libc)]
    public static partial int posix_spawnattr_init(void* attributes);

    [LibraryImport(Libc)]
    public static partial int posix_spawnattr_destroy(void* attributes);

    [LibraryImport(Libc)]
    public static partial int posix_spawnattr_setflags(void* attributes, short flags);

    [LibraryImport(Libc)]
    public static partial int posix_spawnattr_setpgroup(void* attributes, int processGroup);

    [LibraryImport(Libc)]
    public static partial int posix_spawnattr_setsigmask(void* attributes, void* signals);

    [LibraryImport(Libc)]
    public static partial int posix_spawnattr_setsigdefault(void* attributes, void* signals);

    /// <summary>Returns 0 or an errno value (posix_spawn does not use errno).</summary>
    [LibraryImport(Libc)]
    public static partial int posix_spawnp(int* pid, byte* file, void* actions, void* attributes, byte** argv, byte** envp);

    [LibraryImport(Libc)]
    public static partial int sigemptyset(void* set);

    [LibraryImport(Libc)]
    public static partial int sigfillset(void* set);

    [LibraryImport(Libc)]
    public static partial int sigdelset(void* set, int signal);

    [LibraryImport(Libc)]
    private static partial byte* strerror(int error);

    /// <summary>
    /// The .NET runtime's own SIGCHLD hook (what System.Diagnostics.Process registers). Without a registered
    /// callback, the runtime itself calls waitpid(-1) on SIGCHLD when the process is PID 1, which would steal the
    /// jobs' exit statuses; with one, it calls the callback instead. Arguments: reapAll, configureConsole.
    /// </summary>
    [LibraryImport("libSystem.Native", EntryPoint = "SystemNative_RegisterForSigChld")]
    public static partial void RegisterForSigChld(delegate* unmanaged<int, int, int> handler);

    public static string ErrorText(int errno) => Marshal.PtrToStringUTF8((nint)strerror(errno)) ?? $"errno {errno}";

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
}
