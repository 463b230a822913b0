using System.Runtime.InteropServices;
using System.Text;

namespace InfraTools.Cron.Processes;

/// <summary>How a child ended: its exit code, or the signal that killed it.</summary>
public readonly record struct ExitStatus(int? Code, int? Signal)
{
    public static ExitStatus FromWaitStatus(int status) =>
        Posix.Signaled(status) ? new ExitStatus(null, Posix.TermSignal(status)) : new ExitStatus(Posix.ExitCode(status), null);

    public bool Success => Code == 0;

    /// <summary>The shell's convention: the exit code, or 128 + the signal number.</summary>
    public int ShellCode => Code ?? 128 + Signal!.Value;

    /// <summary>As Go's exec.ExitError prints it: "exit status 3", "signal: killed".</summary>
    public override string ToString() => Code is { } code ? $"exit status {code}" : $"signal: {Posix.SignalName(Signal!.Value)}";
}

/// <summary>A started job process: its pid (also its process group id) and the read ends of its output pipes.</summary>
public sealed record SpawnedProcess(int Pid, int StdoutFd, int StderrFd, Task<ExitStatus> Exited);

/// <summary>
/// Starts job processes with posix_spawn in their own process group and is the only place that waits for
/// children. On SIGCHLD it reaps with waitpid(-1, WNOHANG), which as PID 1 also reaps orphaned grandchildren
/// re-parented to cron, and hands each status to the job that owns the pid; statuses of pids that are not
/// jobs (orphans) are dropped. Spawning and reaping share one lock, so a child that exits at once is never
/// reaped before its pid is registered. With reapOrphans false (-no-reap) only job pids are waited for.
/// </summary>
public sealed unsafe class ChildProcesses : IDisposable
{
    private readonly object _gate = new();
    private readonly Dictionary<int, TaskCompletionSource<ExitStatus>> _children = [];
    private readonly bool _reapOrphans;
    private readonly Action<int, ExitStatus> _orphanReaped;
    private readonly PosixSignalRegistration _sigchld;

    private static ChildProcesses? s_current;

    public ChildProcesses(bool reapOrphans, Action<int, ExitStatus> orphanReaped)
    {
        _reapOrphans = reapOrphans;
        _orphanReaped = orphanReaped;
        // The registration sets up the runtime's signal handling; the runtime hook below then makes sure the
        // runtime leaves reaping to us (as PID 1 it would otherwise reap every child itself).
        _sigchld = PosixSignalRegistration.Create(PosixSignal.SIGCHLD, _ => Reap());
        s_current = this;
        Posix.RegisterForSigChld(&OnSigChld);
        // Children may have been inherited (exec from a shell wrapper) or have exited before the registration.
        Reap();
    }

    [UnmanagedCallersOnly]
    private static int OnSigChld(int reapAll, int configureConsole)
    {
        try
        {
            s_current?.Reap();
        }
        catch (Exception)
        {
            // Never let an exception cross into the runtime's signal thread; the next SIGCHLD reaps again.
        }
        return 0;
    }

    public int Running
    {
        get { lock (_gate) return _children.Count; }
    }

