using System.Globalization;
using System.Text.RegularExpressions;
using InfraTools.Cli;

namespace InfraTools.Time;

/// <summary>Durations written like Go's (and so Traefik's and Docker's): 500ms, 60s, 2m, 1m30s, 1h.</summary>
public static partial class GoDuration
{
    public static TimeSpan Parse(string text, string optionName)
    {
        var trimmed = text.Trim();
        if (trimmed == "0") return TimeSpan.Zero;
        var match = DurationPattern().Match(trimmed);
        if (!match.Success)
            throw new UsageException($"{optionName} '{text}' is not a duration: write a number with a unit, e.g. 60s, 2m, 1m30s or 500ms");
        var total = TimeSpan.Zero;
        foreach (Capture part in match.Groups["part"].Captures)
        {
            var unitAt = part.Value.IndexOfAny(['m', 's', 'h']);
            var number = double.Parse(part.Value[..unitAt], NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture);
            total += part.Value[unitAt..] switch
            {
                "ms" => TimeSpan.FromMilliseconds(number),
                "s" => TimeSpan.FromSeconds(number),
                "m" => TimeSpan.FromMinutes(number),
                _ => TimeSpan.FromHours(number),
            };
        }
        if (total > TimeSpan.FromDays(1))
            throw new UsageException($"{optionName} '{text}' is longer than a day: give a duration such as 60s or 5m");
        return total;
    }

    /// <summary>The shortest readable form, for log lines: 500ms, 2s, 1.5s, 2m, 1m30s.</summary>
    public static string Format(TimeSpan value)
    {
        if (value < TimeSpan.FromSeconds(1)) return $"{value.TotalMilliseconds:0}ms";
        if (value < TimeSpan.FromMinutes(1)) return $"{value.TotalSeconds.ToString("0.#", CultureInfo.InvariantCulture)}s";
        var minutes = (int)value.TotalMinutes;
        var seconds = value.TotalSeconds - minutes * 60;
        return seconds < 0.05 ? $"{minutes}m" : $"{minutes}m{seconds.ToString("0.#", CultureInfo.InvariantCulture)}s";
    }

    [GeneratedRegex(@"^(?<part>\d+(\.\d+)?(ms|s|m|h))+$")]
    private static partial Regex DurationPattern();
}
