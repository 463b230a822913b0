using InfraTools.Interop;
using System.Globalization;

namespace InfraTools.Tests;

/// <summary>
/// cron as PID 1 of a PID namespace (unshare --fork --pid --mount-proc), as in a container: orphaned
/// grandchildren are reaped, and every job still gets its own exit status (supercronic issues 88 and 171).
/// </summary>
public class ReaperTests
{
    // Every second: jobs that leave orphans behind (which become cron's children and exit later), and jobs
    // with known exit statuses whose reports must never be lost or mixed up.
    private const string Crontab = """
        # cron: name=orphans
        * * * * * * * (sleep 0.3 &) ; (sleep 0.2 & exec true) ; echo made-orphans
        # cron: name=ok
        * * * * * * * true
        # cron: name=three
        * * * * * * * exit 3
        # cron: name=seven
        * * * * * * * sh -c 'exit 7'
        # cron: name=killed
        * * * * * * * kill -KILL $$
        """;

    private static string[] UnshareArgs(params string[] cronArgs) =>
        [.. Environment.UserName == "root" ? Array.Empty<string>() : ["--user", "--map-root-user"], "--fork", "--pid", "--mount-proc", CronRun.Binary, .. cronArgs];

    /// <summary>Host pid of the process whose parent is <paramref name="parent"/> (cron, forked by unshare).</summary>
    private static async Task<int> ChildOfAsync(int parent)
    {
        for (var i = 0; i < 100; i++)
        {
            foreach (var pid in Processes())
                if (ParentAndState(pid) is { Parent: var p } && p == parent) return pid;
            await Task.Delay(50);
        }
        throw new InvalidOperationException($"no child of {parent} found");
    }

    private static IEnumerable<int> Processes() =>
        Directory.EnumerateDirectories("/proc").Select(Path.GetFileName).Where(n => n!.All(char.IsAsciiDigit)).Select(n => int.Parse(n!, CultureInfo.InvariantCulture));

    private static (int Parent, char State)? ParentAndState(int pid)
    {
        try
        {
            var stat = File.ReadAllText($"/proc/{pid}/stat");
            var afterName = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
            return (int.Parse(afterName[1], CultureInfo.InvariantCulture), afterName[0][0]);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or FormatException)
        {
            return null;
        }
    }

    private static int ZombieChildren(int parent) => Processes().Count(pid => ParentAndState(pid) is { } ps && ps.Parent == parent && ps.State == 'Z');

    [Fact]
    public async Task As_pid_1_orphans_are_reaped_and_every_job_status_is_reported_correctly_for_30_seconds()
    {
        using var dir = new TempDir("cron-reaper");
        var crontab = dir.Write("crontab", Crontab + "\n");
        await using var run = CronRun.StartProcess("unshare", UnshareArgs("-debug", crontab), new Dictionary<string, string?> { ["TZ"] = "UTC" });
        var cron = await ChildOfAsync(run.Pid);
        var mostZombies = 0;
        try
        {
            await run.WaitForAsync("reaping dead processes");
            var end = DateTime.UtcNow.AddSeconds(32);
            while (DateTime.UtcNow < end)
            {
                mostZombies = Math.Max(mostZombies, ZombieChildren(cron));
                await Task.Delay(250);
            }
            Assert.Equal(0, Libc.Kill(cron, CronRun.SIGTERM));
            Assert.Equal(0, await run.WaitForExitAsync(TimeSpan.FromSeconds(30)));
        }
        finally
        {
            Libc.Kill(cron, CronRun.SIGKILL); // cron, not unshare, is the one to stop; a no-op once it exited
        }

        var logs = run.Logs;
        int Count(string job, string message) => logs.Count(l => l["job.name"] == job && l.Message == message);
        foreach (var job in new[] { "orphans", "ok", "three", "seven", "killed" })
        {
            var started = Count(job, "starting");
            Assert.True(started >= 28, $"{job} started {started} times\n{run.Output}");
            var expected = job switch
            {
                "three" => "error running command: exit status 3",
                "seven" => "error running command: exit status 7",
                "killed" => "error running command: signal: killed",
                _ => "job succeeded",
            };
            // Every run that started reported exactly its own status (the last may have been cut by the stop).
            Assert.True(Count(job, expected) >= started - 1, $"{job}: {started} started, {Count(job, expected)} '{expected}'\n{run.Output}");
            Assert.Equal(0, logs.Count(l => l["job.name"] == job && l.Level == "error" && l.Message != expected));
        }
        var orphansReaped = logs.Count(l => l.Message.StartsWith("reaped orphaned process ", StringComparison.Ordinal));
        Assert.True(orphansReaped >= 2 * 28, $"{orphansReaped} orphans reaped\n{run.Output}");
        Assert.True(mostZombies <= 4, $"up to {mostZombies} zombies seen at once");
    }

    /// <summary>
    /// A class of its own, so that xunit runs it beside the 30-second run above (tests of one class run one after
    /// the other): that run alone is the length of the whole Cron.Tests project.
    /// </summary>
    public class WithoutReaping
    {
        [Fact]
        public async Task With_no_reap_orphans_stay_zombies_but_jobs_still_get_their_status()
        {
            using var dir = new TempDir("cron-reaper");
            var crontab = dir.Write("crontab", "# cron: name=orphans\n* * * * * * * (sleep 0.1 &) ; exit 5\n");
            await using var run = CronRun.StartProcess("unshare", UnshareArgs("-no-reap", crontab), new Dictionary<string, string?> { ["TZ"] = "UTC" });
            var cron = await ChildOfAsync(run.Pid);
            int zombies;
            try
            {
                await run.WaitForAsync("error running command: exit status 5", count: 5);
                await Task.Delay(500);
                zombies = ZombieChildren(cron);
                Assert.Equal(0, Libc.Kill(cron, CronRun.SIGTERM));
                Assert.Equal(0, await run.WaitForExitAsync(TimeSpan.FromSeconds(30)));
            }
            finally
            {
                Libc.Kill(cron, CronRun.SIGKILL);
            }
            Assert.True(zombies >= 4, $"{zombies} zombies (the orphans are not reaped with -no-reap)");
            Assert.Contains(run.Logs, l => l.Message == "process reaping disabled (-no-reap)");
        }
    }
}
