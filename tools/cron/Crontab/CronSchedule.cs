using Cronos;

namespace InfraTools.Cron.Crontab;

/// <summary>
/// A schedule as supercronic reads it (its cronexpr library): seconds, minutes, hours, day of month, month,
/// day of week and year. Cronos evaluates the first six fields; this class adds what Cronos does differently:
/// the year field (1970-2099), and Vixie cron's rule that a day matches when either the day of month or the day
/// of week matches if both are restricted (Cronos requires both).
/// </summary>
public sealed class CronSchedule
{
    public const int FirstYear = 1970;
    public const int LastYear = 2099;

    private static readonly Dictionary<string, string> Macros = new(StringComparer.OrdinalIgnoreCase)
    {
        ["@yearly"] = "0 0 0 1 1 * *",
        ["@annually"] = "0 0 0 1 1 * *",
        ["@monthly"] = "0 0 0 1 * * *",
        ["@weekly"] = "0 0 0 * * 0 *",
        ["@daily"] = "0 0 0 * * * *",
        ["@midnight"] = "0 0 0 * * * *",
        ["@hourly"] = "0 0 * * * * *",
    };

    public static IReadOnlyCollection<string> MacroNames => Macros.Keys;

    private readonly CronExpression[] _expressions;
    private readonly bool[]? _years; // null: every year

    private CronSchedule(CronExpression[] expressions, bool[]? years)
    {
        _expressions = expressions;
        _years = years;
    }

    /// <summary>
    /// Parses the schedule fields of a crontab line: 7 (seconds ... year), 6 (minutes ... year: the sixth field
    /// is the year, not seconds), 5 (minutes ... day of week) or 1 (a macro such as @daily).
    /// </summary>
    public static CronSchedule Parse(IReadOnlyList<string> fields)
    {
        string[] seven = fields.Count switch
        {
            1 when Macros.TryGetValue(fields[0], out var macro) => macro.Split(' '),
            1 => throw new FormatException($"unknown schedule '{fields[0]}' (known: {string.Join(", ", Macros.Keys)})"),
            5 => ["0", .. fields, "*"],
            6 => ["0", .. fields],
            7 => [.. fields],
            _ => throw new FormatException($"a schedule has 5, 6 or 7 fields, not {fields.Count}"),
        };
        var (second, minute, hour, dayOfMonth, month, dayOfWeek, year) = (seven[0], seven[1], seven[2], seven[3], seven[4], seven[5], seven[6]);
        var years = ParseYears(year);
        var bothDaysRestricted = IsRestricted(dayOfMonth) && IsRestricted(dayOfWeek);
        var expressions = bothDaysRestricted
            ? new[] { Cronos(second, minute, hour, dayOfMonth, month, "*"), Cronos(second, minute, hour, "*", month, dayOfWeek) }
            : new[] { Cronos(second, minute, hour, dayOfMonth, month, dayOfWeek) };
        return new CronSchedule(expressions, years);
    }

    private static bool IsRestricted(string dayField) => dayField is not ("*" or "?");

    private static CronExpression Cronos(string second, string minute, string hour, string dayOfMonth, string month, string dayOfWeek)
    {
        try
        {
            return CronExpression.Parse($"{second} {minute} {hour} {dayOfMonth} {month} {dayOfWeek}", CronFormat.IncludeSeconds);
        }
        catch (CronFormatException ex)
        {
            throw new FormatException(ex.Message.TrimEnd('.'), ex);
        }
    }

    /// <summary>Year field: *, a year, a range a-b, steps */n a-b/n a/n, and comma lists of those.</summary>
    private static bool[]? ParseYears(string field)
    {
        if (field is "*" or "?") return null;
        var years = new bool[LastYear - FirstYear + 1];
        foreach (var item in field.Split(','))
        {
            var (range, stepText) = item.Split('/') switch
            {
                [var r] => (r, null),
                [var r, var s] => (r, s),
                _ => throw new FormatException($"year field: '{item}' is not a year, range or step"),
            };
            int first, last;
            if (range == "*") (first, last) = (FirstYear, LastYear);
            else if (range.Split('-') is [var a, var b]) (first, last) = (Year(a), Year(b));
            else (first, last) = (Year(range), stepText is null ? Year(range) : LastYear);
            if (first > last) throw new FormatException($"year field: range '{range}' ends before it starts");
            var step = 1;
            if (stepText is not null && (!int.TryParse(stepText, out step) || step <= 0))
                throw new FormatException($"year field: step '{stepText}' must be a positive number");
            for (var y = first; y <= last; y += step) years[y - FirstYear] = true;
        }
        return years;
    }

    private static int Year(string text) =>
        int.TryParse(text, out var year) && year is >= FirstYear and <= LastYear
            ? year
            : throw new FormatException($"year field: '{text}' is not a year from {FirstYear} to {LastYear}");

    /// <summary>
    /// The first time strictly after <paramref name="afterUtc"/> that matches, in UTC, evaluated in
    /// <paramref name="zone"/> (Cronos' daylight-saving rules: a time skipped by the spring-forward runs at the
    /// end of the gap, a fixed time repeated by the fall-back runs once). Null when it never matches again.
    /// </summary>
    public DateTime? Next(DateTime afterUtc, TimeZoneInfo zone)
    {
        var from = DateTime.SpecifyKind(afterUtc, DateTimeKind.Utc);
        var inclusive = false;
        for (var attempt = 0; attempt <= LastYear - FirstYear + 1; attempt++)
        {
            DateTime? best = null;
            foreach (var expression in _expressions)
            {
                var next = expression.GetNextOccurrence(from, zone, inclusive);
                if (next is not null && (best is null || next < best)) best = next;
            }
            if (best is null || _years is null) return best;
            var year = TimeZoneInfo.ConvertTimeFromUtc(best.Value, zone).Year;
            if (year is >= FirstYear and <= LastYear && _years[year - FirstYear]) return best;
            var nextYear = NextAllowedYear(year + 1);
            if (nextYear is null) return null;
            var jump = StartOfYear(nextYear.Value, zone);
            if (jump <= from) return null;
            (from, inclusive) = (jump, true);
        }
        return null;
    }

    private int? NextAllowedYear(int from)
    {
        for (var y = Math.Max(from, FirstYear); y <= LastYear; y++)
            if (_years![y - FirstYear]) return y;
        return null;
    }

    private static DateTime StartOfYear(int year, TimeZoneInfo zone)
    {
        var local = new DateTime(year, 1, 1, 0, 0, 0, DateTimeKind.Unspecified);
        while (zone.IsInvalidTime(local)) local = local.AddMinutes(30);
        return TimeZoneInfo.ConvertTimeToUtc(local, zone);
    }
}
