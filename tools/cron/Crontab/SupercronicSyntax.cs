using System.Text.RegularExpressions;

namespace InfraTools.Cron.Crontab;

/// <summary>
/// What supercronic itself accepts, for <c>cron -test --strict</c>: a port of the grammar of its cronexpr
/// library (cronexpr_parse.go: the value patterns and layouts per field, ParseStrict's field counts, its
/// macros) and of crontab.go's job-line reading (7, 6, 5, then 1 field: the first reading that parses wins).
/// cron accepts more (wrap-around ranges, weekday ranges ending in 7, <c>L-3</c>, <c>@midnight</c>, steps
/// larger than the field); this tells which lines supercronic would reject or read differently.
/// </summary>
public static class SupercronicSyntax
{
    private sealed record Field(string Name, int Min, int Max, string Value, Func<string, int> Atoi);

    private static readonly Dictionary<string, int> MonthTokens = Tokens(
        ("01", 1), ("1", 1), ("jan", 1), ("january", 1), ("02", 2), ("2", 2), ("feb", 2), ("february", 2),
        ("03", 3), ("3", 3), ("mar", 3), ("march", 3), ("04", 4), ("4", 4), ("apr", 4), ("april", 4),
        ("05", 5), ("5", 5), ("may", 5), ("06", 6), ("6", 6), ("jun", 6), ("june", 6),
        ("07", 7), ("7", 7), ("jul", 7), ("july", 7), ("08", 8), ("8", 8), ("aug", 8), ("august", 8),
        ("09", 9), ("9", 9), ("sep", 9), ("september", 9), ("10", 10), ("oct", 10), ("october", 10),
        ("11", 11), ("nov", 11), ("november", 11), ("12", 12), ("dec", 12), ("december", 12));

    private static readonly Dictionary<string, int> DowTokens = Tokens(
        ("0", 0), ("sun", 0), ("sunday", 0), ("1", 1), ("mon", 1), ("monday", 1), ("2", 2), ("tue", 2), ("tuesday", 2),
        ("3", 3), ("wed", 3), ("wednesday", 3), ("4", 4), ("thu", 4), ("thursday", 4), ("5", 5), ("fri", 5), ("friday", 5),
        ("6", 6), ("sat", 6), ("saturday", 6), ("7", 0));

    private static Dictionary<string, int> Tokens(params (string, int)[] pairs) => pairs.ToDictionary(p => p.Item1, p => p.Item2, StringComparer.Ordinal);

    /// <summary>cronexpr's numberTokens: 0-59, 00-09 and the years 1970-2099; anything else is 0.</summary>
    private static int Atoi(string s)
    {
        if (s.Length is 1 or 2 && int.TryParse(s, out var n) && n is >= 0 and <= 59 && (s.Length == 1 || s[0] != '0' || n <= 9)) return n;
        if (s.Length == 4 && int.TryParse(s, out var year) && year is >= 1970 and <= 2099) return year;
        return 0;
    }

    private static readonly Field Second = new("second", 0, 59, "0?[0-9]|[1-5][0-9]", Atoi);
    private static readonly Field Minute = new("minute", 0, 59, "0?[0-9]|[1-5][0-9]", Atoi);
    private static readonly Field Hour = new("hour", 0, 23, "0?[0-9]|1[0-9]|2[0-3]", Atoi);
    private static readonly Field DayOfMonth = new("day-of-month", 1, 31, "0?[1-9]|[12][0-9]|3[01]", Atoi);
    private static readonly Field Month = new("month", 1, 12,
        "0?[1-9]|1[012]|jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec|january|february|march|april|march|april|june|july|august|september|october|november|december",
        s => MonthTokens.GetValueOrDefault(s));
    private static readonly Field DayOfWeek = new("day-of-week", 0, 6,
        "0?[0-7]|sun|mon|tue|wed|thu|fri|sat|sunday|monday|tuesday|wednesday|thursday|friday|saturday",
        s => DowTokens.GetValueOrDefault(s));
    private static readonly Field Year = new("year", 1970, 2099, "19[789][0-9]|20[0-9]{2}", Atoi);

    /// <summary>cronexpr's cronNormalizer: its macros (no @midnight), replaced wherever they appear.</summary>
    private static readonly (string Macro, string Fields)[] Macros =
    [
        ("@yearly", "0 0 0 1 1 * *"), ("@annually", "0 0 0 1 1 * *"), ("@monthly", "0 0 0 1 * * *"),
        ("@weekly", "0 0 0 * * 0 *"), ("@daily", "0 0 0 * * * *"), ("@hourly", "0 0 * * * * *"),
    ];

    public static string MacroList => string.Join(", ", Macros.Select(m => m.Macro));

    private static readonly int[] FieldCounts = [7, 6, 5, 1];

    private static readonly Regex Words = new(@"\S+", RegexOptions.CultureInvariant);
    private static readonly Dictionary<string, Regex> Layouts = [];

