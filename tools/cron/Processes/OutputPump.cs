using System.Runtime.InteropServices;
using InfraTools.Cron.Crontab;

namespace InfraTools.Cron.Processes;

/// <summary>
/// Reads a job's stdout and stderr pipes on one small thread (poll on both) and hands over each line. Runs
/// until both pipes reach end of file, which can be after the job's shell has exited when a background
/// process it started still holds them; the job's end is decided by its exit status, not by this.
/// </summary>
public sealed unsafe class OutputPump
{
    /// <summary>Longest line passed on in one piece (as supercronic: 64 KiB); longer lines are split.</summary>
    public const int MaxLine = 64 * 1024;

    private readonly TaskCompletionSource _finished = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Completes when both pipes are closed by every writer.</summary>
    public Task Finished => _finished.Task;

    /// <summary>Starts pumping; <paramref name="line"/> gets ("stdout" or "stderr", text, truncated).</summary>
    public static OutputPump Start(int stdoutFd, int stderrFd, Action<string, string, bool> line)
    {
        var pump = new OutputPump();
        var thread = new Thread(() => pump.Run(stdoutFd, stderrFd, line), maxStackSize: 256 * 1024)
        {
            IsBackground = true,
            Name = "job output",
        };
        thread.Start();
        return pump;
    }

    private void Run(int stdoutFd, int stderrFd, Action<string, string, bool> line)
    {
        var streams = new[] { new Stream(stdoutFd, "stdout"), new Stream(stderrFd, "stderr") };
        var fds = stackalloc Posix.PollFd[2];
        try
        {
            while (streams.Any(s => s.Open))
            {
                var count = 0;
                foreach (var s in streams)
                {
                    if (!s.Open) continue;
                    fds[count++] = new Posix.PollFd { Fd = s.Fd, Events = Posix.POLLIN };
                }
                if (Posix.poll(fds, (nuint)count, -1) < 0)
                {
                    if (Marshal.GetLastPInvokeError() == Posix.EINTR) continue;
                    break;
                }
                for (var i = 0; i < count; i++)
                {
                    if (fds[i].Revents == 0) continue;
                    var s = streams.First(x => x.Open && x.Fd == fds[i].Fd);
                    s.ReadOnce(line);
                }
            }
        }
        finally
        {
            foreach (var s in streams) s.Close(line);
            _finished.TrySetResult();
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
            fixed (byte* p = _buffer) n = Posix.read(Fd, p + _filled, (nuint)(_buffer.Length - _filled));
            if (n < 0 && Marshal.GetLastPInvokeError() == Posix.EINTR) return;
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
            Posix.close(Fd);
        }

        private void Emit(int start, int end, bool truncated, Action<string, string, bool> line)
        {
            if (end > start && _buffer[end - 1] == (byte)'\r') end--;
            // Bytes that are not UTF-8 are kept (RawText), so the log shows them as supercronic does.
            line(channel, RawText.Decode(_buffer.AsSpan(start, end - start)), truncated);
        }
    }
}
