using System.Globalization;
using System.Text;
using System.Text.Json;

namespace InfraTools.Tests;

/// <summary>
/// Issue 18 and issue 12 finding 12 through the AOT binary, with real processes and signals: signals inherited as
/// ignored, reloads that only move a running job, crontab bytes that are not UTF-8, the open-file limit, secrets
/// set in the crontab, and supercronic's start-up line when not PID 1.
/// </summary>
public class SupercronicParityTests
{
    private static readonly Dictionary<string, string?> Utc = new() { ["TZ"] = "UTC" };

    private static string Quote(string path) => "'" + path.Replace("'", "'\\''", StringComparison.Ordinal) + "'";

    [Theory]
    // Defect 5: `cron crontab &` in a non-interactive sh starts cron with SIGINT and SIGQUIT ignored.
    [InlineData(CronRun.SIGINT, "interrupt")]
    [InlineData(CronRun.SIGQUIT, "quit")]
    [InlineData(CronRun.SIGTERM, "terminated")]
    public async Task A_stop_signal_works_even_when_cron_was_started_with_it_ignored(int signal, string name)
    {
        using var dir = new TempDir("cron-parity");
        var crontab = dir.Write("crontab", "@yearly true\n");
        await using var cron = CronRun.StartProcess("sh", ["-c", $"trap '' INT QUIT TERM; exec {Quote(CronRun.Binary)} {Quote(crontab)}"], Utc);
        await cron.WaitForAsync("read crontab");
        var ignored = File.ReadAllLines($"/proc/{cron.Pid}/status").Single(l => l.StartsWith("SigIgn:", StringComparison.Ordinal));
        Assert.Equal(0, await cron.StopAsync(signal));
        Assert.Contains(cron.Logs, l => l.Message == $"received {name}, shutting down");
        Assert.True(ulong.Parse(ignored.Split('\t')[1], NumberStyles.HexNumber, CultureInfo.InvariantCulture) is var mask &&
                    (mask & (1UL << (signal - 1))) == 0, $"signal {signal} still ignored: {ignored}");
    }

