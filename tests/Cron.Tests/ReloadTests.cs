namespace InfraTools.Tests;

/// <summary>Reloading the crontab: SIGUSR2, -inotify (in place, by rename, Kubernetes ConfigMap symlink swap), invalid new crontabs.</summary>
public class ReloadTests
{
    private static readonly Dictionary<string, string?> Utc = new() { ["TZ"] = "UTC" };

    private static bool Said(string line, string word) => line.Contains($"msg={word} channel=stdout", StringComparison.Ordinal);

    [Fact]
    public async Task Sigusr2_reloads_the_crontab()
    {
        using var dir = new TempDir("cron-reload");
        var crontab = dir.Write("crontab", "* * * * * * * echo alpha\n");
        await using var cron = CronRun.Start([crontab], Utc);
        await cron.WaitForLinesAsync(l => Said(l, "alpha"));
        File.WriteAllText(crontab, "* * * * * * * echo beta\n");
        cron.Signal(CronRun.SIGUSR2);
        await cron.WaitForAsync("msg=\"received user defined signal 2, reloading crontab\"");
        await cron.WaitForLinesAsync(l => Said(l, "beta"), count: 2);
        Assert.Equal(0, await cron.StopAsync());
        var lines = cron.Lines.ToList();
        var firstBeta = lines.FindIndex(l => Said(l, "beta"));
        Assert.DoesNotContain(lines.Skip(firstBeta), l => Said(l, "alpha"));
    }

    [Fact]
    public async Task An_invalid_new_crontab_is_reported_and_the_current_one_keeps_running()
    {
        using var dir = new TempDir("cron-reload");
        var crontab = dir.Write("crontab", "* * * * * * * echo alpha\n");
        await using var cron = CronRun.Start([crontab], Utc);
        await cron.WaitForLinesAsync(l => Said(l, "alpha"));
        File.WriteAllText(crontab, "* * * * * * * echo beta\nthis is not a job\n");
        cron.Signal(CronRun.SIGUSR2);
        await cron.WaitForAsync("keeping the current crontab");
        var before = cron.Lines.Count(l => Said(l, "alpha"));
        await cron.WaitForLinesAsync(l => Said(l, "alpha"), count: before + 2);
        Assert.Equal(0, await cron.StopAsync());
        Assert.Contains(cron.Logs, l => l.Level == "error" && l.Message.StartsWith("line 2: bad crontab line 'this is not a job'", StringComparison.Ordinal));
        Assert.DoesNotContain(cron.Lines, l => Said(l, "beta"));
    }

    [Fact]
    public async Task A_running_job_is_not_started_again_by_a_reload_and_keeps_counting_its_iterations()
    {
        using var dir = new TempDir("cron-reload");
        var crontab = dir.Write("crontab", "# cron: name=long\n* * * * * * * sleep 2; echo done\n");
        await using var cron = CronRun.Start([crontab], Utc);
        await cron.WaitForAsync("msg=starting");
        cron.Signal(CronRun.SIGUSR2);
        await cron.WaitForAsync("reloading crontab");
        await cron.WaitForAsync("msg=\"job succeeded\"", count: 2, timeout: TimeSpan.FromSeconds(20));
        Assert.Equal(0, await cron.StopAsync());
        var sequence = cron.Logs.Where(l => l.Message is "starting" or "job succeeded").ToList();
        Assert.NotEmpty(sequence);
        for (var i = 0; i < sequence.Count; i++) Assert.Equal(i % 2 == 0 ? "starting" : "job succeeded", sequence[i].Message);
        Assert.Equal(["0", "1"], sequence.Where(l => l.Message == "starting").Take(2).Select(l => l["iteration"]));
    }

    [Fact]
    public async Task Inotify_reloads_when_the_file_is_rewritten_or_replaced()
    {
        using var dir = new TempDir("cron-reload");
        var crontab = dir.Write("crontab", "* * * * * * * echo alpha\n");
        await using var cron = CronRun.Start(["-inotify", crontab], Utc);
        await cron.WaitForLinesAsync(l => Said(l, "alpha"));

        File.WriteAllText(crontab, "* * * * * * * echo beta\n"); // in place
        await cron.WaitForLinesAsync(l => Said(l, "beta"));

        var replacement = dir.Write(".crontab.new", "* * * * * * * echo gamma\n"); // an editor's atomic rename
        File.Move(replacement, crontab, overwrite: true);
        await cron.WaitForLinesAsync(l => Said(l, "gamma"));
        Assert.Equal(0, await cron.StopAsync());
        Assert.True(cron.Logs.Count(l => l.Message == "crontab file changed, reloading crontab") >= 2, cron.Output);
    }

    [Fact]
    public async Task Inotify_follows_a_Kubernetes_ConfigMap_update()
    {
        // A mounted ConfigMap: crontab -> ..data/crontab, ..data -> ..2026_01_01; an update writes a new
        // timestamped directory and atomically renames a new ..data symlink over the old one.
        using var dir = new TempDir("cron-reload");
        var mount = dir.Combine("config");
        Directory.CreateDirectory(Path.Combine(mount, "..2026_01_01"));
        File.WriteAllText(Path.Combine(mount, "..2026_01_01", "crontab"), "* * * * * * * echo alpha\n");
        File.CreateSymbolicLink(Path.Combine(mount, "..data"), "..2026_01_01");
        File.CreateSymbolicLink(Path.Combine(mount, "crontab"), "..data/crontab");

        await using var cron = CronRun.Start(["-inotify", Path.Combine(mount, "crontab")], Utc);
        await cron.WaitForLinesAsync(l => Said(l, "alpha"));

        Directory.CreateDirectory(Path.Combine(mount, "..2026_02_02"));
        File.WriteAllText(Path.Combine(mount, "..2026_02_02", "crontab"), "* * * * * * * echo beta\n");
        File.CreateSymbolicLink(Path.Combine(mount, "..data_tmp"), "..2026_02_02");
        var swap = await ProcessRunner.RunAsync("mv", ["-T", Path.Combine(mount, "..data_tmp"), Path.Combine(mount, "..data")]);
        Assert.True(swap.ExitCode == 0, swap.ToString());
        Directory.Delete(Path.Combine(mount, "..2026_01_01"), recursive: true);

        await cron.WaitForLinesAsync(l => Said(l, "beta"), count: 2);
        Assert.Equal(0, await cron.StopAsync());
        var lines = cron.Lines.ToList();
        Assert.DoesNotContain(lines.Skip(lines.FindIndex(l => Said(l, "beta"))), l => Said(l, "alpha"));
    }
}
