using InfraTools.Interop;
using InfraTools.Cron.Processes;

namespace InfraTools.Tests.InProcess;

/// <summary>
/// The scheduler on fake time (FakeTimeProvider) with fake processes: next runs, overlap and skips, -overlapping,
/// daylight-saving days, jitter, timeouts, reloads and stopping, without sleeping and without starting a process.
/// </summary>
public class SchedulerTests
{
    private static readonly TimeSpan Second = TimeSpan.FromSeconds(1);

    [Fact]
    public void A_due_job_is_started_with_its_shell_command_and_environment()
    {
        using var cron = new Scheduler("FOO=from-crontab\nSHELL=/bin/bash\n* * * * * * * echo \"$FOO\"\n");
        Assert.Empty(cron.Processes.Spawned);
        cron.Advance(Second);
        var process = Assert.Single(cron.Processes.Spawned);
        Assert.Equal(["/bin/bash", "-c", "echo \"$FOO\""], process.Argv);
        Assert.Contains("FOO=from-crontab", process.Environment);
        Assert.Contains("INHERITED=yes", process.Environment);
        Assert.Equal(Scheduler.NewYear2026.UtcDateTime + Second, process.StartedAt);
        Assert.Contains(cron.Log.Logs, l => l.Message == "starting" && l["iteration"] == "0" && l["job.position"] == "0");
    }

    [Fact]
    public async Task A_tick_that_finds_the_job_still_running_is_skipped_logged_and_counted()
    {
        using var cron = new Scheduler("# cron: name=slow\n* * * * * * * sleep 2.5\n");
        cron.Advance(Second);
        cron.Advance(Second);
        cron.Advance(Second);
        var first = Assert.Single(cron.Processes.Spawned);
        var skipped = cron.Log.Logs.Where(l => l.Message.StartsWith("not starting: job is still running since ", StringComparison.Ordinal)).ToList();
        Assert.Equal(2, skipped.Count);
        Assert.EndsWith("(1s elapsed)", skipped[0].Message, StringComparison.Ordinal);
        Assert.EndsWith("(2s elapsed)", skipped[1].Message, StringComparison.Ordinal);
        Assert.Contains("cron_job_skipped_total{job=\"slow\"} 2", await cron.MetricsAsync());

        first.Exit();
        await cron.LoggedAsync("job succeeded");
        await Scheduler.EventuallyAsync(() => cron.Job("slow").Running == 0, "the run did not end");
        Assert.Contains(cron.Log.Logs, l => l.Message.StartsWith("job took too long to run: it should have started 1s ago", StringComparison.Ordinal));
        cron.Advance(Second);
        Assert.Equal(2, cron.Processes.Spawned.Count);
        Assert.Equal(["0", "1"], cron.Log.Logs.Where(l => l.Message == "starting").Select(l => l["iteration"]));
    }

    [Fact]
    public void Overlapping_starts_a_new_run_while_the_previous_one_still_runs()
    {
        using var cron = new Scheduler("* * * * * * * sleep 2.5\n", overlapping: true);
        cron.Advance(3 * Second);
        Assert.Equal(3, cron.Processes.Running.Count);
        Assert.Equal(2, cron.Log.Logs.Count(l => l.Message.StartsWith("overlapping jobs: job is still running since ", StringComparison.Ordinal)));
        Assert.DoesNotContain(cron.Log.Logs, l => l.Message.StartsWith("not starting", StringComparison.Ordinal));
    }