    [Fact]
    public async Task A_reload_that_only_moves_a_running_job_does_not_start_it_again()
    {
        // Defect 4: a job without a name was known by its line, so a comment added above it made it a new job.
        using var dir = new TempDir("cron-parity");
        var crontab = dir.Write("crontab", "* * * * * * * sleep 3; echo done\n");
        await using var cron = CronRun.Start([crontab], Utc);
        await cron.WaitForAsync("msg=starting");
        File.WriteAllText(crontab, "# the job, now on line 3\n\n* * * * * * * sleep 3; echo done\n");
        cron.Signal(CronRun.SIGUSR2);
        await cron.WaitForAsync("msg=\"received user defined signal 2, reloading crontab\"");
        await cron.WaitForAsync("msg=\"job succeeded\"", count: 1, timeout: TimeSpan.FromSeconds(20));
        await cron.WaitForAsync("msg=starting", count: 2, timeout: TimeSpan.FromSeconds(20));
        Assert.Equal(0, await cron.StopAsync());
        var sequence = cron.Logs.Where(l => l.Message is "starting" or "job succeeded").ToList();
        Assert.NotEmpty(sequence);
        for (var i = 0; i < sequence.Count; i++) Assert.Equal(i % 2 == 0 ? "starting" : "job succeeded", sequence[i].Message);
        Assert.Equal(["0", "1"], sequence.Where(l => l.Message == "starting").Take(2).Select(l => l["iteration"]));
        Assert.Contains(cron.Logs, l => l.Message.StartsWith("not starting: job is still running since ", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_crontab_that_is_not_UTF8_reaches_the_job_byte_for_byte()
    {
        // Defect 6: a Latin-1 é (0xE9) in a command or a variable reached the job as U+FFFD (EF BF BD).
        using var dir = new TempDir("cron-parity");
        var made = await ProcessRunner.RunAsync("sh", ["-c", "mkdir \"$(printf 'dir-caf\\351')\""], workingDirectory: dir.Path);
        Assert.True(made.ExitCode == 0, made.ToString());
        var latin1 = Encoding.Latin1;
        var crontab = dir.Combine("crontab");
        File.WriteAllBytes(crontab, latin1.GetBytes(
            "NAME=caf\u00e9\n" +
            $"*/2 * * * * * * cd {Quote(dir.Path)} && ls -d dir-caf\u00e9 && printf %s \"$NAME\" | od -An -tx1\n"));
        await using var cron = CronRun.Start([crontab], Utc);
        await cron.WaitForAsync("msg=\"job succeeded\"", timeout: TimeSpan.FromSeconds(20));
        Assert.Equal(0, await cron.StopAsync());
        var logs = cron.Logs;
        Assert.DoesNotContain(logs, l => l.Level == "error");
        Assert.Contains(logs, l => l["channel"] == "stdout" && l.Message.Trim() == "63 61 66 e9");
        // The log shows the byte as supercronic's logrus does (strconv.Quote): \xe9.
        Assert.Contains(cron.Lines, l => l.Contains("ls -d dir-caf\\xe9", StringComparison.Ordinal) && l.Contains("channel=stdout", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Jobs_get_the_open_file_limit_cron_inherited_while_cron_raises_its_own()
    {
        // Defect 7: with a soft limit of 64, about 25 simultaneous jobs used up cron's descriptors (two pipes each)
        // and the others failed "Too many open files"; jobs must still see the limit cron was given.
        const int jobs = 40;
        using var dir = new TempDir("cron-parity");
        var crontab = dir.Write("crontab", string.Concat(Enumerable.Repeat("*/3 * * * * * * sleep 1; ulimit -Sn\n", jobs)));
        await using var cron = CronRun.StartProcess("sh", ["-c", $"ulimit -Sn 64 && exec {Quote(CronRun.Binary)} {Quote(crontab)}"], Utc);
        await cron.WaitForAsync("msg=\"job succeeded\"", count: jobs, timeout: TimeSpan.FromSeconds(30));
        var limits = File.ReadAllLines($"/proc/{cron.Pid}/limits").Single(l => l.StartsWith("Max open files", StringComparison.Ordinal));
        Assert.Equal(0, await cron.StopAsync());
        var logs = cron.Logs;
        Assert.DoesNotContain(logs, l => l.Level == "error");
        Assert.True(logs.Count(l => l["channel"] == "stdout" && l.Message == "64") >= jobs, cron.Output);
        var numbers = limits.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(numbers[3], numbers[4]); // soft == hard
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Secrets_set_in_the_crontab_are_redacted_even_with_quotes_and_backslashes(bool json)
    {
        // Issue 12, finding 12: the content of a *_FILE secret set in the crontab reached the logs, and so did a
        // secret with " or \ in it (redaction ran on the escaped line).
        using var dir = new TempDir("cron-parity");
        var secretFile = dir.Write("secret", "crontab-file-secret-4711\n");
        const string quoted = "ab\"cd\\ef-secret-0815";
        var crontab = dir.Write("crontab", $"""
            S3_SECRET_KEY_FILE={secretFile}
            S3_ACCESS_KEY={quoted}
            * * * * * * * cat {Quote(secretFile)}; printf '%s\n' "$S3_ACCESS_KEY"
            """ + "\n");
        await using var cron = CronRun.Start(json ? ["-json", crontab] : [crontab], Utc);
        await cron.WaitForAsync(json ? "\"msg\":\"job succeeded\"" : "msg=\"job succeeded\"");
        Assert.Equal(0, await cron.StopAsync());
        var output = cron.Output;
        Assert.DoesNotContain("crontab-file-secret-4711", output);
        Assert.DoesNotContain("ef-secret-0815", output);
        var messages = json
            ? cron.StderrLines.Select(l => JsonDocument.Parse(l).RootElement).Where(e => e.TryGetProperty("channel", out _)).Select(e => e.GetProperty("msg").GetString()).ToList()
            : cron.Logs.Where(l => l["channel"] == "stdout").Select(l => (string?)l.Message).ToList();
        Assert.Equal(2, messages.Count(m => m == "[REDACTED]"));
    }

    [Fact]
    public async Task A_run_ends_when_its_shell_exits_although_a_background_process_holds_its_output()
    {
        // Issue 18: cron waited a second for the output pipes of a job that left a process behind, so an
        // every-second job skipped every other tick.
        using var dir = new TempDir("cron-parity");
        var crontab = dir.Write("crontab", "* * * * * * * sleep 4 & echo left-one-behind\n");
        await using var cron = CronRun.Start([crontab], Utc);
        // Before, iteration 7 came after 7 skipped ticks; now a skip needs a run that took a second to be reaped.
        await cron.WaitForLinesAsync(l => l.Contains("msg=starting iteration=7", StringComparison.Ordinal), timeout: TimeSpan.FromSeconds(40));
        Assert.Equal(0, await cron.StopAsync());
        var skipped = cron.Logs.Count(l => l.Message.StartsWith("not starting: job is still running", StringComparison.Ordinal));
        Assert.True(skipped <= 2, $"{skipped} ticks skipped\n{cron.Output}");
        Assert.True(cron.Logs.Count(l => l.Message == "left-one-behind") >= 7, cron.Output);
    }

    [Fact]
    public async Task Not_as_pid_1_cron_says_that_it_reaps_nothing_at_debug_level()
    {
        // supercronic warns at every start; cron says it under -debug only (docs/cron.md: nothing is wrong).
        using var dir = new TempDir("cron-parity");
        var crontab = dir.Write("crontab", "@yearly true\n");
        await using var quiet = CronRun.Start([crontab], Utc);
        await quiet.WaitForAsync("read crontab");
        Assert.Equal(0, await quiet.StopAsync());
        Assert.DoesNotContain(quiet.Logs, l => l.Level == "warning");
        await using var cron = CronRun.Start(["-debug", crontab], Utc);
        await cron.WaitForAsync("read crontab");
        Assert.Equal(0, await cron.StopAsync());
        Assert.Contains(cron.Logs, l => l.Level == "debug" && l.Message == "process reaping disabled, not pid 1");
        await using var noReap = CronRun.Start(["-no-reap", crontab], Utc);
        await noReap.WaitForAsync("read crontab");
        Assert.Equal(0, await noReap.StopAsync());
        Assert.DoesNotContain(noReap.Logs, l => l.Message.StartsWith("process reaping disabled", StringComparison.Ordinal));
    }
}
