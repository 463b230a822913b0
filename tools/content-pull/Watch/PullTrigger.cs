namespace InfraTools.ContentPull.Watch;

/// <summary>What woke the watch loop: <see cref="Pull"/> true for a pull (a signed trigger), false for a hint to
/// poll the watched object now (a bucket notification, which nobody signs).</summary>
public sealed record Wake(string Reason, bool Pull);

/// <summary>
/// Requests for a pull or a poll, coalesced: however many arrive while a pull runs (or before the loop looks), the
/// loop sees one, so ten webhooks during a pull cause one more pull, not ten. The first reason given is the one
/// reported; a pull request pending upgrades a pending poll hint, a hint adds nothing to a pending pull.
/// </summary>
public sealed class PullTrigger
{
    private readonly SemaphoreSlim _signal = new(0, 1);
    private readonly Lock _lock = new();
    private Wake? _pending;

    /// <summary>Asks for a pull; returns false when one was already pending (this request adds nothing).</summary>
    public bool Request(string reason) => Add(new Wake(reason, Pull: true));

    /// <summary>Asks for a poll of the watched object now; returns false when a poll or a pull was already pending.</summary>
    public bool Hint(string reason) => Add(new Wake(reason, Pull: false));

    private bool Add(Wake wake)
    {
        lock (_lock)
        {
            if (_pending is { } pending)
            {
                if (pending.Pull || !wake.Pull) return false;
                _pending = wake; // a pull upgrades a pending hint; the loop is already signalled
                return true;
            }
            _pending = wake;
        }
        _signal.Release();
        return true;
    }

    /// <summary>
    /// The pending request, waiting at most <paramref name="timeout"/>, and not less unless one comes; null when none
    /// came. The wait is rounded up to whole milliseconds: a semaphore's timeout is whole milliseconds, so the last
    /// fraction of one before a poll was due would return at once, again and again, until the time passed.
    /// </summary>
    public async Task<Wake?> WaitAsync(TimeSpan timeout, CancellationToken cancellationToken)
    {
        var milliseconds = timeout <= TimeSpan.Zero ? 0 : (int)Math.Min(int.MaxValue - 1, Math.Ceiling(timeout.TotalMilliseconds));
        if (!await _signal.WaitAsync(milliseconds, cancellationToken).ConfigureAwait(false)) return null;
        lock (_lock)
        {
            var wake = _pending;
            _pending = null;
            return wake;
        }
    }
}
