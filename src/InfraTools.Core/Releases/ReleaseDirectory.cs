using System.Diagnostics;
using System.Text;
using InfraTools.Cli;
using InfraTools.Files;
using InfraTools.Interop;
using InfraTools.Sync;

namespace InfraTools.Releases;

/// <summary>
/// A DEST published in releases (issue 14):
/// <code>
/// DEST/current -> releases/20261201T120000Z-3f2a     relative symbolic link: the site nginx serves
/// DEST/releases/20261201T120000Z-3f2a/                complete releases, never changed once published
/// DEST/releases/20261201T120000Z-3f2a.carried         files it carries from earlier releases (--keep-assets), if any
/// DEST/releases/.staging-TAG/                         the release a run is building (a leftover once that run is gone)
/// DEST/releases/.deleting-ID/                         a release being deleted (no longer listed, finished by the next cleanup)
/// DEST/.current-TAG                                   the new link for an instant, before it is renamed over current
/// </code>
/// A run builds the next release in a staging directory: unchanged files are hard links of the current release's
/// files, the engine writes changed and new files into <see cref="ReleaseStaging.Root"/>; then one syncfs makes it
/// all durable, the staging directory is renamed to the release id, and a new link is renamed over
/// <c>current</c> with rename(2), the way kubernetes/git-sync publishes a worktree. Readers that open files by
/// path through <c>current</c> (nginx without open_file_cache) see the old release or the new one, never a mix.
/// Every instance holds the DEST lock (flock on DEST itself): one run per DEST.
/// </summary>
public sealed class ReleaseDirectory : IDisposable
{
    public const string CurrentLinkName = "current";
    public const string ReleasesDirectoryName = "releases";
    internal const string StagingPrefix = ".staging-";
    internal const string DeletingPrefix = ".deleting-";
    internal const string TempLinkPrefix = ".current-";
    internal const string CarriedSuffix = ".carried";

    /// <summary>
    /// Top-level names of DEST that are not part of a site mirrored in place, as --exclude patterns (a leading '/'
    /// anchors them at the top): what <see cref="ScanCurrent"/> leaves out when the current tree is DEST itself.
    /// </summary>
    public static IReadOnlyList<string> LegacyExclusions { get; } = ["/" + CurrentLinkName, "/" + ReleasesDirectoryName, "/" + TempLinkPrefix + "*"];

    private readonly FileLock? _lock;
    private ReleaseStaging? _staging;

    public ReleaseOptions Options { get; }

    /// <summary>DEST, symbolic links resolved.</summary>
    public string Dest { get; }

    /// <summary>DEST/releases.</summary>
    public string ReleasesPath { get; }

    /// <summary>DEST/current.</summary>
    public string CurrentLinkPath { get; }

    /// <summary>The release DEST/current points to; null before the first release (or when it points to a release that is gone).</summary>
    public string? CurrentId { get; private set; }

    /// <summary>The release current pointed to before this instance's last swap (publish or rollback).</summary>
    public string? PreviousId { get; private set; }

    /// <summary>Where current points but nothing is (a release deleted by hand); null when current is fine or absent.</summary>
    public string? DanglingTarget { get; private set; }

    /// <summary>
    /// Top-level entries of DEST that belong to a site mirrored in place before release mode (everything but
    /// current, releases, our temporary links and lost+found), by raw name. Non-empty while DEST has not been
    /// migrated, and after migration until <see cref="RemoveLegacyTree"/> removes them.
    /// </summary>
    public IReadOnlyList<byte[]> LegacyEntries { get; private set; } = [];

    /// <summary>
    /// The tree the next release is built from: the current release; before the first release, DEST itself when
    /// it holds a site mirrored in place (migration); null when there is nothing (a new or empty DEST).
    /// </summary>
    public string? CurrentRoot => CurrentId is not null ? ReleasePath(CurrentId) : LegacyEntries.Count > 0 ? Dest : null;

    /// <summary>True while the current tree is a site mirrored in place (no release yet).</summary>
    public bool IsLegacy => CurrentId is null && LegacyEntries.Count > 0;

    public string ReleasePath(string id) => Path.Join(ReleasesPath, id);

    private ReleaseDirectory(string dest, ReleaseOptions options, FileLock? fileLock)
    {
        Dest = dest;
        Options = options;
        _lock = fileLock;
        ReleasesPath = Path.Join(dest, ReleasesDirectoryName);
        CurrentLinkPath = Path.Join(dest, CurrentLinkName);
    }

