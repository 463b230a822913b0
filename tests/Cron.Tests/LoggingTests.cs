using System.Text.Json;
using System.Text.RegularExpressions;

namespace InfraTools.Tests;

/// <summary>Live every-second jobs: supercronic's log lines and fields, environment, shell, and the log flags.</summary>
public partial class LoggingTests
{
    private static readonly Dictionary<string, string?> Utc = new() { ["TZ"] = "UTC" };

    [GeneratedRegex("""^time="\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ" level=info msg=starting iteration=0 job\.command="echo \\"out \$FOO \$INHERITED\\"; echo \\"err line\\" >&2" job\.position=0 job\.schedule="\* \* \* \* \* \* \*"$""")]
    private static partial Regex StartingLine();

    [Fact]
    public async Task Text_logs_carry_supercronic_s_messages_and_fields()
    {
        using var dir = new TempDir("cron-log");
        var crontab = dir.Write("crontab", """
            FOO=from-crontab
            * * * * * * * echo "out $FOO $INHERITED"; echo "err line" >&2
            # cron: name=failing
            * * * * * * * exit 3
            """ + "\n");
        await using var cron = CronRun.Start([crontab], new Dictionary<string, string?>(Utc) { ["INHERITED"] = "inherited-value", ["FOO"] = "from-environment" });
        await cron.WaitForAsync("msg=\"job succeeded\"", count: 2);
        await cron.WaitForAsync("msg=\"error running command: exit status 3\"");
        Assert.Equal(0, await cron.StopAsync());

        Assert.Equal("msg=\"read crontab: " + crontab + "\"", cron.Lines[0][(cron.Lines[0].IndexOf("msg=", StringComparison.Ordinal))..]);
        Assert.Contains(cron.Lines, l => StartingLine().IsMatch(l));
        var logs = cron.Logs;
        var stdout = logs.First(l => l["channel"] == "stdout");
        Assert.Equal("info", stdout.Level);
        Assert.Equal("out from-crontab inherited-value", stdout.Message);
        Assert.Equal("0", stdout["job.position"]);
        Assert.Equal("* * * * * * *", stdout["job.schedule"]);
        Assert.Equal("echo \"out $FOO $INHERITED\"; echo \"err line\" >&2", stdout["job.command"]);
        Assert.Contains(logs, l => l["channel"] == "stderr" && l.Message == "err line" && l.Level == "info");
        var failure = logs.First(l => l.Level == "error");
        Assert.Equal("error running command: exit status 3", failure.Message);
        Assert.Equal("3", failure["job.exit_code"]);
        Assert.Equal("failing", failure["job.name"]);
        Assert.Equal("1", failure["job.position"]);
        // iterations count up per job
        var iterations = logs.Where(l => l.Message == "starting" && l["job.position"] == "0").Select(l => int.Parse(l["iteration"]!)).ToList();
        Assert.Equal(Enumerable.Range(0, iterations.Count), iterations);
        // cron's own lines (no job fields) end the log in this order; a job's last line may come after them.
        Assert.Equal(["received terminated, shutting down", "waiting for jobs to finish", "exiting"],
            logs.Where(l => l["job.command"] is null).TakeLast(3).Select(l => l.Message));
    }

    [Fact]
    public async Task Json_logs_are_one_sorted_object_per_line_with_numeric_iteration_and_position()
    {
        using var dir = new TempDir("cron-log");
        var crontab = dir.Write("crontab", "* * * * * * * echo 'json <ok> & \"quoted\"'\n");
        await using var cron = CronRun.Start(["-json", crontab], Utc);
        await cron.WaitForAsync("\"msg\":\"job succeeded\"");
        Assert.Equal(0, await cron.StopAsync());

        Assert.NotEmpty(cron.StderrLines);
        foreach (var line in cron.StderrLines)
        {
            using var doc = JsonDocument.Parse(line);
            var keys = doc.RootElement.EnumerateObject().Select(p => p.Name).ToList();
            Assert.Equal(keys.Order(StringComparer.Ordinal), keys);
            Assert.Contains("level", keys);
            Assert.Contains("msg", keys);
            Assert.Matches(@"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$", doc.RootElement.GetProperty("time").GetString());
        }
        var output = cron.StderrLines.Select(l => JsonDocument.Parse(l).RootElement).First(e => e.TryGetProperty("channel", out _));
        Assert.Equal("stdout", output.GetProperty("channel").GetString());
        Assert.Equal("json <ok> & \"quoted\"", output.GetProperty("msg").GetString());
        Assert.Equal(JsonValueKind.Number, output.GetProperty("iteration").ValueKind);
        Assert.Equal(0, output.GetProperty("job.position").GetInt32());
        Assert.Equal("* * * * * * *", output.GetProperty("job.schedule").GetString());
    }

