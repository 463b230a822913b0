using System.Buffers;
using System.Collections.Concurrent;
using System.Security.Cryptography;
using InfraTools.Files;
using InfraTools.Interop;
using InfraTools.S3;
using Serilog;

namespace InfraTools.Sync;

/// <summary>Counters of one run, updated from parallel workers.</summary>
public sealed class MirrorStats
{
    private long _downloaded, _downloadedBytes, _deleted, _unchanged, _failed, _skipped;
    public long Downloaded => Interlocked.Read(ref _downloaded);
    public long DownloadedBytes => Interlocked.Read(ref _downloadedBytes);
    public long Deleted => Interlocked.Read(ref _deleted);
    public long Unchanged => Interlocked.Read(ref _unchanged);
    public long Failed => Interlocked.Read(ref _failed);
    public long Skipped => Interlocked.Read(ref _skipped);
    /// <summary>Files in the plan (to download, to check, unchanged), for progress output.</summary>
    public long Planned { get; set; }

    internal void AddDownloaded(long bytes) { Interlocked.Increment(ref _downloaded); Interlocked.Add(ref _downloadedBytes, bytes); }
    internal void AddDeleted() => Interlocked.Increment(ref _deleted);
    internal void AddUnchanged(long count = 1) => Interlocked.Add(ref _unchanged, count);
    internal void AddFailed() => Interlocked.Increment(ref _failed);
    internal void AddSkipped(long count = 1) => Interlocked.Add(ref _skipped, count);
}

