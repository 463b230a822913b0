using System.Diagnostics;
using System.Text;
using InfraTools.Cli;
using InfraTools.Http;
using InfraTools.S3;
using InfraTools.Storage;
using Serilog;

namespace InfraTools.ContentPull.Watch;

/// <summary>What the watch mode adds to a content-pull command line.</summary>
public sealed record WatchOptions(TimeSpan Poll, TimeSpan Resync, string? Listen, string WatchKey, TimeSpan StopGrace);

/// <summary>
/// <c>content-pull --watch</c>: one long-running process that pulls when something changed, cheapest signal first:
/// a conditional GET (If-None-Match) of one small object every --poll (the release manifest; "nothing changed" is
/// one 304), a signed POST /deploy on --listen, and a full pull every --resync whatever the signals said. Each pull
/// is an ordinary content-pull run (same engine, same summary line and textfile metrics). Failures never end the
/// loop: they are logged when the state changes (not on every poll), shown in the metrics, and retried with
/// backoff; SIGTERM lets a running pull finish for --stop-grace, then abandons it.
/// </summary>
public sealed class WatchRun(ContentPullOptions options, WatchOptions watch, ToolContext context) : IToolRun
{
    public const string DeploySecretVariable = "CONTENT_PULL_DEPLOY_SECRET";
    private static readonly TimeSpan FirstRetry = TimeSpan.FromSeconds(2);
    private static readonly TimeSpan LastRetry = TimeSpan.FromMinutes(5);
    private static readonly TimeSpan MetricsEvery = TimeSpan.FromSeconds(30);
    /// <summary>Polls a notification asks for are at least this far apart: a flood of unsigned notifications costs at most 10 GETs a second.</summary>
    public static readonly TimeSpan HintSpacing = TimeSpan.FromMilliseconds(100);

    private readonly PullTrigger _trigger = new();
    private readonly ILogger _log = context.Log;
    private volatile bool _healthy;
    private volatile bool _stopping;
    private (RunReport Report, bool Success)? _lastPull;
    private long _pulls, _polls, _pollFailures;
    private double _lastPollSeconds, _lastPollSuccess;
    private string? _pollState;
    private DateTimeOffset _metricsWritten = DateTimeOffset.MinValue;
    private long _lastPollStarted;
    private DeployEndpoints? _endpoints;
    private long _allocatedAtCollection;
    private bool _pulledSinceCollection;

    /// <summary>Garbage an idle watcher collects as soon as its polls have made this much (see <see cref="CollectIdleGarbageAsync"/>).</summary>
    private const long IdleGarbageBytes = 512 * 1024;

    // The loop writes the textfile itself, after every pull: the host's one-shot report does not apply.
    RunReport? IToolRun.Report => null;

