namespace InfraTools.Tests;

/// <summary>-test, start-up errors and the command line, through the AOT binary.</summary>
public class CrontabCheckTests
{
    private static Task<ProcessResult> Cron(params string[] args) =>
        ProcessRunner.RunAsync(CronRun.Binary, args, new Dictionary<string, string?> { ["TZ"] = "UTC" }, timeout: TimeSpan.FromSeconds(30));

    [Fact]
    public async Task Test_accepts_a_valid_crontab_with_every_kind_of_line_and_CRLF_endings()
    {
        using var dir = new TempDir("cron-check");
        var crontab = dir.Write("crontab", string.Join("\r\n",
            "# a comment",
            "   # an indented comment",
            "",
            "FOO=\"quoted value\"",
            "BAR = 'single quoted'",
            "SHELL=/bin/sh",
            "CRON_TZ=Europe/Zurich",
            "# cron: name=pull timeout=5m jitter=10s run-at-start",
            "*/5 * * * * content-pull s3://bucket/site /srv/www",
            "\t0 3 * * * backup push",
            "*/10 * * * * * * echo every ten seconds",
            "0 0 1 1 * 2030 echo new year 2030",
            "@daily echo daily",
            ""));
        var result = await Cron("-test", crontab);
        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Contains("msg=\"crontab is valid\"", result.Stderr);
        Assert.Contains("processes will be spawned using TZ: Europe/Zurich", result.Stderr);
        Assert.DoesNotContain("level=error", result.Stderr);
    }

    [Fact]
    public async Task Test_prints_every_bad_line_with_its_number_and_exits_1()
    {
        using var dir = new TempDir("cron-check");
        var crontab = dir.Write("crontab", string.Join("\n",
            "* * * * * * * echo fine",                // 1
            "* * * * echo too few fields",            // 2
            "# fine comment",                         // 3
            "61 * * * * echo minute out of range",    // 4
            "@fortnightly echo no such macro",        // 5
            "# cron: name=x colour=red",              // 6
            "* * * * * echo x",                       // 7
            "# cron: timeout=soon",                   // 8
            "* * * * * echo y",                       // 9
            "# cron: name=lonely",                    // 10
            "",                                       // 11
            "# cron: name=twice",                     // 12
            "* * * * * echo first",                   // 13
            "# cron: name=twice",                     // 14
            "* * * * * echo second",                  // 15
            "CRON_TZ=Mars/Olympus_Mons",              // 16
            "0 0 0 1 1 * 1900 echo bad year and day", // 17
            "justaword",                              // 18
            ""));
        var result = await Cron("-test", crontab);
        Assert.Equal(1, result.ExitCode);
        var errors = result.Stderr.Split('\n').Where(l => l.Contains("level=error")).ToList();
        foreach (var line in new[] { 2, 4, 5, 6, 8, 10, 15, 16, 17, 18 })
            Assert.Contains(errors, e => e.Contains($"msg=\"line {line}: ", StringComparison.Ordinal));
        foreach (var line in new[] { 1, 3, 7, 9, 11, 12, 13, 14 })
            Assert.DoesNotContain(errors, e => e.Contains($"msg=\"line {line}: ", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.Contains("unknown option 'colour=red'"));
        Assert.Contains(errors, e => e.Contains("timeout 'soon' is not a positive duration"));
        Assert.Contains(errors, e => e.Contains("job name 'twice' is already used by the job on line 13"));
        Assert.Contains(errors, e => e.Contains("unknown schedule '@fortnightly'"));
        Assert.Contains(errors, e => e.Contains("Mars/Olympus_Mons: unknown time zone"));
        Assert.Contains(errors, e => e.Contains("directly above the job"));
        Assert.Contains("crontab is not valid: 10 bad lines", result.Stderr);
        Assert.DoesNotContain("crontab is valid", result.Stderr);
    }

    [Fact]
    public async Task Next_runs_use_the_crontab_time_zone_rather_than_cron_s_own()
    {
        using var dir = new TempDir("cron-check");
        async Task<string> NextRun(string crontab)
        {
            var result = await ProcessRunner.RunAsync(CronRun.Binary, ["-test", "--next-runs", "1", "--from", "2026-01-01T00:00:00Z", dir.Write("crontab", crontab)],
                new Dictionary<string, string?> { ["TZ"] = "America/New_York" });
            Assert.True(result.ExitCode == 0, result.ToString());
            return result.Stdout.Trim();
        }
        Assert.Equal("true:2\t2026-01-01T12:00:00+01:00", await NextRun("CRON_TZ=Europe/Zurich\n0 12 * * * true\n"));
        Assert.Equal("true:1\t2026-01-01T12:00:00-05:00", await NextRun("0 12 * * * true\n"));
    }

    [Fact]
    public async Task Cron_tz_Local_is_the_zone_cron_runs_in()
    {
        // Issue 18, defect 8: supercronic accepts CRON_TZ=Local (Go's time.LoadLocation); cron exited 3.
        using var dir = new TempDir("cron-check");
        var crontab = dir.Write("crontab", "CRON_TZ=Local\n0 12 * * * true\n");
        var result = await ProcessRunner.RunAsync(CronRun.Binary, ["-test", "--next-runs", "1", "--from", "2026-01-01T00:00:00Z", crontab],
            new Dictionary<string, string?> { ["TZ"] = "America/New_York" });
        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Equal("true:2\t2026-01-01T12:00:00-05:00", result.Stdout.Trim());
        Assert.Contains("processes will be spawned using TZ: Local", result.Stderr);
    }

    [Fact]
    public async Task Test_strict_reports_what_supercronic_would_reject_and_passes_what_it_takes()
    {
        using var dir = new TempDir("cron-check");
        // Issue 18, defects 1-3: lines supercronic takes that cron exited 3 on.
        var theirs = dir.Write("theirs", string.Join("\n",
            "# cron: nightly backup",
            "0 3 * * Monday-Friday backup push",
            "0 0 * * sunday echo sunday",
            "0 0 1 january,December * echo months",
            "0 0 * * FRIDAY#3 echo third friday",
            "0 0 1,15,L * * echo pay day",
            "0 0 L,1 * * echo turn of the month",
            "0 0 1,15W * * echo weekday",
            "0 0 LW,L * * echo month end",
            "0 0 * * 1,5L echo mondays and the last friday",
            "0 0 * * MON#1,FRI#3 echo two of them",
            ""));
        var ours = dir.Write("ours", "0 3 * * 1-7 backup push\n@midnight echo hi\n0 0 L-3 * * echo soon\n");
        var good = await Cron("-test", "--strict", theirs);
        Assert.True(good.ExitCode == 0, good.ToString());
        Assert.Contains("crontab is valid (also for supercronic)", good.Stderr);
        var plain = await Cron("-test", ours);
        Assert.True(plain.ExitCode == 0, plain.ToString());
        var strict = await Cron("-test", "--strict", ours);
        Assert.Equal(1, strict.ExitCode);
        var errors = strict.Stderr.Split('\n').Where(l => l.Contains("level=error")).ToList();
        Assert.Contains(errors, e => e.Contains("msg=\"line 1: supercronic rejects this line: invalid interval 1-7 (normalized to 1-0)"));
        Assert.Contains(errors, e => e.Contains("msg=\"line 2: supercronic rejects this line: '@midnight' is not one of its macros"));
        Assert.Contains(errors, e => e.Contains("msg=\"line 3: supercronic rejects this line: syntax error in day-of-month field: 'L-3'"));
        Assert.Contains("crontab is valid for cron, but not for supercronic: 3 lines (--strict)", strict.Stderr);
    }

    [Fact]
    public async Task Test_of_a_missing_file_exits_1_with_one_clear_line()
    {
        var result = await Cron("-test", "/nonexistent/crontab");
        Assert.Equal(1, result.ExitCode);
        Assert.Contains("cannot read crontab /nonexistent/crontab", result.Stderr);
        Assert.DoesNotContain("   at ", result.Output);
    }

    [Fact]
    public async Task Starting_with_an_invalid_crontab_lists_the_bad_lines_and_exits_3_without_running_anything()
    {
        using var dir = new TempDir("cron-check");
        var marker = dir.Combine("ran");
        var crontab = dir.Write("crontab", $"* * * * * * * touch {marker}\n99 * * * * * * touch {marker}\nnot a job\n");
        var result = await Cron(crontab);
        Assert.Equal(3, result.ExitCode);
        Assert.Contains("msg=\"line 3: bad crontab line 'not a job'", result.Stderr);
        Assert.Contains("has 2 bad lines", result.Stderr);
        Assert.False(File.Exists(marker));
    }

    [Fact]
    public async Task Starting_with_a_missing_crontab_exits_12()
    {
        var result = await Cron("/nonexistent/crontab");
        Assert.Equal(12, result.ExitCode);
        Assert.Single(result.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries), l => l.Contains("cannot read crontab"));
    }