    [Theory]
    // Spring forward in Zurich (29 March 2026, 02:00 CET -> 03:00 CEST = 01:00 UTC): 02:30 does not exist, the job runs once, at 03:00.
    [InlineData("30 2 * * * true", "2026-03-28T23:00:00Z", "2026-03-29T01:00:00Z")]
    [InlineData("0 2 * * * true", "2026-03-28T23:00:00Z", "2026-03-29T01:00:00Z")]
    // Fall back (25 October 2026, 03:00 CEST -> 02:00 CET = 01:00 UTC): 02:30 happens twice, a fixed time runs once ...
    [InlineData("30 2 * * * true", "2026-10-24T22:00:00Z", "2026-10-25T00:30:00Z")]
    // ... and an hourly job runs in both 02:00 hours.
    [InlineData("0 * * * * true", "2026-10-24T23:30:00Z", "2026-10-25T00:00:00Z 2026-10-25T01:00:00Z 2026-10-25T02:00:00Z 2026-10-25T03:00:00Z")]
    [InlineData("*/30 2 * * * true", "2026-10-24T23:30:00Z", "2026-10-25T00:00:00Z 2026-10-25T00:30:00Z 2026-10-25T01:00:00Z 2026-10-25T01:30:00Z")]
    public async Task Daylight_saving_days_run_each_job_as_Vixie_cron_does(string line, string start, string expected)
    {
        using var cron = new Scheduler("CRON_TZ=Europe/Zurich\n" + line + "\n", DateTimeOffset.Parse(start, System.Globalization.CultureInfo.InvariantCulture));
        var wanted = expected.Split(' ').Select(t => DateTimeOffset.Parse(t, System.Globalization.CultureInfo.InvariantCulture).UtcDateTime).ToList();
        Assert.NotEmpty(wanted);
        // Four hours in one-minute steps; each run ends at once, so none is skipped.
        for (var i = 0; i < 4 * 60; i++)
        {
            cron.Advance(TimeSpan.FromMinutes(1), TimeSpan.FromMinutes(1));
            foreach (var process in cron.Processes.Running) process.Exit();
            await cron.Service.RunsFinished().WaitAsync(TimeSpan.FromSeconds(10));
        }
        Assert.Equal(wanted, cron.Processes.Spawned.Select(p => p.StartedAt));
        Assert.DoesNotContain(cron.Log.Logs, l => l.Level is "warning" or "error");
    }

    [Fact]
    public async Task Jitter_delays_each_start_by_less_than_the_jitter()
    {
        using var cron = new Scheduler("# cron: name=spread jitter=10s\n* * * * * true\n");
        // From 00:00:10, a minute at a time in 100 ms steps: each minute's tick and its delay (at most 10 s) pass.
        cron.Advance(TimeSpan.FromSeconds(10), TimeSpan.FromMilliseconds(100));
        for (var minute = 1; minute <= 5; minute++)
        {
            cron.Advance(TimeSpan.FromMinutes(1), TimeSpan.FromMilliseconds(100));
            await Scheduler.EventuallyAsync(() => cron.Processes.Spawned.Count == minute, $"run {minute} did not start\n{cron.Log.Text}");
            cron.Processes.Spawned[^1].Exit();
            await cron.Service.RunsFinished().WaitAsync(TimeSpan.FromSeconds(10));
        }
        var delays = cron.Log.Logs.Where(l => l.Message.StartsWith("delaying start by ", StringComparison.Ordinal))
            .Select(l => (Iteration: int.Parse(l["iteration"]!, System.Globalization.CultureInfo.InvariantCulture),
                Delay: InfraTools.Time.GoDuration.TryParse(l.Message["delaying start by ".Length..].Split(' ')[0], out var d) ? d : TimeSpan.MinValue))
            .ToList();
        Assert.Equal([0, 1, 2, 3, 4], delays.Select(d => d.Iteration));
        var spawned = cron.Processes.Spawned;
        Assert.Equal(5, spawned.Count);
        foreach (var (iteration, delay) in delays)
        {
            Assert.InRange(delay, TimeSpan.Zero, TimeSpan.FromSeconds(10));
            // Not before its tick plus its delay (the start itself may come a step later: the delay ends on the thread pool).
            var tick = Scheduler.NewYear2026.UtcDateTime + TimeSpan.FromMinutes(iteration + 1);
            Assert.True(spawned[iteration].StartedAt >= tick + delay, $"run {iteration} started at {spawned[iteration].StartedAt:O}, tick {tick:O} + {delay}");
        }
        Assert.True(delays.Select(d => d.Delay).Distinct().Count() > 1, "the delays are random");
    }

