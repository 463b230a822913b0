using InfraTools.Storage;

namespace InfraTools.Sync;

/// <summary>
/// Runs transfers in parallel and sorts their failures: an error that would hit every other transfer too
/// (<see cref="StoreException.StopsTheRun"/>: endpoint unreachable, credentials refused, bucket gone) stops them
/// all and is rethrown, any other store or file-system error fails just that item.
/// </summary>
public static class ParallelTransfers
{
    public static async Task RunAsync<T>(IEnumerable<T> items, int parallel, Func<T, CancellationToken, Task> transfer,
        Action<T, Exception> onItemFailed, CancellationToken cancellationToken)
    {
        using var stopAll = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        StoreException? fatal = null;
        try
        {
            await Parallel.ForEachAsync(items, new ParallelOptions { MaxDegreeOfParallelism = parallel, CancellationToken = stopAll.Token },
                async (item, ct) =>
                {
                    try
                    {
                        await transfer(item, ct).ConfigureAwait(false);
                    }
                    catch (StoreException ex) when (ex.StopsTheRun)
                    {
                        Interlocked.CompareExchange(ref fatal, ex, null);
                        await stopAll.CancelAsync().ConfigureAwait(false);
                    }
                    catch (Exception ex) when (ex is StoreException or IOException or UnauthorizedAccessException)
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
}