    public async Task<ToolResult> RunAsync()
    {
        var settings = context.ReadS3Settings();
        var secret = S3SettingsReader.ReadVariable(DeploySecretVariable, context.Environment) is { } text ? Encoding.UTF8.GetBytes(text) : null;
        var metricsPath = context.MetricsPath;
        var key = options.Source.Prefix + watch.WatchKey;
        var endpoints = new DeployEndpoints(secret, _trigger, () => _healthy && !_stopping, () => Render(metricsPath), _log, options.Source.Bucket, key);
        _endpoints = endpoints;
        await using var server = watch.Listen is { } address
            ? SmallHttpServer.Start(SmallHttpServer.ParseAddress(address, "--listen", 8080), address, "--listen", "deploy triggers", endpoints.HandleAsync)
            : null;
        if (server is not null) _log.Information("listening on {Endpoint} for POST /deploy, POST /notify, /health and /metrics{Secret}", server.Endpoint.ToString(),
            secret is null ? $" (no {DeploySecretVariable}: /deploy is off)" : "");

        // One client for polls and pulls: a pull starts on the connection the last poll kept open (no TCP or TLS
        // handshake on the deploy path), and its parallel downloads reuse the previous pull's connections while
        // they are pooled.
        using var store = new S3Store(settings, options.Parallel);
        _log.Information("watching {Source}: polling {Key} every {Poll}, a full pull every {Resync}", options.Source.ToString(), key,
            Time.GoDuration.Format(watch.Poll), Time.GoDuration.Format(watch.Resync));

        string? etag = null;
        var failures = 0;
        var now = DateTimeOffset.UtcNow;
        var nextPoll = now;
        var nextResync = now + watch.Resync;
        DateTimeOffset? retryAt = null;
        string? reason = "start";
        // The first poll comes before the first pull: a change after it is seen by the next poll.
        (etag, _) = await PollAsync(store, key, null).ConfigureAwait(false);
        nextPoll = DateTimeOffset.UtcNow + watch.Poll;

        while (!context.Stopping.IsCancellationRequested)
        {
            if (reason is not null)
            {
                var ok = await PullAsync(store, reason, metricsPath).ConfigureAwait(false);
                _pulledSinceCollection = true;
                if (context.Stopping.IsCancellationRequested) break;
                if (ok)
                {
                    if (failures > 0) _log.Information("pulls succeed again after {Failures} failed", failures);
                    failures = 0;
                    retryAt = null;
                    nextResync = DateTimeOffset.UtcNow + watch.Resync;
                }
                else
                {
                    failures++;
                    var delay = TimeSpan.FromTicks(Math.Min(LastRetry.Ticks, FirstRetry.Ticks << Math.Min(failures - 1, 20)));
                    retryAt = DateTimeOffset.UtcNow + delay;
                    if (failures == 1) _log.Warning("the pull failed: retrying with backoff (first in {Delay}, at most every {Most}); current content is kept",
                        Time.GoDuration.Format(delay), Time.GoDuration.Format(LastRetry));
                }
                reason = null;
            }

            now = DateTimeOffset.UtcNow;
            // The textfile is rewritten at least every MetricsEvery, so its heartbeat shows the watcher is alive.
            var wake = Min(Min(nextPoll, nextResync, retryAt ?? DateTimeOffset.MaxValue), _metricsWritten + MetricsEvery, DateTimeOffset.MaxValue);
            Wake? woken;
            try
            {
                woken = await _trigger.WaitAsync(wake - now, context.Stopping).ConfigureAwait(false);
                // A notification is unsigned: it only brings the next poll forward, and polls it causes are spaced.
                if (woken is { Pull: false } && HintSpacing - Stopwatch.GetElapsedTime(_lastPollStarted) is { Ticks: > 0 } wait)
                    await Task.Delay(wait, context.Stopping).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                break;
            }
            now = DateTimeOffset.UtcNow;
            var hinted = woken is { Pull: false };
            if (woken is { Pull: true }) reason = woken.Reason;
            else if (retryAt is { } retry && now >= retry) reason = "retry";
            else if (now >= nextResync) reason = "resync";
            if (now >= nextPoll || reason is not null || hinted)
            {
                // Poll before pulling too, so that the pull's manifest is the one whose ETag is remembered.
                var pollsFailed = _pollState is not null;
                var (polled, changed) = await PollAsync(store, key, etag).ConfigureAwait(false);
                nextPoll = DateTimeOffset.UtcNow + watch.Poll;
                // S3 answers again after failed polls: a failed pull is retried now, not at its next backoff step.
                if (pollsFailed && _pollState is null && retryAt is not null) reason ??= "retry, S3 answers again";
                if (changed)
                {
                    etag = polled;
                    reason ??= hinted ? $"{watch.WatchKey} changed, notified" : $"{watch.WatchKey} changed";
                }
                else if (hinted && reason is null) _log.Debug("notified, but {Key} did not change", key);
            }
            await WriteMetricsIfDueAsync(metricsPath).ConfigureAwait(false);
            if (reason is null) await CollectIdleGarbageAsync().ConfigureAwait(false);
        }
        _stopping = true;
        _log.Information("stopped watching {Source} ({Pulls} pulls)", options.Source.ToString(), _pulls);
        return ExitCodes.Ok;
    }

    /// <summary>One conditional GET of the watched key: its ETag (null: no such object) and whether that differs from <paramref name="etag"/>.</summary>
    private async Task<(string? ETag, bool Changed)> PollAsync(IObjectStore store, string key, string? etag)
    {
        Interlocked.Increment(ref _polls);
        _lastPollStarted = Stopwatch.GetTimestamp();
        _lastPollSeconds = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() / 1000.0;
        try
        {
            var info = await store.GetAsync(options.Source.Bucket, key, (body, _, token) => body.CopyToAsync(Stream.Null, token),
                new GetOptions(IfNoneMatch: etag), context.Stopping).ConfigureAwait(false);
            PollState(null);
            return (info.ETag, info.ETag != etag);
        }
        catch (StoreException ex) when (ex.Kind == StoreErrorKind.NotModified)
        {
            PollState(null);
            return (etag, false);
        }
        catch (StoreException ex) when (ex.Kind == StoreErrorKind.ObjectNotFound)
        {
            PollState(null);
            return (null, etag is not null);
        }
        catch (StoreException ex)
        {
            Interlocked.Increment(ref _pollFailures);
            PollState(ex.Message);
            return (etag, false);
        }
        catch (OperationCanceledException) when (context.Stopping.IsCancellationRequested)
        {
            return (etag, false);
        }
    }

    /// <summary>Logs a poll failure when it starts or changes, and the recovery once: no line per poll.</summary>
    private void PollState(string? error)
    {
        _lastPollSuccess = error is null ? 1 : 0;
        if (error == _pollState) return;
        if (error is null) _log.Information("polling works again");
        else _log.Warning("polling failed: {Error} (logged again only when this changes)", error);
        _pollState = error;
    }