    [Theory]
    [InlineData(false, "signal: terminated", 143)]
    [InlineData(true, "signal: killed", 137)]
    public async Task A_timeout_sends_SIGTERM_then_SIGKILL_to_the_process_group(bool ignoresSigterm, string status, int exitCode)
    {
        using var cron = new Scheduler("# cron: name=stuck timeout=5s\n*/30 * * * * * * sleep 60\n");
        cron.Processes.IgnoreSigterm = ignoresSigterm;
        cron.Advance(30 * Second);
        var process = Assert.Single(cron.Processes.Spawned);
        cron.Advance(4 * Second, TimeSpan.FromMilliseconds(100));
        Assert.Empty(cron.Processes.Signals);
        cron.Advance(Second, TimeSpan.FromMilliseconds(100));
        await Scheduler.EventuallyAsync(() => cron.Processes.Signals.Count > 0, "no signal after the timeout");
        Assert.Equal((process.Pid, Libc.SIGTERM), cron.Processes.Signals[0]);
        if (ignoresSigterm)
        {
            cron.Advance(3 * Second, TimeSpan.FromMilliseconds(100));
            await Scheduler.EventuallyAsync(() => cron.Processes.Signals.Count > 1, "no SIGKILL 3s after SIGTERM");
            Assert.Equal((process.Pid, Libc.SIGKILL), cron.Processes.Signals[1]);
        }
        await cron.LoggedAsync($"error running command: {status}");
        Assert.Contains(cron.Log.Logs, l => l.Message == "job timed out after 5s: sending SIGTERM to its process group");
        Assert.Contains(cron.Log.Logs, l => l.Message == $"error running command: {status}" && l["job.exit_code"] == exitCode.ToString(System.Globalization.CultureInfo.InvariantCulture));
        var metrics = await cron.MetricsAsync();
        Assert.Contains("cron_job_failures_total{job=\"stuck\"} 1", metrics);
        Assert.Contains($"cron_job_last_exit_code{{job=\"stuck\"}} {exitCode}", metrics);
    }

    [Fact]
    public void Run_at_start_runs_once_at_load_and_then_on_schedule()
    {
        using var cron = new Scheduler("# cron: run-at-start\n@yearly echo at-start\n@yearly echo not-at-start\n");
        var process = Assert.Single(cron.Processes.Spawned);
        Assert.Equal("echo at-start", process.Command);
        Assert.Equal(Scheduler.NewYear2026.UtcDateTime, process.StartedAt);
    }

    [Theory]
    // Issue 18, defect 4: a reload that only moves the job (a comment above it, a blank line, a new job before
    // it) must not start it a second time; its label, iteration counter and metrics continue.
    [InlineData("# a comment added at the top\n* * * * * * * sleep 5\n")]
    [InlineData("\n\n* * * * * * * sleep 5\n")]
    [InlineData("@yearly echo new job first\n* * * * * * * sleep 5\n")]
    // ... nor one that edits its schedule (same command), nor one that gives it a name.
    [InlineData("*/2 * * * * * * sleep 5\n")]
    [InlineData("# cron: name=sleeper\n* * * * * * * sleep 5\n")]
    public async Task A_reload_never_starts_a_running_job_again(string reloaded)
    {
        using var cron = new Scheduler("* * * * * * * sleep 5\n");
        cron.Advance(Second);
        var first = Assert.Single(cron.Processes.Spawned);
        cron.Rewrite(reloaded);
        cron.Service.RequestReload("received user defined signal 2");
        cron.Step();
        Assert.Contains(cron.Log.Logs, l => l.Message == "received user defined signal 2, reloading crontab");
        cron.Advance(2 * Second);
        Assert.Single(cron.Processes.Spawned);
        Assert.Contains(cron.Log.Logs, l => l.Message.StartsWith("not starting: job is still running since ", StringComparison.Ordinal));

        var label = reloaded.Contains("name=sleeper", StringComparison.Ordinal) ? "sleeper" : "sleep:1";
        Assert.Equal(1, cron.Job(label).Running);
        first.Exit();
        await Scheduler.EventuallyAsync(() => cron.Job(label).Running == 0, "the run did not end");
        cron.Advance(2 * Second);
        Assert.Equal(2, cron.Processes.Spawned.Count);
        Assert.Equal(["0", "1"], cron.Log.Logs.Where(l => l.Message == "starting").Select(l => l["iteration"]));
        if (label == "sleep:1")
            Assert.Contains("cron_job_executions_total{job=\"sleep:1\"} 1", await cron.MetricsAsync());
    }

