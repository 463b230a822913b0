using System.Globalization;
using System.Text;

namespace InfraTools.Cron.Logging;

/// <summary>
/// Durations and times written the way Go (and so supercronic) writes them, so that log lines stay the same:
/// "1.009438854s", "2m0s", "500ms"; "2021-03-14 01:00:00 -0800 PST"; RFC 3339 for the log's time field.
/// </summary>
public static class GoFormat
{
    private const long NanosecondsPerTick = 100;

    /// <summary>Go's time.Duration.String().</summary>
    public static string Duration(TimeSpan duration)
    {
        var nanoseconds = duration.Ticks * NanosecondsPerTick;
        var negative = nanoseconds < 0;
        var u = (ulong)(negative ? -nanoseconds : nanoseconds);
        var buffer = new char[32];
        var w = buffer.Length;
        if (u < 1_000_000_000UL)
        {
            int precision;
            buffer[--w] = 's';
            if (u == 0) return "0s";
            if (u < 1_000UL) { precision = 0; buffer[--w] = 'n'; }
            else if (u < 1_000_000UL) { precision = 3; buffer[--w] = 'µ'; }
            else { precision = 6; buffer[--w] = 'm'; }
            (w, u) = FormatFraction(buffer, w, u, precision);
            w = FormatInteger(buffer, w, u);
        }
        else
        {
            buffer[--w] = 's';
            (w, u) = FormatFraction(buffer, w, u, 9);
            w = FormatInteger(buffer, w, u % 60);
            u /= 60;
            if (u > 0)
            {
                buffer[--w] = 'm';
                w = FormatInteger(buffer, w, u % 60);
                u /= 60;
                if (u > 0)
                {
                    buffer[--w] = 'h';
                    w = FormatInteger(buffer, w, u);
                }
            }
        }
        if (negative) buffer[--w] = '-';
        return new string(buffer, w, buffer.Length - w);
    }

    private static (int, ulong) FormatFraction(char[] buffer, int w, ulong v, int precision)
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
        return (w, v);
    }

    private static int FormatInteger(char[] buffer, int w, ulong v)
    {
        if (v == 0)
        {
            buffer[--w] = '0';
            return w;
        }
        while (v > 0)
        {
            buffer[--w] = (char)('0' + (int)(v % 10));
            v /= 10;
        }
        return w;
    }

    /// <summary>
    /// Parses a Go duration ("300ms", "1.5h", "2h45m", "10s"); a bare "0" is zero. Units: ns, us, µs, ms, s, m, h.
    /// </summary>
    public static bool TryParseDuration(string text, out TimeSpan duration)
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
            var unit = s[unitStart..i];
            decimal scale = unit switch
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
            if (!decimal.TryParse(number, NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out var value)) return false;
            total += value * scale;
            if (total > (decimal)TimeSpan.MaxValue.Ticks * NanosecondsPerTick) return false;
        }
        var ticks = (long)(total / NanosecondsPerTick);
        duration = TimeSpan.FromTicks(negative ? -ticks : ticks);
        return true;
    }

    /// <summary>Go's time.Time.String() without the monotonic part: "2021-03-14 01:00:00 -0800 PST".</summary>
    public static string Time(DateTime utc, TimeZoneInfo zone)
    {
        var offset = zone.GetUtcOffset(utc);
        var local = utc + offset;
        var sb = new StringBuilder(40);
        sb.Append(local.ToString("yyyy-MM-dd HH:mm:ss", CultureInfo.InvariantCulture));
        var fraction = local.Ticks % TimeSpan.TicksPerSecond;
        if (fraction != 0) sb.Append('.').Append((fraction * NanosecondsPerTick).ToString("D9", CultureInfo.InvariantCulture).TrimEnd('0'));
        sb.Append(' ').Append(NumericOffset(offset, colon: false)).Append(' ').Append(Abbreviation(zone, utc, offset));
        return sb.ToString();
    }

    /// <summary>RFC 3339 in the given zone, "Z" for UTC: logrus' default time format.</summary>
    public static string Rfc3339(DateTimeOffset time) =>
        time.ToString("yyyy-MM-ddTHH:mm:ss", CultureInfo.InvariantCulture) +
        (time.Offset == TimeSpan.Zero ? "Z" : NumericOffset(time.Offset, colon: true));

    private static string NumericOffset(TimeSpan offset, bool colon)
    {
        var sign = offset < TimeSpan.Zero ? '-' : '+';
        var abs = offset.Duration();
        return colon
            ? $"{sign}{abs.Hours + abs.Days * 24:D2}:{abs.Minutes:D2}"
            : $"{sign}{abs.Hours + abs.Days * 24:D2}{abs.Minutes:D2}";
    }

    /// <summary>The zone's abbreviation (CET, CEST, UTC) where the system has one, else the numeric offset as Go prints it.</summary>
    private static string Abbreviation(TimeZoneInfo zone, DateTime utc, TimeSpan offset)
    {
        if (offset == TimeSpan.Zero && !zone.SupportsDaylightSavingTime) return "UTC";
        var name = zone.IsDaylightSavingTime(utc) ? zone.DaylightName : zone.StandardName;
        return name.Length is > 0 and <= 6 && !name.Contains(' ') ? name : NumericOffset(offset, colon: false);
    }
}