    /// <summary>One ordinary content-pull run; SIGTERM gives it --stop-grace to finish.</summary>
    private async Task<bool> PullAsync(S3Store store, string reason, string? metricsPath)
    {
        Interlocked.Increment(ref _pulls);
        _log.Information("pulling ({Reason})", reason);
        using var grace = new CancellationTokenSource();
        using var onStop = context.Stopping.Register(() =>
        {
            _log.Information("stopping: letting the running pull finish for at most {Grace}", Time.GoDuration.Format(watch.StopGrace));
            grace.CancelAfter(watch.StopGrace);
        });
        var pullContext = new ToolContext(context.Tool, context.Common, _log, context.Environment, grace.Token);
        var pull = new ContentPullRun(options, pullContext, store);
        var success = false;
        try
        {
            success = (await pull.RunAsync().ConfigureAwait(false)).ExitCode == ExitCodes.Ok;
        }
        catch (OperationCanceledException) when (grace.IsCancellationRequested)
        {
            _log.Warning("the running pull was abandoned after the stop grace period (files already replaced stay; the rest is pulled next start)");
        }
        catch (Exception ex)
        {
            var (_, message) = ToolHost.Describe(ex);
            ToolHost.Error(_log, ex, message, context.Common.Log);
        }
        pull.Report.Stop();
        _lastPull = (pull.Report, success);
        if (success) _healthy = true;
        await WriteMetricsAsync(metricsPath).ConfigureAwait(false);
        return success;
    }

    /// <summary>
    /// An idle watcher collects its garbage itself, with a compacting collection that gives the freed memory back
    /// to the OS: once after each pull (its listings, plan and buffers), and whenever its polls have made
    /// <see cref="IdleGarbageBytes"/> (a few KB each). Left to itself the GC would keep a whole gen0 budget (4 MB,
    /// Directory.Build.props) of touched memory, and collect gen2, which holds what a pull left, never, as an idle
    /// process allocates too little to ask for it. What a pull leaves dies in steps: some is still referenced
    /// from the stack that completed the pull, some until its pooled connections close, so the collection after a
    /// pull runs on a fresh stack and the budget's collections take the rest. The idle heap is small, so each of
    /// these collections is short (measured in bench/RESULTS.md "Idle watcher").
    /// </summary>
    private async Task CollectIdleGarbageAsync()
    {
        if (!_pulledSinceCollection && GC.GetTotalAllocatedBytes() - _allocatedAtCollection < IdleGarbageBytes) return;
        await Task.Yield(); // off the stack that may still hold the pull that just ended
        GC.Collect(GC.MaxGeneration, GCCollectionMode.Aggressive, blocking: true, compacting: true);
        _allocatedAtCollection = GC.GetTotalAllocatedBytes();
        if (_pulledSinceCollection)
        {
            // The pull's code (planning, listing, writing files) is cold until the next deploy: let it leave
            // memory; what the polls use comes back on their next faults.
            var advised = Interop.Libc.PageOutFileMappings();
            _log.Debug("after the pull: collected the heap, paged out {Bytes} of file mappings", Cli.Units.FormatBytes(advised));
        }
        _pulledSinceCollection = false;
    }

    private async Task WriteMetricsIfDueAsync(string? metricsPath)
    {
        if (DateTimeOffset.UtcNow - _metricsWritten >= MetricsEvery) await WriteMetricsAsync(metricsPath).ConfigureAwait(false);
    }

    private async Task WriteMetricsAsync(string? metricsPath)
    {
        _metricsWritten = DateTimeOffset.UtcNow;
        if (metricsPath is null) return;
        try
        {
            await Monitoring.TextfileMetrics.WriteAsync(Render(metricsPath), metricsPath).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            _log.Error("cannot write the metrics file {Path}: {Reason}", metricsPath, ex.Message);
        }
    }

    /// <summary>The last pull's gauges (as a single run writes them) and the watcher's own.</summary>
    private byte[] Render(string? metricsPath)
    {
        ReportGauge[] own =
        [
            new("content_pull_watch_healthy", "1 once a pull succeeded since the watcher started (what /health answers), else 0.", _healthy && !_stopping ? 1 : 0),
            new("content_pull_watch_pulls", "Pulls the watcher started since it started.", Interlocked.Read(ref _pulls)),
            new("content_pull_watch_polls", "Polls of the watched object since the watcher started.", Interlocked.Read(ref _polls)),
            new("content_pull_watch_notifications", "S3 event notifications for the watched object received on POST /notify since the watcher started (each one a poll hint).",
                _endpoints?.Notifications ?? 0),
            new("content_pull_watch_poll_failures", "Polls that failed since the watcher started.", Interlocked.Read(ref _pollFailures)),
            new("content_pull_watch_last_poll_timestamp_seconds", "Unix time of the last poll.", _lastPollSeconds),
            new("content_pull_watch_last_poll_success", "1 if the last poll got an answer from S3, else 0.", _lastPollSuccess),
            new("content_pull_watch_heartbeat_timestamp_seconds", $"Unix time at which the watcher last wrote its metrics (at least every {MetricsEvery.TotalSeconds:0} s).",
                DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() / 1000.0),
        ];
        if (_lastPull is { } last) return last.Report.Render(metricsPath, last.Success, own);
        var none = new Monitoring.GaugeFamilies();
        foreach (var gauge in own) none.Set(gauge.Name, gauge.Help, [], [], gauge.Value);
        return none.ToText();
    }

    private static DateTimeOffset Min(DateTimeOffset a, DateTimeOffset b, DateTimeOffset c) => a < b ? (a < c ? a : c) : (b < c ? b : c);
}
