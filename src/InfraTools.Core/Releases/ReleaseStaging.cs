using System.Diagnostics;
using InfraTools.Cli;
using InfraTools.Files;
using InfraTools.Interop;
using InfraTools.Sync;

namespace InfraTools.Releases;

/// <summary>
/// The next release while it is built, in DEST/releases/.staging-TAG (<see cref="ReleaseDirectory.BeginStaging"/>).
/// The engine writes changed and new files below <see cref="Root"/> (a temporary name and a rename, as in place;
/// no fsync per file is needed, <see cref="Publish"/> syncs the file system once). A linked file is the current
/// release's file itself: it must never be written, truncated, chmod'ed or touched in place, only replaced by a
/// rename. Disposing an unpublished staging removes it.
/// </summary>
public sealed class ReleaseStaging : IDisposable
{
    private readonly ReleaseDirectory _directory;
    private readonly HashSet<string> _directories = new(StringComparer.Ordinal) { "" };
    private readonly List<string> _missing = [];
    private bool _ended;

    /// <summary>The staging directory: the root of the next release.</summary>
    public string Root { get; }

    /// <summary>Files hard-linked from the current tree so far.</summary>
    public long Linked { get; private set; }

    /// <summary>Their total size.</summary>
    public long LinkedBytes { get; private set; }

    /// <summary>Paths asked to be linked that are not a regular file in the current tree, so far: the engine downloads them.</summary>
    public IReadOnlyList<string> Missing => _missing;

    internal ReleaseStaging(ReleaseDirectory directory, string root)
    {
        _directory = directory;
        Root = root;
    }

    /// <summary>The path in the staging tree of a '/'-separated relative path (checked like an object key's).</summary>
    public string PathOf(string relative) => Path.Join(Root, Checked(relative));

    private static string Checked(string relative) =>
        KeyPaths.CheckRelativePath(relative) is { } problem ? throw new ArgumentException($"'{relative}' {problem}", nameof(relative)) : relative;

    /// <summary>Creates a directory of the release (a folder marker, an empty directory) and its missing parents, with the release's directory mode.</summary>
    public void CreateDirectory(string relative)
    {
        if (!EnsureDirectory(Checked(relative)))
            throw new IOException($"cannot create directory '{relative}' in the new release: a file of the release stands where one of its directories must be");
    }

    /// <summary>
    /// Hard-links each of <paramref name="paths"/> from the current tree (<see cref="ReleaseDirectory.CurrentRoot"/>)
    /// into the staging tree with link(2), creating parent directories with the release's directory mode. A path
    /// that is not a regular file in the current tree is returned in <see cref="LinkResult.Missing"/> (the engine
    /// downloads it instead). A file system that refuses hard links (another file system under DEST/releases, too
    /// many links, no hard links at all) is a <see cref="ReleaseException"/> that says so. With
    /// <paramref name="keepWhatIsThere"/> a path the staging tree already holds (a file the run downloaded, or a
    /// file where a directory of the path would be) is left as it is and not linked, without asking first: the
    /// link(2) itself answers.
    /// </summary>
    public LinkResult LinkFromCurrent(IEnumerable<string> paths, bool keepWhatIsThere = false)
    {
        ThrowIfEnded();
        var source = _directory.CurrentRoot;
        var legacy = _directory.IsLegacy;
        var missing = new List<string>();
        long linked = 0, bytes = 0;
        foreach (var path in paths)
        {
            Checked(path);
            if (source is null) throw new InvalidOperationException("there is no current tree to link from (ReleaseDirectory.CurrentRoot is null)");
            if (legacy && IsReservedTopLevel(path)) throw new ArgumentException($"'{path}' is release mode's own, not a file of the site", nameof(paths));
            var from = Path.Join(source, path);
            var errno = Libc.Stat(from, followLinks: false, out var status);
            if (errno is Libc.ENOENT or Libc.ENOTDIR || errno == 0 && !status.IsRegular)
            {
                missing.Add(path);
                continue;
            }
            if (errno != 0) throw Libc.Error(errno, $"cannot read '{from}'");
            if (!EnsureParent(path))
            {
                if (keepWhatIsThere) continue;
                throw new IOException($"cannot link '{path}' into the new release: a file of the release stands where one of its directories must be");
            }
            var to = Path.Join(Root, path);
            errno = Libc.Link(from, to);
            if (errno == Libc.EEXIST && (keepWhatIsThere || SameFile(from, to))) continue;
            if (errno != 0) throw LinkError(errno, from, to);
            linked++;
            bytes += status.Size;
            _directory.StepFromStaging("link", Linked + linked);
        }
        Linked += linked;
        LinkedBytes += bytes;
        _missing.AddRange(missing);
        return new LinkResult(linked, bytes, missing);
    }

    private static bool IsReservedTopLevel(string path)
    {
        var top = path.Split('/')[0];
        return top is ReleaseDirectory.CurrentLinkName or ReleaseDirectory.ReleasesDirectoryName || top.StartsWith(ReleaseDirectory.TempLinkPrefix, StringComparison.Ordinal);
    }

