using InfraTools.Cli;
using InfraTools.Crypto;
using InfraTools.Files;
using InfraTools.Interop;
using InfraTools.Storage;
using InfraTools.Time;
using Serilog;

namespace InfraTools.AcmeRestore;

/// <summary>What a run did; the names are the values of the outcome metric's label.</summary>
public enum Outcome
{
    /// <summary>The backup was downloaded and installed.</summary>
    Restored,
    /// <summary>A non-empty local file was already there and was left alone.</summary>
    Present,
    /// <summary>There is no backup object yet (first deployment).</summary>
    NoBackup,
    /// <summary>The backup object is not a JSON object, so it was not installed.</summary>
    Invalid,
    /// <summary>S3 could not be read or the file could not be written.</summary>
    Failed,
}

/// <summary>The outcome label values of the metric, in the order they are written.</summary>
public static class Outcomes
{
    public static readonly Outcome[] All = [Outcome.Restored, Outcome.Present, Outcome.NoBackup, Outcome.Invalid, Outcome.Failed];

    public static string Label(Outcome outcome) => outcome switch
    {
        Outcome.Restored => "restored",
        Outcome.Present => "present",
        Outcome.NoBackup => "no_backup",
        Outcome.Invalid => "invalid",
        _ => "failed",
    };
}

/// <summary>The result of a run; <see cref="Error"/> is set when the outcome is <see cref="Outcome.Failed"/>.</summary>
public sealed record RestoreResult(Outcome Outcome, Exception? Error = null);

