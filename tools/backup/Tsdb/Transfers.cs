namespace InfraTools.Backup.Tsdb;

/// <summary>
/// Runs transfers in parallel: a failure the store calls fatal (it would hit every other transfer too) stops them
/// all and is rethrown; any other failure fails that item only and the others go on.
/// </summary>
internal static class Transfers
{
    public static async Task RunAsync<T>(IEnumerable<T> items, int parallel, ITsdbStore store, Func<T, CancellationToken, Task> transfer,
        Action<T, Exception> onItemFailed, CancellationToken cancellationToken)
    {
        using var stopAll = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        Exception? fatal = null;
        try
        {
            await Parallel.ForEachAsync(items, new ParallelOptions { MaxDegreeOfParallelism = Math.Max(1, parallel), CancellationToken = stopAll.Token },
                async (item, ct) =>
                {
                    try
                    {
                        await transfer(item, ct).ConfigureAwait(false);
                    }
                    catch (Exception ex) when (store.IsFatal(ex))
                    {
                        Interlocked.CompareExchange(ref fatal, ex, null);
                        await stopAll.CancelAsync().ConfigureAwait(false);
                    }
                    catch (Exception ex) when (ex is not OperationCanceledException)
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
