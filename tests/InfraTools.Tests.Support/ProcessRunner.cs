using System.Diagnostics;
using System.Text;

namespace InfraTools.Tests;

public sealed record ProcessResult(int ExitCode, string Stdout, string Stderr)
{
    public string Output => Stdout + Stderr;

    public override string ToString() => $"exit {ExitCode}\n--- stdout\n{Stdout}\n--- stderr\n{Stderr}";
}

/// <summary>Runs a real process with a controlled environment and collects its output.</summary>
public static class ProcessRunner
{
    /// <summary>Variables removed from the inherited environment so a test sees only the settings it gives.</summary>
    private static readonly string[] ScrubbedPrefixes = ["S3_", "AWS_", "METRICS_FILE"];

    public static ProcessStartInfo StartInfo(string file, IEnumerable<string> args, IReadOnlyDictionary<string, string?>? environment = null,
        string? workingDirectory = null)
    {
        var info = new ProcessStartInfo(file)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
            WorkingDirectory = workingDirectory ?? Path.GetTempPath(),
        };
        foreach (var arg in args) info.ArgumentList.Add(arg);
        foreach (var key in info.Environment.Keys.ToList())
            if (ScrubbedPrefixes.Any(p => key.StartsWith(p, StringComparison.Ordinal))) info.Environment.Remove(key);
        if (environment is not null)
            foreach (var (key, value) in environment)
            {
                if (value is null) info.Environment.Remove(key);
                else info.Environment[key] = value;
            }
        return info;
    }

    /// <summary>
    /// Sends <paramref name="signal"/> over and over (at most <paramref name="most"/> times) until the process
    /// exited; returns how many were sent. Stands for timeout(1), whose second signal (to the process group)
    /// can arrive at any moment of the shutdown.
    /// </summary>
    public static int SignalUntilExited(Process process, int signal, int most)
    {
        var sent = 0;
        while (sent < most && !process.HasExited && InfraTools.Interop.Libc.Kill(process.Id, signal) == 0)
        {
            sent++;
            Thread.SpinWait(100);
        }
        return sent;
    }

    public static async Task<ProcessResult> RunAsync(string file, IEnumerable<string> args, IReadOnlyDictionary<string, string?>? environment = null,
        string? stdin = null, TimeSpan? timeout = null, string? workingDirectory = null)
    {
        using var process = new Process { StartInfo = StartInfo(file, args, environment, workingDirectory) };
        var stdout = new StringBuilder();
        var stderr = new StringBuilder();
        process.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (stdout) stdout.Append(e.Data).Append('\n'); };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (stderr) stderr.Append(e.Data).Append('\n'); };
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        if (stdin is not null) await process.StandardInput.WriteAsync(stdin);
        process.StandardInput.Close();
        using var cts = new CancellationTokenSource(timeout ?? TimeSpan.FromMinutes(3));
        try
        {
            await process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"{file} {string.Join(' ', args)} did not finish within {timeout ?? TimeSpan.FromMinutes(3)}\n{stdout}\n{stderr}");
        }
        process.WaitForExit();
        lock (stdout) lock (stderr) return new ProcessResult(process.ExitCode, stdout.ToString(), stderr.ToString());
    }
}
