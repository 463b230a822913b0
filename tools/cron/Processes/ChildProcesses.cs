using InfraTools.Interop;
using System.Runtime.InteropServices;
using InfraTools.Cron.Crontab;

namespace InfraTools.Cron.Processes;

/// <summary>How a child ended: its exit code, or the signal that killed it.</summary>
public readonly record struct ExitStatus(int? Code, int? Signal)
{
    public static ExitStatus FromWaitStatus(int status) =>
        Libc.Signaled(status) ? new ExitStatus(null, Libc.TermSignal(status)) : new ExitStatus(Libc.ExitCode(status), null);

    public bool Success => Code == 0;

    /// <summary>The shell's convention: the exit code, or 128 + the signal number.</summary>
    public int ShellCode => Code ?? 128 + Signal!.Value;

    /// <summary>As Go's exec.ExitError prints it: "exit status 3", "signal: killed".</summary>
    public override string ToString() => Code is { } code ? $"exit status {code}" : $"signal: {Libc.SignalName(Signal!.Value)}";
}

/// <summary>A started job process: its pid (also its process group id) and the read ends of its output pipes (-1 when not captured).</summary>
public sealed record SpawnedProcess(int Pid, int StdoutFd, int StderrFd, Task<ExitStatus> Exited);

/// <summary>
/// A command ready to be started many times: argv and environment, encoded once (with the bytes the crontab
/// was written in, see <see cref="RawText"/>) into pinned memory, so that a spawn allocates nothing for them.
/// </summary>
public sealed unsafe class PreparedCommand
{
    private readonly byte[] _strings;
    private readonly nint[] _argv;
    private readonly nint[] _environment;

    public PreparedCommand(IReadOnlyList<string> argv, IReadOnlyList<string> environment)
    {
        Argv = argv;
        Environment = environment;
        var size = argv.Sum(a => RawText.ByteCount(a) + 1) + environment.Sum(e => RawText.ByteCount(e) + 1);
        _strings = GC.AllocateUninitializedArray<byte>(size, pinned: true);
        _argv = GC.AllocateArray<nint>(argv.Count + 1, pinned: true);
        _environment = GC.AllocateArray<nint>(environment.Count + 1, pinned: true);
        var offset = 0;
        var start = Marshal.UnsafeAddrOfPinnedArrayElement(_strings, 0);
        void Fill(IReadOnlyList<string> values, nint[] pointers)
        {
            for (var i = 0; i < values.Count; i++)
            {
                pointers[i] = start + offset;
                offset += RawText.GetBytes(values[i], _strings.AsSpan(offset));
                _strings[offset++] = 0;
            }
            pointers[values.Count] = 0;
        }
        Fill(argv, _argv);
        Fill(environment, _environment);
    }

    public IReadOnlyList<string> Argv { get; }
    public IReadOnlyList<string> Environment { get; }

    internal byte* File => (byte*)_argv[0];
    internal byte** ArgvPointer => (byte**)Marshal.UnsafeAddrOfPinnedArrayElement(_argv, 0);
    internal byte** EnvironmentPointer => (byte**)Marshal.UnsafeAddrOfPinnedArrayElement(_environment, 0);
}

/// <summary>One process to start: filled in by <see cref="IJobProcesses.SpawnAll"/> with the process or the reason it could not start.</summary>
public sealed class SpawnRequest(PreparedCommand command, bool capture)
{
    public PreparedCommand Command { get; } = command;
    public bool Capture { get; } = capture;
    public SpawnedProcess? Process { get; internal set; }
    public string? Error { get; internal set; }
    /// <summary>posix_spawn's file actions and attributes while the request is being started.</summary>
    internal nint Native { get; set; }
}

/// <summary>Starting and signalling job processes: <see cref="ChildProcesses"/>, or a fake in the in-process tests.</summary>
public interface IJobProcesses : IDisposable
{
    /// <summary>Starts every request (each gets its process or an error); returns when all have been started.</summary>
    void SpawnAll(IReadOnlyList<SpawnRequest> requests);

    /// <summary>Sends <paramref name="signal"/> to a job's process group; false when the group is gone.</summary>
    bool SignalGroup(int processGroup, int signal);
}

