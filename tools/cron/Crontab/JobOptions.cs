using InfraTools.Time;
using System.Text.RegularExpressions;
using InfraTools.Cron.Logging;

namespace InfraTools.Cron.Crontab;

/// <summary>
/// Per-job options, given in a comment directly above the job (supercronic and other crons read it as a plain
/// comment, so the crontab stays portable):
/// <c># cron: name=content-pull timeout=5m jitter=10s run-at-start</c>
/// </summary>
public sealed partial record JobOptions(string? Name = null, TimeSpan? Timeout = null, TimeSpan Jitter = default, bool RunAtStart = false)
{
    public static readonly JobOptions None = new();

    /// <summary>The known options, for error messages and docs/cron.md.</summary>
    public const string Syntax = "name=NAME timeout=DURATION jitter=DURATION run-at-start";

    [GeneratedRegex(@"^#\s*cron:(.*)$")]
    private static partial Regex OptionsComment();

    [GeneratedRegex(@"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")]
    private static partial Regex ValidName();

    private static readonly string[] Keys = ["name=", "timeout=", "jitter="];

    /// <summary>
    /// The options text of a "# cron: ..." comment, or null for an ordinary comment. It is our options line only
    /// when at least one of its words is a known option (name=, timeout=, jitter=, run-at-start): a comment such as
    /// "# cron: nightly backup" stays a comment, as it is for supercronic; "# cron: name=x colour=red" is an
    /// options line with an unknown option.
    /// </summary>
    public static string? OptionsText(string commentLine)
    {
        if (OptionsComment().Match(commentLine) is not { Success: true } match) return null;
        var text = match.Groups[1].Value;
        var known = text.Split([' ', '\t'], StringSplitOptions.RemoveEmptyEntries)
            .Any(w => w == "run-at-start" || Keys.Any(k => w.StartsWith(k, StringComparison.Ordinal)));
        return known ? text : null;
    }

    /// <summary>A "# cron:" comment that is not an options line (no known option in it).</summary>
    public static bool LooksLikeOptions(string commentLine) => OptionsComment().IsMatch(commentLine) && OptionsText(commentLine) is null;

    public static bool IsValidName(string name) => ValidName().IsMatch(name);

    /// <summary>Parses "name=x timeout=5m jitter=10s run-at-start"; throws FormatException with a message for the operator.</summary>
    public static JobOptions Parse(string text)
    {
        var options = None;
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var token in text.Split([' ', '\t'], StringSplitOptions.RemoveEmptyEntries))
        {
            var (key, value) = token.Split('=', 2) is [var k, var v] ? (k, v) : (token, null);
            if (!seen.Add(key)) throw new FormatException($"option '{key}' is given twice");
            options = (key, value) switch
            {
                ("run-at-start", null) => options with { RunAtStart = true },
                ("name", { } name) when IsValidName(name) => options with { Name = name },
                ("name", _) => throw new FormatException(
                    $"name '{value}' must be 1 to 64 letters, digits or _ . : - (it becomes the job label of the metrics)"),
                ("timeout", { } d) => options with { Timeout = Duration(key, d, allowZero: false) },
                ("jitter", { } d) => options with { Jitter = Duration(key, d, allowZero: true) },
                _ => throw new FormatException($"unknown option '{token}' (known: {Syntax})"),
            };
        }
        return options;
    }

    private static TimeSpan Duration(string key, string text, bool allowZero)
    {
        if (!GoDuration.TryParse(text, out var duration) || duration < TimeSpan.Zero || (!allowZero && duration == TimeSpan.Zero))
            throw new FormatException($"{key} '{text}' is not a {(allowZero ? "" : "positive ")}duration such as 90s, 5m or 1h30m");
        return duration;
    }
}
