using System.Globalization;
using System.Security.Cryptography;
using System.Text.RegularExpressions;

namespace InfraTools.Releases;

/// <summary>
/// Release ids: the UTC time of the publish to the second and four random hex digits
/// (<c>20261201T120000Z-3f2a</c>). They sort by time as plain strings. A new id always sorts after every existing
/// one: when the clock says a second that is not later than the newest id's (two publishes in one second, or the
/// clock stepped back), the new id takes the newest id's second plus one, so "newest" and "older than" are the
/// order the releases were published in.
/// </summary>
public static partial class ReleaseIds
{
    private const string TimeFormat = "yyyyMMdd'T'HHmmss'Z'";

    [GeneratedRegex(@"^(\d{8}T\d{6}Z)-[0-9a-f]{4}$", RegexOptions.CultureInvariant)]
    private static partial Regex Pattern();

    /// <summary>True for a name that is a release id.</summary>
    public static bool IsId(string name) => TryParseTime(name, out _);

    /// <summary>The publish time an id carries.</summary>
    public static bool TryParseTime(string name, out DateTime utc)
    {
        utc = default;
        var match = Pattern().Match(name);
        return match.Success && DateTime.TryParseExact(match.Groups[1].Value, TimeFormat, CultureInfo.InvariantCulture,
            DateTimeStyles.AdjustToUniversal | DateTimeStyles.AssumeUniversal, out utc);
    }

    /// <summary>A new id for a publish at <paramref name="now"/> that sorts after <paramref name="newestExisting"/>.</summary>
    public static string New(DateTime now, string? newestExisting)
    {
        var time = now.ToUniversalTime();
        time = new DateTime(time.Ticks - time.Ticks % TimeSpan.TicksPerSecond, DateTimeKind.Utc);
        if (newestExisting is not null && TryParseTime(newestExisting, out var newest) && time <= newest) time = newest.AddSeconds(1);
        var id = time.ToString(TimeFormat, CultureInfo.InvariantCulture) + "-" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(2));
        return id;
    }
}