/// <summary>
/// Starts job processes with posix_spawn in their own process group and is the only place that waits for
/// children. On SIGCHLD it reaps with waitpid(-1, WNOHANG), which as PID 1 also reaps orphaned grandchildren
/// re-parented to cron, and hands each status to the job that owns the pid; statuses of pids that are not
/// jobs (orphans) are dropped. With reapOrphans false (-no-reap) only job pids are waited for.
/// <para>
/// Many jobs due at the same second are started in parallel, by the calling thread and a few spawner threads
/// created up front: posix_spawn blocks its caller until the child has exec'd, so one thread starts about one
/// job per exec. A child that ends before its pid is registered is kept aside by the reaper until the spawn
/// that made it claims it.
/// </para>
/// <para>
/// Open files: cron raises its own soft RLIMIT_NOFILE to the hard limit (each running job holds two pipes),
/// and jobs get the soft limit cron inherited, as Go does for supercronic: the limit is lowered around each
/// batch of spawns (the pipes are made before), and the children's stdin is a dup of one /dev/null descriptor,
/// so a child never needs a new descriptor below the lowered limit.
/// </para>
/// </summary>
public sealed unsafe class ChildProcesses : IJobProcesses
{
    /// <summary>Fewer due jobs than this are started by the calling thread alone.</summary>
    private const int ParallelFrom = 4;

    private readonly object _gate = new();
    private readonly Dictionary<int, TaskCompletionSource<ExitStatus>> _children = [];
    /// <summary>Statuses reaped while spawns were in flight, for pids not registered (yet): a spawn claims its own.</summary>
    private readonly Dictionary<int, ExitStatus> _unclaimed = [];
    private int _spawning;
    private readonly bool _reapOrphans;
    private readonly Action<int, ExitStatus> _orphanReaped;
    private readonly PosixSignalRegistration _sigchld;
    private readonly int _devNull;
    private readonly Libc.RLimit _inherited;
    private readonly bool _lowerForChildren;
    private readonly Thread[] _spawners;
    private readonly SemaphoreSlim _work = new(0);
    private volatile Batch? _batch;
    private volatile bool _disposed;

    /// <summary>Due jobs shared out to the spawner threads: each takes the next index until none is left.</summary>
    private sealed class Batch(IReadOnlyList<SpawnRequest> requests, int[] pipes)
    {
        public IReadOnlyList<SpawnRequest> Requests { get; } = requests;
        public int[] Pipes { get; } = pipes;
        public CountdownEvent Done { get; } = new(requests.Count);
        public int Next = -1;
    }

    private static ChildProcesses? s_current;

    public ChildProcesses(bool reapOrphans, Action<int, ExitStatus> orphanReaped)
    {
        _reapOrphans = reapOrphans;
        _orphanReaped = orphanReaped;
        _devNull = Libc.Open("/dev/null", Libc.O_RDONLY);
        (_inherited, _lowerForChildren) = RaiseOpenFileLimit();
        // The registration sets up the runtime's signal handling; the runtime hook below then makes sure the
        // runtime leaves reaping to us (as PID 1 it would otherwise reap every child itself).
        _sigchld = PosixSignalRegistration.Create(PosixSignal.SIGCHLD, _ => Reap());
        s_current = this;
        Libc.RegisterForSigChld(&OnSigChld);
        _spawners = new Thread[Math.Clamp(Environment.ProcessorCount, 2, 8) - 1];
        for (var i = 0; i < _spawners.Length; i++)
        {
            _spawners[i] = new Thread(SpawnerLoop, maxStackSize: 256 * 1024) { IsBackground = true, Name = "spawner" };
            _spawners[i].Start();
        }
        // Children may have been inherited (exec from a shell wrapper) or have exited before the registration.
        Reap();
    }

    /// <summary>The soft open-file limit cron started with (what jobs get).</summary>
    public ulong InheritedOpenFileLimit => _inherited.Current;

    private static (Libc.RLimit Inherited, bool Raised) RaiseOpenFileLimit()
    {
        Libc.RLimit limit;
        if (Libc.getrlimit(Libc.RLIMIT_NOFILE, &limit) != 0) return (default, false);
        var inherited = limit;
        if (limit.Current >= limit.Maximum) return (inherited, false);
        limit.Current = limit.Maximum;
        return (inherited, Libc.setrlimit(Libc.RLIMIT_NOFILE, &limit) == 0);
    }

