using System.Globalization;
using System.Text.RegularExpressions;
using InfraTools.S3;

namespace InfraTools.Backup;

/// <summary>
/// Snapshot backups: each push with --snapshot goes to PREFIX/yyyyMMddTHHmmssZ/, and only when every file of
/// it is uploaded does it get the marker object PREFIX/NAME/.backup-complete. Restores and pruning only count
/// complete snapshots, so an interrupted push is never mistaken for a backup.
/// </summary>
public static partial class Snapshots
{
    public const string CompleteMarker = ".backup-complete";

    public static string NewName(DateTimeOffset now) => now.UtcDateTime.ToString("yyyyMMdd'T'HHmmss'Z'", CultureInfo.InvariantCulture);

    public static bool IsName(string text) => NamePattern().IsMatch(text);

    /// <summary>Snapshot names found under <paramref name="prefix"/>, oldest first, and whether each is complete.</summary>
    public static List<(string Name, bool Complete)> Find(IEnumerable<S3Object> listing, string prefix)
    {
        var found = new SortedDictionary<string, bool>(StringComparer.Ordinal);
        foreach (var item in listing)
        {
            var rest = item.Key[prefix.Length..];
            var slash = rest.IndexOf('/');
            if (slash < 0 || !IsName(rest[..slash])) continue;
            var name = rest[..slash];
            found[name] = (found.TryGetValue(name, out var complete) && complete) || rest[(slash + 1)..] == CompleteMarker;
        }
        return found.Select(f => (f.Key, f.Value)).ToList();
    }

    [GeneratedRegex(@"^\d{8}T\d{6}Z$")]
    private static partial Regex NamePattern();
}
