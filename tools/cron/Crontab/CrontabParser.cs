using System.Text;
using System.Text.RegularExpressions;
using Serilog.Events;

namespace InfraTools.Cron.Crontab;

/// <summary>One job of a crontab.</summary>
/// <param name="Line">1-based line number in the file.</param>
/// <param name="Position">0-based index among the jobs (supercronic's job.position log field).</param>
/// <param name="Schedule">The schedule exactly as written.</param>
/// <param name="Command">The rest of the line, run as $SHELL -c COMMAND.</param>
/// <param name="Name">The name option, else a default that never contains the command's arguments: the metrics label.</param>
public sealed record CrontabJob(int Line, int Position, string Schedule, string Command, CronSchedule Expression, JobOptions Options, string Name);

/// <summary>A parsed crontab. As in supercronic, environment lines, SHELL and CRON_TZ apply to every job (the last value wins).</summary>
public sealed record CrontabFile(
    string Path,
    IReadOnlyList<CrontabJob> Jobs,
    IReadOnlyDictionary<string, string> Environment,
    string Shell,
    TimeZoneInfo TimeZone);

public sealed record CrontabError(int Line, string Message);

public sealed record CrontabNotice(LogEventLevel Level, string Message);

/// <param name="Incompatibilities">With strict: the lines supercronic would reject or read differently (each with why).</param>
public sealed record CrontabParseResult(CrontabFile? Crontab, IReadOnlyList<CrontabError> Errors, IReadOnlyList<CrontabNotice> Notices, IReadOnlyList<string> Debug,
    IReadOnlyList<CrontabError> Incompatibilities);

/// <summary>Reads crontabs the way supercronic does, plus the "# cron:" job options.</summary>
public static partial class CrontabParser
{
    public const string DefaultShell = "/bin/sh";

    // supercronic: `^([^\s=]+)\s*=\s*(.*)$`
    [GeneratedRegex(@"^([^\s=]+)\s*=\s*(.*)$")]
    private static partial Regex EnvironmentLine();

    [GeneratedRegex(@"\S+")]
    private static partial Regex Word();

    /// <summary>Field counts tried in supercronic's order: seconds...year, minutes...year, minutes...day of week, macro.</summary>
    private static readonly int[] FieldCounts = [7, 6, 5, 1];

    /// <summary>supercronic reads the crontab with Go's bufio.Scanner, which fails on a line longer than this.</summary>
    public const int SupercronicMaxLine = 64 * 1024;

