using InfraTools.Cron.Crontab;

namespace InfraTools.Tests.InProcess;

/// <summary>
/// The crontab parser in process, as tables (Cronos style): what supercronic accepts runs here unchanged
/// (issue 18, defects 1, 2, 3, 8), how each line is split into schedule and command (cases from supercronic's
/// crontab_test.go), and what <c>-test --strict</c> reports as supercronic's (ported cronexpr grammar).
/// </summary>
public class CrontabParserTests
{
    private const string NewYear2026 = "2026-01-01T00:00:00Z";

    private static CrontabParseResult Parse(string crontab, string zone = "UTC", bool strict = false) =>
        CrontabParser.Parse(crontab, "crontab", TimeZoneInfo.FindSystemTimeZoneById(zone), strict);

    [Theory]
    // Defect 1: full day and month names, any case (supercronic's cronexpr maps them).
    [InlineData("0 0 * * sunday true", "2026-01-04T00:00:00+00:00 2026-01-11T00:00:00+00:00")]
    [InlineData("0 0 * * Monday-Friday true", "2026-01-02T00:00:00+00:00 2026-01-05T00:00:00+00:00 2026-01-06T00:00:00+00:00")]
    [InlineData("0 0 * * SATURDAY,sunday true", "2026-01-03T00:00:00+00:00 2026-01-04T00:00:00+00:00 2026-01-10T00:00:00+00:00")]
    [InlineData("0 0 1 january * true", "2027-01-01T00:00:00+00:00 2028-01-01T00:00:00+00:00")]
    [InlineData("0 0 1 December * true", "2026-12-01T00:00:00+00:00 2027-12-01T00:00:00+00:00")]
    [InlineData("0 0 1 June-August * true", "2026-06-01T00:00:00+00:00 2026-07-01T00:00:00+00:00 2026-08-01T00:00:00+00:00 2027-06-01T00:00:00+00:00")]
    [InlineData("0 0 * * FRIDAY#3 true", "2026-01-16T00:00:00+00:00 2026-02-20T00:00:00+00:00")]
    [InlineData("0 0 * * fridayL true", "2026-01-30T00:00:00+00:00 2026-02-27T00:00:00+00:00")]
    [InlineData("0 0 0 1 february * 2027 true", "2027-02-01T00:00:00+00:00")]
    // Defect 2: L, W, nL, n#k inside lists (supercronic parses each list item on its own).
    [InlineData("0 0 1,15,L * * true", "2026-01-01T00:00:00+00:00 2026-01-15T00:00:00+00:00 2026-01-31T00:00:00+00:00 2026-02-01T00:00:00+00:00 2026-02-15T00:00:00+00:00 2026-02-28T00:00:00+00:00", "2025-12-31T12:00:00Z")]
    [InlineData("0 0 L,1 * * true", "2026-01-31T00:00:00+00:00 2026-02-01T00:00:00+00:00 2026-02-28T00:00:00+00:00 2026-03-01T00:00:00+00:00")]
    [InlineData("0 0 1,15W * * true", "2026-01-15T00:00:00+00:00 2026-02-01T00:00:00+00:00 2026-02-16T00:00:00+00:00 2026-03-01T00:00:00+00:00")]
    [InlineData("0 0 LW,L * * true", "2026-01-30T00:00:00+00:00 2026-01-31T00:00:00+00:00 2026-02-27T00:00:00+00:00 2026-02-28T00:00:00+00:00")]
    [InlineData("0 0 * * 1,5L true", "2026-01-05T00:00:00+00:00 2026-01-12T00:00:00+00:00 2026-01-19T00:00:00+00:00 2026-01-26T00:00:00+00:00 2026-01-30T00:00:00+00:00 2026-02-02T00:00:00+00:00")]
    [InlineData("0 0 * * MON#1,FRI#3 true", "2026-01-05T00:00:00+00:00 2026-01-16T00:00:00+00:00 2026-02-02T00:00:00+00:00 2026-02-20T00:00:00+00:00")]
    [InlineData("0 0 * * monday#1,Friday#3 true", "2026-01-05T00:00:00+00:00 2026-01-16T00:00:00+00:00 2026-02-02T00:00:00+00:00")]
    // ... and with the OR rule: both day fields restricted, either matches.
    [InlineData("0 0 15,L * MON#1 true", "2026-01-05T00:00:00+00:00 2026-01-15T00:00:00+00:00 2026-01-31T00:00:00+00:00 2026-02-02T00:00:00+00:00 2026-02-15T00:00:00+00:00")]
    public void Supercronic_schedules_run_as_supercronic_runs_them(string line, string expected, string from = NewYear2026)
    {
        var wanted = expected.Split(' ');
        Assert.NotEmpty(wanted);
        Assert.Equal(wanted, ScheduleTests.NextRuns(line + "\n", from, wanted.Length));
        // And supercronic itself takes the line as the same schedule: --strict has nothing to say.
        Assert.Empty(Parse(line + "\n", strict: true).Incompatibilities);
    }

