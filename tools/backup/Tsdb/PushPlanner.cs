using InfraTools.Storage;
namespace InfraTools.Backup.Tsdb;

/// <summary>Why a file is uploaded.</summary>
public enum UploadReason
{
    /// <summary>No object at the file's key yet: a new block (or one an interrupted push left incomplete).</summary>
    New,
    /// <summary>The block's object at that key holds other content (Prometheus rewrote meta.json or tombstones under the same ULID): a new version goes to the variant key.</summary>
    Changed,
}

public sealed class PlannedUpload(string ulid, LocalFile file, string key, UploadReason reason)
{
    public string Ulid { get; } = ulid;
    public LocalFile File { get; } = file;
    public string Key { get; } = key;
    public UploadReason Reason { get; } = reason;
}

public sealed class ReusedFile(string ulid, LocalFile file, StoredObject stored)
{
    public string Ulid { get; } = ulid;
    public LocalFile File { get; } = file;
    public StoredObject Object { get; } = stored;
}

/// <summary>What one push has to do; see <see cref="PushPlanner.Plan"/>.</summary>
public sealed class PushPlan
{
    public List<PlannedUpload> Uploads { get; } = [];
    public List<ReusedFile> Reused { get; } = [];
    /// <summary>Files whose key holds an object of another size: their ETags must be computed and the plan made again (<see cref="IsFinal"/> is false until then).</summary>
    public List<LocalFile> NeedChecksum { get; } = [];
    /// <summary>Blocks every file of which is already in the bucket: nothing of them is uploaded.</summary>
    public List<string> CompleteBlocks { get; } = [];
    /// <summary>Blocks nothing of which is in the bucket.</summary>
    public List<string> NewBlocks { get; } = [];
    /// <summary>Blocks of which some files are in the bucket (a rewritten meta.json/tombstones, or an interrupted push).</summary>
    public List<string> PartialBlocks { get; } = [];

    public bool IsFinal => NeedChecksum.Count == 0;
    public long UploadBytes => Uploads.Sum(u => u.File.Size);
    public long ReusedBytes => Reused.Sum(r => r.File.Size);

    /// <summary>The local snapshot planned for.</summary>
    public required LocalSnapshot Local { get; init; }

    /// <summary>
    /// The manifest of the snapshot: every block of the local snapshot, in its order, each file with the object
    /// that holds it. Only a plan with nothing left to upload can be turned into a manifest: the push plans again
    /// on a fresh listing after its uploads, so the manifest's sizes and ETags are what the bucket holds.
    /// </summary>
    public SnapshotManifest BuildManifest(string name, DateTimeOffset created, string? source)
    {
        if (!IsFinal || Uploads.Count > 0) throw new InvalidOperationException("a manifest is built from a plan with nothing left to upload");
        var byFile = Reused.ToDictionary(r => r.File.FullPath, r => r.Object, StringComparer.Ordinal);
        var blocks = Local.Blocks.Select(b => new ManifestBlock(b.Ulid, b.Meta.MinTime, b.Meta.MaxTime, b.Meta.Level,
            b.Files.Select(f => Entry(f, byFile[f.FullPath])).ToList())).ToList();
        return new SnapshotManifest(name, created, source, blocks);
    }

    private static ManifestFile Entry(LocalFile file, StoredObject stored) => new(file.Path, stored.Key, stored.Size, stored.ETag);
}

/// <summary>
/// Push planning, pure: which files of a local snapshot have to be uploaded and which are already in the bucket.
/// A block's file is in the bucket when the object at its key (<see cref="BucketLayout.FileKey"/>) has its
/// size, and, where its ETag is known (always for meta.json and tombstones, which Prometheus rewrites in place;
/// for index and chunks only with a full checksum scan), its ETag. Index and chunk files never change under a
/// ULID (a compaction or a tombstone cleanup writes a new block with a new ULID), so their size is the check.
/// A file whose key holds other content is uploaded to its variant key
/// (<see cref="BucketLayout.VariantKey"/>): objects that older manifests name are never overwritten.
/// </summary>
public static class PushPlanner
{
    public static PushPlan Plan(LocalSnapshot local, IReadOnlyList<StoredObject> listing)
    {
        var objects = new Dictionary<string, StoredObject>(StringComparer.Ordinal);
        foreach (var item in listing) objects[item.Key] = item;
        var plan = new PushPlan { Local = local };
        foreach (var block in local.Blocks)
        {
            int uploads = 0, reused = 0;
            foreach (var file in block.Files)
            {
                var primary = BucketLayout.FileKey(block.Ulid, file.Path);
                var atPrimary = objects.GetValueOrDefault(primary);
                if (file.ETag is null)
                {
                    if (atPrimary is null) { plan.Uploads.Add(new PlannedUpload(block.Ulid, file, primary, UploadReason.New)); uploads++; }
                    else if (atPrimary.Size == file.Size) { plan.Reused.Add(new ReusedFile(block.Ulid, file, atPrimary)); reused++; }
                    else plan.NeedChecksum.Add(file);
                    continue;
                }
                if (Holds(atPrimary, file)) { plan.Reused.Add(new ReusedFile(block.Ulid, file, atPrimary!)); reused++; continue; }
                var variant = BucketLayout.VariantKey(block.Ulid, file.Path, file.ETag);
                var atVariant = objects.GetValueOrDefault(variant);
                if (Holds(atVariant, file)) { plan.Reused.Add(new ReusedFile(block.Ulid, file, atVariant!)); reused++; }
                else if (atPrimary is null) { plan.Uploads.Add(new PlannedUpload(block.Ulid, file, primary, UploadReason.New)); uploads++; }
                else { plan.Uploads.Add(new PlannedUpload(block.Ulid, file, variant, UploadReason.Changed)); uploads++; }
            }
            if (uploads == 0 && reused == block.Files.Count) plan.CompleteBlocks.Add(block.Ulid);
            else if (reused == 0 && uploads == block.Files.Count) plan.NewBlocks.Add(block.Ulid);
            else plan.PartialBlocks.Add(block.Ulid);
        }
        return plan;
    }

    /// <summary>The snapshot name may not be taken by an existing manifest (two pushes within one second).</summary>
    public static string? NameProblem(IReadOnlyList<StoredObject> listing, string name)
    {
        var key = BucketLayout.ManifestKey(name);
        return listing.Any(o => o.Key == key) ? $"a snapshot named {name} already exists ({key})" : null;
    }

    private static bool Holds(StoredObject? stored, LocalFile file) => stored is not null && stored.Size == file.Size && stored.ETag == file.ETag;
}
