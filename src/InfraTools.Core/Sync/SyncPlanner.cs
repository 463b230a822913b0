namespace InfraTools.Sync;

/// <summary>
/// Plans a run from the two listings and the manifest alone, the same way for every direction: each source file
/// is compared with the target's file at its path by <see cref="ChangeDetector"/>; a tree target adds the rules
/// of a directory tree (a path is a file or a directory, never both; an entry of another type in the way waits
/// for the deletes); with delete, whatever the target holds that the source does not is deleted, never below a
/// directory whose content is unknown (unreadable on either side).
/// </summary>
public static class SyncPlanner
{
    public static SyncPlan Plan(ISyncSide sourceSide, SideListing source, ISyncSide targetSide, SideListing target, IReadOnlyManifest manifest, bool delete)
    {
        var tree = targetSide.IsTree;
        var skipped = new List<SkippedKey>(source.Skipped);
        foreach (var (path, type) in source.Others.OrderBy(o => o.Key, StringComparer.Ordinal))
            skipped.Add(new SkippedKey(path, $"it is a {type}; only regular files are {targetSide.ReceiveVerb}ed"));
        foreach (var entry in source.Undecodable)
            skipped.Add(new SkippedKey(entry.Display, "its name is not valid UTF-8, so it cannot be an object key"));
        foreach (var (path, reason) in source.Unreadable)
            skipped.Add(new SkippedKey(path.Length == 0 ? "." : path, $"the directory cannot be read ({reason})"));
        var unknown = source.Unreadable.Select(u => u.Path).Concat(target.Unreadable.Select(u => u.Path)).ToList();

        // Directories the source defines: its own (safe) ones, and the parents of its safe files (added below).
        var directories = new HashSet<string>(StringComparer.Ordinal);
        var sourceEntries = 0;
        foreach (var directory in source.Directories)
        {
            if (KeyPaths.CheckRelativePath(directory) is { } problem)
            {
                skipped.Add(new SkippedKey(sourceSide.NameOf(directory) + "/", sourceSide.ExplainUnsafe(problem)));
                continue;
            }
            directories.Add(directory);
            // A folder marker is an object of the source; an empty local directory is not something to back up.
            if (!sourceSide.IsTree) sourceEntries++;
        }
        foreach (var file in source.Files.Keys)
            if (KeyPaths.CheckRelativePath(file) is null) AddParents(directories, file);

        var transfers = new List<Transfer>();
        var checks = new List<Check>();
        var unchanged = new List<SyncFile>();
        var sourceFiles = new HashSet<string>(source.Files.Count, StringComparer.Ordinal);
        foreach (var file in InPathOrder(source.Files))
        {
            if (KeyPaths.CheckRelativePath(file.Path) is { } problem)
            {
                skipped.Add(new SkippedKey(file.Name, sourceSide.ExplainUnsafe(problem)));
                continue;
            }
            if (tree && directories.Contains(file.Path))
            {
                skipped.Add(new SkippedKey(file.Name, $"unsafe key: '{file.Path}' is both a file and a directory prefix of other keys"));
                continue;
            }
            sourceEntries++;
            if (tree && Below(file.Path, target.Unreadable.Select(u => u.Path)) is { } unreadable)
            {
                skipped.Add(new SkippedKey(file.Name, $"local directory '{unreadable}' cannot be read"));
                continue;
            }
            sourceFiles.Add(file.Path);
            if (tree && BlockedBy(file.Path, target) is { } blocker)
            {
                if (delete) transfers.Add(new Transfer(file, TransferReason.AfterDeletes));
                else skipped.Add(new SkippedKey(file.Name, $"local {blocker} is in the way (run with --delete to replace it)"));
                continue;
            }
            target.Files.TryGetValue(file.Path, out var existing);
            ManifestEntry? known = manifest.TryGet(file.Path, out var entry) ? entry : null;
            switch (ChangeDetector.Decide(file, existing, known))
            {
                case Change.Unchanged: unchanged.Add(file); break;
                case Change.New: transfers.Add(new Transfer(file, TransferReason.New)); break;
                case Change.Changed: transfers.Add(new Transfer(file, TransferReason.Changed)); break;
                default: checks.Add(new Check(file, existing!)); break;
            }
        }

        var deleteFiles = new List<string>();
        var deleteDirectories = new List<string>();
        if (delete)
        {
            // Filtered, then sorted: the deletes are usually few, the target's files many.
            foreach (var path in target.Files.Keys.Concat(target.Others.Keys))
                if (!sourceFiles.Contains(path) && Below(path, unknown) is null) deleteFiles.Add(path);
            deleteFiles.Sort(StringComparer.Ordinal);
            foreach (var path in target.Directories.OrderByDescending(d => d.Count(c => c == '/')).ThenByDescending(d => d, StringComparer.Ordinal))
                if (!directories.Contains(path) && Below(path, unknown) is null) deleteDirectories.Add(path);
        }

        return new SyncPlan
        {
            Transfers = transfers,
            Checks = checks,
            Unchanged = unchanged,
            Directories = directories.OrderBy(d => d.Count(c => c == '/')).ThenBy(d => d, StringComparer.Ordinal).ToList(),
            DeleteFiles = deleteFiles,
            DeleteDirectories = deleteDirectories,
            DeleteUndecodable = delete ? target.Undecodable : [],
            Skipped = skipped,
            Leftovers = target.Leftovers,
            Unreadable = target.Unreadable,
            SourceEntries = sourceEntries,
            TargetFiles = target.Files.Count,
            SourceFiles = sourceFiles,
        };
    }

    /// <summary>The files in ordinal path order. A bucket lists in key order, which is that order but for rare keys, so the sort is often skipped.</summary>
    private static SyncFile[] InPathOrder(IReadOnlyDictionary<string, SyncFile> files)
    {
        var sorted = new SyncFile[files.Count];
        var paths = new string[files.Count];
        var (i, inOrder) = (0, true);
        foreach (var file in files.Values)
        {
            if (i > 0 && inOrder && string.CompareOrdinal(paths[i - 1], file.Path) > 0) inOrder = false;
            (sorted[i], paths[i]) = (file, file.Path);
            i++;
        }
        if (!inOrder) Array.Sort(paths, sorted, StringComparer.Ordinal);
        return sorted;
    }

    private static void AddParents(HashSet<string> directories, string path)
    {
        for (var slash = path.LastIndexOf('/'); slash > 0; slash = path.LastIndexOf('/', slash - 1))
            if (!directories.Add(path[..slash])) break;
    }

    /// <summary>The directory of <paramref name="directories"/> at or above <paramref name="path"/> ("" is the root), or null.</summary>
    private static string? Below(string path, IEnumerable<string> directories)
    {
        foreach (var directory in directories)
            if (directory.Length == 0 || path == directory || path.StartsWith(directory + "/", StringComparison.Ordinal)) return directory.Length == 0 ? "." : directory;
        return null;
    }

    /// <summary>What entry of a tree target prevents writing a file at <paramref name="path"/>, or null.</summary>
    private static string? BlockedBy(string path, SideListing target)
    {
        if (target.Directories.Contains(path)) return $"directory '{path}'";
        for (var slash = path.IndexOf('/'); slash > 0; slash = path.IndexOf('/', slash + 1))
        {
            var parent = path[..slash];
            if (target.Files.ContainsKey(parent)) return $"file '{parent}'";
            if (target.Others.TryGetValue(parent, out var type)) return $"{type} '{parent}'";
        }
        return null;
    }
}