    [Fact]
    public async Task Shell_user_warning_quotes_and_CRLF_lines_are_read_as_supercronic_does()
    {
        using var dir = new TempDir("cron-log");
        var crontab = dir.Write("crontab",
            "SHELL=/bin/bash\r\nUSER=nobody\r\nFOO=\"two words\"\r\n* * * * * * * [[ \"$FOO\" == 'two words' ]] && echo \"bash-ok $SHELL\"\r\n");
        await using var cron = CronRun.Start([crontab], Utc);
        await cron.WaitForAsync("msg=\"bash-ok /bin/bash\"");
        await cron.WaitForAsync("msg=\"job succeeded\"");
        Assert.Equal(0, await cron.StopAsync());
        Assert.Contains(cron.Logs, l => l.Level == "warning" && l.Message == "processes will NOT be spawned as USER=nobody");
        Assert.Contains(cron.Logs, l => l.Message == "processes will be spawned using shell: /bin/bash");
        Assert.DoesNotContain(cron.Logs, l => l.Level == "error");
    }

    [Fact]
    public async Task Passthrough_logs_writes_job_output_raw()
    {
        using var dir = new TempDir("cron-log");
        var crontab = dir.Write("crontab", "* * * * * * * echo raw-out; echo raw-err >&2\n");
        await using var cron = CronRun.Start(["-passthrough-logs", crontab], Utc);
        await cron.WaitForAsync("msg=\"job succeeded\"");
        Assert.Equal(0, await cron.StopAsync());
        Assert.Contains("raw-out", cron.StdoutLines);
        Assert.Contains("raw-err", cron.StderrLines);
        Assert.DoesNotContain(cron.Logs, l => l["channel"] is not null);
    }

    [Fact]
    public async Task Split_logs_sends_info_to_stdout_and_errors_to_stderr()
    {
        using var dir = new TempDir("cron-log");
        var crontab = dir.Write("crontab", "* * * * * * * echo hello; exit 1\n");
        await using var cron = CronRun.Start(["-split-logs", crontab], Utc);
        await cron.WaitForAsync("error running command: exit status 1");
        Assert.Equal(0, await cron.StopAsync());
        Assert.Contains(cron.StdoutLines, l => l.Contains("msg=starting"));
        Assert.Contains(cron.StdoutLines, l => l.Contains("msg=hello channel=stdout"));
        Assert.Contains(cron.StderrLines, l => l.Contains("level=error msg=\"error running command: exit status 1\""));
        Assert.DoesNotContain(cron.StdoutLines, l => l.Contains("level=error"));
        Assert.DoesNotContain(cron.StderrLines, l => l.Contains("level=info"));
    }

    [Fact]
    public async Task Quiet_logs_only_warnings_and_errors()
    {
        using var dir = new TempDir("cron-log");
        var crontab = dir.Write("crontab", "* * * * * * * echo hello; exit 2\n");
        await using var cron = CronRun.Start(["-quiet", "-debug", crontab], Utc);
        await cron.WaitForAsync("error running command: exit status 2");
        Assert.Equal(0, await cron.StopAsync());
        Assert.All(cron.Logs, l => Assert.Contains(l.Level, new[] { "warning", "error" }));
    }

    [Fact]
    public async Task S3_credentials_are_scrubbed_from_job_output_and_never_reach_the_logs()
    {
        using var dir = new TempDir("cron-log");
        var secretFile = dir.Write("secret", "file-held-secret-4711\n");
        var crontab = dir.Write("crontab", $"""
            S3_ACCESS_KEY=crontab-held-access-key-0815
            * * * * * * * echo "inherited=$S3_SECRET_KEY crontab=$S3_ACCESS_KEY file=$(cat {secretFile})"
            """ + "\n");
        await using var cron = CronRun.Start([crontab], new Dictionary<string, string?>(Utc)
        {
            ["S3_SECRET_KEY"] = "inherited-secret-key-value-42",
            ["AWS_SESSION_TOKEN_FILE"] = secretFile,
        });
        await cron.WaitForAsync("msg=\"job succeeded\"");
        Assert.Equal(0, await cron.StopAsync());
        Assert.Contains(cron.Logs, l => l.Message == "inherited=[REDACTED] crontab=[REDACTED] file=[REDACTED]");
        Assert.DoesNotContain("inherited-secret-key-value-42", cron.Output);
        Assert.DoesNotContain("crontab-held-access-key-0815", cron.Output);
        Assert.DoesNotContain("file-held-secret-4711", cron.Output);
    }

    [Fact]
    public async Task A_background_process_holding_the_output_does_not_keep_the_job_running()
    {
        // supercronic issue 88: the shell had exited, but a process it left behind kept the pipe open, so the job
        // counted as running and was never started again.
        using var dir = new TempDir("cron-log");
        var crontab = dir.Write("crontab", "*/2 * * * * * * sleep 8 & echo left-a-sleeper\n");
        await using var cron = CronRun.Start([crontab], Utc);
        await cron.WaitForLinesAsync(l => l.Contains("msg=starting iteration=2"), timeout: TimeSpan.FromSeconds(12));
        Assert.Equal(0, await cron.StopAsync());
        var logs = cron.Logs;
        Assert.Equal(2, logs.Count(l => l.Message == "job succeeded" && l["iteration"] is "0" or "1"));
        Assert.DoesNotContain(logs, l => l.Message.StartsWith("not starting", StringComparison.Ordinal));
    }
}