    private static Regex Layout(string layout, Field field)
    {
        var pattern = layout.Replace("%value%", field.Value, StringComparison.Ordinal);
        lock (Layouts)
        {
            if (!Layouts.TryGetValue(pattern, out var regex)) Layouts[pattern] = regex = new Regex(pattern, RegexOptions.CultureInvariant);
            return regex;
        }
    }

    /// <summary>
    /// How supercronic reads a job line: the number of schedule fields it takes, the schedule and the command;
    /// null when it rejects the line ("bad crontab line").
    /// </summary>
    public static (int Fields, string Schedule, string Command)? ReadJobLine(string line)
    {
        var words = Words.Matches(line);
        foreach (var count in FieldCounts)
        {
            if (words.Count <= count) continue;
            var schedule = line[..(words[count - 1].Index + words[count - 1].Length)];
            if (Check(schedule) is null) return (count, schedule, line[words[count].Index..]);
        }
        return null;
    }

    /// <summary>Why supercronic's ParseStrict rejects <paramref name="schedule"/> (its own message), or null if it accepts it.</summary>
    public static string? Check(string schedule)
    {
        var cron = schedule;
        foreach (var (macro, fields) in Macros) cron = cron.Replace(macro, fields, StringComparison.Ordinal);
        var fieldsFound = Words.Matches(cron).Select(m => m.Value).ToArray();
        if (fieldsFound.Length < 5) return "missing field(s)";
        if (fieldsFound.Length > 7) return "too many fields";
        var i = 0;
        var error = fieldsFound.Length == 7 ? Generic(fieldsFound[i++], Second) : null;
        error ??= Generic(fieldsFound[i++], Minute);
        error ??= Generic(fieldsFound[i++], Hour);
        error ??= DaysOfMonth(fieldsFound[i++]);
        error ??= Generic(fieldsFound[i++], Month);
        error ??= DaysOfWeek(fieldsFound[i++]);
        if (error is null && i < fieldsFound.Length) error = Generic(fieldsFound[i], Year);
        return error;
    }

    private enum Kind { None, One, Span, All }

    private static string? Generic(string s, Field field)
    {
        var (directives, error) = Parse(s, field);
        if (error is not null) return error;
        foreach (var (kind, text) in directives)
        {
            if (kind == Kind.None) return $"syntax error in {field.Name} field: '{text}'";
            if (kind == Kind.All) return null;
        }
        return null;
    }

    private static string? DaysOfMonth(string s)
    {
        var (directives, error) = Parse(s, DayOfMonth);
        if (error is not null) return error;
        foreach (var (kind, text) in directives)
        {
            if (kind != Kind.None) continue;
            var normal = text.ToLowerInvariant();
            if (normal is "l" or "lw" || Layout("^(%value%)w$", DayOfMonth).IsMatch(normal)) continue;
            return $"syntax error in day-of-month field: '{text}'";
        }
        return null;
    }

    private static string? DaysOfWeek(string s)
    {
        var (directives, error) = Parse(s, DayOfWeek);
        if (error is not null) return error;
        foreach (var (kind, text) in directives)
        {
            if (kind != Kind.None) continue;
            var normal = text.ToLowerInvariant();
            if (Layout("^(%value%)l$", DayOfWeek).IsMatch(normal) || Layout("^(%value%)#([1-5])$", DayOfWeek).IsMatch(normal)) continue;
            return $"syntax error in day-of-week field: '{text}'";
        }
        return null;
    }

    /// <summary>cronexpr's genericFieldParse: each comma-separated entry classified, or an interval error.</summary>
    private static (List<(Kind Kind, string Text)> Directives, string? Error) Parse(string s, Field field)
    {
        var entries = s.Split(',', StringSplitOptions.RemoveEmptyEntries);
        if (entries.Length == 0) return ([], $"{field.Name} field: missing directive");
        var directives = new List<(Kind, string)>();
        foreach (var entry in entries)
        {
            var normal = entry.ToLowerInvariant();
            if (normal is "*" or "?")
            {
                directives.Add((Kind.All, entry));
                continue;
            }
            if (Layout("^(%value%)$", field).IsMatch(normal))
            {
                directives.Add((Kind.One, entry));
                continue;
            }
            var m = Layout("^(%value%)-(%value%)$", field).Match(normal);
            if (m.Success)
            {
                var (first, last) = (field.Atoi(m.Groups[1].Value), field.Atoi(m.Groups[2].Value));
                if (last < first) return ([], $"invalid interval {normal} (normalized to {first}-{last})");
                directives.Add((Kind.Span, entry));
                continue;
            }
            m = Layout(@"^\*/(\d+)$", field).Match(normal);
            if (!m.Success) m = Layout(@"^(%value%)/(\d+)$", field).Match(normal);
            if (!m.Success) m = Layout(@"^(%value%)-(%value%)/(\d+)$", field).Match(normal);
            if (m.Success)
            {
                var step = Atoi(m.Groups[m.Groups.Count - 1].Value);
                if (step < 1 || step > field.Max) return ([], $"invalid interval {normal}");
                directives.Add((Kind.Span, entry));
                continue;
            }
            directives.Add((Kind.None, entry));
        }
        return (directives, null);
    }
}
