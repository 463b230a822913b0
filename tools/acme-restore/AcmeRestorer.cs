using InfraTools.Cli;
using InfraTools.Files;
using InfraTools.S3;
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

/// <summary>The result of a run; <see cref="Error"/> is set when the outcome is <see cref="Outcome.Failed"/>.</summary>
public sealed record RestoreResult(Outcome Outcome, ToolException? Error = null);

/// <summary>
/// Restores Traefik's acme.json from S3 when the local file is missing or empty. Never touches a non-empty
/// local file, installs only content that parses as a JSON object (atomically, mode 0600), and retries
/// transient S3 failures with exponential backoff until the timeout.
/// </summary>
public sealed class AcmeRestorer(S3Client s3, S3Location source, string key, string file, TimeSpan timeout, ILogger log)
{
    /// <summary>Largest backup accepted; a real acme.json is kilobytes, a few MB with thousands of certificates.</summary>
    public const long MaxSize = 64L << 20;
    private static readonly TimeSpan FirstDelay = TimeSpan.FromMilliseconds(500);
    private static readonly TimeSpan MaxDelay = TimeSpan.FromSeconds(5);

    private string Where => source.Describe(key);

    /// <summary>Null if the local file is missing or empty (so to be restored), else the outcome Present, with warnings about its content and mode.</summary>
    public static RestoreResult? CheckLocal(string file, ILogger log)
    {
        var info = new FileInfo(file);
        if (!info.Exists || info.Length == 0) return null;
        var mode = File.GetUnixFileMode(file);
        log.Information("{File} is present ({Bytes} bytes): left untouched, nothing restored", file, info.Length);
        byte[] content;
        try
        {
            content = File.ReadAllBytes(file);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            log.Warning("cannot read {File} to check it ({Error}); it is left untouched", file, ex.Message);
            return new RestoreResult(Outcome.Present);
        }
        if (!IsJsonObject(content, out var reason))
            log.Warning("{File} is not a valid acme.json ({Reason}); it is left untouched as it is not empty: delete it to restore the backup on the next start", file, reason);
        if ((mode & (UnixFileMode.GroupRead | UnixFileMode.GroupWrite | UnixFileMode.GroupExecute | UnixFileMode.OtherRead | UnixFileMode.OtherWrite | UnixFileMode.OtherExecute)) != 0)
            log.Warning("{File} has mode {Mode} and Traefik refuses an acme.json readable by others: chmod 600 it", file, Convert.ToString((int)mode, 8).PadLeft(4, '0'));
        return new RestoreResult(Outcome.Present);
    }

    public async Task<RestoreResult> RestoreAsync(CancellationToken stopping)
    {
        byte[]? content;
        try
        {
            content = await DownloadWithRetriesAsync(stopping).ConfigureAwait(false);
        }
        catch (S3Exception ex) when (ex.Kind == S3ErrorKind.ObjectNotFound)
        {
            log.Information("no backup at {Source} yet: Traefik will create a new ACME account and certificates", Where);
            return new RestoreResult(Outcome.NoBackup);
        }
        catch (ToolException ex)
        {
            return new RestoreResult(Outcome.Failed, ex);
        }

        if (content is null)
        {
            log.Warning("{Source} is not a valid acme.json (larger than {Limit} MiB): not installed, {File} stays missing", Where, MaxSize >> 20, file);
            return new RestoreResult(Outcome.Invalid);
        }
        if (!IsJsonObject(content, out var reason))
        {
            log.Warning("{Source} is not a valid acme.json ({Reason}): not installed, {File} stays missing", Where, reason, file);
            return new RestoreResult(Outcome.Invalid);
        }

        try
        {
            await AtomicFile.WriteAsync(file, content, AtomicFile.OwnerOnly, stopping).ConfigureAwait(false);
            AtomicFile.SyncDirectory(Path.GetDirectoryName(Path.GetFullPath(file))!);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            var (code, message) = ToolHost.Describe(ex);
            return new RestoreResult(Outcome.Failed, new ToolException(code, $"cannot write {file}: {message}", ex));
        }
        log.Information("restored {File} from {Source} ({Bytes} bytes, mode 0600)", file, Where, content.Length);
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
                throw new S3Exception(S3ErrorKind.Unreachable,
                    $"no answer from {s3.Settings.EndpointText} within --timeout {GoDuration.FormatShort(timeout)} ({attempt} attempts): check S3_ENDPOINT and that the server is up");
            }
            catch (S3Exception ex) when (ex.IsTransient)
            {
                var elapsed = DateTime.UtcNow - started;
                // Give up when the next attempt could not start before the deadline.
                if (timeout - elapsed <= delay)
                    throw new S3Exception(ex.Kind, $"{ex.Message} (gave up after {attempt} attempts in {GoDuration.FormatShort(elapsed)}, --timeout {GoDuration.FormatShort(timeout)})", ex);
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
            if (info.Size > MaxSize) return;
            using var buffer = new MemoryStream(info.Size > 0 ? (int)info.Size : 4096);
            await stream.CopyToAsync(buffer, ct).ConfigureAwait(false);
            content = buffer.ToArray();
        }, cancellationToken: cancellationToken).ConfigureAwait(false);
        return content;
    }

    /// <summary>True if <paramref name="content"/> is one JSON object (what Traefik writes: resolver name to account and certificates).</summary>
    public static bool IsJsonObject(byte[] content, out string reason)
    {
        reason = JsonObjectCheck.Problem(content) is { } problem ? "it " + problem : "";
        return reason.Length == 0;
    }
}
