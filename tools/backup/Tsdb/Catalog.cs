using InfraTools.Storage;

namespace InfraTools.Backup.Tsdb;

public enum SnapshotKind
{
    /// <summary>A full copy at NAME/... with its NAME/.backup-complete marker (what `backup push --snapshot` wrote before).</summary>
    FullCopy,
    /// <summary>A manifest at snapshots/NAME.json naming shared blocks under blocks/.</summary>
    Incremental,
}

/// <summary>
/// A snapshot found under the prefix. <see cref="Time"/> is the server's: the Last-Modified of the full copy's
/// marker or of the manifest (for an unmarked full copy, of its newest object). <see cref="Complete"/>: a full copy
/// has its marker; an incremental snapshot's manifest could be read and every object it names is there with its
/// size and ETag. <see cref="Unreadable"/>: a manifest that could not be read or parsed (damaged, or written by a
/// newer version): never deleted, and while one exists no block is deleted either (its references are unknown).
/// </summary>
public sealed class SnapshotRef(string name, SnapshotKind kind, DateTimeOffset time, bool complete, bool unreadable = false, string? problem = null)
{
    public string Name { get; } = name;
    public SnapshotKind Kind { get; } = kind;
    public DateTimeOffset Time { get; } = time;
    public bool Complete { get; } = complete;
    public bool Unreadable { get; } = unreadable;
    public string? Problem { get; } = problem;

    /// <summary>This snapshot found incomplete (objects missing) or unreadable, for a reason.</summary>
    public SnapshotRef Damaged(bool unreadable, string problem) => new(Name, Kind, Time, complete: false, unreadable, problem);

    public override string ToString() => Kind == SnapshotKind.FullCopy ? $"{Name}/ (full copy)" : BucketLayout.ManifestKey(Name);
}

/// <summary>The snapshots under a prefix, of both kinds, and the checks that tell whether one can be restored.</summary>
public static class Catalog
{
    /// <summary>
    /// Both kinds of snapshots in a listing of the whole prefix, oldest first by the server's time. Incremental
    /// ones are not checked here (<see cref="Complete"/> is true when their manifest exists); see <see cref="Check"/>.
    /// </summary>
    public static List<SnapshotRef> List(IReadOnlyList<StoredObject> listing)
    {
        // Full copies: the rule of Snapshots.Find, on the same listing (keys relative to the prefix).
        var found = Snapshots.Find(listing, "")
            .Select(s => new SnapshotRef(s.Name, SnapshotKind.FullCopy, s.Time, s.Complete, problem: s.Complete ? null : "no completion marker (an interrupted push)"))
            .ToList();
        foreach (var item in listing)
            if (BucketLayout.ManifestName(item.Key) is { } name)
                found.Add(new SnapshotRef(name, SnapshotKind.Incremental, item.LastModified, true));
        return Order(found);
    }

    public static List<SnapshotRef> Order(IEnumerable<SnapshotRef> snapshots) =>
        snapshots.OrderBy(s => s.Time).ThenBy(s => s.Name, StringComparer.Ordinal).ThenBy(s => (int)s.Kind).ToList();

    /// <summary>What is wrong with an incremental snapshot in this listing: objects its manifest names that are missing or hold other content. Empty when it can be restored.</summary>
    public static List<string> Check(SnapshotManifest manifest, IReadOnlyDictionary<string, StoredObject> objects)
    {
        var problems = new List<string>();
        foreach (var file in manifest.Blocks.SelectMany(b => b.Files))
        {
            if (!objects.TryGetValue(file.Key, out var stored)) problems.Add($"{file.Key} is missing");
            else if (stored.Size != file.Size || stored.ETag != file.ETag)
                problems.Add($"{file.Key} holds other content (size {stored.Size}, ETag {stored.ETag}; the manifest says {file.Size}, {file.ETag})");
        }
        return problems;
    }

    public static Dictionary<string, StoredObject> Index(IReadOnlyList<StoredObject> listing)
    {
        var objects = new Dictionary<string, StoredObject>(StringComparer.Ordinal);
        foreach (var item in listing) objects[item.Key] = item;
        return objects;
    }
}