    [Theory]
    // Defect 8: CRON_TZ=Local is cron's own zone (TZ; for this test process, its own local zone), CRON_TZ= is
    // UTC, as Go's time.LoadLocation reads them. CrontabCheckTests runs CRON_TZ=Local through the binary with TZ set.
    [InlineData("CRON_TZ=Local", "America/New_York", "local")]
    [InlineData("CRON_TZ=", "America/New_York", "2026-01-01T12:00:00+00:00")]
    [InlineData("CRON_TZ=UTC", "Europe/Zurich", "2026-01-01T12:00:00+00:00")]
    [InlineData("CRON_TZ=Europe/Zurich", "UTC", "2026-01-01T12:00:00+01:00")]
    public void Cron_tz_takes_what_Go_s_LoadLocation_takes(string line, string cronZone, string expected)
    {
        var result = Parse($"{line}\n0 12 * * * true\n", cronZone);
        Assert.True(result.Crontab is not null, string.Join('\n', result.Errors));
        var job = Assert.Single(result.Crontab.Jobs);
        var next = job.Expression.Next(DateTime.Parse(NewYear2026, null, System.Globalization.DateTimeStyles.AdjustToUniversal), result.Crontab.TimeZone)!.Value;
        var want = expected == "local"
            ? TimeZoneInfo.ConvertTimeToUtc(new DateTime(2026, 1, 1, 12, 0, 0, DateTimeKind.Unspecified), TimeZoneInfo.Local)
            : DateTimeOffset.Parse(expected, System.Globalization.CultureInfo.InvariantCulture).UtcDateTime;
        if (want <= new DateTime(2026, 1, 1, 0, 0, 0, DateTimeKind.Utc)) want = want.AddDays(1);
        Assert.Equal(want, next);
        Assert.Contains(result.Notices, n => n.Message.StartsWith("processes will be spawned using TZ: ", StringComparison.Ordinal));
    }

    [Theory]
    // Defect 3: a '# cron:' comment is our options line only when it holds a known option.
    [InlineData("# cron: nightly backup", null, null)]
    [InlineData("# cron:", null, null)]
    [InlineData("#cron: see https://example.com/?a=b", null, null)]
    [InlineData("# cron: runs at three, name the owner", null, null)]
    [InlineData("# cron: name=backup", "backup", null)]
    [InlineData("#cron:name=backup timeout=5m", "backup", null)]
    [InlineData("# cron: run-at-start", null, null)]
    [InlineData("# cron: name=x colour=red", null, "bad job options: unknown option 'colour=red'")]
    [InlineData("# cron: timeout=soon", null, "bad job options: timeout 'soon' is not a positive duration")]
    public void A_cron_comment_is_an_options_line_only_when_it_holds_a_known_option(string comment, string? name, string? error)
    {
        var result = Parse($"{comment}\n0 3 * * * backup push\n");
        if (error is not null)
        {
            Assert.Null(result.Crontab);
            Assert.StartsWith(error, Assert.Single(result.Errors).Message, StringComparison.Ordinal);
            return;
        }
        Assert.True(result.Crontab is not null, string.Join('\n', result.Errors));
        var job = Assert.Single(result.Crontab.Jobs);
        Assert.Equal(name ?? "backup:2", job.Name);
    }