    /// <summary>
    /// Starts <paramref name="argv"/> with <paramref name="environment"/>, stdin from /dev/null, in a new process
    /// group, with default signal dispositions and an empty signal mask. With <paramref name="capture"/> its stdout
    /// and stderr are pipes (returned), else it shares cron's. Throws <see cref="SpawnException"/> when it cannot start.
    /// </summary>
    public SpawnedProcess Spawn(IReadOnlyList<string> argv, IReadOnlyList<string> environment, bool capture)
    {
        var outPipe = stackalloc int[2] { -1, -1 };
        var errPipe = stackalloc int[2] { -1, -1 };
        if (capture && (Posix.pipe2(outPipe, Posix.O_CLOEXEC) != 0 || Posix.pipe2(errPipe, Posix.O_CLOEXEC) != 0))
        {
            var errno = Marshal.GetLastPInvokeError();
            CloseAll(outPipe[0], outPipe[1], errPipe[0], errPipe[1]);
            throw new SpawnException($"cannot create output pipes: {Posix.ErrorText(errno)}");
        }

        var actions = stackalloc byte[Posix.FileActionsSize];
        var attributes = stackalloc byte[Posix.SpawnAttrSize];
        var defaults = stackalloc byte[Posix.SigSetSize];
        var mask = stackalloc byte[Posix.SigSetSize];
        var strings = new List<nint>();
        try
        {
            Posix.posix_spawn_file_actions_init(actions);
            Posix.posix_spawnattr_init(attributes);
            var devNull = Utf8("/dev/null", strings);
            Posix.posix_spawn_file_actions_addopen(actions, 0, devNull, Posix.O_RDONLY, 0);
            if (capture)
            {
                Posix.posix_spawn_file_actions_adddup2(actions, outPipe[1], 1);
                Posix.posix_spawn_file_actions_adddup2(actions, errPipe[1], 2);
            }
            // The .NET runtime ignores SIGPIPE and may block signals; a job must start with the defaults.
            Posix.sigfillset(defaults);
            Posix.sigdelset(defaults, Posix.SIGKILL);
            Posix.sigdelset(defaults, Posix.SIGSTOP);
            Posix.sigemptyset(mask);
            Posix.posix_spawnattr_setsigdefault(attributes, defaults);
            Posix.posix_spawnattr_setsigmask(attributes, mask);
            Posix.posix_spawnattr_setpgroup(attributes, 0);
            Posix.posix_spawnattr_setflags(attributes, Posix.POSIX_SPAWN_SETPGROUP | Posix.POSIX_SPAWN_SETSIGDEF | Posix.POSIX_SPAWN_SETSIGMASK);

            var argvArray = NullTerminated(argv, strings);
            var envArray = NullTerminated(environment, strings);
            var file = Utf8(argv[0], strings);

            int pid;
            var exited = new TaskCompletionSource<ExitStatus>(TaskCreationOptions.RunContinuationsAsynchronously);
            lock (_gate)
            {
                var error = Posix.posix_spawnp(&pid, file, actions, attributes, argvArray, envArray);
                if (error != 0) throw new SpawnException($"cannot start {argv[0]}: {Posix.ErrorText(error)}");
                _children[pid] = exited;
            }
            if (capture)
            {
                CloseAll(outPipe[1], errPipe[1]);
                outPipe[1] = errPipe[1] = -1;
            }
            return new SpawnedProcess(pid, capture ? outPipe[0] : -1, capture ? errPipe[0] : -1, exited.Task);
        }
        catch
        {
            CloseAll(outPipe[0], outPipe[1], errPipe[0], errPipe[1]);
            throw;
        }
        finally
        {
            Posix.posix_spawn_file_actions_destroy(actions);
            Posix.posix_spawnattr_destroy(attributes);
            foreach (var p in strings) Marshal.FreeHGlobal(p);
        }
    }

    /// <summary>Sends <paramref name="signal"/> to the process group of a job; false when the group is gone.</summary>
    public static bool SignalGroup(int processGroup, int signal) => Posix.kill(-processGroup, signal) == 0;

    /// <summary>Collects every child that has ended and passes each status to its job (or drops an orphan's).</summary>
    public void Reap()
    {
        var done = new List<(TaskCompletionSource<ExitStatus>? Job, int Pid, ExitStatus Status)>();
        lock (_gate)
        {
            int status;
            if (_reapOrphans)
            {
                while (true)
                {
                    var pid = Posix.waitpid(-1, &status, Posix.WNOHANG);
                    if (pid > 0)
                    {
                        done.Add((_children.Remove(pid, out var job) ? job : null, pid, ExitStatus.FromWaitStatus(status)));
                        continue;
                    }
                    if (pid < 0 && Marshal.GetLastPInvokeError() == Posix.EINTR) continue;
                    break; // 0: children left but none ended; ECHILD: no children at all
                }
            }
            else
            {
                foreach (var pid in _children.Keys.ToList())
                {
                    int r;
                    do r = Posix.waitpid(pid, &status, Posix.WNOHANG);
                    while (r < 0 && Marshal.GetLastPInvokeError() == Posix.EINTR);
                    if (r == pid)
                    {
                        _children.Remove(pid, out var job);
                        done.Add((job, pid, ExitStatus.FromWaitStatus(status)));
                    }
                }
            }
        }
        foreach (var (job, pid, status) in done)
        {
            if (job is not null) job.TrySetResult(status);
            else _orphanReaped(pid, status);
        }
    }

    public void Dispose() => _sigchld.Dispose();

    private static byte* Utf8(string value, List<nint> allocations)
    {
        var bytes = Encoding.UTF8.GetByteCount(value);
        var p = (byte*)Marshal.AllocHGlobal(bytes + 1);
        allocations.Add((nint)p);
        fixed (char* chars = value) Encoding.UTF8.GetBytes(chars, value.Length, p, bytes);
        p[bytes] = 0;
        return p;
    }

    private static byte** NullTerminated(IReadOnlyList<string> values, List<nint> allocations)
    {
        var array = (byte**)Marshal.AllocHGlobal(sizeof(byte*) * (values.Count + 1));
        allocations.Add((nint)array);
        for (var i = 0; i < values.Count; i++) array[i] = Utf8(values[i], allocations);
        array[values.Count] = null;
        return array;
    }

    private static void CloseAll(params int[] fds)
    {
        foreach (var fd in fds)
            if (fd >= 0) Posix.close(fd);
    }
}

public sealed class SpawnException(string message) : Exception(message);