/// <summary>
/// Restores Traefik's acme.json from S3 when the local file is missing or empty. Never touches a non-empty
/// local file, installs only content that parses as a JSON object (atomically, mode 0600), and retries
/// transient S3 failures with exponential backoff until the timeout. An encrypted backup (KEY.age, with
/// <paramref name="decryption"/>) is decrypted in memory: only the checked plaintext reaches the disk, in the
/// atomic temporary file next to the target.
/// </summary>
public sealed class AcmeRestorer(IObjectStore s3, S3Location source, string key, string file, string target, TimeSpan timeout, ILogger log,
    AgeObjectTransform? decryption = null)
{
    /// <summary>Largest backup accepted; a real acme.json is kilobytes, a few MB with thousands of certificates.</summary>
    public const long MaxSize = 64L << 20;
    private static readonly TimeSpan FirstDelay = TimeSpan.FromMilliseconds(500);
    private static readonly TimeSpan MaxDelay = TimeSpan.FromSeconds(5);

    private string Where => source.Describe(key);
    private string Shown => target == file ? file : $"{file} (a link to {target})";

    /// <summary>
    /// The file acme-restore works on: <paramref name="file"/> itself, or, when it is a symbolic link (even a
    /// dangling one), the file at the end of its links, which is what Traefik opens; restoring there keeps the link.
    /// </summary>
    public static string ResolveTarget(string file)
    {
        var info = new FileInfo(file);
        if (info.LinkTarget is null) return file;
        return info.ResolveLinkTarget(returnFinalTarget: true)?.FullName ?? file;
    }

    /// <summary>
    /// Null if the file (at the end of its links, <paramref name="target"/>) is missing or empty, so to be restored;
    /// else the outcome Present, with warnings about its content and mode; or Failed when it cannot be checked
    /// (a directory or FIFO in its place, unreadable): never an exception, so the command still starts.
    /// </summary>
    public static RestoreResult? CheckLocal(string file, string target, ILogger log)
    {
        var shown = target == file ? file : $"{file} (a link to {target})";
        var errno = Libc.Stat(target, followLinks: true, out var status);
        // Missing (also below a file, ENOTDIR: the restore then says it cannot write there) or empty: restore it.
        if (errno is Libc.ENOENT or Libc.ENOTDIR || errno == 0 && status.IsRegular && status.Size == 0) return null;
        if (errno != 0)
            return Failed(Libc.Error(errno, $"cannot check {shown}"));
        if (!status.IsRegular)
            return Failed(new IOException($"{shown} is a {status.TypeName}, not a file: remove it so acme.json can be restored"));
        log.Information("{File} is present ({Bytes} bytes): left untouched, nothing restored", shown, status.Size);
        byte[] content;
        try
        {
            content = RegularFile.ReadAllBytes(target, followLinks: true, MaxSize);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            log.Warning("cannot read {File} to check it ({Error}); it is left untouched", shown, ex.Message);
            return new RestoreResult(Outcome.Present);
        }
        if (!IsJsonObject(content, out var reason))
            log.Warning("{File} is not a valid acme.json ({Reason}); it is left untouched as it is not empty: delete it to restore the backup on the next start", shown, reason);
        var mode = status.Permissions;
        if ((mode & (UnixFileMode.GroupRead | UnixFileMode.GroupWrite | UnixFileMode.GroupExecute | UnixFileMode.OtherRead | UnixFileMode.OtherWrite | UnixFileMode.OtherExecute)) != 0)
            log.Warning("{File} has mode {Mode} and Traefik refuses an acme.json readable by others: chmod 600 it", shown, Convert.ToString((int)mode, 8).PadLeft(4, '0'));
        return new RestoreResult(Outcome.Present);

        static RestoreResult Failed(Exception ex)
        {
            var (code, message) = ToolHost.Describe(ex);
            return new RestoreResult(Outcome.Failed, new ToolException(code, message, ex));
        }
    }

    public async Task<RestoreResult> RestoreAsync(CancellationToken stopping)
    {
        byte[]? content;
        try
        {
            content = await DownloadWithRetriesAsync(stopping).ConfigureAwait(false);
        }
        catch (StoreException ex) when (ex.Kind == StoreErrorKind.ObjectNotFound)
        {
            log.Information("no backup at {Source} yet: Traefik will create a new ACME account and certificates", Where);
            return new RestoreResult(Outcome.NoBackup);
        }
        catch (StoreException ex)
        {
            return new RestoreResult(Outcome.Failed, ex);
        }
        catch (AgeException ex)
        {
            // No identity, or not the one the backup was encrypted for: nothing is written.
            return new RestoreResult(Outcome.Failed, ex);
        }

        if (content is null)
        {
            log.Warning("{Source} is not a valid acme.json (larger than {Limit} MiB): not installed, {File} stays missing", Where, MaxSize >> 20, Shown);
            return new RestoreResult(Outcome.Invalid);
        }
        if (!IsJsonObject(content, out var reason))
        {
            log.Warning("{Source} is not a valid acme.json ({Reason}): not installed, {File} stays missing", Where, reason, Shown);
            return new RestoreResult(Outcome.Invalid);
        }

        try
        {
            await AtomicFile.WriteAsync(target, stream => stream.WriteAsync(content, stopping).AsTask(), AtomicFile.OwnerOnly, null, null, stopping,
                FileModes.Private.Directory).ConfigureAwait(false);
            AtomicFile.SyncDirectory(Path.GetDirectoryName(Path.GetFullPath(target))!);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            var (code, message) = ToolHost.Describe(ex);
            return new RestoreResult(Outcome.Failed, new ToolException(code, $"cannot write {Shown}: {message}", ex));
        }
        log.Information("restored {File} from {Source} ({Bytes} bytes, mode 0600)", Shown, Where, content.Length);
        return new RestoreResult(Outcome.Restored);
    }

    /// <summary>The object's content, or null if it is larger than <see cref="MaxSize"/>.</summary>
    private async Task<byte[]?> DownloadWithRetriesAsync(CancellationToken stopping)
    {
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(stopping);
        deadline.CancelAfter(timeout);
        var started = DateTime.UtcNow;
        var delay = FirstDelay;
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                return await DownloadAsync(deadline.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (!stopping.IsCancellationRequested)
            {
                throw new StoreException(StoreErrorKind.Unreachable,
                    $"no answer from {s3.Endpoint} within --timeout {GoDuration.FormatShort(timeout)} ({attempt} attempts): check S3_ENDPOINT and that the server is up");
            }
            catch (StoreException ex) when (ex.IsTransient)
            {
                var elapsed = DateTime.UtcNow - started;
                // Give up when the next attempt could not start before the deadline.
                if (timeout - elapsed <= delay)
                    throw new StoreException(ex.Kind, $"{ex.Message} (gave up after {attempt} attempts in {GoDuration.FormatShort(elapsed)}, --timeout {GoDuration.FormatShort(timeout)})", ex);
                log.Warning("attempt {Attempt} failed: {Error}; retrying in {Delay}", attempt, ex.Message, GoDuration.FormatShort(delay));
                await Task.Delay(delay, stopping).ConfigureAwait(false);
                delay = delay * 2 < MaxDelay ? delay * 2 : MaxDelay;
            }
        }
    }

    private async Task<byte[]?> DownloadAsync(CancellationToken cancellationToken)
    {
        byte[]? content = null;
        await s3.GetAsync(source.Bucket, key, async (stream, info, ct) =>
        {
            if (decryption is not null)
            {
                await decryption.DecodeAsync(stream, Where, async (plain, c) => content = await ReadCappedAsync(plain, 4096, c).ConfigureAwait(false), ct)
                    .ConfigureAwait(false);
                return;
            }
            if (info.Size > MaxSize) return;
            content = await ReadCappedAsync(stream, info.Size, ct).ConfigureAwait(false);
        }, cancellationToken: cancellationToken).ConfigureAwait(false);
        return content;
    }

    /// <summary>All of <paramref name="stream"/>, or null if it is larger than <see cref="MaxSize"/>.</summary>
    private static async Task<byte[]?> ReadCappedAsync(Stream stream, long announced, CancellationToken ct)
    {
        // The cap holds for answers that announce no length too (chunked): read at most one chunk more than allowed.
        using var buffer = new MemoryStream(announced > 0 ? (int)announced : 4096);
        var chunk = new byte[64 * 1024];
        int read;
        while ((read = await stream.ReadAsync(chunk, ct).ConfigureAwait(false)) > 0)
        {
            if (buffer.Length + read > MaxSize) return null;
            buffer.Write(chunk, 0, read);
        }
        return buffer.ToArray();
    }

    /// <summary>True if <paramref name="content"/> is one JSON object (what Traefik writes: resolver name to account and certificates).</summary>
    public static bool IsJsonObject(byte[] content, out string reason)
    {
        reason = JsonObjectCheck.Problem(content) is { } problem ? "it " + problem : "";
        return reason.Length == 0;
    }
}
