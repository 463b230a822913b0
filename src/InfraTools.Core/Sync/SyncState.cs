using InfraTools.Cli;
using InfraTools.Files;
using Serilog;

namespace InfraTools.Sync;

/// <summary>
/// The state a sync keeps between runs in its state directory: the manifest, and a lock that keeps two runs of
/// the same (endpoint, bucket, prefix, local path) from working at once. If the directory cannot be written the
/// sync still works with an empty manifest (comparing by checksum) and says so.
/// </summary>
public sealed class SyncState : IDisposable
{
    private readonly FileLock? _lock;
    private readonly string? _manifestPath;

    public Manifest Manifest { get; }

    private SyncState(Manifest manifest, string? manifestPath, FileLock? lockFile)
    {
        Manifest = manifest;
        _manifestPath = manifestPath;
        _lock = lockFile;
    }

    /// <summary>Loads the manifest and takes the lock. With <paramref name="readOnly"/> (dry runs) nothing is created or locked.</summary>
    public static SyncState Open(string directory, string tool, string endpoint, string bucket, string prefix, string localPath, bool readOnly, ILogger log)
    {
        var manifestPath = Manifest.PathFor(directory, endpoint, bucket, prefix, localPath);
        if (readOnly) return new SyncState(Manifest.Load(manifestPath), null, null);
        try
        {
            Directory.CreateDirectory(directory);
            var lockFile = FileLock.TryAcquire(manifestPath + ".lock")
                ?? throw new ToolException(ExitCodes.Refused, $"another {tool} is already working on {localPath} (lock {manifestPath}.lock): not starting a second one");
            return new SyncState(Manifest.Load(manifestPath), manifestPath, lockFile);
        }
        catch (UnauthorizedAccessException)
        {
            log.Warning("state directory {Directory} is not writable: files are compared by checksum instead of by the manifest; set --state-dir to a writable directory", directory);
            return new SyncState(new Manifest(), null, null);
        }
    }

    public async Task SaveAsync()
    {
        if (_manifestPath is not null) await Manifest.SaveAsync(_manifestPath).ConfigureAwait(false);
    }

    public void Dispose() => _lock?.Dispose();
}
