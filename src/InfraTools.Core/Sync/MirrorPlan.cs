using InfraTools.S3;

namespace InfraTools.Sync;

/// <summary>An object to mirror, with the local path it maps to.</summary>
public sealed record RemoteFile(string Key, string RelativePath, long Size, string ETag, DateTimeOffset LastModified);

public enum DownloadReason
{
    /// <summary>No local file yet.</summary>
    New,
    /// <summary>The object changed since it was last downloaded (size, or ETag per the manifest).</summary>
    Changed,
    /// <summary>The local file was changed, its content differs from the object.</summary>
    LocalDiffers,
    /// <summary>A local entry of another type (directory, file where a directory must be) is in the way; waits for the deletes.</summary>
    AfterDeletes,
}

public sealed record Download(RemoteFile File, DownloadReason Reason);

/// <summary>A key that is not mirrored, and why.</summary>
public sealed record SkippedKey(string Key, string Problem);

/// <summary>
/// What a mirror run will do, decided from the listing, the local tree and the manifest alone (no I/O):
/// downloads, files to verify by checksum, unchanged files, deletes, and unsafe keys skipped.
/// </summary>
public sealed class MirrorPlan
{
    public List<Download> Downloads { get; } = [];
    /// <summary>Same size, but no trustworthy manifest entry: compare the file's checksum with the ETag before deciding.</summary>
    public List<RemoteFile> Verify { get; } = [];
    public List<RemoteFile> Unchanged { get; } = [];
    /// <summary>Directories the source defines (folder markers and parents of files), shallowest first.</summary>
    public List<string> Directories { get; } = [];
    /// <summary>Local files and symbolic links no longer in the source (only with delete).</summary>
    public List<string> DeleteFiles { get; } = [];
    /// <summary>Local directories no longer in the source, deepest first; removed only if empty by then.</summary>
    public List<string> DeleteDirectories { get; } = [];
    public List<SkippedKey> Skipped { get; } = [];
    /// <summary>Temporary files of an interrupted run of ours (recognised by the state's tag), removed first.</summary>
    public List<string> LeftoverTemporaryFiles { get; } = [];
    /// <summary>Local names that are not UTF-8, so in no source: deleted (directories with their content) with delete.</summary>
    public List<UndecodableEntry> DeleteUndecodable { get; } = [];
    /// <summary>Local directories that cannot be read: nothing below them is updated or deleted, and the run is incomplete.</summary>
    public List<(string Path, string Reason)> Unreadable { get; } = [];
    /// <summary>Objects in the source (files and folder markers), after exclusions.</summary>
    public int SourceEntries { get; set; }
    /// <summary>Relative paths of the source's files: the only paths a manifest needs to remember.</summary>
    public HashSet<string> SourceFiles { get; } = new(StringComparer.Ordinal);

    public IEnumerable<Download> DownloadsNow => Downloads.Where(d => d.Reason != DownloadReason.AfterDeletes);
    public IEnumerable<Download> DownloadsAfterDeletes => Downloads.Where(d => d.Reason == DownloadReason.AfterDeletes);
}

/// <summary>Options of a mirror run that change the plan.</summary>
public sealed record MirrorOptions(string Prefix, bool Delete, GlobFilter Exclude);