    /// <summary>
    /// Opens DEST (an existing directory) and takes its lock; null if another process holds the lock (another run
    /// is writing DEST: exit 5). Throws <see cref="ReleaseException"/> when DEST/current or DEST/releases is not
    /// ours (a site mirrored in place that has such a top-level entry).
    /// </summary>
    public static ReleaseDirectory? TryOpen(string dest, ReleaseOptions? options = null)
    {
        options ??= new ReleaseOptions();
        options.Validate();
        var resolved = LocalPaths.Resolve(dest);
        var fileLock = FileLock.TryAcquireDirectory(resolved);
        if (fileLock is null) return null;
        try
        {
            var directory = new ReleaseDirectory(resolved, options, fileLock);
            directory.Inspect();
            return directory;
        }
        catch
        {
            fileLock.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Opens DEST to look at it without the lock (`content-pull releases`): a pull may be at work meanwhile, so
    /// nothing may be changed through it, and a release that a cleanup deletes while it is listed is left out.
    /// </summary>
    public static ReleaseDirectory OpenForReading(string dest)
    {
        var directory = new ReleaseDirectory(LocalPaths.Resolve(dest), new ReleaseOptions(), null);
        directory.Inspect();
        return directory;
    }

    /// <summary>
    /// Opens DEST for a caller that already holds the DEST lock (FileLock.TryAcquireDirectory on the resolved DEST,
    /// as SyncState does): a second flock of one process on another descriptor would conflict with its own.
    /// Throws InvalidOperationException if nobody holds it.
    /// </summary>
    public static ReleaseDirectory OpenLocked(string dest, ReleaseOptions? options = null)
    {
        options ??= new ReleaseOptions();
        options.Validate();
        var resolved = LocalPaths.Resolve(dest);
        using (var probe = FileLock.TryAcquireDirectory(resolved))
            if (probe is not null) throw new InvalidOperationException($"OpenLocked: nobody holds the lock on {resolved}; take it first (or use TryOpen)");
        var directory = new ReleaseDirectory(resolved, options, null);
        directory.Inspect();
        return directory;
    }

    private void Step(string name, long count = 0) => Options.Step?.Invoke(name, count);

    private DateTime Now => Options.Time.GetUtcNow().UtcDateTime;

    // --- what DEST holds ------------------------------------------------------------------------------------

    private void Inspect()
    {
        CurrentId = null;
        DanglingTarget = null;
        var errno = Libc.Stat(CurrentLinkPath, followLinks: false, out var status);
        if (errno == 0)
        {
            if (!status.IsSymbolicLink)
                throw new ReleaseException(ExitCodes.Refused,
                    $"'{CurrentLinkPath}' is a {status.TypeName}, not the link to the current release that release mode keeps there (a site mirrored in place with a top-level '{CurrentLinkName}'?): move it out of DEST or use another DEST; nothing was changed");
            var target = new FileInfo(CurrentLinkPath).LinkTarget ?? "";
            var id = ParseTarget(target)
                ?? throw new ReleaseException(ExitCodes.Refused,
                    $"'{CurrentLinkPath}' points to '{target}', not to a release ({ReleasesDirectoryName}/<id>): it was not made by release mode; move it out of DEST or use another DEST; nothing was changed");
            if (IsDirectory(ReleasePath(id))) CurrentId = id;
            else DanglingTarget = target;
        }
        else if (errno != Libc.ENOENT) throw Libc.Error(errno, $"cannot read '{CurrentLinkPath}'");

        errno = Libc.Stat(ReleasesPath, followLinks: false, out status);
        if (errno == 0)
        {
            if (!status.IsDirectory)
                throw new ReleaseException(ExitCodes.Refused,
                    $"'{ReleasesPath}' is a {status.TypeName}; release mode keeps its releases there: move it out of DEST or use another DEST; nothing was changed");
            if (CurrentId is null && DanglingTarget is null)
            {
                // No link yet: the directory must be one a first release-mode run began, not a part of the site.
                var foreign = ReadNames(ReleasesPath).FirstOrDefault(e => !IsOurReleasesEntry(e));
                if (foreign is not null)
                    throw new ReleaseException(ExitCodes.Refused,
                        $"'{ReleasesPath}' holds '{LocalTree.DisplayName(foreign)}', which is not a release: it is a directory of the site mirrored in place, and release mode needs DEST/{ReleasesDirectoryName} for itself; use another DEST (and point nginx at its '{CurrentLinkName}'); nothing was changed");
            }
        }
        else if (errno != Libc.ENOENT) throw Libc.Error(errno, $"cannot read '{ReleasesPath}'");

        LegacyEntries = ReadNames(Dest).Where(IsLegacyEntry).ToList();
    }

    /// <summary>
    /// True when DEST already holds a release layout: DEST/current is a symbolic link into releases/ (only release
    /// mode makes one). Such a DEST is always run in release mode, so that a run without --releases can never
    /// mirror into DEST itself (and, with --delete, delete the releases).
    /// </summary>
    public static bool HasReleases(string dest)
    {
        var link = Path.Join(dest, CurrentLinkName);
        if (Libc.Stat(link, followLinks: false, out var status) != 0 || !status.IsSymbolicLink) return false;
        return ParseTarget(new FileInfo(link).LinkTarget ?? "") is not null;
    }

    private static string? ParseTarget(string target)
    {
        var prefix = ReleasesDirectoryName + "/";
        if (!target.StartsWith(prefix, StringComparison.Ordinal)) return null;
        var id = target[prefix.Length..].TrimEnd('/');
        return ReleaseIds.IsId(id) ? id : null;
    }

    private static bool IsOurReleasesEntry(byte[] raw)
    {
        if (!System.Text.Unicode.Utf8.IsValid(raw)) return false;
        var name = Encoding.UTF8.GetString(raw);
        return ReleaseIds.IsId(name) || name.StartsWith(StagingPrefix, StringComparison.Ordinal) || name.StartsWith(DeletingPrefix, StringComparison.Ordinal)
            || name.EndsWith(CarriedSuffix, StringComparison.Ordinal) && ReleaseIds.IsId(name[..^CarriedSuffix.Length]);
    }

    private static bool IsLegacyEntry(byte[] raw)
    {
        var name = System.Text.Unicode.Utf8.IsValid(raw) ? Encoding.UTF8.GetString(raw) : null;
        return name is not (CurrentLinkName or ReleasesDirectoryName or "lost+found") && !(name is not null && IsTempLinkName(name));
    }

    private static bool IsTempLinkName(string name) =>
        name.StartsWith(TempLinkPrefix, StringComparison.Ordinal) && name.Length == TempLinkPrefix.Length + 16
        && name.AsSpan(TempLinkPrefix.Length).ContainsAnyExcept("0123456789abcdef") == false;

    private static bool IsDirectory(string path) => Libc.Stat(path, followLinks: false, out var status) == 0 && status.IsDirectory;

    /// <summary>The raw names in a directory; a missing directory has none.</summary>
    internal static List<byte[]> ReadNames(string directory) => ReadEntries(directory).Select(e => e.Name).ToList();

    /// <summary>The names in a directory that are UTF-8 (only those can be ours).</summary>
    private static IEnumerable<string> Utf8Names(string directory) =>
        ReadNames(directory).Where(n => System.Text.Unicode.Utf8.IsValid(n)).Select(n => Encoding.UTF8.GetString(n));

    private static List<Libc.DirectoryEntry> ReadEntries(string directory)
    {
        var entries = new List<Libc.DirectoryEntry>();
        var fd = Libc.Open(directory, Libc.O_RDONLY | Libc.O_DIRECTORY);
        if (fd < 0) return Libc.LastError == Libc.ENOENT ? entries : throw Libc.Error(Libc.LastError, $"cannot read directory '{directory}'");
        try
        {
            var errno = Libc.ReadDirectory(fd, entries);
            if (errno != 0) throw Libc.Error(errno, $"cannot read directory '{directory}'");
        }
        finally
        {
            Libc.Close(fd);
        }
        return entries;
    }

    /// <summary>The ids of the releases on disk, oldest first.</summary>
    public List<string> ReleaseIdList() =>
        Utf8Names(ReleasesPath)
            .Where(n => ReleaseIds.IsId(n) && IsDirectory(ReleasePath(n))).Order(StringComparer.Ordinal).ToList();

    /// <summary>When a release stopped being current: the mtime a swap gives the release it replaces (its build time if it never was current).</summary>
    internal DateTime LastCurrentUtc(string id) =>
        Libc.Stat(ReleasePath(id), followLinks: false, out var status) == 0 ? status.LastWriteUtc : DateTime.MinValue;

    /// <summary>
    /// The files of the current tree (<see cref="CurrentRoot"/>) as the engine scans a local tree: the engine's
    /// --exclude patterns and its leftover test, plus <see cref="LegacyExclusions"/> when the tree is DEST itself.
    /// An empty tree when there is none.
    /// </summary>
    public LocalTree ScanCurrent(IEnumerable<string>? exclude = null, Func<string, bool>? isLeftover = null)
    {
        var root = CurrentRoot;
        if (root is null) return new LocalTree();
        var patterns = (exclude ?? []).ToList();
        if (IsLegacy) patterns.AddRange(LegacyExclusions);
        return LocalTree.Scan(root, patterns.Count > 0 ? new GlobFilter(patterns) : null, isLeftover);
    }

    /// <summary>
    /// Whether a run must publish: always before the first release (also to migrate a site mirrored in place with
    /// no change at all), otherwise only when something changed. A run with nothing changed creates no release.
    /// </summary>
    public bool NeedsRelease(bool changed) => CurrentId is null || changed;

    // --- a run --------------------------------------------------------------------------------------------------

    /// <summary>
    /// Removes what a crashed or killed run left: staging directories, temporary links of an interrupted swap,
    /// carried-file lists of releases that are gone. Releases being deleted are left to <see cref="Cleanup"/>
    /// (off the critical path). Call it first in a run.
    /// </summary>
    public LeftoverResult RemoveLeftovers()
    {
        if (_staging is not null) throw new InvalidOperationException("RemoveLeftovers while this instance is staging a release");
        var watch = Stopwatch.StartNew();
        int staging = 0, links = 0, orphans = 0;
        long entries = 0;
        var names = Utf8Names(ReleasesPath).ToList();
        foreach (var name in names)
        {
            var path = Path.Join(ReleasesPath, name);
            if (name.StartsWith(StagingPrefix, StringComparison.Ordinal))
            {
                entries += DirectoryTree.Delete(path, n => Step("leftover-delete", n));
                staging++;
            }
            else if (name.EndsWith(CarriedSuffix, StringComparison.Ordinal) && ReleaseIds.IsId(name[..^CarriedSuffix.Length])
                     && !names.Contains(name[..^CarriedSuffix.Length]))
            {
                entries += DirectoryTree.Delete(path);
                orphans++;
            }
        }
        foreach (var name in Utf8Names(Dest))
        {
            var path = Path.Join(Dest, name);
            if (IsTempLinkName(name) && Libc.Stat(path, followLinks: false, out var status) == 0 && status.IsSymbolicLink)
            {
                entries += DirectoryTree.Delete(path);
                links++;
            }
        }
        return new LeftoverResult(staging, links, orphans, entries, watch.Elapsed);
    }

    /// <summary>
    /// Creates the staging directory of the next release and hard-links <paramref name="unchanged"/> (paths
    /// relative to the current tree, '/'-separated, of regular files) into it; see
    /// <see cref="ReleaseStaging.LinkFromCurrent"/>. The engine then writes changed and new files below
    /// <see cref="ReleaseStaging.Root"/> and calls <see cref="ReleaseStaging.Publish"/>; disposing the staging
    /// without publishing removes it.
    /// </summary>
    public ReleaseStaging BeginStaging(IEnumerable<string>? unchanged = null)
    {
        if (_staging is not null) throw new InvalidOperationException("a release is already being staged");
        Directories.Create(ReleasesPath, Options.Modes.Directory);
        var tag = TempNames.Random().Tag;
        var root = Path.Join(ReleasesPath, StagingPrefix + tag);
        var errno = Libc.MakeDirectory(root, Options.Modes.Directory);
        if (errno != 0) throw Libc.Error(errno, $"cannot create the staging directory '{root}'");
        Step("staging-created");
        var staging = new ReleaseStaging(this, root);
        _staging = staging;
        try
        {
            if (unchanged is not null) staging.LinkFromCurrent(unchanged);
        }
        catch
        {
            staging.Dispose();
            throw;
        }
        return staging;
    }

    internal void StagingEnded(ReleaseStaging staging)
    {
        if (ReferenceEquals(_staging, staging)) _staging = null;
    }

    internal void StepFromStaging(string name, long count) => Step(name, count);

    internal DateTime NowFromStaging => Now;

    /// <summary>A new id that sorts after every release and carried list on disk.</summary>
    internal string NewId()
    {
        var newest = Utf8Names(ReleasesPath)
            .Select(n => n.EndsWith(CarriedSuffix, StringComparison.Ordinal) ? n[..^CarriedSuffix.Length] : n)
            .Select(n => n.StartsWith(DeletingPrefix, StringComparison.Ordinal) ? n[DeletingPrefix.Length..] : n)
            .Where(ReleaseIds.IsId).Max(StringComparer.Ordinal);
        while (true)
        {
            var id = ReleaseIds.New(Now, newest);
            if (!Path.Exists(ReleasePath(id)) && !Path.Exists(ReleasePath(id) + CarriedSuffix)) return id;
            newest = id;
        }
    }

    /// <summary>
    /// Points DEST/current at the release <paramref name="id"/> in one rename(2) of a new link (git-sync's
    /// publishSymlink), never a copy: a new link DEST/.current-TAG with the relative target releases/ID, renamed
    /// over current, then DEST fsynced. The release it replaces gets the time as its mtime first (when it stopped
    /// being current, for the grace period and --keep-assets-for).
    /// </summary>
    internal TimeSpan Swap(string id)
    {
        var watch = Stopwatch.StartNew();
        var previous = CurrentId;
        if (previous is not null && previous != id)
        {
            Directory.SetLastWriteTimeUtc(ReleasePath(previous), Now);
            Step("stamped");
        }
        var temp = Path.Join(Dest, TempLinkPrefix + TempNames.Random().Tag);
        var errno = Libc.Symlink(ReleasesDirectoryName + "/" + id, temp);
        if (errno != 0) throw Libc.Error(errno, $"cannot create the link '{temp}'");
        Step("temp-link");
        try
        {
            AtomicFile.Rename(temp, CurrentLinkPath);
        }
        catch
        {
            _ = Libc.UnlinkAt(Libc.AT_FDCWD, Libc.Bytes(temp), directory: false);
            throw;
        }
        Step("swapped");
        AtomicFile.SyncDirectory(Dest);
        CurrentId = id;
        DanglingTarget = null;
        if (previous is not null && previous != id) PreviousId = previous;
        return watch.Elapsed;
    }

    // --- rollback, list, cleanup ----------------------------------------------------------------------------------

    /// <summary>
    /// Points current at release <paramref name="id"/>, or by default at the newest release older than the current
    /// one: one rename, no network. Throws <see cref="ReleaseException"/> (exit 5) when there is no such release.
    /// </summary>
    public SwapResult Rollback(string? id = null)
    {
        if (_staging is not null) throw new InvalidOperationException("Rollback while a release is being staged");
        var from = CurrentId ?? throw new ReleaseException(ExitCodes.Refused,
            DanglingTarget is not null
                ? $"'{CurrentLinkPath}' points to '{DanglingTarget}', which does not exist: name the release to roll back to"
                : $"'{Dest}' has no current release yet: nothing to roll back");
        var releases = ReleaseIdList();
        string target;
        if (id is null)
        {
            target = releases.LastOrDefault(r => string.CompareOrdinal(r, from) < 0)
                ?? throw new ReleaseException(ExitCodes.Refused, $"no release older than the current one ({from}) to roll back to; releases: {string.Join(", ", releases)}");
        }
        else
        {
            if (!ReleaseIds.IsId(id)) throw new UsageException($"'{id}' is not a release id (like 20261201T120000Z-3f2a); releases: {string.Join(", ", releases)}");
            target = releases.Contains(id) ? id : throw new ReleaseException(ExitCodes.Refused, $"there is no release '{id}' in {ReleasesPath}; releases: {string.Join(", ", releases)}");
        }
        if (target != from) Swap(target);
        return new SwapResult(from, target);
    }

    /// <summary>The releases, newest first; with <paramref name="sizes"/> each one's files are counted (one statx per file).</summary>
    public IReadOnlyList<ReleaseInfo> List(bool sizes = true)
    {
        var result = new List<ReleaseInfo>();
        foreach (var id in Enumerable.Reverse(ReleaseIdList()))
        {
            ReleaseIds.TryParseTime(id, out var created);
            long? files = null, bytes = null;
            if (sizes)
            {
                LocalTree tree;
                try
                {
                    tree = LocalTree.Scan(ReleasePath(id));
                }
                catch (DirectoryNotFoundException) when (!IsDirectory(ReleasePath(id)))
                {
                    continue;  // deleted by a pull's cleanup while it was listed (releases looks without the lock)
                }
                files = tree.Files.Count;
                bytes = tree.Files.Values.Sum(f => f.Size);
            }
            result.Add(new ReleaseInfo(id, created, files, bytes, id == CurrentId, CarriedList.Read(CarriedPath(id)).Count, LastCurrentUtc(id)));
        }
        return result;
    }

    internal string CarriedPath(string id) => ReleasePath(id) + CarriedSuffix;

    /// <summary>
    /// The files the current release carries from earlier ones (--keep-assets): they are in the current tree but in
    /// no source listing, and are neither linked by the engine nor deletions to count (--max-delete); the next
    /// publish carries them again while their time lasts.
    /// </summary>
    public IReadOnlySet<string> CarriedIntoCurrent() =>
        CurrentId is null ? new HashSet<string>() : CarriedList.Read(CarriedPath(CurrentId)).Keys.ToHashSet(StringComparer.Ordinal);

    /// <summary>
    /// Deletes old releases, after the publish (off the critical path; deleting the last links of 100,000 files
    /// takes 14-22 s here): every release but the newest <see cref="ReleaseOptions.KeepReleases"/>, the current
    /// one, the one current pointed to before (this run's previous one, or else the one that stopped being
    /// current last) and every one that stopped being current less than <see cref="ReleaseOptions.Grace"/> ago.
    /// A release is first renamed to releases/.deleting-ID (so it is never listed or rolled back to half
    /// deleted), then removed; deletions a killed run began are finished here too. Call it in every run, also
    /// when nothing was published: grace periods end between publishes.
    /// </summary>
    public CleanupResult Cleanup()
    {
        if (_staging is not null) throw new InvalidOperationException("Cleanup while a release is being staged");
        var watch = Stopwatch.StartNew();
        long entries = 0;
        foreach (var name in Utf8Names(ReleasesPath))
            if (name.StartsWith(DeletingPrefix, StringComparison.Ordinal))
                entries += DirectoryTree.Delete(Path.Join(ReleasesPath, name), n => Step("delete", n));

        var now = Now;
        var releases = ReleaseIdList();
        var stamps = releases.ToDictionary(r => r, LastCurrentUtc);
        var previous = PreviousId is not null && releases.Contains(PreviousId)
            ? PreviousId
            : releases.Where(r => r != CurrentId).OrderByDescending(r => stamps[r]).FirstOrDefault();
        var keep = new HashSet<string>(releases.TakeLast(Options.KeepReleases), StringComparer.Ordinal);
        if (CurrentId is not null) keep.Add(CurrentId);
        if (previous is not null) keep.Add(previous);
        foreach (var release in releases)
            if (now - stamps[release] < Options.Grace) keep.Add(release);

        var deleted = new List<string>();
        foreach (var release in releases.Where(r => !keep.Contains(r)))
        {
            var deleting = Path.Join(ReleasesPath, DeletingPrefix + release);
            AtomicFile.Rename(ReleasePath(release), deleting);
            Step("cleanup-renamed");
            entries += DirectoryTree.Delete(CarriedPath(release));
            AtomicFile.SyncDirectory(ReleasesPath);
            entries += DirectoryTree.Delete(deleting, n => Step("delete", n));
            deleted.Add(release);
        }
        return new CleanupResult(deleted, releases.Where(keep.Contains).ToList(), entries, watch.Elapsed);
    }

    /// <summary>
    /// The last step of a migration from in-place mode: removes <see cref="LegacyEntries"/>, the site DEST held
    /// before its first release (a frozen copy since then, served only by an nginx whose root is still DEST).
    /// Refused before the first release. Returns the number of files and directories removed.
    /// </summary>
    public long RemoveLegacyTree()
    {
        if (CurrentId is null)
            throw new ReleaseException(ExitCodes.Refused, $"'{Dest}' has no current release yet: the site mirrored in place is still the one served; nothing was removed");
        var fd = Libc.Open(Dest, Libc.O_RDONLY | Libc.O_DIRECTORY);
        if (fd < 0) throw Libc.Error(Libc.LastError, $"cannot open '{Dest}'");
        long entries = 0;
        try
        {
            foreach (var raw in LegacyEntries)
                entries += DirectoryTree.DeleteAt(fd, raw, Path.Join(Dest, LocalTree.DisplayName(raw)));
        }
        finally
        {
            Libc.Close(fd);
        }
        AtomicFile.SyncDirectory(Dest);
        LegacyEntries = [];
        return entries;
    }

    public void Dispose()
    {
        _staging?.Dispose();
        _lock?.Dispose();
    }
}