    /// <summary>
    /// Parses a crontab. With <paramref name="strict"/>, also lists what supercronic would do differently
    /// (<see cref="CrontabParseResult.Incompatibilities"/>), for <c>cron -test --strict</c>.
    /// </summary>
    public static CrontabParseResult Parse(string text, string path, TimeZoneInfo defaultZone, bool strict = false)
    {
        var errors = new List<CrontabError>();
        var incompatible = new List<CrontabError>();
        var notices = new List<CrontabNotice>();
        var debug = new List<string>();
        var environment = new Dictionary<string, string>(StringComparer.Ordinal);
        var shell = DefaultShell;
        var zone = defaultZone;
        var jobs = new List<(int Line, string Schedule, string Command, CronSchedule Expression, JobOptions Options)>();
        (int Line, JobOptions Options)? pending = null;

        var lines = text.Split('\n');
        for (var i = 0; i < lines.Length; i++)
        {
            var number = i + 1;
            var line = lines[i].EndsWith('\r') ? lines[i][..^1] : lines[i];
            line = line.TrimStart(' ', '\t');
            if (i == lines.Length - 1 && line.Length == 0) break;
            if (strict && RawText.ByteCount(lines[i]) >= SupercronicMaxLine)
                incompatible.Add(new CrontabError(number, $"supercronic cannot read a line of {SupercronicMaxLine:N0} bytes or more (bufio.Scanner: token too long) and exits"));

            void Orphaned()
            {
                if (pending is { } p)
                    errors.Add(new CrontabError(p.Line, "the '# cron:' options comment must be directly above the job it is for"));
                pending = null;
            }

            if (line.Length == 0)
            {
                Orphaned();
                continue;
            }
            if (line[0] == '#')
            {
                Orphaned();
                if (JobOptions.LooksLikeOptions(line)) debug.Add($"line {number}: a '# cron:' comment without a known option ({JobOptions.Syntax}): read as a plain comment");
                if (JobOptions.OptionsText(line) is { } optionsText)
                {
                    try
                    {
                        pending = (number, JobOptions.Parse(optionsText));
                    }
                    catch (FormatException ex)
                    {
                        errors.Add(new CrontabError(number, $"bad job options: {ex.Message}"));
                        pending = null;
                    }
                }
                continue;
            }

            var env = EnvironmentLine().Match(line);
            if (env.Success)
            {
                Orphaned();
                var key = env.Groups[1].Value;
                var value = env.Groups[2].Value;
                // Remove quotes (as Vixie cron and supercronic do).
                if (value.Length > 1 && value[0] is '"' or '\'' && value[^1] == value[0]) value = value[1..^1];
                if (strict && env.Groups[2].Value.Length == 0)
                    incompatible.Add(new CrontabError(number, $"supercronic crashes on an empty value ('{key}='): give a value, e.g. {key}=\"\""));
                switch (key)
                {
                    case "SHELL":
                        notices.Add(new CrontabNotice(LogEventLevel.Information, $"processes will be spawned using shell: {value}"));
                        shell = value;
                        break;
                    case "USER":
                        notices.Add(new CrontabNotice(LogEventLevel.Warning, $"processes will NOT be spawned as USER={value}"));
                        break;
                    case "CRON_TZ":
                        if (FindZone(value) is { } found)
                        {
                            zone = found;
                            notices.Add(new CrontabNotice(LogEventLevel.Information, $"processes will be spawned using TZ: {(value.Length == 0 ? "UTC" : value)}"));
                        }
                        else
                            errors.Add(new CrontabError(number, $"CRON_TZ={value}: unknown time zone (use a name such as Europe/Zurich; the image needs tzdata)"));
                        break;
                }
                environment[key] = value;
                continue;
            }

            var job = ParseJobLine(line, number, debug, out var error);
            if (job is null)
            {
                errors.Add(new CrontabError(number, error!));
                pending = null;
                continue;
            }
            if (strict && Incompatibility(line, job.Value.Schedule, job.Value.FieldCount) is { } why) incompatible.Add(new CrontabError(number, why));
            jobs.Add((number, job.Value.Schedule, job.Value.Command, job.Value.Expression, pending?.Options ?? JobOptions.None));
            pending = null;
        }
        if (pending is { } last)
            errors.Add(new CrontabError(last.Line, "the '# cron:' options comment must be directly above the job it is for"));

        var named = new List<CrontabJob>();
        var names = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var (line, schedule, command, expression, options) in jobs)
        {
            var name = options.Name ?? DefaultName(command, line);
            if (names.TryGetValue(name, out var other))
            {
                errors.Add(new CrontabError(line, $"job name '{name}' is already used by the job on line {other} (names must be unique: they label the metrics)"));
                continue;
            }
            names[name] = line;
            named.Add(new CrontabJob(line, named.Count, schedule, command, expression, options, name));
        }

