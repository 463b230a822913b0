using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text;

namespace InfraTools.Tests;

/// <summary>A running AOT cron binary: its log lines as they arrive, signals, and its exit.</summary>
public sealed partial class CronRun : IAsyncDisposable
{
    public const int SIGINT = 2;
    public const int SIGQUIT = 3;
    public const int SIGKILL = 9;
    public const int SIGUSR2 = 12;
    public const int SIGTERM = 15;

    private static readonly TimeSpan DefaultWait = TimeSpan.FromSeconds(20);

    private readonly Process _process;
    private readonly List<(bool Stderr, string Line)> _lines = [];
    private readonly SemaphoreSlim _arrived = new(0);

    private CronRun(Process process) => _process = process;

    public static string Binary => RepoPaths.Tool("cron");

    public int Pid => _process.Id;

    /// <summary>Starts cron with <paramref name="args"/>; S3_*/AWS_* variables are not inherited unless given.</summary>
    public static CronRun Start(IEnumerable<string> args, IReadOnlyDictionary<string, string?>? environment = null, string? workingDirectory = null) =>
        StartProcess(Binary, args, environment, workingDirectory);

    /// <summary>Starts another program that runs cron (e.g. unshare), with the same output capture.</summary>
    public static CronRun StartProcess(string file, IEnumerable<string> args, IReadOnlyDictionary<string, string?>? environment = null,
        string? workingDirectory = null)
    {
        var info = ProcessRunner.StartInfo(file, args, environment, workingDirectory);
        var process = new Process { StartInfo = info, EnableRaisingEvents = true };
        var run = new CronRun(process);
        process.OutputDataReceived += (_, e) => run.Add(false, e.Data);
        process.ErrorDataReceived += (_, e) => run.Add(true, e.Data);
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        process.StandardInput.Close();
        return run;
    }

    private void Add(bool stderr, string? line)
    {
        if (line is null) return;
        lock (_lines) _lines.Add((stderr, line));
        _arrived.Release();
    }

    public IReadOnlyList<string> Lines
    {
        get { lock (_lines) return _lines.Select(l => l.Line).ToList(); }
    }

    public IReadOnlyList<string> StdoutLines
    {
        get { lock (_lines) return _lines.Where(l => !l.Stderr).Select(l => l.Line).ToList(); }
    }

    public IReadOnlyList<string> StderrLines
    {
        get { lock (_lines) return _lines.Where(l => l.Stderr).Select(l => l.Line).ToList(); }
    }

    /// <summary>Log lines parsed as logrus text (lines that are not are skipped).</summary>
    public IReadOnlyList<LogLine> Logs => Lines.Select(LogLine.TryParse).OfType<LogLine>().ToList();

    public string Output => string.Join('\n', Lines);

    /// <summary>Waits until <paramref name="count"/> lines match; fails the test with the output so far on timeout.</summary>
    public async Task<IReadOnlyList<string>> WaitForLinesAsync(Func<string, bool> match, int count = 1, TimeSpan? timeout = null, string? what = null)
    {
        var deadline = DateTime.UtcNow + (timeout ?? DefaultWait);
        while (true)
        {
            var found = Lines.Where(match).ToList();
            if (found.Count >= count) return found;
            var left = deadline - DateTime.UtcNow;
            if (left <= TimeSpan.Zero || (_process.HasExited && !await _arrived.WaitAsync(200)))
                throw new Xunit.Sdk.XunitException(
                    $"waited for {count} line(s) {what}, found {found.Count}{(_process.HasExited ? " (cron exited)" : "")}\n--- output\n{Output}");
            await _arrived.WaitAsync(left < TimeSpan.FromMilliseconds(500) ? left : TimeSpan.FromMilliseconds(500));
        }
    }

    public Task<IReadOnlyList<string>> WaitForAsync(string contains, int count = 1, TimeSpan? timeout = null) =>
        WaitForLinesAsync(l => l.Contains(contains, StringComparison.Ordinal), count, timeout, $"containing '{contains}'");

    public void Signal(int signal)
    {
        if (kill(_process.Id, signal) != 0) throw new InvalidOperationException($"kill({_process.Id}, {signal}) failed");
    }

    public int SignalUntilExited(int signal, int most) => ProcessRunner.SignalUntilExited(_process, signal, most);

    public async Task<int> WaitForExitAsync(TimeSpan? timeout = null)
    {
        using var cts = new CancellationTokenSource(timeout ?? DefaultWait);
        try
        {
            await _process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            throw new Xunit.Sdk.XunitException($"cron did not exit within {timeout ?? DefaultWait}\n--- output\n{Output}");
        }
        _process.WaitForExit(); // flushes the output readers
        return _process.ExitCode;
    }

    /// <summary>Sends <paramref name="signal"/> and returns the exit code.</summary>
    public async Task<int> StopAsync(int signal = SIGTERM, TimeSpan? timeout = null)
    {
        Signal(signal);
        return await WaitForExitAsync(timeout);
    }

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            try
            {
                Signal(SIGTERM);
                await _process.WaitForExitAsync(new CancellationTokenSource(TimeSpan.FromSeconds(15)).Token);
            }
            catch (Exception)
            {
                if (!_process.HasExited) _process.Kill();
            }
        }
        _process.Dispose();
    }

    [LibraryImport("libc", SetLastError = true)]
    private static partial int kill(int pid, int signal);
}

/// <summary>A logrus text line: time="..." level=info msg=... key=value ...</summary>
public sealed class LogLine
{
    public required IReadOnlyDictionary<string, string> Fields { get; init; }
    public required string Text { get; init; }

    public string Level => Fields["level"];
    public string Message => Fields["msg"];
    public string? this[string key] => Fields.GetValueOrDefault(key);

    public override string ToString() => Text;

    public static LogLine? TryParse(string line)
    {
        var fields = new Dictionary<string, string>(StringComparer.Ordinal);
        var i = 0;
        while (i < line.Length)
        {
            var eq = line.IndexOf('=', i);
            if (eq < 0) return null;
            var key = line[i..eq];
            if (key.Length == 0 || key.Contains(' ')) return null;
            i = eq + 1;
            string value;
            if (i < line.Length && line[i] == '"')
            {
                var sb = new StringBuilder();
                i++;
                while (i < line.Length && line[i] != '"')
                {
                    if (line[i] == '\\' && i + 1 < line.Length)
                    {
                        i++;
                        sb.Append(line[i] switch { 'n' => '\n', 't' => '\t', 'r' => '\r', _ => line[i] });
                    }
                    else sb.Append(line[i]);
                    i++;
                }
                if (i >= line.Length) return null;
                i++;
                value = sb.ToString();
            }
            else
            {
                var end = line.IndexOf(' ', i);
                if (end < 0) end = line.Length;
                value = line[i..end];
                i = end;
            }
            fields[key] = value;
            if (i < line.Length && line[i] == ' ') i++;
        }
        return fields.ContainsKey("level") && fields.ContainsKey("msg") ? new LogLine { Fields = fields, Text = line } : null;
    }
}
