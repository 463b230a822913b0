using System.Diagnostics;
using InfraTools.Files;
using InfraTools.Interop;
using InfraTools.S3;
using InfraTools.Sync;
using Serilog;

namespace InfraTools.Releases;

/// <summary>
/// The local side of a pull in release mode: the engine plans against the current release (it lists
/// <see cref="ReleaseDirectory.CurrentRoot"/>, so unchanged files are found as in place, by the manifest, without
/// reading them), while everything it writes goes into the next release's staging tree, created at the first write
/// (a run with nothing to write creates none). Deletes and directories are only noted: a file is "deleted" by not
/// linking it into the next release, and <see cref="ReleasePublisher"/> links, syncs and swaps. The current
/// release is never written, renamed into or touched.
/// </summary>
public sealed class ReleaseSide(ReleaseDirectory directory, FileModes modes, IReadOnlyList<string> exclude, TempNames names, IReadOnlyManifest? known = null) : ISyncSide
{
    private readonly object _gate = new();
    private readonly GlobFilter _exclude = new(exclude);
    private LocalSide? _writer;
    private HashSet<string> _carried = new(StringComparer.Ordinal);

    internal HashSet<string> DeletedFiles { get; } = new(StringComparer.Ordinal);
    internal HashSet<string> DeletedDirectories { get; } = new(StringComparer.Ordinal);
    internal HashSet<string> SourceDirectories { get; } = new(StringComparer.Ordinal);

    public ReleaseDirectory Directory => directory;

    /// <summary>The next release being built, null until something was written (or the publisher began it).</summary>
    public ReleaseStaging? Staging { get; private set; }

    /// <summary>The current release's files the engine listed (after --exclude), for the publisher.</summary>
    internal SideListing? Listing { get; private set; }

    public bool IsTree => true;
    public string ReceiveVerb => "download";
    public string Describe(string path) => path.Length == 0 ? directory.CurrentLinkPath : Path.Join(directory.CurrentLinkPath, path);
    public string NameOf(string path) => path;
    public string ExplainUnsafe(string problem) => $"its name {problem}, so it could not be restored";

    public Task<SideListing> ListAsync(CancellationToken cancellationToken) => Task.Run(() =>
    {
        var tree = directory.ScanCurrent(exclude);
        // Files carried by --keep-assets are not the site's: the publisher carries them again while their time lasts.
        _carried = directory.CarriedIntoCurrent().ToHashSet(StringComparer.Ordinal);
        var listing = new SideListing();
        foreach (var (path, file) in tree.Files)
            if (!_carried.Contains(path))
            {
                var shared = known.Share(path); // the manifest's string: the tree's copy goes with the tree
                listing.Files[shared] = new SyncFile(shared, file.Size, null, file.LastWriteUtc, new DateTimeOffset(file.LastWriteUtc));
            }
        listing.Directories.UnionWith(tree.Directories);
        foreach (var (path, type) in tree.Others) listing.Others[path] = type;
        listing.Unreadable.AddRange(tree.Unreadable);
        listing.Undecodable.AddRange(tree.Undecodable);
        Listing = listing;
        return listing;
    }, cancellationToken);

    private string CurrentPath(string path) => Path.Join(directory.CurrentRoot ?? throw new InvalidOperationException("no current tree"), path);

