using InfraTools.S3;

namespace InfraTools.Sync;

/// <summary>A local file to upload or check, with the key it goes to and, if the key exists, the object's ETag.</summary>
public sealed record LocalUpload(string RelativePath, string Key, LocalFile File, string? RemoteETag = null);

/// <summary>What a push will do, decided from the local tree, the remote listing and the manifest alone.</summary>
public sealed class UploadPlan
{
    public List<LocalUpload> Uploads { get; } = [];
    /// <summary>Same size as the object, no trustworthy manifest entry: compare checksums before deciding.</summary>
    public List<LocalUpload> Verify { get; } = [];
    public List<LocalUpload> Unchanged { get; } = [];
    /// <summary>Remote keys under the prefix with no local file (only with delete).</summary>
    public List<string> DeleteKeys { get; } = [];
    /// <summary>Local entries that are not uploaded, and why (symbolic links, names a restore could not write back).</summary>
    public List<SkippedKey> Skipped { get; } = [];
    /// <summary>Relative paths of the local files: the only paths the manifest needs to remember.</summary>
    public HashSet<string> LocalFiles { get; } = new(StringComparer.Ordinal);
}

public static class UploadPlanner
{
    /// <summary>
    /// Plans uploading <paramref name="local"/> under <paramref name="prefix"/>. A file is unchanged without being
    /// read when its size and mtime match the manifest and the object's size and ETag match what the manifest
    /// recorded at upload; otherwise a file of the same size is compared by checksum.
    /// </summary>
    public static UploadPlan Plan(LocalTree local, IEnumerable<S3Object> remote, Manifest manifest, string prefix, bool delete, GlobFilter exclude)
    {
        var plan = new UploadPlan();
        var remoteByKey = remote.ToDictionary(o => o.Key, StringComparer.Ordinal);
        foreach (var (path, type) in local.Others.OrderBy(o => o.Key, StringComparer.Ordinal))
            plan.Skipped.Add(new SkippedKey(path, $"it is a {type}; only regular files are backed up"));
        foreach (var entry in local.Undecodable)
            plan.Skipped.Add(new SkippedKey(entry.Display, "its name is not valid UTF-8, so it cannot be an object key"));
        foreach (var (path, reason) in local.Unreadable)
            plan.Skipped.Add(new SkippedKey(path.Length == 0 ? "." : path, $"the directory cannot be read ({reason})"));

        foreach (var (relative, file) in local.Files.OrderBy(f => f.Key, StringComparer.Ordinal))
        {
            if (exclude.Excludes(relative)) continue;
            if (KeyPaths.CheckRelativePath(relative) is { } problem)
            {
                plan.Skipped.Add(new SkippedKey(relative, $"its name {problem}, so it could not be restored"));
                continue;
            }
            plan.LocalFiles.Add(relative);
            var upload = new LocalUpload(relative, prefix + relative, file);
            if (!remoteByKey.TryGetValue(upload.Key, out var existing) || existing.Size != file.Size) plan.Uploads.Add(upload);
            else if (manifest.TryGet(relative, out var entry) && entry.Size == file.Size && entry.LocalLastWriteUtc == file.LastWriteUtc && entry.ETag == existing.ETag)
                plan.Unchanged.Add(upload);
            else plan.Verify.Add(upload with { RemoteETag = existing.ETag });
        }

        if (delete)
            foreach (var key in remoteByKey.Keys.Order(StringComparer.Ordinal))
            {
                var relative = key[prefix.Length..];
                if (!plan.LocalFiles.Contains(relative) && !exclude.Excludes(relative.TrimEnd('/')) && !UnderUnreadable(relative, local)) plan.DeleteKeys.Add(key);
            }
        return plan;
    }

    /// <summary>True for a path at or below a local directory that could not be read: its objects are kept.</summary>
    private static bool UnderUnreadable(string relative, LocalTree local) =>
        local.Unreadable.Any(u => u.Path.Length == 0 || relative == u.Path || relative.StartsWith(u.Path + "/", StringComparison.Ordinal));
}