public static class MirrorPlanner
{
    public static MirrorPlan Plan(IEnumerable<S3Object> listing, LocalTree local, Manifest manifest, MirrorOptions options)
    {
        var plan = new MirrorPlan();
        plan.LeftoverTemporaryFiles.AddRange(local.LeftoverTemporaryFiles);
        plan.Unreadable.AddRange(local.Unreadable);
        if (options.Delete) plan.DeleteUndecodable.AddRange(local.Undecodable);

        // 1. Map keys to paths; refuse unsafe keys.
        var files = new Dictionary<string, RemoteFile>(StringComparer.Ordinal);
        var directories = new HashSet<string>(StringComparer.Ordinal);
        foreach (var item in listing)
        {
            var mapped = KeyPaths.Map(item.Key, options.Prefix);
            if (mapped.Kind == KeyKind.Root) continue;
            if (mapped.Kind == KeyKind.Unsafe)
            {
                plan.Skipped.Add(new SkippedKey(item.Key, $"unsafe key: it {mapped.Problem}"));
                continue;
            }
            if (options.Exclude.Excludes(mapped.RelativePath)) continue;
            plan.SourceEntries++;
            if (mapped.Kind == KeyKind.Folder) directories.Add(mapped.RelativePath);
            else files[mapped.RelativePath] = new RemoteFile(item.Key, mapped.RelativePath, item.Size, item.ETag, item.LastModified);
            AddParents(directories, mapped.RelativePath);
        }

        // 2. A path cannot be both a file and a directory: the directory wins, the file key is skipped.
        foreach (var path in files.Keys.Where(directories.Contains).ToList())
        {
            plan.Skipped.Add(new SkippedKey(files[path].Key, $"unsafe key: '{path}' is both a file and a directory prefix of other keys"));
            files.Remove(path);
        }

        // 3. Compare each file with what is on disk.
        foreach (var remote in files.Values.OrderBy(f => f.RelativePath, StringComparer.Ordinal))
        {
            if (UnreadableParent(remote.RelativePath, local) is { } unreadable)
            {
                plan.Skipped.Add(new SkippedKey(remote.Key, $"local directory '{unreadable}' cannot be read"));
                continue;
            }
            if (BlockedBy(remote.RelativePath, local) is { } blocker)
            {
                if (options.Delete) plan.Downloads.Add(new Download(remote, DownloadReason.AfterDeletes));
                else plan.Skipped.Add(new SkippedKey(remote.Key, $"local {blocker} is in the way (run with --delete to replace it)"));
                continue;
            }
            if (!local.Files.TryGetValue(remote.RelativePath, out var file))
            {
                plan.Downloads.Add(new Download(remote, DownloadReason.New));
                continue;
            }
            var known = manifest.TryGet(remote.RelativePath, out var entry) && entry.Size == file.Size && entry.LocalLastWriteUtc == file.LastWriteUtc;
            if (known && entry.ETag == remote.ETag && entry.Size == remote.Size) plan.Unchanged.Add(remote);
            else if (known || file.Size != remote.Size) plan.Downloads.Add(new Download(remote, DownloadReason.Changed));
            else plan.Verify.Add(remote);
        }

        plan.SourceFiles.UnionWith(files.Keys);
        plan.Directories.AddRange(directories.OrderBy(d => d.Count(c => c == '/')).ThenBy(d => d, StringComparer.Ordinal));

        // 4. Deletes: whatever is local, not excluded, and not in the source.
        if (options.Delete)
        {
            foreach (var path in local.Files.Keys.Concat(local.Others.Keys).Order(StringComparer.Ordinal))
                if (!files.ContainsKey(path) && !options.Exclude.Excludes(path)) plan.DeleteFiles.Add(path);
            foreach (var path in local.Directories.OrderByDescending(d => d.Count(c => c == '/')).ThenByDescending(d => d, StringComparer.Ordinal))
                if (!directories.Contains(path) && !options.Exclude.Excludes(path) && UnreadableParent(path, local) is null) plan.DeleteDirectories.Add(path);
        }
        return plan;
    }

    private static void AddParents(HashSet<string> directories, string relativePath)
    {
        for (var slash = relativePath.LastIndexOf('/'); slash > 0; slash = relativePath.LastIndexOf('/', slash - 1))
            if (!directories.Add(relativePath[..slash])) break;
    }

    /// <summary>The unreadable local directory at or above <paramref name="relativePath"/>, or null.</summary>
    private static string? UnreadableParent(string relativePath, LocalTree local)
    {
        foreach (var (path, _) in local.Unreadable)
            if (relativePath == path || relativePath.StartsWith(path + "/", StringComparison.Ordinal)) return path;
        return null;
    }

    /// <summary>What local entry prevents writing a file at <paramref name="relativePath"/>, or null.</summary>
    private static string? BlockedBy(string relativePath, LocalTree local)
    {
        if (local.Directories.Contains(relativePath)) return $"directory '{relativePath}'";
        for (var slash = relativePath.IndexOf('/'); slash > 0; slash = relativePath.IndexOf('/', slash + 1))
        {
            var parent = relativePath[..slash];
            if (local.Files.ContainsKey(parent)) return $"file '{parent}'";
            if (local.Others.TryGetValue(parent, out var type)) return $"{type} '{parent}'";
        }
        return null;
    }
}
