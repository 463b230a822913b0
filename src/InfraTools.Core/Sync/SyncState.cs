using InfraTools.Files;
using InfraTools.Interop;
using Serilog;

namespace InfraTools.Sync;

/// <summary>
/// The state a sync keeps between runs in its state directory: the manifest, the tag of its temporary files
/// (so the next run can tell its own leftovers from a user's files), and a lock that keeps two runs of the same
/// (endpoint, bucket, prefix, local path) from working at once. A run that writes a local directory also locks
/// that directory itself, so two runs cannot write it at once however it is spelled (a symbolic link, another
/// endpoint spelling, another state directory). If the state directory cannot be written (permission, read-only
/// file system, full disk) the sync still works with an empty manifest, comparing by checksum, and says so.
/// </summary>
public sealed class SyncState : IDisposable
{
    private readonly FileLock? _lock;
    private readonly FileLock? _localLock;
    private readonly string? _manifestPath;
    private readonly ILogger _log;

    /// <summary>The manifest, for the planner; the runner records into it through <see cref="Record"/> and <see cref="Forget"/>.</summary>
    public IReadOnlyManifest Manifest => _manifest;
    private readonly Sync.Manifest _manifest;

    /// <summary>The names of this run's temporary files; recorded in the state directory when it is writable.</summary>
    public TempNames TempNames { get; }

    /// <summary>True when the manifest and the temporary-file tag are kept between runs.</summary>
    public bool Persistent => _manifestPath is not null;

    private SyncState(Sync.Manifest manifest, string? manifestPath, FileLock? lockFile, FileLock? localLock, TempNames names, ILogger log)
    {
        _manifest = manifest;
        _manifestPath = manifestPath;
        _lock = lockFile;
        _localLock = localLock;
        TempNames = names;
        _log = log;
    }

    /// <summary>
    /// Loads the manifest and takes the locks. <paramref name="localPath"/> must be resolved
    /// (<see cref="LocalPaths.Resolve"/>). With <paramref name="lockLocal"/> the local directory (which must
    /// exist) is locked too. With <paramref name="readOnly"/> (dry runs) nothing is created or locked.
    /// <paramref name="variant"/> (<see cref="IObjectTransform.Variant"/>) selects another manifest for other encryption recipients.
    /// </summary>
    public static SyncState Open(string directory, string tool, string endpoint, string bucket, string prefix, string localPath, bool readOnly,
        bool lockLocal, ILogger log, string variant = "")
    {
        var manifestPath = Sync.Manifest.PathFor(directory, endpoint, bucket, prefix, localPath, variant);
        if (readOnly) return new SyncState(Sync.Manifest.Load(manifestPath), null, null, null, TempNames.Random(), log);

        var localLock = lockLocal
            ? FileLock.TryAcquireDirectory(localPath)
              ?? throw new RefusedException($"another run is already writing {localPath} (it holds the lock on that directory): not starting a second one")
            : null;
        try
        {
            FileLock? lockFile = null;
            string? tag;
            try
            {
                Directories.Create(directory, FileModes.Private.Directory);
                lockFile = FileLock.TryAcquire(manifestPath + ".lock")
                    ?? throw new RefusedException($"another {tool} is already working on {localPath} (lock {manifestPath}.lock): not starting a second one");
                tag = ReadOrCreateTag(lockFile);
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                lockFile?.Dispose();
                log.Warning("state directory {Directory} cannot be written ({Reason}): files are compared by checksum instead of by the manifest, and temporary files of interrupted runs are not cleaned up; set --state-dir to a writable directory",
                    directory, ex.Message);
                return new SyncState(new Sync.Manifest(), null, null, localLock, TempNames.Random(), log);
            }
            return new SyncState(Sync.Manifest.Load(manifestPath), manifestPath, lockFile, localLock, new TempNames(tag), log);
        }
        catch
        {
            localLock?.Dispose();
            throw;
        }
    }

    /// <summary>The tag recorded in the lock file, or a new one written there before any temporary file exists.</summary>
    private static string ReadOrCreateTag(FileLock lockFile)
    {
        var existing = lockFile.ReadContent().Trim();
        if (existing.Length == 16 && existing.All(char.IsAsciiHexDigitLower)) return existing;
        var tag = TempNames.Random().Tag;
        lockFile.WriteContent(tag + "\n");
        return tag;
    }

    /// <summary>State that is not kept between runs (restores, snapshots): an empty manifest, nothing locked or saved.</summary>
    public static SyncState Ephemeral(ILogger log) => new(new Sync.Manifest(), null, null, null, TempNames.Process, log);

    /// <summary>Records a pair known equal.</summary>
    public void Record(string path, ManifestEntry entry) => _manifest.Set(path, entry);

    /// <summary>Forgets a path whose target file was deleted.</summary>
    public void Forget(string path) => _manifest.Remove(path);

    /// <summary>
    /// Keeps only the entries of the source's files and saves the manifest, unless that changed nothing (a
    /// no-change run: the file already says it all). A state directory that cannot take it (full, read-only) is a
    /// warning: the manifest is a cache.
    /// </summary>
    public async Task SaveAsync(IReadOnlySet<string> sourceFiles)
    {
        _manifest.KeepOnly(sourceFiles);
        if (_manifestPath is null || !_manifest.Changed) return;
        try
        {
            await _manifest.SaveAsync(_manifestPath, TempNames).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            _log.Warning("cannot save the manifest {Path} ({Reason}): the next run compares changed files by checksum", _manifestPath, ex.Message);
        }
    }

    public void Dispose()
    {
        _lock?.Dispose();
        _localLock?.Dispose();
    }
}
