using System.Globalization;
using InfraTools.Cli;

namespace InfraTools.Time;

/// <summary>
/// Durations written the way Go writes them (and so supercronic, Traefik and Docker): parsed like Go's
/// time.ParseDuration ("300ms", "1.5h", "2h45m", a bare "0"; units ns, us, µs, ms, s, m, h; optional sign)
/// and formatted like Go's time.Duration.String() ("1.009438854s", "2m0s", "500ms"), or shorter for prose
/// ("2m", "1m30s").
/// </summary>
public static class GoDuration
{
    private const long NanosecondsPerTick = 100;

    /// <summary>Parses a Go duration; surrounding white space is ignored. False for anything else (no unit, unknown unit, overflow).</summary>
    public static bool TryParse(string text, out TimeSpan duration)
    {
        duration = TimeSpan.Zero;
        var s = text.Trim();
        if (s.Length == 0) return false;
        var negative = false;
        if (s[0] is '-' or '+')
        {
            negative = s[0] == '-';
            s = s[1..];
        }
        if (s == "0") return true;
        if (s.Length == 0) return false;
        decimal total = 0; // nanoseconds
        var i = 0;
        while (i < s.Length)
        {
            var start = i;
            while (i < s.Length && (char.IsAsciiDigit(s[i]) || s[i] == '.')) i++;
            var number = s[start..i];
            if (number.Length == 0 || number == "." || number.Count(c => c == '.') > 1) return false;
            var unitStart = i;
            while (i < s.Length && !char.IsAsciiDigit(s[i]) && s[i] != '.') i++;
            decimal scale = s[unitStart..i] switch
            {
                "ns" => 1m,
                "us" or "µs" or "μs" => 1_000m,
                "ms" => 1_000_000m,
                "s" => 1_000_000_000m,
                "m" => 60m * 1_000_000_000m,
                "h" => 3600m * 1_000_000_000m,
                _ => -1m,
            };
            if (scale < 0) return false;
            const decimal most = (decimal)long.MaxValue * NanosecondsPerTick;
            if (!decimal.TryParse(number, NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out var value) || value > most / scale) return false;
            total += value * scale;
            if (total > most) return false;
        }
        var ticks = (long)(total / NanosecondsPerTick);
        duration = TimeSpan.FromTicks(negative ? -ticks : ticks);
        return true;
    }

    /// <summary>
    /// A command-line duration (acme-restore's --timeout): a Go duration that is not negative and at most
    /// <paramref name="maximum"/>; anything else is a <see cref="UsageException"/> naming the option.
    /// </summary>
    public static TimeSpan Parse(string text, string optionName, TimeSpan maximum)
    {
        if (!TryParse(text, out var duration) || duration < TimeSpan.Zero)
            throw new UsageException($"{optionName} '{text}' is not a duration: write a number with a unit, e.g. 60s, 2m, 1m30s or 500ms");
        if (duration > maximum)
            throw new UsageException($"{optionName} '{text}' is longer than {Describe(maximum)}: give a duration such as 60s or 5m");
        return duration;
    }

    private static string Describe(TimeSpan maximum) => maximum == TimeSpan.FromDays(1) ? "a day" : Format(maximum);

    /// <summary>Go's time.Duration.String(): "0s", "500ms", "1.5s", "2m0s", "1h30m0s", "-3s".</summary>
    public static string Format(TimeSpan duration)
    {
        var nanoseconds = duration.Ticks * NanosecondsPerTick;
        var negative = nanoseconds < 0;
        var u = (ulong)(negative ? -nanoseconds : nanoseconds);
        Span<char> buffer = stackalloc char[32];
        var w = buffer.Length;
        if (u < 1_000_000_000UL)
        {
            int precision;
            buffer[--w] = 's';
            if (u == 0) return "0s";
            if (u < 1_000UL) { precision = 0; buffer[--w] = 'n'; }
            else if (u < 1_000_000UL) { precision = 3; buffer[--w] = 'µ'; }
            else { precision = 6; buffer[--w] = 'm'; }
            u = FormatFraction(buffer, ref w, u, precision);
            FormatInteger(buffer, ref w, u);
        }
        else
        {
            buffer[--w] = 's';
            u = FormatFraction(buffer, ref w, u, 9);
            FormatInteger(buffer, ref w, u % 60);
            u /= 60;
            if (u > 0)
            {
                buffer[--w] = 'm';
                FormatInteger(buffer, ref w, u % 60);
                u /= 60;
                if (u > 0)
                {
                    buffer[--w] = 'h';
                    FormatInteger(buffer, ref w, u);
                }
            }
        }
        if (negative) buffer[--w] = '-';
        return new string(buffer[w..]);
    }

    /// <summary>The shortest readable form, for prose in log lines: 500ms, 2s, 1.5s, 2m, 1m30s.</summary>
    public static string FormatShort(TimeSpan value)
    {
        if (value < TimeSpan.FromSeconds(1)) return $"{value.TotalMilliseconds:0}ms";
        if (value < TimeSpan.FromMinutes(1)) return $"{value.TotalSeconds.ToString("0.#", CultureInfo.InvariantCulture)}s";
        var minutes = (int)value.TotalMinutes;
        var seconds = value.TotalSeconds - minutes * 60;
        return seconds < 0.05 ? $"{minutes}m" : $"{minutes}m{seconds.ToString("0.#", CultureInfo.InvariantCulture)}s";
    }

    private static ulong FormatFraction(Span<char> buffer, ref int w, ulong v, int precision)
    {
        var print = false;
        for (var i = 0; i < precision; i++)
        {
            var digit = v % 10;
            print = print || digit != 0;
            if (print) buffer[--w] = (char)('0' + (int)digit);
            v /= 10;
        }
        if (print) buffer[--w] = '.';
        return v;
    }

    private static void FormatInteger(Span<char> buffer, ref int w, ulong v)
    {
        if (v == 0)
        {
            buffer[--w] = '0';
            return;
        }
        while (v > 0)
        {
            buffer[--w] = (char)('0' + (int)(v % 10));
            v /= 10;
        }
    }
}
