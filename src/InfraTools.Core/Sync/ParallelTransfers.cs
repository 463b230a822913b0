using InfraTools.S3;

namespace InfraTools.Sync;

/// <summary>
/// Runs transfers in parallel and sorts their failures: an object that vanished is the caller's to count, an
/// error that would hit every other transfer too (endpoint unreachable, credentials refused, bucket gone) stops
/// them all and is rethrown, any other error fails just that item.
/// </summary>
public static class ParallelTransfers
{
    public static async Task RunAsync<T>(IEnumerable<T> items, int parallel, Func<T, CancellationToken, Task> transfer,
        Action<T, Exception> onItemFailed, CancellationToken cancellationToken)
    {
        using var stopAll = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        S3Exception? fatal = null;
        try
        {
            await Parallel.ForEachAsync(items, new ParallelOptions { MaxDegreeOfParallelism = parallel, CancellationToken = stopAll.Token },
                async (item, ct) =>
                {
                    try
                    {
                        await transfer(item, ct).ConfigureAwait(false);
                    }
                    catch (S3Exception ex) when (IsFatal(ex))
                    {
                        Interlocked.CompareExchange(ref fatal, ex, null);
                        await stopAll.CancelAsync().ConfigureAwait(false);
                    }
                    catch (Exception ex) when (ex is S3Exception or IOException or UnauthorizedAccessException)
                    {
                        onItemFailed(item, ex);
                    }
                }).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (fatal is not null && !cancellationToken.IsCancellationRequested)
        {
        }
        if (fatal is not null) throw fatal;
    }

    private static bool IsFatal(S3Exception ex) =>
        ex.Kind is S3ErrorKind.Unreachable or S3ErrorKind.AuthenticationFailed or S3ErrorKind.AccessDenied or S3ErrorKind.BucketNotFound;
}