    private static bool SameFile(string a, string b) =>
        Libc.Stat(a, false, out var x) == 0 && Libc.Stat(b, false, out var y) == 0 && x.Inode == y.Inode && x.DevMajor == y.DevMajor && x.DevMinor == y.DevMinor;

    /// <summary>The one clear message for a hard link the file system refuses.</summary>
    internal static Exception LinkError(int errno, string from, string to)
    {
        var what = $"cannot hard-link '{from}' to '{to}'";
        return errno switch
        {
            Libc.EXDEV => new ReleaseException(ExitCodes.LocalIo,
                $"{what}: they are on different file systems. Release mode builds each release from hard links of the previous one, so DEST, DEST/releases and every release must be on one file system (is DEST/releases, or a directory of the site, a mount point of its own?)"),
            Libc.EMLINK => new ReleaseException(ExitCodes.LocalIo,
                $"{what}: the file has as many hard links as its file system allows. Release mode keeps one link per release; keep fewer releases (--keep-releases) or put DEST on a file system with a higher link limit"),
            Libc.EPERM => new ReleaseException(ExitCodes.LocalIo,
                $"{what}: the file system refuses the hard link (it has none, as vfat and some network or FUSE file systems, or fs.protected_hardlinks forbids linking a file this user does not own). Release mode needs hard links: put DEST on one local file system that has them (ext4, xfs, btrfs), owned by the user content-pull runs as"),
            _ => Libc.Error(errno, what),
        };
    }

    /// <summary>Creates the parent directories of a relative path in the staging tree; false when a non-directory is in the way.</summary>
    private bool EnsureParent(string relative)
    {
        var slash = relative.LastIndexOf('/');
        return slash < 0 || EnsureDirectory(relative[..slash]);
    }

    private bool EnsureDirectory(string relative)
    {
        if (_directories.Contains(relative)) return true;
        if (!EnsureParent(relative)) return false;
        var full = Path.Join(Root, relative);
        var errno = Libc.MakeDirectory(full, _directory.Options.Modes.Directory);
        if (errno == Libc.EEXIST)
        {
            if (Libc.Stat(full, followLinks: false, out var status) != 0 || !status.IsDirectory) return false;
        }
        else if (errno == Libc.ENOTDIR) return false;
        else if (errno != 0) throw Libc.Error(errno, $"cannot create directory '{full}'");
        _directories.Add(relative);
        return true;
    }

    /// <summary>
    /// Publishes the staging tree as the new current release: carries --keep-assets files from earlier releases
    /// into it (hard links, where the new release lacks the path), one syncfs of the file system, rename of the
    /// staging directory to the new id (its carried-file list first), fsync of DEST/releases, then the swap of
    /// DEST/current (<see cref="ReleaseDirectory"/>). A rename that would cross file systems is refused with an
    /// error, never turned into a copy. Nothing is served from the new release before the swap; a failure before
    /// it leaves current as it was.
    /// </summary>
    public PublishResult Publish()
    {
        ThrowIfEnded();
        var carried = CarryAssets();
        var carriedTemp = Root + ReleaseDirectory.CarriedSuffix;
        if (carried.Count > 0) File.WriteAllText(carriedTemp, CarriedList.Format(carried));

        var watch = Stopwatch.StartNew();
        var fd = Libc.Open(Root, Libc.O_RDONLY | Libc.O_DIRECTORY);
        if (fd < 0) throw Libc.Error(Libc.LastError, $"cannot open '{Root}'");
        try
        {
            if (Libc.Syncfs(fd) != 0)
                throw new ReleaseException(ExitCodes.LocalIo, $"cannot make the new release durable (syncfs of '{Root}': {Libc.ErrorText(Libc.LastError)}): not publishing it; current is unchanged");
        }
        finally
        {
            Libc.Close(fd);
        }
        var syncDuration = watch.Elapsed;
        _directory.StepFromStaging("synced", 0);

        var id = _directory.NewId();
        if (carried.Count > 0)
        {
            AtomicFile.Rename(carriedTemp, _directory.CarriedPath(id));
            _directory.StepFromStaging("sidecar-renamed", 0);
        }
        AtomicFile.Rename(Root, _directory.ReleasePath(id));
        _ended = true;
        _directory.StagingEnded(this);
        _directory.StepFromStaging("release-renamed", 0);
        AtomicFile.SyncDirectory(_directory.ReleasesPath);

        var previous = _directory.CurrentId;
        var swapDuration = _directory.Swap(id);
        return new PublishResult(id, previous, Linked, carried.Count, syncDuration, swapDuration);
    }

