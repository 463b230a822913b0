using System.Diagnostics;

namespace InfraTools.Tests;

/// <summary>SIGTERM, SIGINT and SIGQUIT: stop scheduling, wait for running jobs for the grace period, then SIGTERM and SIGKILL their process groups.</summary>
public class StopTests
{
    private static readonly Dictionary<string, string?> Utc = new() { ["TZ"] = "UTC" };

    [Theory]
    [InlineData(CronRun.SIGTERM, "terminated")]
    [InlineData(CronRun.SIGINT, "interrupt")]
    [InlineData(CronRun.SIGQUIT, "quit")]
    public async Task A_stop_signal_waits_for_the_running_job_then_exits_0(int signal, string name)
    {
        using var dir = new TempDir("cron-stop");
        var crontab = dir.Write("crontab", "* * * * * * * sleep 1.5; echo finished\n");
        await using var cron = CronRun.Start([crontab], Utc);
        await cron.WaitForAsync("msg=starting");
        Assert.Equal(0, await cron.StopAsync(signal));
        var messages = cron.Logs.Select(l => l.Message).ToList();
        Assert.Equal(1, messages.Count(m => m == "starting"));
        Assert.True(messages.IndexOf("finished") > messages.IndexOf($"received {name}, shutting down"), cron.Output);
        Assert.True(messages.IndexOf("job succeeded") > messages.IndexOf("waiting for jobs to finish"), cron.Output);
        Assert.Equal("exiting", messages[^1]);
    }

    [Fact]
    public async Task After_the_grace_period_the_job_gets_SIGTERM()
    {
        using var dir = new TempDir("cron-stop");
        var crontab = dir.Write("crontab", "* * * * * * * trap 'echo got-term; exit 143' TERM; sleep 30 & wait\n");
        await using var cron = CronRun.Start(["-grace-period", "1s", crontab], Utc);
        await cron.WaitForAsync("msg=starting");
        await Task.Delay(300);
        var clock = Stopwatch.StartNew();
        Assert.Equal(0, await cron.StopAsync());
        var logs = cron.Logs;
        Assert.Contains(logs, l => l.Level == "warning" && l.Message == "grace period of 1s is over: sending SIGTERM to the job's process group");
        Assert.Contains(logs, l => l.Message == "got-term");
        Assert.Contains(logs, l => l.Message == "error running command: exit status 143");
        Assert.DoesNotContain(logs, l => l.Message.Contains("SIGKILL", StringComparison.Ordinal));
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(15), $"took {clock.Elapsed}");
    }

    [Fact]
    public async Task A_job_that_ignores_SIGTERM_is_killed()
    {
        using var dir = new TempDir("cron-stop");
        var crontab = dir.Write("crontab", "* * * * * * * trap '' TERM; sleep 30\n");
        await using var cron = CronRun.Start(["-grace-period", "500ms", crontab], Utc);
        await cron.WaitForAsync("msg=starting");
        await Task.Delay(300);
        Assert.Equal(0, await cron.StopAsync());
        var logs = cron.Logs;
        Assert.Contains(logs, l => l.Message == "job still running 3s after SIGTERM: sending SIGKILL to its process group");
        Assert.Contains(logs, l => l.Message == "error running command: signal: killed" && l["job.exit_code"] == "137");
        Assert.Equal("exiting", logs[^1].Message);
    }

    [Fact]
    public async Task A_second_signal_ends_the_grace_period_at_once()
    {
        using var dir = new TempDir("cron-stop");
        var crontab = dir.Write("crontab", "* * * * * * * sleep 30\n");
        await using var cron = CronRun.Start(["-grace-period", "10m", crontab], Utc);
        await cron.WaitForAsync("msg=starting");
        cron.Signal(CronRun.SIGTERM);
        await cron.WaitForAsync("waiting for jobs to finish");
        Assert.Equal(0, await cron.StopAsync(CronRun.SIGTERM, TimeSpan.FromSeconds(15)));
        Assert.Contains(cron.Logs, l => l.Message == "second stop signal: sending SIGTERM to the job's process group");
        Assert.Contains(cron.Logs, l => l.Message == "error running command: signal: terminated");
    }

    [Fact]
    public async Task Stop_signals_after_the_first_do_not_kill_a_cron_that_is_exiting()
    {
        // timeout(1) signals the child and then its process group: the second SIGTERM can arrive after cron
        // stopped cleanly, when its handlers used to be gone (the default action then ended it with 143).
        using var dir = new TempDir("cron-stop");
        var crontab = dir.Write("crontab", "0 0 1 1 * echo never\n");
        for (var round = 1; round <= 5; round++)
        {
            await using var cron = CronRun.Start(["-debug", crontab], Utc);
            await cron.WaitForAsync("job will run next");
            var sent = cron.SignalUntilExited(CronRun.SIGTERM, 200_000);
            Assert.True(sent >= 1, $"round {round}: no SIGTERM was sent");
            Assert.True(await cron.WaitForExitAsync() == 0, $"round {round} ({sent} SIGTERMs):\n{cron.Output}");
            Assert.Equal("exiting", cron.Logs[^1].Message);
        }
    }
}
