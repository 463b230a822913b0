// The sync engine's decisions, all pure: the plan (SyncPlan), the planner, the one change rule (ChangeDetector),
// the safety policy (empty source, --max-delete, refusals: SafetyPolicy) and the --exclude filter (GlobFilter).
using System.Text;
using System.Text.RegularExpressions;

namespace InfraTools.Sync;

public enum TransferReason
{
    /// <summary>The target has no file there yet.</summary>
    New,
    /// <summary>The file changed since it was last synced (size, or the object's ETag per the manifest).</summary>
    Changed,
    /// <summary>An entry of another type (a directory where a file goes, a file where a directory is needed) is in the way; waits for the deletes.</summary>
    AfterDeletes,
}

public sealed record Transfer(SyncFile Source, TransferReason Reason);

/// <summary>A same-size pair whose checksums decide: transfer if they differ.</summary>
public sealed record Check(SyncFile Source, SyncFile Target);

/// <summary>
/// What a run will do, decided from the two listings and the manifest alone (no I/O): transfers, checks,
/// unchanged files, deletes, directories, and the source entries skipped. Immutable once planned.
/// </summary>
public sealed class SyncPlan
{
    public required IReadOnlyList<Transfer> Transfers { get; init; }
    public required IReadOnlyList<Check> Checks { get; init; }
    public required IReadOnlyList<SyncFile> Unchanged { get; init; }
    /// <summary>Directories the source defines (folder markers and parents of files), shallowest first: created in a tree target.</summary>
    public required IReadOnlyList<string> Directories { get; init; }
    /// <summary>Target files (and local links, FIFOs...) no longer in the source (only with delete).</summary>
    public required IReadOnlyList<string> DeleteFiles { get; init; }
    /// <summary>Target directories no longer in the source, deepest first (only with delete).</summary>
    public required IReadOnlyList<string> DeleteDirectories { get; init; }
    /// <summary>Target names that are not UTF-8, so in no source (only with delete).</summary>
    public required IReadOnlyList<UndecodableEntry> DeleteUndecodable { get; init; }
    public required IReadOnlyList<SkippedKey> Skipped { get; init; }
    /// <summary>Temporary files of an interrupted run of ours, removed first.</summary>
    public required IReadOnlyList<string> Leftovers { get; init; }
    /// <summary>Local directories that could not be read: nothing below them is synced, and the run is incomplete.</summary>
    public required IReadOnlyList<(string Path, string Reason)> Unreadable { get; init; }
    /// <summary>Source entries (files and folder markers) after exclusions: zero means the source is empty.</summary>
    public required int SourceEntries { get; init; }
    /// <summary>Files the target holds (before the run).</summary>
    public required int TargetFiles { get; init; }
    /// <summary>The source's file paths: the only paths a manifest needs to remember.</summary>
    public required IReadOnlySet<string> SourceFiles { get; init; }

    public IEnumerable<Transfer> TransfersNow => Transfers.Where(t => t.Reason != TransferReason.AfterDeletes);
    public IEnumerable<Transfer> TransfersAfterDeletes => Transfers.Where(t => t.Reason == TransferReason.AfterDeletes);
    public int DeleteCount => DeleteFiles.Count + DeleteUndecodable.Count;
    public bool HasDeletes => DeleteFiles.Count + DeleteDirectories.Count + DeleteUndecodable.Count > 0;
    /// <summary>Files the run goes through (to transfer, to check, unchanged), for progress output.</summary>
    public int FileCount => Transfers.Count + Checks.Count + Unchanged.Count;
}

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

/// <summary>What a source file needs, compared with the target's file at the same path.</summary>
public enum Change
{
    /// <summary>Known to be the same without reading anything.</summary>
    Unchanged,
    /// <summary>The target has no file there.</summary>
    New,
    /// <summary>Known to differ (size, or the object's ETag moved since the manifest recorded it).</summary>
    Changed,
    /// <summary>Same size but nothing vouches for the content: compare checksums before deciding.</summary>
    Verify,
}

/// <summary>
/// The one rule that decides whether a file changed, for every direction (as rclone's operations.Equal is).
/// The manifest records, per path, the size, the object's ETag and the local file's mtime of the last time the
/// two sides were known to be equal. A pair is unchanged without reading anything when both sides still match
/// that record; it changed when the sizes differ; otherwise its checksums decide — except when the target is
/// still what we last wrote and only an object (the source) moved on: a new ETag always means new content, so it
/// is transferred at once, while a new local mtime may not mean new content and is checked first.
/// </summary>
public static class ChangeDetector
{
    public static Change Decide(SyncFile source, SyncFile? target, ManifestEntry? known)
    {
        if (target is null) return Change.New;
        if (source.Size != target.Size) return Change.Changed;
        var (local, remote) = source.IsLocal ? (source, target) : (target, source);
        var localKnown = known is { } entry && entry.Size == local.Size && entry.LocalLastWriteUtc == local.LocalLastWriteUtc;
        var remoteKnown = known is { } record && record.Size == remote.Size && record.ETag == remote.ETag;
        if (localKnown && remoteKnown) return Change.Unchanged;
        var targetKnown = target.IsLocal ? localKnown : remoteKnown;
        return targetKnown && !source.IsLocal ? Change.Changed : Change.Verify;
    }
}

/// <summary>A run refused before it changed anything (an empty source, too many deletes, another run at work).</summary>
public sealed class RefusedException(string message) : Exception(message);

