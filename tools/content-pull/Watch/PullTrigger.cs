namespace InfraTools.ContentPull.Watch;

/// <summary>
/// Requests for a pull, coalesced: however many arrive while a pull runs (or before the loop looks), the loop sees
/// one, so ten webhooks during a pull cause one more pull, not ten. The first reason given is the one reported.
/// </summary>
public sealed class PullTrigger
{
    private readonly SemaphoreSlim _signal = new(0, 1);
    private readonly Lock _lock = new();
    private string? _reason;

    /// <summary>Asks for a pull; returns false when one was already pending (this request adds nothing).</summary>
    public bool Request(string reason)
    {
        lock (_lock)
        {
            if (_reason is not null) return false;
            _reason = reason;
        }
        _signal.Release();
        return true;
    }

    /// <summary>The pending request's reason, waiting at most <paramref name="timeout"/>; null when none came.</summary>
    public async Task<string?> WaitAsync(TimeSpan timeout, CancellationToken cancellationToken)
    {
        if (!await _signal.WaitAsync(timeout < TimeSpan.Zero ? TimeSpan.Zero : timeout, cancellationToken).ConfigureAwait(false)) return null;
        lock (_lock)
        {
            var reason = _reason;
            _reason = null;
            return reason;
        }
    }
}