    [Fact]
    public async Task A_removed_job_s_running_run_finishes_and_the_job_is_then_forgotten()
    {
        using var cron = new Scheduler("# cron: name=old\n* * * * * * * sleep 5\n");
        cron.Advance(Second);
        var run = Assert.Single(cron.Processes.Spawned);
        cron.Rewrite("# cron: name=new\n@yearly true\n");
        cron.Service.RequestReload("received user defined signal 2");
        cron.Step();
        Assert.Contains(cron.Log.Logs, l => l.Message == "job removed from the crontab: no new runs, the running one finishes");
        cron.Advance(2 * Second);
        Assert.Single(cron.Processes.Spawned);
        Assert.True(cron.Job("old").Removed);
        run.Exit();
        await Scheduler.EventuallyAsync(() => cron.Service.Jobs().All(j => j.Name != "old"), "the removed job was not forgotten");
        Assert.DoesNotContain(await cron.MetricsAsync(), l => l.Contains("job=\"old\"", StringComparison.Ordinal));
    }

    [Fact]
    public void An_invalid_new_crontab_keeps_the_current_one()
    {
        using var cron = new Scheduler("* * * * * * * echo alpha\n");
        cron.Rewrite("* * * * * * * echo beta\nthis is not a job\n");
        cron.Service.RequestReload("received user defined signal 2");
        cron.Step();
        Assert.Contains(cron.Log.Logs, l => l.Level == "error" && l.Message.StartsWith("line 2: bad crontab line 'this is not a job'", StringComparison.Ordinal));
        cron.Advance(Second);
        Assert.Equal("echo alpha", Assert.Single(cron.Processes.Spawned).Command);
    }

    [Fact]
    public async Task Stopping_waits_the_grace_period_then_sends_SIGTERM()
    {
        using var cron = new Scheduler("* * * * * * * sleep 60\n", grace: TimeSpan.FromSeconds(30));
        cron.Advance(Second);
        var process = Assert.Single(cron.Processes.Spawned);
        var crontab = InfraTools.Cron.Crontab.CrontabParser.Parse(File.ReadAllText(cron.Path), cron.Path, TimeZoneInfo.Utc).Crontab!;
        cron.Service.RequestStop("terminated");
        var running = cron.Service.RunAsync(crontab);
        await cron.LoggedAsync("waiting for jobs to finish");
        cron.Time.Advance(TimeSpan.FromSeconds(29));
        Assert.Empty(cron.Processes.Signals);
        cron.Time.Advance(Second);
        await Scheduler.EventuallyAsync(() => cron.Processes.Signals.Count > 0, "no SIGTERM after the grace period");
        Assert.Equal((process.Pid, Libc.SIGTERM), cron.Processes.Signals[0]);
        Assert.Equal(0, await running.WaitAsync(TimeSpan.FromSeconds(10)));
        Assert.Contains(cron.Log.Logs, l => l.Message == "grace period of 30s is over: sending SIGTERM to the job's process group");
        Assert.Equal("exiting", cron.Log.Logs[^1].Message);
    }
}
