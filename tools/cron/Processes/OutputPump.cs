using InfraTools.Interop;
using System.Runtime.InteropServices;
using InfraTools.Cron.Crontab;

namespace InfraTools.Cron.Processes;

/// <summary>
/// Reads every job's stdout and stderr pipes on one thread (poll over all of them) and hands over each line.
/// A job's pump runs until both its pipes reach end of file, which can be after the job's shell has exited when
/// a background process it started still holds them; the job's end is decided by its exit status, not by this.
/// One thread for all jobs instead of one per run: starting 200 jobs in a second does not also create and
/// destroy 200 threads.
/// </summary>
public sealed unsafe class OutputPump
{
    /// <summary>Longest line passed on in one piece (as supercronic: 64 KiB); longer lines are split.</summary>
    public const int MaxLine = 64 * 1024;

    private static readonly object Gate = new();
    private static readonly List<OutputPump> Pending = [];
    private static int s_wakeRead = -1;
    private static int s_wakeWrite = -1;
    private static Thread? s_thread;

    private readonly TaskCompletionSource _finished = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly Stream[] _streams;
    private readonly Action<string, string, bool> _line;

    private OutputPump(int stdoutFd, int stderrFd, Action<string, string, bool> line)
    {
        _streams = [new Stream(stdoutFd, "stdout"), new Stream(stderrFd, "stderr")];
        _line = line;
    }

    /// <summary>Completes when both pipes are closed by every writer.</summary>
    public Task Finished => _finished.Task;

    /// <summary>Starts pumping; <paramref name="line"/> gets ("stdout" or "stderr", text, truncated).</summary>
    public static OutputPump Start(int stdoutFd, int stderrFd, Action<string, string, bool> line)
    {
        var pump = new OutputPump(stdoutFd, stderrFd, line);
        lock (Gate)
        {
            if (s_thread is null)
            {
                var wake = stackalloc int[2];
                if (Libc.pipe2(wake, Libc.O_CLOEXEC | Libc.O_NONBLOCK) != 0)
                    throw new IOException($"cannot create the output reader's wake-up pipe: {Libc.ErrorText(Marshal.GetLastPInvokeError())}");
                (s_wakeRead, s_wakeWrite) = (wake[0], wake[1]);
                s_thread = new Thread(Run, maxStackSize: 256 * 1024) { IsBackground = true, Name = "job output" };
                s_thread.Start();
            }
            Pending.Add(pump);
        }
        byte one = 1;
        Libc.write(s_wakeWrite, &one, 1); // a full pipe already wakes the reader
        return pump;
    }

    private static void Run()
    {
        var active = new List<OutputPump>();
        var fds = new Libc.PollFd[64];
        var owners = new Stream[64];
        var ownerPumps = new OutputPump[64];
        var drain = stackalloc byte[256];
        while (true)
        {
            lock (Gate)
            {
                active.AddRange(Pending);
                Pending.Clear();
            }
            var count = 1 + active.Sum(p => p._streams.Count(x => x.Open));
            if (fds.Length < count)
            {
                Array.Resize(ref fds, count * 2);
                Array.Resize(ref owners, count * 2);
                Array.Resize(ref ownerPumps, count * 2);
            }
            fds[0] = new Libc.PollFd { Fd = s_wakeRead, Events = Libc.POLLIN };
            var n = 1;
            foreach (var pump in active)
            {
                foreach (var stream in pump._streams)
                {
                    if (!stream.Open) continue;
                    owners[n] = stream;
                    ownerPumps[n] = pump;
                    fds[n++] = new Libc.PollFd { Fd = stream.Fd, Events = Libc.POLLIN };
                }
            }
            int ready;
            fixed (Libc.PollFd* p = fds) ready = Libc.poll(p, (nuint)n, -1);
            if (ready < 0) continue; // EINTR
            if (fds[0].Revents != 0) while (Libc.read(s_wakeRead, drain, 256) > 0) { }
            for (var i = 1; i < n; i++)
            {
                if (fds[i].Revents == 0) continue;
                var stream = owners[i];
                var pump = ownerPumps[i];
                try
                {
                    stream.ReadOnce(pump._line);
                }
                catch (Exception)
                {
                    // A failing log write must not stop the output of every other job.
                    stream.Close(pump._line);
                }
            }
            for (var i = active.Count - 1; i >= 0; i--)
            {
                if (active[i]._streams.Any(x => x.Open)) continue;
                active[i]._finished.TrySetResult();
                active.RemoveAt(i);
            }
        }
    }

    private sealed class Stream(int fd, string channel)
    {
        // Grows up to MaxLine only for long lines; most jobs print short ones.
        private byte[] _buffer = new byte[4096];
        private int _filled;

        public int Fd { get; } = fd;
        public bool Open { get; private set; } = fd >= 0;

        public void ReadOnce(Action<string, string, bool> line)
        {
            if (_filled == _buffer.Length && _buffer.Length < MaxLine) Array.Resize(ref _buffer, Math.Min(_buffer.Length * 2, MaxLine));
            nint n;
            fixed (byte* p = _buffer) n = Libc.read(Fd, p + _filled, (nuint)(_buffer.Length - _filled));
            if (n < 0 && Marshal.GetLastPInvokeError() == Libc.EINTR) return;
            if (n <= 0)
            {
                Close(line);
                return;
            }
            _filled += (int)n;
            var start = 0;
            for (var i = 0; i < _filled; i++)
            {
                if (_buffer[i] != (byte)'\n') continue;
                Emit(start, i, truncated: false, line);
                start = i + 1;
            }
            if (start == 0 && _filled == MaxLine)
            {
                Emit(0, _filled, truncated: true, line);
                start = _filled;
            }
            Buffer.BlockCopy(_buffer, start, _buffer, 0, _filled - start);
            _filled -= start;
        }

        public void Close(Action<string, string, bool> line)
        {
            if (!Open) return;
            Open = false;
            if (_filled > 0) Emit(0, _filled, truncated: false, line);
            _filled = 0;
            Libc.Close(Fd);
        }

        private void Emit(int start, int end, bool truncated, Action<string, string, bool> line)
        {
            if (end > start && _buffer[end - 1] == (byte)'\r') end--;
            // Bytes that are not UTF-8 are kept (RawText), so the log shows them as supercronic does.
            line(channel, RawText.Decode(_buffer.AsSpan(start, end - start)), truncated);
        }
    }
}