    [Theory]
    // Schedule and command as supercronic splits them (its crontab_test.go), and which field count reads the line.
    [InlineData("* * * * * foo some # qux", 5, "* * * * *", "foo some # qux")]
    [InlineData("* * * * * * with year", 6, "* * * * * *", "with year")]
    [InlineData("* * * * * * * with seconds", 7, "* * * * * * *", "with seconds")]
    [InlineData("@daily with shorthand", 1, "@daily", "with shorthand")]
    [InlineData("  \t  */2 * * * * will run", 5, "*/2 * * * *", "will run")]
    [InlineData("* * * * *        \twith plenty of whitespace", 5, "* * * * *", "with plenty of whitespace")]
    [InlineData("*\t*\t*\t*\t*\ttabs everywhere", 5, "*\t*\t*\t*\t*", "tabs everywhere")]
    [InlineData("@hourly foo1 foo2 foo3 foo4 foo5 foo6", 1, "@hourly", "foo1 foo2 foo3 foo4 foo5 foo6")]
    [InlineData("0 0 1 1 * 2030 echo new year", 6, "0 0 1 1 * 2030", "echo new year")]
    public void Job_lines_split_into_schedule_and_command_as_supercronic_splits_them(string line, int fields, string schedule, string command)
    {
        var result = Parse(line + "\n");
        Assert.True(result.Crontab is not null, string.Join('\n', result.Errors));
        var job = Assert.Single(result.Crontab.Jobs);
        Assert.Equal(schedule, job.Schedule);
        Assert.Equal(command, job.Command);
        var theirs = SupercronicSyntax.ReadJobLine(line.TrimStart(' ', '\t'));
        Assert.NotNull(theirs);
        Assert.Equal((fields, schedule, command), theirs.Value);
    }

    [Theory]
    // Environment lines as supercronic reads them: quotes removed, the last value wins.
    [InlineData("FOO=bar", "bar")]
    [InlineData("FOO=\"bar\"", "bar")]
    [InlineData("FOO='bar'", "bar")]
    [InlineData("FOO='", "'")]
    [InlineData("FOO=''", "")]
    [InlineData("FOO = spaced out ", "spaced out ")]
    [InlineData("FOO=first\nFOO=second", "second")]
    public void Environment_lines_as_supercronic_reads_them(string lines, string value)
    {
        var result = Parse(lines + "\n* * * * * true\n");
        Assert.True(result.Crontab is not null, string.Join('\n', result.Errors));
        Assert.Equal(value, result.Crontab.Environment["FOO"]);
    }

    [Theory]
    // What cron accepts beyond supercronic, and what --strict says about it (supercronic's own messages).
    [InlineData("0 0 * * 1-7 true", "supercronic rejects this line: invalid interval 1-7 (normalized to 1-0) (schedule '0 0 * * 1-7')")]
    [InlineData("45 4 * * 6-7 true", "supercronic rejects this line: invalid interval 6-7 (normalized to 6-0)")]
    [InlineData("0 0 * * FRI-MON true", "supercronic rejects this line: invalid interval fri-mon (normalized to 5-1)")]
    [InlineData("0 22-2 * * * true", "supercronic rejects this line: invalid interval 22-2 (normalized to 22-2)")]
    [InlineData("0 0 L-3 * * true", "supercronic rejects this line: syntax error in day-of-month field: 'L-3'")]
    [InlineData("@midnight true", "supercronic rejects this line: '@midnight' is not one of its macros (@yearly, @annually, @monthly, @weekly, @daily, @hourly)")]
    [InlineData("0 0 12 * * FRI-MON * echo weekend", "supercronic reads this line differently: as the 5-field schedule '0 0 12 * *' with the command 'FRI-MON * echo weekend'")]
    [InlineData("FOO=\n* * * * * true", "supercronic crashes on an empty value ('FOO='): give a value, e.g. FOO=\"\"")]
    public void Strict_reports_what_supercronic_would_reject_or_read_differently(string crontab, string finding)
    {
        var result = Parse(crontab + "\n", strict: true);
        Assert.True(result.Crontab is not null, string.Join('\n', result.Errors));
        var reported = Assert.Single(result.Incompatibilities);
        Assert.StartsWith(finding, reported.Message, StringComparison.Ordinal);
        Assert.Empty(Parse(crontab + "\n").Incompatibilities);
    }

