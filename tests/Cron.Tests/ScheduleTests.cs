using System.Globalization;
using InfraTools.Cron.Crontab;

namespace InfraTools.Tests;

/// <summary>
/// The schedule engine, in process (the crontab parser and CronSchedule, as cron -test --next-runs uses them):
/// every syntax element supercronic accepts, with next-run times worked out from the calendar (1 January 2026 is
/// a Thursday). No case starts a process: the --next-runs output and cron's own time zone are tested through the
/// AOT binary in CrontabCheckTests.
/// </summary>
public class ScheduleTests
{
    private const string NewYear2026 = "2026-01-01T00:00:00Z";

    /// <summary>The next <paramref name="count"/> run times of the crontab's only job, formatted as cron -test --next-runs prints them.</summary>
    internal static string[] NextRuns(string crontab, string from, int count, string timeZone = "UTC")
    {
        var result = CrontabParser.Parse(crontab, "crontab", TimeZoneInfo.FindSystemTimeZoneById(timeZone));
        Assert.True(result.Crontab is not null, string.Join('\n', result.Errors));
        var job = Assert.Single(result.Crontab.Jobs);
        var zone = result.Crontab.TimeZone;
        var runs = new List<string>();
        var t = DateTimeOffset.Parse(from, CultureInfo.InvariantCulture).UtcDateTime;
        for (var i = 0; i < count && job.Expression.Next(t, zone) is { } next; i++, t = next)
            runs.Add(new DateTimeOffset(next).ToOffset(zone.GetUtcOffset(next)).ToString("yyyy-MM-ddTHH:mm:sszzz", CultureInfo.InvariantCulture));
        return [.. runs];
    }

    [Theory]
    // 7 fields: seconds minutes hours day-of-month month day-of-week year
    [InlineData("* * * * * * * true", "2026-01-01T00:00:01+00:00 2026-01-01T00:00:02+00:00 2026-01-01T00:00:03+00:00")]
    [InlineData("*/15 * * * * * * true", "2026-01-01T00:00:15+00:00 2026-01-01T00:00:30+00:00 2026-01-01T00:00:45+00:00")]
    [InlineData("5,10 * * * * * * true", "2026-01-01T00:00:05+00:00 2026-01-01T00:00:10+00:00 2026-01-01T00:01:05+00:00")]
    // 5 fields: minutes hours day-of-month month day-of-week
    [InlineData("*/5 * * * * true", "2026-01-01T00:05:00+00:00 2026-01-01T00:10:00+00:00 2026-01-01T00:15:00+00:00")]
    [InlineData("0 9-17/4 * * * true", "2026-01-01T09:00:00+00:00 2026-01-01T13:00:00+00:00 2026-01-01T17:00:00+00:00 2026-01-02T09:00:00+00:00")]
    [InlineData("15 8,12 * * * true", "2026-01-01T08:15:00+00:00 2026-01-01T12:15:00+00:00 2026-01-02T08:15:00+00:00")]
    // 6 fields: the sixth is the year, not seconds (as in supercronic), so six stars run every minute
    [InlineData("* * * * * * true", "2026-01-01T00:01:00+00:00 2026-01-01T00:02:00+00:00 2026-01-01T00:03:00+00:00")]
    [InlineData("30 12 1 1 * 2027 true", "2027-01-01T12:30:00+00:00", true)]
    // year field: range, step, list, a past year (never runs)
    [InlineData("0 0 0 1 1 * 2028-2030 true", "2028-01-01T00:00:00+00:00 2029-01-01T00:00:00+00:00 2030-01-01T00:00:00+00:00", true)]
    [InlineData("0 0 0 1 1 * 2026/2 true", "2028-01-01T00:00:00+00:00 2030-01-01T00:00:00+00:00 2032-01-01T00:00:00+00:00")]
    [InlineData("0 0 0 29 2 * 2027,2028 true", "2028-02-29T00:00:00+00:00", true)]
    [InlineData("0 0 0 1 1 * 2020 true", "", true)]
    // macros
    [InlineData("@yearly true", "2027-01-01T00:00:00+00:00 2028-01-01T00:00:00+00:00")]
    [InlineData("@annually true", "2027-01-01T00:00:00+00:00 2028-01-01T00:00:00+00:00")]
    [InlineData("@monthly true", "2026-02-01T00:00:00+00:00 2026-03-01T00:00:00+00:00 2026-04-01T00:00:00+00:00")]
    [InlineData("@weekly true", "2026-01-04T00:00:00+00:00 2026-01-11T00:00:00+00:00 2026-01-18T00:00:00+00:00")]
    [InlineData("@daily true", "2026-01-02T00:00:00+00:00 2026-01-03T00:00:00+00:00 2026-01-04T00:00:00+00:00")]
    [InlineData("@midnight true", "2026-01-02T00:00:00+00:00 2026-01-03T00:00:00+00:00")]
    [InlineData("@hourly true", "2026-01-01T01:00:00+00:00 2026-01-01T02:00:00+00:00 2026-01-01T03:00:00+00:00")]
    // names of months and days, in either case
    [InlineData("0 0 * JAN,FEB MON true", "2026-01-05T00:00:00+00:00 2026-01-12T00:00:00+00:00 2026-01-19T00:00:00+00:00")]
    [InlineData("0 0 * * SAT-SUN true", "2026-01-03T00:00:00+00:00 2026-01-04T00:00:00+00:00 2026-01-10T00:00:00+00:00")]
    [InlineData("0 0 1 jul * true", "2026-07-01T00:00:00+00:00 2027-07-01T00:00:00+00:00")]
    // L, W, LW, #, nL, ?
    [InlineData("0 0 L * * true", "2026-01-31T00:00:00+00:00 2026-02-28T00:00:00+00:00 2026-03-31T00:00:00+00:00")]
    [InlineData("0 0 15W * * true", "2026-01-15T00:00:00+00:00 2026-02-16T00:00:00+00:00 2026-03-16T00:00:00+00:00")]
    [InlineData("0 0 LW * * true", "2026-01-30T00:00:00+00:00 2026-02-27T00:00:00+00:00 2026-03-31T00:00:00+00:00")]
    [InlineData("0 0 * * FRI#3 true", "2026-01-16T00:00:00+00:00 2026-02-20T00:00:00+00:00 2026-03-20T00:00:00+00:00")]
    [InlineData("0 0 * * 5L true", "2026-01-30T00:00:00+00:00 2026-02-27T00:00:00+00:00 2026-03-27T00:00:00+00:00")]
    [InlineData("0 0 1 * ? true", "2026-02-01T00:00:00+00:00 2026-03-01T00:00:00+00:00 2026-04-01T00:00:00+00:00")]
    // Sunday is 0 and 7
    [InlineData("0 0 * * 0 true", "2026-01-04T00:00:00+00:00 2026-01-11T00:00:00+00:00 2026-01-18T00:00:00+00:00")]
    [InlineData("0 0 * * 7 true", "2026-01-04T00:00:00+00:00 2026-01-11T00:00:00+00:00 2026-01-18T00:00:00+00:00")]
    // Vixie cron's OR rule: both day fields restricted, a day matching either runs (Cronos alone would AND them)
    [InlineData("0 0 1,15 * MON true", "2026-01-05T00:00:00+00:00 2026-01-12T00:00:00+00:00 2026-01-15T00:00:00+00:00 2026-01-19T00:00:00+00:00 2026-01-26T00:00:00+00:00 2026-02-01T00:00:00+00:00 2026-02-02T00:00:00+00:00")]
    [InlineData("0 0 13 * FRI true", "2026-01-02T00:00:00+00:00 2026-01-09T00:00:00+00:00 2026-01-13T00:00:00+00:00 2026-01-16T00:00:00+00:00")]
    // one day field restricted: only that one counts
    [InlineData("0 0 13 * * true", "2026-01-13T00:00:00+00:00 2026-02-13T00:00:00+00:00 2026-03-13T00:00:00+00:00")]
    [InlineData("0 0 13 * ? true", "2026-01-13T00:00:00+00:00 2026-02-13T00:00:00+00:00 2026-03-13T00:00:00+00:00")]
    [InlineData("0 0 ? * FRI true", "2026-01-02T00:00:00+00:00 2026-01-09T00:00:00+00:00 2026-01-16T00:00:00+00:00")]
    public void Next_runs_match_the_calendar(string line, string expected, bool thereAreNoMore = false)
    {
        var wanted = expected.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        // For schedules limited by their year field, ask for more runs than exist: none may follow.
        var runs = NextRuns(line + "\n", NewYear2026, wanted.Length + (thereAreNoMore ? 3 : 0));
        Assert.Equal(wanted, runs);
    }

