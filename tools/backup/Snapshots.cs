using System.Globalization;
using System.Text.RegularExpressions;
using InfraTools.Storage;

namespace InfraTools.Backup;

/// <summary>One snapshot under a prefix; <see cref="Time"/> is the server's time of its completion (or of its newest object).</summary>
public sealed record SnapshotInfo(string Name, bool Complete, DateTimeOffset Time);

/// <summary>
/// Snapshot backups: each push with --snapshot goes to PREFIX/yyyyMMddTHHmmssZ/, and only when every file of
/// it is uploaded does it get the marker object PREFIX/NAME/.backup-complete. Restores and pruning (Tsdb/Retention.cs) only count
/// complete snapshots, so an interrupted push is never mistaken for a backup. Snapshots are ordered by the server's
/// clock (when their marker was written), never by their names, which come from the pushing host's clock.
/// </summary>
public static partial class Snapshots
{
    public const string CompleteMarker = ".backup-complete";

    public static string NewName(DateTimeOffset now) => now.UtcDateTime.ToString("yyyyMMdd'T'HHmmss'Z'", CultureInfo.InvariantCulture);

    public static bool IsName(string text) => NamePattern().IsMatch(text);

    /// <summary>
    /// The snapshots under <paramref name="prefix"/>: name, whether complete, and when, by the server's clock: the
    /// complete marker's Last-Modified (for an incomplete one, its newest object's). Oldest first by that time, so a
    /// snapshot named from a host whose clock was ahead is not taken for the newest forever.
    /// </summary>
    public static List<SnapshotInfo> Find(IEnumerable<StoredObject> listing, string prefix)
    {
        var found = new Dictionary<string, SnapshotInfo>(StringComparer.Ordinal);
        foreach (var item in listing)
        {
            var rest = item.Key[prefix.Length..];
            var slash = rest.IndexOf('/');
            if (slash < 0 || !IsName(rest[..slash])) continue;
            var name = rest[..slash];
            var isMarker = rest[(slash + 1)..] == CompleteMarker;
            var current = found.TryGetValue(name, out var known) ? known : new SnapshotInfo(name, false, DateTimeOffset.MinValue);
            found[name] = isMarker
                ? current with { Complete = true, Time = item.LastModified }
                : current.Complete || current.Time >= item.LastModified ? current : current with { Time = item.LastModified };
        }
        return found.Values.OrderBy(s => s.Time).ThenBy(s => s.Name, StringComparer.Ordinal).ToList();
    }

    [GeneratedRegex(@"^\d{8}T\d{6}Z$")]
    private static partial Regex NamePattern();
}