    [Fact]
    public void Strict_reports_a_line_too_long_for_supercronic_s_scanner()
    {
        var result = Parse($"* * * * * echo {new string('x', 70_000)}\n", strict: true);
        Assert.NotNull(result.Crontab);
        Assert.Contains("bufio.Scanner: token too long", Assert.Single(result.Incompatibilities).Message, StringComparison.Ordinal);
    }

    [Theory]
    // supercronic's own cronexpr tests (TestInterval_Interval60Issue, TestRange_OutOfOrder, TestTooManyFields) and more.
    [InlineData("*/60 * * * * *", "invalid interval */60")]
    [InlineData("*/61 * * * * *", "invalid interval */61")]
    [InlineData("2/60 * * * * *", "invalid interval 2/60")]
    [InlineData("2-20/61 * * * * *", "invalid interval 2-20/61")]
    [InlineData("45 4 *  *  6-7", "invalid interval 6-7 (normalized to 6-0)")]
    [InlineData("45 4 *  *  6-5", "invalid interval 6-5 (normalized to 6-5)")]
    [InlineData("* * * * * * * foobar", "too many fields")]
    [InlineData("* * * *", "missing field(s)")]
    [InlineData("0 0 0 * * *", "syntax error in day-of-month field: '0'")]
    [InlineData("60 * * * *", "syntax error in minute field: '60'")]
    [InlineData("* 24 * * *", "syntax error in hour field: '24'")]
    [InlineData("* * * 13 *", "syntax error in month field: '13'")]
    [InlineData("* * * * 8", "syntax error in day-of-week field: '8'")]
    [InlineData("* * * * * 1969", "syntax error in year field: '1969'")]
    [InlineData("* * * * * 2100", "syntax error in year field: '2100'")]
    [InlineData("* * * * MON#6", "syntax error in day-of-week field: 'MON#6'")]
    [InlineData("* * 1-15W * *", "syntax error in day-of-month field: '1-15W'")]
    [InlineData("* * * * * * * ", null)]
    [InlineData("*/5 * * * * * *", null)]
    [InlineData("? ? ? ? ? ?", null)]
    [InlineData("0 0 1,15,L * *", null)]
    [InlineData("0 0 LW,L * *", null)]
    [InlineData("0 0 * * MON#1,FRI#3", null)]
    [InlineData("0 0 * * sunday", null)]
    [InlineData("0 0 1 January-March,December *", null)]
    [InlineData("0 0 * * fridayL", null)]
    [InlineData("0 0 * * 7", null)]
    [InlineData("0 0 * * 0-6/2", null)]
    [InlineData("00 05 * * *", null)]
    [InlineData("0 0 1 1 * 1970-2099/5", null)]
    [InlineData("@daily", null)]
    [InlineData("@hourly", null)]
    [InlineData("@midnight", "missing field(s)")]
    public void The_ported_supercronic_grammar_matches_supercronic(string schedule, string? error)
    {
        Assert.Equal(error, SupercronicSyntax.Check(schedule.TrimEnd()));
    }

    [Theory]
    [InlineData("61 * * * * true")]
    [InlineData("* * 32 * * true")]
    [InlineData("* 24 * * * true")]
    [InlineData("@fortnightly true")]
    [InlineData("0 0 * * funday true")]
    public void Bad_schedules_are_one_error_with_the_line_number(string line)
    {
        var result = Parse("# fine\n" + line + "\n");
        Assert.Null(result.Crontab);
        var error = Assert.Single(result.Errors);
        Assert.Equal(2, error.Line);
        Assert.StartsWith("bad crontab line", error.Message, StringComparison.Ordinal);
    }
}
