using System.Globalization;
using System.Text;

namespace InfraTools.Cron.Logging;

/// <summary>
/// Times written the way Go (and so supercronic) writes them, so that log lines stay the same:
/// "2021-03-14 01:00:00 -0800 PST"; RFC 3339 for the log's time field. Durations: InfraTools.Time.GoDuration.
/// </summary>
public static class GoFormat
{
    private const long NanosecondsPerTick = 100;

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