        var crontab = errors.Count == 0 ? new CrontabFile(path, named, environment, shell, zone) : null;
        return new CrontabParseResult(crontab, errors.OrderBy(e => e.Line).ToList(), notices, debug, incompatible);
    }

    /// <summary>
    /// CRON_TZ as Go's time.LoadLocation reads it: an IANA name, "UTC", "Local" (cron's own zone: TZ or
    /// /etc/localtime) or empty (UTC). Null when the zone is unknown.
    /// </summary>
    public static TimeZoneInfo? FindZone(string name)
    {
        if (name is "" or "UTC") return TimeZoneInfo.Utc;
        if (name == "Local") return TimeZoneInfo.Local;
        try
        {
            return TimeZoneInfo.FindSystemTimeZoneById(name);
        }
        catch (Exception ex) when (ex is TimeZoneNotFoundException or InvalidTimeZoneException)
        {
            return null;
        }
    }

    /// <summary>Why supercronic would not run this job line as cron does, or null.</summary>
    private static string? Incompatibility(string line, string schedule, int fieldCount)
    {
        var theirs = SupercronicSyntax.ReadJobLine(line);
        if (theirs is null)
            return fieldCount == 1
                ? $"supercronic rejects this line: '{schedule}' is not one of its macros ({SupercronicSyntax.MacroList})"
                : $"supercronic rejects this line: {SupercronicSyntax.Check(schedule)} (schedule '{schedule}')";
        if (theirs.Value.Fields != fieldCount)
            return $"supercronic reads this line differently: as the {theirs.Value.Fields}-field schedule '{theirs.Value.Schedule}' " +
                   $"with the command '{theirs.Value.Command}' ({SupercronicSyntax.Check(schedule)} in '{schedule}')";
        return null;
    }

    private static (string Schedule, string Command, CronSchedule Expression, int FieldCount)? ParseJobLine(string line, int number, List<string> debug, out string? error)
    {
        var words = Word().Matches(line);
        string? firstError = null;
        foreach (var count in FieldCounts)
        {
            // A job needs its schedule fields and a command after them.
            if (words.Count <= count) continue;
            if (count == 1 && !words[0].Value.StartsWith('@')) continue;
            if (count > 1 && words[0].Value.StartsWith('@')) continue;
            var scheduleEnd = words[count - 1].Index + words[count - 1].Length;
            var schedule = line[..scheduleEnd];
            try
            {
                var expression = CronSchedule.Parse(Enumerable.Range(0, count).Select(i => words[i].Value).ToArray());
                debug.Add($"line {number}: parsed schedule '{schedule}' ({count} fields)");
                error = null;
                return (schedule, line[words[count].Index..], expression, count);
            }
            catch (FormatException ex)
            {
                debug.Add($"line {number}: not a {count}-field schedule: '{schedule}': {ex.Message}");
                // The 5-field reading is the one most crontabs mean; report its reason.
                if (count is 5 or 1 || firstError is null) firstError = ex.Message;
            }
        }
        error = words.Count switch
        {
            0 => "empty line",
            _ when words.Count <= (words[0].Value.StartsWith('@') ? 1 : 5) =>
                $"bad crontab line '{line}': a job is a schedule (5 to 7 fields, or a macro such as @daily) followed by a command",
            _ => $"bad crontab line '{line}': {firstError}",
        };
        return null;
    }

    /// <summary>
    /// The job's metrics label when it has no name option: the command's first word (its base name, after any
    /// VAR=value assignments) and the line number, e.g. "content-pull:12". Never the arguments, which may hold secrets.
    /// </summary>
    public static string DefaultName(string command, int line)
    {
        var words = command.Split([' ', '\t'], StringSplitOptions.RemoveEmptyEntries);
        var first = words.FirstOrDefault(w => !EnvironmentLine().IsMatch(w)) ?? "job";
        first = first.Trim('"', '\'');
        first = first[(first.LastIndexOf('/') + 1)..];
        var sb = new StringBuilder();
        foreach (var c in first)
        {
            if (sb.Length == 40) break;
            sb.Append(char.IsAsciiLetterOrDigit(c) || c is '_' or '.' or '-' ? c : '_');
        }
        if (sb.Length == 0 || !char.IsAsciiLetterOrDigit(sb[0])) sb.Insert(0, "job");
        return $"{sb}:{line}";
    }
}