    [Fact]
    public async Task An_unknown_flag_is_one_line_and_exit_code_2()
    {
        var result = await Cron("-sentry-dsn", "https://x@sentry.example/1", "/etc/crontab");
        Assert.Equal(2, result.ExitCode);
        var line = Assert.Single(result.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.Contains("-sentry-dsn", line);
        Assert.Contains("--help", line);
    }

    [Fact]
    public async Task A_missing_crontab_argument_is_exit_code_2()
    {
        var result = await Cron("-json");
        Assert.Equal(2, result.ExitCode);
        Assert.Contains("CRONTAB", result.Stderr);
    }

    [Fact]
    public async Task A_bad_grace_period_is_exit_code_2()
    {
        using var dir = new TempDir("cron-check");
        var crontab = dir.Write("crontab", "@daily true\n");
        var result = await Cron("-grace-period", "soon", crontab);
        Assert.Equal(2, result.ExitCode);
        Assert.Contains("-grace-period 'soon' is not a duration", result.Stderr);
    }

    [Fact]
    public async Task Supercronic_and_GNU_spellings_of_the_flags_both_work()
    {
        using var dir = new TempDir("cron-check");
        var crontab = dir.Write("crontab", "@daily true\n");
        var single = await Cron("-test", "-json", "-debug", crontab);
        var gnu = await Cron("--test", "--json", "--debug", crontab);
        foreach (var result in new[] { single, gnu })
        {
            Assert.True(result.ExitCode == 0, result.ToString());
            Assert.Contains("{\"level\":\"debug\"", result.Stderr);
            Assert.Contains("\"msg\":\"crontab is valid\"", result.Stderr);
        }
        var version = await Cron("-version");
        Assert.Equal(0, version.ExitCode);
        Assert.Matches(@"^\d+\.\d+\.\d+", version.Stdout.Trim());
    }
}