    private void SetOpenFileLimit(ulong soft)
    {
        var limit = _inherited with { Current = soft };
        Libc.setrlimit(Libc.RLIMIT_NOFILE, &limit);
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

    /// <summary>
    /// Starts each request's argv with its environment, stdin from /dev/null, in a new process group, with
    /// default signal dispositions and an empty signal mask; with Capture its stdout and stderr are pipes, else
    /// it shares cron's.
    /// </summary>
    public void SpawnAll(IReadOnlyList<SpawnRequest> requests)
    {
        if (requests.Count == 0) return;
        Interlocked.Increment(ref _spawning);
        try
        {
            var pipes = new int[requests.Count * 4];
            Array.Fill(pipes, -1);
            for (var i = 0; i < requests.Count; i++)
            {
                if (!requests[i].Capture) continue;
                fixed (int* p = &pipes[i * 4])
                {
                    if (Libc.pipe2(p, Libc.O_CLOEXEC) != 0 || Libc.pipe2(p + 2, Libc.O_CLOEXEC) != 0)
                    {
                        requests[i].Error = $"cannot create output pipes: {Libc.ErrorText(Marshal.GetLastPInvokeError())}";
                        CloseAll(pipes.AsSpan(i * 4, 4));
                    }
                }
            }
            for (var i = 0; i < requests.Count; i++) Prepare(requests[i], pipes, i);
            if (_lowerForChildren) SetOpenFileLimit(_inherited.Current);
            try
            {
                if (requests.Count < ParallelFrom || _spawners.Length == 0)
                {
                    for (var i = 0; i < requests.Count; i++) SpawnOne(requests[i], pipes, i);
                }
                else
                {
                    var batch = new Batch(requests, pipes);
                    _batch = batch;
                    _work.Release(_spawners.Length);
                    TakeWork(batch);
                    batch.Done.Wait();
                    _batch = null;
                }
            }
            finally
            {
                if (_lowerForChildren) SetOpenFileLimit(_inherited.Maximum);
            }
        }
        finally
        {
            foreach (var request in requests) Release(request);
            ReleaseUnclaimed();
        }
        // With -no-reap only registered pids are waited for: one that ended before it was registered is collected here.
        if (!_reapOrphans) Reap();
    }

    private void SpawnerLoop()
    {
        while (!_disposed)
        {
            _work.Wait();
            if (_disposed) return;
            if (_batch is { } batch) TakeWork(batch);
        }
    }

    /// <summary>Starts the batch's next request until none is left (a thread that comes late finds none).</summary>
    private void TakeWork(Batch batch)
    {
        while (true)
        {
            var i = Interlocked.Increment(ref batch.Next);
            if (i >= batch.Requests.Count) return;
            try
            {
                SpawnOne(batch.Requests[i], batch.Pipes, i);
            }
            finally
            {
                batch.Done.Signal();
            }
        }
    }

    /// <summary>
    /// posix_spawn's file actions and attributes for a request, made before the open-file limit is lowered:
    /// glibc refuses to add a dup2 of a descriptor at or above the limit in force when the action is added.
    /// </summary>
    private void Prepare(SpawnRequest request, int[] pipes, int index)
    {
        if (request.Error is not null) return;
        var native = (byte*)NativeMemory.AllocZeroed((nuint)(Libc.FileActionsSize + Libc.SpawnAttrSize + 2 * Libc.SigSetSize));
        request.Native = (nint)native;
        var actions = native;
        var attributes = native + Libc.FileActionsSize;
        var defaults = attributes + Libc.SpawnAttrSize;
        var mask = defaults + Libc.SigSetSize;
        Libc.posix_spawn_file_actions_init(actions);
        Libc.posix_spawnattr_init(attributes);
        Libc.posix_spawn_file_actions_adddup2(actions, _devNull, 0);
        if (request.Capture)
        {
            Libc.posix_spawn_file_actions_adddup2(actions, pipes[index * 4 + 1], 1);
            Libc.posix_spawn_file_actions_adddup2(actions, pipes[index * 4 + 3], 2);
        }
        // The .NET runtime ignores SIGPIPE and may block signals; a job must start with the defaults.
        Libc.sigfillset(defaults);
        Libc.sigdelset(defaults, Libc.SIGKILL);
        Libc.sigdelset(defaults, Libc.SIGSTOP);
        Libc.sigemptyset(mask);
        Libc.posix_spawnattr_setsigdefault(attributes, defaults);
        Libc.posix_spawnattr_setsigmask(attributes, mask);
        Libc.posix_spawnattr_setpgroup(attributes, 0);
        Libc.posix_spawnattr_setflags(attributes, Libc.POSIX_SPAWN_SETPGROUP | Libc.POSIX_SPAWN_SETSIGDEF | Libc.POSIX_SPAWN_SETSIGMASK);
    }

    private static void Release(SpawnRequest request)
    {
        if (request.Native == 0) return;
        var native = (byte*)request.Native;
        Libc.posix_spawn_file_actions_destroy(native);
        Libc.posix_spawnattr_destroy(native + Libc.FileActionsSize);
        NativeMemory.Free(native);
        request.Native = 0;
    }

    private void SpawnOne(SpawnRequest request, int[] pipes, int index)
    {
        if (request.Error is not null || request.Native == 0) return;
        var outRead = pipes[index * 4];
        var outWrite = pipes[index * 4 + 1];
        var errRead = pipes[index * 4 + 2];
        var errWrite = pipes[index * 4 + 3];
        var actions = (byte*)request.Native;
        var attributes = actions + Libc.FileActionsSize;
        var command = request.Command;
        int pid;
        var error = Libc.posix_spawnp(&pid, command.File, actions, attributes, command.ArgvPointer, command.EnvironmentPointer);
        if (request.Capture)
        {
            Libc.Close(outWrite);
            Libc.Close(errWrite);
        }
        if (error != 0)
        {
            if (request.Capture)
            {
                Libc.Close(outRead);
                Libc.Close(errRead);
            }
            request.Error = $"cannot start {command.Argv[0]}: {Libc.ErrorText(error)}";
            return;
        }
        var exited = new TaskCompletionSource<ExitStatus>(TaskCreationOptions.RunContinuationsAsynchronously);
        ExitStatus? early = null;
        lock (_gate)
        {
            if (_unclaimed.Remove(pid, out var status)) early = status;
            else _children[pid] = exited;
        }
        if (early is { } s) exited.TrySetResult(s);
        request.Process = new SpawnedProcess(pid, request.Capture ? outRead : -1, request.Capture ? errRead : -1, exited.Task);
    }

    /// <summary>Sends <paramref name="signal"/> to the process group of a job; false when the group is gone.</summary>
    public bool SignalGroup(int processGroup, int signal) => Libc.Kill(-processGroup, signal) == 0;

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
                    var pid = Libc.waitpid(-1, &status, Libc.WNOHANG);
                    if (pid > 0)
                    {
                        var exit = ExitStatus.FromWaitStatus(status);
                        if (_children.Remove(pid, out var job)) done.Add((job, pid, exit));
                        else if (Volatile.Read(ref _spawning) > 0) _unclaimed[pid] = exit; // maybe a job not registered yet
                        else done.Add((null, pid, exit));
                        continue;
                    }
                    if (pid < 0 && Marshal.GetLastPInvokeError() == Libc.EINTR) continue;
                    break; // 0: children left but none ended; ECHILD: no children at all
                }
            }
            else
            {
                foreach (var pid in _children.Keys.ToList())
                {
                    int r;
                    do r = Libc.waitpid(pid, &status, Libc.WNOHANG);
                    while (r < 0 && Marshal.GetLastPInvokeError() == Libc.EINTR);
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

    /// <summary>After a batch: statuses no spawn claimed were orphans'.</summary>
    private void ReleaseUnclaimed()
    {
        List<(int, ExitStatus)>? orphans = null;
        lock (_gate)
        {
            if (Interlocked.Decrement(ref _spawning) == 0 && _unclaimed.Count > 0)
            {
                orphans = _unclaimed.Select(p => (p.Key, p.Value)).ToList();
                _unclaimed.Clear();
            }
        }
        if (orphans is null) return;
        foreach (var (pid, status) in orphans) _orphanReaped(pid, status);
    }

    public void Dispose()
    {
        _disposed = true;
        _work.Release(_spawners.Length);
        _sigchld.Dispose();
    }

    private static void CloseAll(Span<int> fds)
    {
        foreach (ref var fd in fds)
        {
            if (fd >= 0) Libc.Close(fd);
            fd = -1;
        }
    }
}