/// <summary>When an empty source is a mistake rather than an intent.</summary>
public enum EmptySourceRule
{
    /// <summary>Refused when the target holds files (a wrong bucket or prefix would wipe it): pulls, and pushes with delete.</summary>
    RefuseIfTargetHasFiles,
    /// <summary>Always refused: a new snapshot of nothing would count as the newest backup.</summary>
    Refuse,
    /// <summary>Nothing to lose (a push without delete changes nothing when the source is empty).</summary>
    Allow,
}

public sealed record SafetyOptions(EmptySourceRule EmptySource, bool Force, int? MaxDelete);

/// <summary>
/// The one safety policy of every run, checked after planning and before anything changes: an empty source that
/// looks like a mistake, and more deletes than --max-delete, refuse the whole run (unless --force for the first).
/// The third rule, deletes only after every transfer succeeded, is the runner's (<see cref="SyncRunner"/>).
/// </summary>
public static class SafetyPolicy
{
    /// <summary>Throws <see cref="RefusedException"/> if the run must not go ahead; <paramref name="source"/> and <paramref name="target"/> name the sides in the message.</summary>
    public static void Check(SyncPlan plan, SafetyOptions options, ISyncSide targetSide, string source, string target)
    {
        if (plan.SourceEntries == 0 && !options.Force)
        {
            if (options.EmptySource == EmptySourceRule.Refuse)
                throw new RefusedException($"SRC '{source}' has no files: refusing to write an empty snapshot, which would count as the newest backup (and with --keep-last push real ones out); nothing was uploaded. Use --force if an empty backup is really wanted.");
            if (options.EmptySource == EmptySourceRule.RefuseIfTargetHasFiles && plan.TargetFiles > 0)
                throw new RefusedException(targetSide.IsTree
                    ? $"{source} is empty but {target} holds {plan.TargetFiles} file(s): refusing to mirror an empty source (wrong bucket or prefix?); nothing was changed. Use --force if the source really is empty."
                    : $"SRC '{source}' has no files but {target} holds {plan.TargetFiles} object(s): refusing to delete the backup (wrong SRC?); nothing was changed. Use --force if that is really wanted.");
        }
        if (options.MaxDelete is { } limit && plan.DeleteCount > limit)
            throw new RefusedException($"{plan.DeleteCount} file(s) would be deleted, more than --max-delete {limit}: nothing was changed. Check the source, or raise --max-delete.");
    }
}

/// <summary>
/// --exclude patterns, matched against '/'-separated relative paths: '*' matches within one path segment, '**'
/// across segments, '?' one character, [abc] a set. A pattern without '/' matches the last segment (the file
/// name) anywhere in the tree, so "*.bak" excludes every .bak file; a pattern with '/' matches the whole path
/// ("drafts/**"). A directory matched by a pattern excludes everything below it.
/// </summary>
public sealed class GlobFilter
{
    /// <summary>Each pattern as a regex, or as the literal it is when it has no wildcard (compared, not matched: every path of a run meets the protocol's two).</summary>
    private readonly List<(Regex? Pattern, string? Literal, bool NameOnly)> _patterns = [];

    public GlobFilter(IEnumerable<string> patterns)
    {
        foreach (var pattern in patterns)
        {
            var trimmed = pattern.Trim().TrimEnd('/');
            if (trimmed.Length == 0) continue;
            var nameOnly = !trimmed.Contains('/');
            var glob = trimmed.TrimStart('/');
            _patterns.Add(glob.AsSpan().IndexOfAny("*?[") < 0
                ? (null, glob, nameOnly)
                : (new Regex(ToRegex(glob), RegexOptions.CultureInvariant), null, nameOnly));
        }
    }

    /// <summary>True if the path itself matches a pattern (for a walk that never enters an excluded directory).</summary>
    public bool ExcludesEntry(string relativePath) => ExcludesEntry(relativePath.AsSpan());

    private bool ExcludesEntry(ReadOnlySpan<char> relativePath)
    {
        if (_patterns.Count == 0) return false;
        var name = relativePath[(relativePath.LastIndexOf('/') + 1)..];
        foreach (var (pattern, literal, nameOnly) in _patterns)
        {
            var subject = nameOnly ? name : relativePath;
            if (literal is not null ? subject.SequenceEqual(literal) : pattern!.IsMatch(subject)) return true;
        }
        return false;
    }

    /// <summary>True if the path or any of its parent directories matches a pattern.</summary>
    public bool Excludes(string relativePath)
    {
        if (_patterns.Count == 0) return false;
        for (var end = relativePath.Length; end > 0; end = relativePath.LastIndexOf('/', end - 1))
            if (ExcludesEntry(relativePath.AsSpan(0, end))) return true;
        return false;
    }

    private static string ToRegex(string glob)
    {
        var sb = new StringBuilder("^");
        for (var i = 0; i < glob.Length; i++)
        {
            var c = glob[i];
            switch (c)
            {
                case '*' when i + 2 < glob.Length && glob[i + 1] == '*' && glob[i + 2] == '/':
                    sb.Append("(?:.*/)?");
                    i += 2;
                    break;
                case '*' when i + 1 < glob.Length && glob[i + 1] == '*':
                    sb.Append(".*");
                    i++;
                    break;
                case '*': sb.Append("[^/]*"); break;
                case '?': sb.Append("[^/]"); break;
                case '[':
                    var close = glob.IndexOf(']', i + 1);
                    if (close < 0) { sb.Append(@"\["); break; }
                    var set = glob[(i + 1)..close];
                    sb.Append('[').Append(set.StartsWith('!') ? "^" + Regex.Escape(set[1..]) : Regex.Escape(set)).Append(']');
                    i = close;
                    break;
                default: sb.Append(Regex.Escape(c.ToString())); break;
            }
        }
        return sb.Append('$').ToString();
    }
}