    [Theory]
    // Spring forward in Zurich (29 March 2026, 02:00 -> 03:00): 02:30 does not exist that day, the job runs at 03:00, once.
    [InlineData("30 2 * * * true", "2026-03-27T12:00:00Z", "2026-03-28T02:30:00+01:00 2026-03-29T03:00:00+02:00 2026-03-30T02:30:00+02:00")]
    [InlineData("*/30 2 * * * true", "2026-03-28T12:00:00Z", "2026-03-29T03:00:00+02:00 2026-03-30T02:00:00+02:00 2026-03-30T02:30:00+02:00")]
    // Fall back (25 October 2026, 03:00 -> 02:00): 02:30 happens twice, a fixed-time job runs once.
    [InlineData("30 2 * * * true", "2026-10-23T12:00:00Z", "2026-10-24T02:30:00+02:00 2026-10-25T02:30:00+02:00 2026-10-26T02:30:00+01:00")]
    // ... while an hourly job runs in both 02:00 hours, as Vixie cron does.
    [InlineData("0 * * * * true", "2026-10-24T23:30:00Z", "2026-10-25T02:00:00+02:00 2026-10-25T02:00:00+01:00 2026-10-25T03:00:00+01:00")]
    public void Daylight_saving_transitions_in_Zurich(string line, string from, string expected)
    {
        var runs = NextRuns("CRON_TZ=Europe/Zurich\n" + line + "\n", from, 3);
        Assert.Equal(expected.Split(' '), runs);
    }

    [Theory]
    [InlineData("30 2 * * * true")]
    [InlineData("0 2 * * * true")]
    [InlineData("0 3 * * * true")]
    [InlineData("59 1 * * * true")]
    public void A_daily_job_runs_exactly_once_every_local_day_across_both_transitions(string line)
    {
        // 400 days from 1 January 2026 cover the spring and autumn transitions; the times never go backwards.
        var runs = NextRuns("CRON_TZ=Europe/Zurich\n" + line + "\n", NewYear2026, 400);
        var times = runs.Select(r => DateTimeOffset.Parse(r, CultureInfo.InvariantCulture)).ToList();
        Assert.Equal(400, times.Count);
        Assert.True(times.Zip(times.Skip(1)).All(p => p.First.UtcDateTime < p.Second.UtcDateTime), "run times must increase");
        var days = times.Select(t => DateOnly.FromDateTime(t.DateTime)).ToList();
        Assert.Equal(days.Distinct().Count(), days.Count);
        Assert.Equal(new DateOnly(2026, 1, 1).AddDays(399), days[^1]);
        Assert.Contains(times, t => t.Offset == TimeSpan.FromHours(2));
        Assert.Contains(times, t => t.Offset == TimeSpan.FromHours(1));
    }
}