    /// <summary>
    /// --keep-assets: files matching the globs, from the current release (it stops being current now) and from
    /// every release that stopped being current less than --keep-assets-for ago, are linked into the new release
    /// where it has nothing at that path. A file carried before keeps the time its own release stopped being
    /// current (the release's carried list records it), so a file is kept for the duration after the last release
    /// that really had it, not forever.
    /// </summary>
    private Dictionary<string, DateTime> CarryAssets()
    {
        var carried = new Dictionary<string, DateTime>(StringComparer.Ordinal);
        var options = _directory.Options;
        if (options.KeepAssets.Count == 0) return carried;
        var now = _directory.NowFromStaging;
        var cutoff = now - options.KeepAssetsFor;
        var filter = new GlobFilter(options.KeepAssets);
        var prefixes = LiteralPrefixes(options.KeepAssets);
        var sources = new List<(string Id, DateTime Origin)>();
        if (_directory.CurrentId is { } current) sources.Add((current, now));
        foreach (var id in _directory.ReleaseIdList())
            if (id != _directory.CurrentId && _directory.LastCurrentUtc(id) is var stamp && stamp >= cutoff) sources.Add((id, stamp));
        sources = [.. sources.OrderByDescending(s => s.Origin)];
        foreach (var (id, origin) in sources)
        {
            var root = _directory.ReleasePath(id);
            var earlier = CarriedList.Read(_directory.CarriedPath(id));
            foreach (var prefix in prefixes)
            {
                var tree = LocalTree.Scan(prefix.Length == 0 ? root : Path.Join(root, prefix));
                foreach (var relative in tree.Files.Keys.Order(StringComparer.Ordinal))
                {
                    var path = prefix.Length == 0 ? relative : prefix + "/" + relative;
                    if (carried.ContainsKey(path) || !filter.Excludes(path)) continue;
                    var fileOrigin = earlier.TryGetValue(path, out var t) ? t : origin;
                    if (fileOrigin < cutoff) continue;
                    if (!Carry(Path.Join(root, path), path)) continue;
                    carried[path] = fileOrigin;
                    _directory.StepFromStaging("carry", carried.Count);
                }
            }
        }
        return carried;
    }

    /// <summary>Links one file of an earlier release into the staging tree unless the new release has something at that path.</summary>
    private bool Carry(string from, string path)
    {
        var to = Path.Join(Root, path);
        if (Libc.Stat(to, followLinks: false, out _) != Libc.ENOENT) return false;
        if (!EnsureParent(path)) return false;
        var errno = Libc.Link(from, to);
        if (errno is Libc.EEXIST or Libc.ENOTDIR) return false;
        if (errno != 0) throw LinkError(errno, from, to);
        return true;
    }

    /// <summary>The directories below which the globs can match (their leading segments without wildcards); "" is the whole tree.</summary>
    internal static List<string> LiteralPrefixes(IEnumerable<string> globs)
    {
        var prefixes = new List<string>();
        foreach (var glob in globs)
        {
            var trimmed = glob.Trim().TrimEnd('/');
            if (trimmed.Length == 0) continue;
            if (!trimmed.Contains('/'))
            {
                prefixes.Add("");
                continue;
            }
            var segments = trimmed.TrimStart('/').Split('/');
            var literal = segments[..^1].TakeWhile(s => s.IndexOfAny(['*', '?', '[']) < 0).ToList();
            prefixes.Add(string.Join('/', literal));
        }
        // A prefix inside another is covered by it.
        return prefixes.Distinct(StringComparer.Ordinal)
            .Where(p => !prefixes.Any(q => q != p && (q.Length == 0 || p.StartsWith(q + "/", StringComparison.Ordinal))))
            .ToList();
    }

    private void ThrowIfEnded()
    {
        if (_ended) throw new InvalidOperationException("this staging has been published or abandoned");
    }

    /// <summary>Abandons an unpublished staging: its directory (and carried list) are removed.</summary>
    public void Dispose()
    {
        if (_ended) return;
        _ended = true;
        _directory.StagingEnded(this);
        DirectoryTree.Delete(Root);
        DirectoryTree.Delete(Root + ReleaseDirectory.CarriedSuffix);
    }
}

/// <summary>
/// A release's carried-file list, DEST/releases/ID.carried: one line per file carried into it by --keep-assets,
/// "UNIX-SECONDS TAB PATH", the time the last release that had the file itself stopped being current.
/// </summary>
internal static class CarriedList
{
    public static Dictionary<string, DateTime> Read(string path)
    {
        var result = new Dictionary<string, DateTime>(StringComparer.Ordinal);
        if (!File.Exists(path)) return result;
        foreach (var line in File.ReadLines(path))
        {
            var tab = line.IndexOf('\t');
            if (tab > 0 && long.TryParse(line.AsSpan(0, tab), System.Globalization.CultureInfo.InvariantCulture, out var seconds))
                result[line[(tab + 1)..]] = DateTime.UnixEpoch.AddSeconds(seconds);
        }
        return result;
    }

    public static string Format(Dictionary<string, DateTime> carried)
    {
        var text = new System.Text.StringBuilder();
        foreach (var (path, origin) in carried.OrderBy(c => c.Key, StringComparer.Ordinal))
            text.Append(((long)(origin - DateTime.UnixEpoch).TotalSeconds).ToString(System.Globalization.CultureInfo.InvariantCulture)).Append('\t').Append(path).Append('\n');
        return text.ToString();
    }
}
