using System.Text;
using System.Text.RegularExpressions;
using Cronos;

namespace InfraTools.Cron.Crontab;

/// <summary>
/// A schedule as supercronic reads it (its cronexpr library): seconds, minutes, hours, day of month, month,
/// day of week and year. Cronos evaluates the first six fields; this class adds what Cronos does differently:
/// the year field (1970-2099); full month and day names (<c>january</c>, <c>Monday-Friday</c>); <c>L</c>,
/// <c>W</c>, <c>nL</c> and <c>n#k</c> inside lists (<c>1,15,L</c>, <c>MON#1,FRI#3</c>), which Cronos only takes
/// alone; and Vixie cron's rule that a day matches when either the day of month or the day of week matches if
/// both are restricted (Cronos requires both). Each of these becomes a union of Cronos expressions.
/// </summary>
public sealed partial class CronSchedule
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

    private static readonly string[] Months =
        ["january", "february", "march", "april", "may", "june", "july", "august", "september", "october", "november", "december"];

    private static readonly string[] Days = ["sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday"];

    [GeneratedRegex("[A-Za-z]+")]
    private static partial Regex Letters();

    private readonly CronExpression[] _expressions;
    private readonly bool[]? _years; // null: every year

    private CronSchedule(CronExpression[] expressions, bool[]? years)
    {
        _expressions = expressions;
        _years = years;
    }

    /// <summary>How many Cronos expressions the schedule is the union of (1 for most schedules).</summary>
    internal int ExpressionCount => _expressions.Length;

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
        var (second, minute, hour, month, year) = (seven[0], seven[1], seven[2], FullNames(seven[4], Months), seven[6]);
        var dayOfMonth = seven[3];
        var dayOfWeek = FullNames(seven[5], Days);
        var years = ParseYears(year);
        var daysOfMonth = SplitSpecial(dayOfMonth, item => item.Contains('L', StringComparison.OrdinalIgnoreCase) || item.Contains('W', StringComparison.OrdinalIgnoreCase));
        var daysOfWeek = SplitSpecial(dayOfWeek, item => item.Contains('#') || item.EndsWith('L') || item.EndsWith('l'));
        var expressions = new List<CronExpression>();
        if (IsRestricted(dayOfMonth) && IsRestricted(dayOfWeek))
        {
            foreach (var dom in daysOfMonth) expressions.Add(Cronos(second, minute, hour, dom, month, "*"));
            foreach (var dow in daysOfWeek) expressions.Add(Cronos(second, minute, hour, "*", month, dow));
        }
        else
        {
            foreach (var dom in daysOfMonth)
                foreach (var dow in daysOfWeek)
                    expressions.Add(Cronos(second, minute, hour, dom, month, dow));
        }
        return new CronSchedule([.. expressions], years);
    }

    private static bool IsRestricted(string dayField) => dayField is not ("*" or "?");

    /// <summary>
    /// Full month and day names as supercronic accepts them (any case; <c>FRIDAY#3</c>, <c>fridayL</c>) become
    /// the three-letter names Cronos knows.
    /// </summary>
    private static string FullNames(string field, string[] names) =>
        Letters().Replace(field, match =>
        {
            var word = match.Value;
            foreach (var name in names)
            {
                if (word.Equals(name, StringComparison.OrdinalIgnoreCase)) return name[..3];
                // A full day name before the L of "last" (supercronic: `fridayl`).
                if (word.Length == name.Length + 1 && word[^1] is 'l' or 'L' && word.StartsWith(name, StringComparison.OrdinalIgnoreCase))
                    return name[..3] + "L";
            }
            return word;
        });

    /// <summary>
    /// A day field as the list items Cronos can take in one expression: the plain items (numbers, ranges, steps)
    /// together, and each special item (L, W, nL, n#k) on its own, as supercronic parses each list item on its own.
    /// </summary>
    private static List<string> SplitSpecial(string field, Func<string, bool> special)
    {
        var items = field.Split(',');
        if (items.Length == 1 || !items.Any(special)) return [field];
        var parts = new List<string>();
        var plain = new StringBuilder();
        foreach (var item in items)
        {
            if (item.Length == 0) throw new FormatException($"'{field}' has an empty list item");
            if (special(item)) parts.Add(item);
            else plain.Append(plain.Length > 0 ? "," : "").Append(item);
        }
        if (plain.Length > 0) parts.Insert(0, plain.ToString());
        return parts;
    }

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