/// <summary>
/// Carries out a <see cref="MirrorPlan"/> in a destination directory: parallel downloads, each written to a
/// hidden temporary file, checked against the object's size and MD5 ETag, given the object's Last-Modified as
/// mtime and renamed into place; then, only if every download succeeded, the deletes; then the downloads that
/// had to wait for a delete (a file turned into a directory or back). Never writes through a symbolic link.
/// The manifest is updated as files are downloaded, checked or deleted.
/// </summary>
public sealed class MirrorRun(S3Client client, string bucket, string destination, Manifest manifest, FileModes modes, int parallel, ILogger log,
    TempNames? tempNames = null)
{
    private readonly TempNames _names = tempNames ?? TempNames.Process;
    private readonly string _root = Path.GetFullPath(destination);
    private readonly ConcurrentDictionary<string, bool> _directoriesReady = new(StringComparer.Ordinal);

    public MirrorStats Stats { get; } = new();

    /// <summary>Runs the plan. Returns normally even when some files failed (see <see cref="Stats"/>); throws when the whole run must stop.</summary>
    public async Task ExecuteAsync(MirrorPlan plan, CancellationToken cancellationToken)
    {
        Stats.AddSkipped(plan.Skipped.Count);
        Stats.AddUnchanged(plan.Unchanged.Count);
        Stats.Planned = plan.Downloads.Count + plan.Verify.Count + plan.Unchanged.Count;
        Directories.Create(_root, modes.Directory);

        foreach (var leftover in plan.LeftoverTemporaryFiles)
        {
            log.Information("removing {Path}, a temporary file left by an interrupted run", leftover);
            DeleteQuietly(Local(leftover));
        }
        foreach (var (path, reason) in plan.Unreadable)
        {
            log.Error("cannot read local directory {Path} ({Reason}): nothing below it is updated or deleted; fix its permissions or --exclude it", path.Length == 0 ? "." : path, reason);
            Stats.AddFailed();
        }

        var work = plan.DownloadsNow.Select(d => (d.File, Verify: false))
            .Concat(plan.Verify.Select(v => (File: v, Verify: true)));
        await RunParallelAsync(work, cancellationToken).ConfigureAwait(false);

        if (plan.DeleteFiles.Count + plan.DeleteDirectories.Count + plan.DeleteUndecodable.Count > 0 || plan.DownloadsAfterDeletes.Any())
        {
            if (Stats.Failed > 0)
            {
                log.Warning("not deleting anything: {Failed} download(s) failed in this run", Stats.Failed);
                foreach (var waiting in plan.DownloadsAfterDeletes)
                {
                    log.Error("not downloaded {Key}: it has to replace a local entry that is only removed when every other download succeeded", waiting.File.Key);
                    Stats.AddFailed();
                }
                return;
            }
            Delete(plan, cancellationToken);
            await RunParallelAsync(plan.DownloadsAfterDeletes.Select(d => (d.File, Verify: false)), cancellationToken).ConfigureAwait(false);
        }

        foreach (var directory in plan.Directories)
        {
            try { EnsureDirectory(directory); }
            catch (IOException ex) { log.Error("cannot create directory {Path}: {Reason}", directory, ex.Message); Stats.AddFailed(); }
        }
    }

    private Task RunParallelAsync(IEnumerable<(RemoteFile File, bool Verify)> work, CancellationToken cancellationToken) =>
        ParallelTransfers.RunAsync(work, parallel, async (item, ct) =>
        {
            try
            {
                if (item.Verify && await IsSameContentAsync(item.File, ct).ConfigureAwait(false))
                {
                    Stats.AddUnchanged();
                    return;
                }
                await DownloadAsync(item.File, ct).ConfigureAwait(false);
            }
            catch (S3Exception ex) when (ex.Kind == S3ErrorKind.ObjectNotFound)
            {
                log.Information("{Key} was deleted from the source during the run; the next run removes it here", item.File.Key);
                Stats.AddSkipped();
            }
        }, (item, ex) =>
        {
            log.Error("failed to download {Key}: {Reason}", item.File.Key, ex.Message);
            Stats.AddFailed();
        }, cancellationToken);

    private async Task DownloadAsync(RemoteFile file, CancellationToken cancellationToken)
    {
        var path = Local(file.RelativePath);
        EnsureDirectory(Path.GetDirectoryName(file.RelativePath) ?? "");
        var info = await client.GetAsync(bucket, file.Key, async (body, remote, ct) =>
        {
            var lastModified = remote.LastModified == DateTimeOffset.UnixEpoch ? file.LastModified : remote.LastModified;
            await AtomicFile.WriteAsync(path, output => CopyCheckedAsync(body, output, remote, file, ct), modes.File, lastModified, _names, ct, modes.Directory)
                .ConfigureAwait(false);
        }, cancellationToken: cancellationToken).ConfigureAwait(false);
        var written = File.GetLastWriteTimeUtc(path);
        var size = info.Size >= 0 ? info.Size : file.Size;
        manifest.Set(file.RelativePath, new ManifestEntry(size, info.ETag.Length > 0 ? info.ETag : file.ETag, written));
        Stats.AddDownloaded(size);
        log.Debug("downloaded {Key} ({Bytes} bytes)", file.Key, size);
    }

    /// <summary>
    /// Copies the object's content, checking its length (the announced one, else the listing's: a chunked answer
    /// announces none) and, for single-part objects, its MD5 against the ETag.
    /// </summary>
    private static async Task CopyCheckedAsync(Stream body, Stream output, S3ObjectInfo info, RemoteFile file, CancellationToken cancellationToken)
    {
        var key = file.Key;
        var etag = info.ETag.Length > 0 ? info.ETag : file.ETag;
        using var md5 = ObjectChecksum.IsMultipartETag(etag) || etag.Length != 32 ? null : IncrementalHash.CreateHash(HashAlgorithmName.MD5);
        var buffer = ArrayPool<byte>.Shared.Rent(64 * 1024);
        long total = 0;
        try
        {
            int read;
            while ((read = await body.ReadAsync(buffer, cancellationToken).ConfigureAwait(false)) > 0)
            {
                md5?.AppendData(buffer, 0, read);
                await output.WriteAsync(buffer.AsMemory(0, read), cancellationToken).ConfigureAwait(false);
                total += read;
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
        if (info.Size >= 0 && total != info.Size)
            throw new S3Exception(S3ErrorKind.IntegrityCheckFailed, $"download of {key} got {total} bytes, the server announced {info.Size}");
        if (info.Size < 0 && total != file.Size)
            throw new S3Exception(S3ErrorKind.IntegrityCheckFailed, $"download of {key} got {total} bytes, the listing said {file.Size}");
        if (md5 is not null && Convert.ToHexStringLower(md5.GetHashAndReset()) != etag)
            throw new S3Exception(S3ErrorKind.IntegrityCheckFailed, $"download of {key} does not match its ETag {etag}");
    }

    /// <summary>True if the local file's checksum equals the object's ETag; then the mtime and manifest are updated too.</summary>
    private async Task<bool> IsSameContentAsync(RemoteFile file, CancellationToken cancellationToken)
    {
        var path = Local(file.RelativePath);
        var local = await ObjectChecksum.ComputeETagAsync(path, cancellationToken).ConfigureAwait(false);
        if (local != file.ETag)
        {
            log.Debug("{Path} differs from {Key}", file.RelativePath, file.Key);
            return false;
        }
        File.SetLastWriteTimeUtc(path, file.LastModified.UtcDateTime);
        manifest.Set(file.RelativePath, new ManifestEntry(file.Size, file.ETag, File.GetLastWriteTimeUtc(path)));
        return true;
    }

    private void Delete(MirrorPlan plan, CancellationToken cancellationToken)
    {
        foreach (var path in plan.DeleteFiles)
        {
            cancellationToken.ThrowIfCancellationRequested();
            try
            {
                File.Delete(Local(path));
                manifest.Remove(path);
                Stats.AddDeleted();
                log.Information("deleted {Path}", path);
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                log.Error("failed to delete {Path}: {Reason}", path, ex.Message);
                Stats.AddFailed();
            }
        }
        foreach (var entry in plan.DeleteUndecodable)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var errno = DeleteRaw(entry.RawRelativePath, entry.IsDirectory);
            if (errno == 0)
            {
                Stats.AddDeleted();
                log.Information("deleted {Path} (its name is not UTF-8, so no object can have it)", entry.Display);
            }
            else
            {
                log.Error("failed to delete {Path}: {Reason}", entry.Display, Libc.ErrorText(errno));
                Stats.AddFailed();
            }
        }
        foreach (var path in plan.DeleteDirectories)
        {
            var full = Local(path);
            try
            {
                if (!Directory.Exists(full) || Directory.EnumerateFileSystemEntries(full).Any()) continue; // gone, or holds excluded files
                Directory.Delete(full);
                _directoriesReady.TryRemove(path, out _);
                log.Information("deleted directory {Path}", path);
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                log.Error("failed to delete directory {Path}: {Reason}", path, ex.Message);
                Stats.AddFailed();
            }
        }
    }

    /// <summary>Creates a directory below the root one component at a time, refusing to pass through a symbolic link.</summary>
    private void EnsureDirectory(string relative)
    {
        if (relative.Length == 0 || _directoriesReady.ContainsKey(relative)) return;
        EnsureDirectory(Path.GetDirectoryName(relative) ?? "");
        var full = Local(relative);
        var info = new DirectoryInfo(full);
        if (info.LinkTarget is not null) throw new IOException($"'{relative}' is a symbolic link; not writing through it");
        if (!info.Exists)
        {
            if (File.Exists(full)) throw new IOException($"'{relative}' is a file where a directory is needed");
            Directories.Create(full, modes.Directory);
        }
        _directoriesReady[relative] = true;
    }

    private string Local(string relative) => KeyPaths.LocalPath(_root, relative);

    /// <summary>Removes a file, or a directory with everything in it, named by raw bytes below the root; errno on failure.</summary>
    private int DeleteRaw(byte[] relative, bool directory)
    {
        var path = Libc.Bytes([.. System.Text.Encoding.UTF8.GetBytes(_root + "/"), .. relative]);
        if (!directory) return Libc.UnlinkAt(Libc.AT_FDCWD, path, directory: false);
        var fd = Libc.Open(path, Libc.O_RDONLY | Libc.O_DIRECTORY | Libc.O_NOFOLLOW);
        if (fd < 0) return Libc.LastError;
        var entries = new List<Libc.DirectoryEntry>();
        var errno = Libc.ReadDirectory(fd, entries);
        Libc.Close(fd);
        if (errno != 0) return errno;
        foreach (var entry in entries)
        {
            var child = (byte[])[.. relative, (byte)'/', .. entry.Name];
            var isDirectory = entry.Type == Libc.DT_DIR
                || entry.Type == Libc.DT_UNKNOWN && Libc.Stat(Libc.AT_FDCWD, Libc.Bytes([.. System.Text.Encoding.UTF8.GetBytes(_root + "/"), .. child]), false, out var s) == 0 && s.IsDirectory;
            errno = DeleteRaw(child, isDirectory);
            if (errno != 0) return errno;
        }
        return Libc.UnlinkAt(Libc.AT_FDCWD, path, directory: true);
    }

    private static void DeleteQuietly(string path)
    {
        try { File.Delete(path); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}