    public async Task ReadAsync(SyncFile file, Func<Stream, SourceInfo, CancellationToken, Task> consume, CancellationToken cancellationToken)
    {
        await using var stream = RegularFile.OpenRead(CurrentPath(file.Path));
        await consume(stream, new SourceInfo(stream.Length, null, file.Modified), cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Creates the staging tree (once) and the writer into it.</summary>
    public ReleaseStaging BeginStaging()
    {
        lock (_gate)
        {
            if (Staging is null)
            {
                Staging = directory.BeginStaging();
                _writer = new LocalSide(Staging.Root, modes, _exclude, names, syncEachFile: false);
            }
            return Staging;
        }
    }

    public Task<Written> WriteAsync(SyncFile source, Stream content, SourceInfo info, CancellationToken cancellationToken)
    {
        BeginStaging();
        return _writer!.WriteAsync(source, content, info, cancellationToken);
    }

    public Task<string> ChecksumAsync(SyncFile file, CancellationToken cancellationToken) => ObjectChecksum.ComputeETagAsync(CurrentPath(file.Path), cancellationToken);

    /// <summary>A published file is never touched (not even its mtime): the manifest records it as it is, and it is linked as it is.</summary>
    public Written Adopt(SyncFile source, SyncFile here) => new(here.Size, source.ETag, here.LocalLastWriteUtc);

    public Task<IReadOnlyList<(string Path, string Error)>> DeleteFilesAsync(IReadOnlyList<string> paths, CancellationToken cancellationToken)
    {
        lock (_gate) DeletedFiles.UnionWith(paths);
        return Task.FromResult<IReadOnlyList<(string, string)>>([]);
    }

    public Task<IReadOnlyList<(string Path, string? Error)>> DeleteDirectoriesAsync(IReadOnlyList<string> paths, CancellationToken cancellationToken)
    {
        lock (_gate) DeletedDirectories.UnionWith(paths);
        return Task.FromResult<IReadOnlyList<(string, string?)>>(paths.Select(p => (p, (string?)null)).ToList());
    }

    /// <summary>Names that are not UTF-8 are never linked into a release (no object can have them): nothing to do.</summary>
    public IReadOnlyList<(string Path, string Error)> DeleteUndecodable(IReadOnlyList<UndecodableEntry> entries) => [];

    public IReadOnlyList<(string Path, string Error)> CreateDirectories(IReadOnlyList<string> paths)
    {
        lock (_gate) SourceDirectories.UnionWith(paths);
        return [];
    }

    /// <summary>A release is never written, so it has no temporary files; staging trees of killed runs are <see cref="ReleaseDirectory.RemoveLeftovers"/>'.</summary>
    public void RemoveLeftovers(IReadOnlyList<string> paths) { }

    internal bool IsCarried(string path) => _carried.Contains(path);

    /// <summary>Whether <see cref="Listing"/> holds every file of the current tree but the carried ones (no --exclude).</summary>
    internal bool ListedWholeTree => exclude.Count == 0;
}

/// <summary>What a release-mode run published.</summary>
/// <param name="Release">the publish (id, previous id, syncfs and swap times)</param>
/// <param name="Linked">files hard-linked from the current release</param>
/// <param name="Downloaded">files downloaded into the release</param>
/// <param name="Duration">linking, syncfs and swap</param>
public sealed record ReleasePublished(PublishResult Release, long Linked, long Downloaded, TimeSpan Duration);

/// <summary>
/// Publishes a release-mode run (the engine's <see cref="IPublisher"/> seam), called only when every transfer
/// succeeded: when something changed (or there is no release yet), every file of the current release that the run
/// neither replaced nor deleted is hard-linked into the staging tree (also files --exclude keeps out of the sync,
/// as in place they stay), the directories are created, <paramref name="mayPublish"/> gets the last word (a source
/// release manifest that no longer holds), and <see cref="ReleaseStaging.Publish"/> syncs once and swaps
/// <c>current</c>. A run with nothing changed publishes nothing.
/// </summary>
public sealed class ReleasePublisher(ReleaseSide side, ILogger log, Func<CancellationToken, Task<string?>>? mayPublish = null) : IPublisher
{
    /// <summary>The publish of this run, null if it published nothing.</summary>
    public ReleasePublished? Published { get; private set; }

    /// <summary>Why the run built a release but did not publish it (null if it did, or had nothing to publish).</summary>
    public string? Withheld { get; private set; }

    public async Task PublishAsync(SyncPlan plan, SyncStats stats, CancellationToken cancellationToken)
    {
        var directory = side.Directory;
        var listing = side.Listing ?? throw new InvalidOperationException("the release side was not listed");
        var directoriesChanged = side.SourceDirectories.Any(d => !listing.Directories.Contains(d)) || side.DeletedDirectories.Count > 0;
        var changed = stats.Transferred > 0 || side.DeletedFiles.Count > 0 || directoriesChanged || side.Staging is not null;
        if (!directory.NeedsRelease(changed))
        {
            log.Debug("nothing changed: no new release, current stays {Release}", directory.CurrentId);
            return;
        }
        var watch = Stopwatch.StartNew();
        var staging = side.BeginStaging();
        if (directory.CurrentRoot is not null)
        {
            // The whole current tree, --exclude'd files too (in place they stay); carried assets are re-carried or dropped by Publish.
            // Without --exclude the engine's listing was that tree (less the carried files, which are skipped here
            // anyway): a release is never changed, so it is not scanned again.
            IEnumerable<string> files, directories;
            if (side.ListedWholeTree) (files, directories) = (listing.Files.Keys, listing.Directories);
            else
            {
                var tree = directory.ScanCurrent();
                (files, directories) = (tree.Files.Keys, tree.Directories);
            }
            var link = new List<string>();
            foreach (var path in files.Order(StringComparer.Ordinal))
                if (!side.DeletedFiles.Contains(path) && !side.IsCarried(path)) link.Add(path);
            cancellationToken.ThrowIfCancellationRequested();
            // What the run downloaded into the release is already there: the link(2) of that path finds it and keeps it.
            var result = staging.LinkFromCurrent(link, keepWhatIsThere: true);
            foreach (var missing in result.Missing) log.Warning("{Path} vanished from the current release while linking; the next run downloads it", missing);
            foreach (var path in directories.Order(StringComparer.Ordinal))
                if (!side.DeletedDirectories.Contains(path) && !IsBelowOrFile(staging, path)) staging.CreateDirectory(path);
        }
        foreach (var path in side.SourceDirectories.Order(StringComparer.Ordinal)) staging.CreateDirectory(path);

        if (mayPublish is not null && await mayPublish(cancellationToken).ConfigureAwait(false) is { } reason)
        {
            Withheld = reason;
            return; // disposing the directory removes the staging tree
        }
        cancellationToken.ThrowIfCancellationRequested();
        var published = staging.Publish();
        Published = new ReleasePublished(published, staging.Linked, stats.Transferred, watch.Elapsed);
        log.Information("published release {Release} ({Linked} linked, {Downloaded} downloaded, {Carried} carried; syncfs {Sync} s, swap {Swap} ms), previous {Previous}",
            published.Id, staging.Linked, stats.Transferred, published.Carried, published.SyncDuration.TotalSeconds.ToString("0.000", System.Globalization.CultureInfo.InvariantCulture),
            published.SwapDuration.TotalMilliseconds.ToString("0.0", System.Globalization.CultureInfo.InvariantCulture), published.PreviousId ?? "none");
    }

    /// <summary>True when a file of the new release stands at or above the directory (a file replaced a directory).</summary>
    private static bool IsBelowOrFile(ReleaseStaging staging, string path)
    {
        for (var prefix = path; prefix.Length > 0; prefix = Path.GetDirectoryName(prefix)?.Replace('\\', '/') ?? "")
            if (Libc.Stat(staging.PathOf(prefix), followLinks: false, out var status) == 0 && !status.IsDirectory) return true;
        return false;
    }
}
