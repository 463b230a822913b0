using System.Globalization;

namespace InfraTools.Tests;

/// <summary>Live every-second jobs: no overlap (or -overlapping), and the per-job options timeout, run-at-start and jitter.</summary>
public class OverlapAndOptionsTests
{
    private static readonly Dictionary<string, string?> Utc = new() { ["TZ"] = "UTC" };

    [Fact]
    public async Task A_job_never_overlaps_itself_and_each_skipped_tick_is_logged_and_counted()
    {
        using var dir = new TempDir("cron-overlap");
        var metrics = dir.Combine("cron.prom");
        var crontab = dir.Write("crontab", "# cron: name=slow\n* * * * * * * sleep 2.5\n");
        await using var cron = CronRun.Start(["--metrics-file", metrics, crontab], Utc);
        await cron.WaitForAsync("msg=\"job succeeded\"", count: 2, timeout: TimeSpan.FromSeconds(20));
        Assert.Equal(0, await cron.StopAsync());

        var logs = cron.Logs.Where(l => l["job.name"] == "slow").ToList();
        // Runs strictly alternate: started, succeeded, started, succeeded ...
        var sequence = logs.Where(l => l.Message is "starting" or "job succeeded").Select(l => l.Message).ToList();
        Assert.NotEmpty(sequence);
        for (var i = 0; i < sequence.Count; i++) Assert.Equal(i % 2 == 0 ? "starting" : "job succeeded", sequence[i]);
        var skipped = logs.Where(l => l.Level == "warning" && l.Message.StartsWith("not starting: job is still running since ", StringComparison.Ordinal)).ToList();
        Assert.True(skipped.Count >= 2, cron.Output);
        Assert.Contains(skipped, l => l.Message.EndsWith("(2s elapsed)", StringComparison.Ordinal));
        Assert.Contains(logs, l => l.Level == "warning" && l.Message.StartsWith("job took too long to run: it should have started ", StringComparison.Ordinal));
        var counted = double.Parse(File.ReadAllLines(metrics).Single(l => l.StartsWith("cron_job_skipped_total{job=\"slow\"} ", StringComparison.Ordinal)).Split(' ')[1],
            CultureInfo.InvariantCulture);
        Assert.Equal(skipped.Count, counted);
    }

    [Fact]
    public async Task Overlapping_starts_a_new_run_while_the_previous_one_still_runs()
    {
        using var dir = new TempDir("cron-overlap");
        var crontab = dir.Write("crontab", "* * * * * * * sleep 2.5\n");
        await using var cron = CronRun.Start(["-overlapping", crontab], Utc);
        await cron.WaitForAsync("msg=\"job succeeded\"", timeout: TimeSpan.FromSeconds(20));
        Assert.Equal(0, await cron.StopAsync());
        var messages = cron.Logs.Select(l => l.Message).ToList();
        var firstSuccess = messages.IndexOf("job succeeded");
        Assert.True(messages.Take(firstSuccess).Count(m => m == "starting") >= 2, cron.Output);
        Assert.Contains(messages, m => m.StartsWith("overlapping jobs: job is still running since ", StringComparison.Ordinal));
        Assert.DoesNotContain(messages, m => m.StartsWith("not starting", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_timeout_kills_the_job_s_process_group_and_counts_as_a_failure()
    {
        using var dir = new TempDir("cron-options");
        var metrics = dir.Combine("cron.prom");
        var crontab = dir.Write("crontab", "# cron: name=stuck timeout=1s\n*/5 * * * * * * sleep 30; echo not-reached\n");
        await using var cron = CronRun.Start(["--metrics-file", metrics, crontab], Utc);
        await cron.WaitForAsync("msg=\"error running command: signal: terminated\"", timeout: TimeSpan.FromSeconds(20));
        Assert.Equal(0, await cron.StopAsync());
        var logs = cron.Logs;
        Assert.Contains(logs, l => l.Level == "warning" && l.Message == "job timed out after 1s: sending SIGTERM to its process group");
        Assert.Contains(logs, l => l.Level == "error" && l["job.exit_code"] == "143");
        Assert.DoesNotContain(logs, l => l["channel"] == "stdout");
        var prom = File.ReadAllLines(metrics);
        Assert.Contains("cron_job_failures_total{job=\"stuck\"} 1", prom);
        Assert.Contains("cron_job_last_exit_code{job=\"stuck\"} 143", prom);
    }

    [Fact]
    public async Task Run_at_start_runs_a_job_once_at_start_up_and_then_on_its_schedule()
    {
        using var dir = new TempDir("cron-options");
        var crontab = dir.Write("crontab", "# cron: run-at-start\n@yearly echo at-start\n@yearly echo never-at-start\n");
        await using var cron = CronRun.Start([crontab], Utc);
        await cron.WaitForAsync("msg=at-start channel=stdout");
        await cron.WaitForAsync("msg=\"job succeeded\"");
        await Task.Delay(1500);
        Assert.Equal(0, await cron.StopAsync());
        Assert.Single(cron.Logs, l => l.Message == "starting");
        Assert.DoesNotContain("never-at-start", cron.Output);
    }

    [Fact]
    public async Task Jitter_delays_each_start_by_less_than_the_jitter()
    {
        using var dir = new TempDir("cron-options");
        var crontab = dir.Write("crontab", "# cron: name=spread jitter=1500ms\n*/2 * * * * * * date +%s.%N\n");
        await using var cron = CronRun.Start(["-debug", crontab], Utc);
        await cron.WaitForLinesAsync(l => l.Contains("channel=stdout"), count: 4, timeout: TimeSpan.FromSeconds(20));
        Assert.Equal(0, await cron.StopAsync());
        var delays = cron.Logs.Where(l => l.Message.StartsWith("delaying start by ", StringComparison.Ordinal)).ToList();
        Assert.True(delays.Count >= 4, cron.Output);
        var outputs = cron.Logs.Where(l => l["channel"] == "stdout").ToList();
        Assert.NotEmpty(outputs);
        foreach (var output in outputs)
        {
            // The job prints when it really started; the tick was the even second before it.
            var started = double.Parse(output.Message, CultureInfo.InvariantCulture);
            var tick = Math.Floor(started / 2) * 2;
            Assert.InRange(started - tick, 0, 1.5 + 0.4);
        }
        // Not every start can be on the tick: the delays are random.
        Assert.True(delays.Select(l => l.Message).Distinct().Count() > 1, cron.Output);
    }
}
