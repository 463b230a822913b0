using System.Diagnostics;
using System.Text.Json;
using InfraTools.Http;
using Serilog;

namespace InfraTools.ContentPull.Watch;

/// <summary>
/// The watcher's HTTP endpoints: <c>POST /deploy</c> (signed like a GitHub webhook, <see cref="HubSignature"/>;
/// a bad or missing signature is 401 and nothing of the body is logged; accepted requests are coalesced by
/// <see cref="PullTrigger"/> and limited to <see cref="MaxPerMinute"/> a minute), <c>/health</c> (503 until the first
/// pull succeeded, and while stopping), <c>/metrics</c> (the last run's gauges plus the watcher's) and
/// <c>POST /notify</c>: S3 event notifications (Ceph RGW's HTTP push, MinIO's webhook), which nobody can sign, so
/// an event only hints that the watched object <paramref name="bucket"/>/<paramref name="key"/> may have changed:
/// the loop polls it (one conditional GET, coalesced and spaced) and pulls only if its ETag changed. Events for
/// other objects are answered 200 and ignored (a non-2xx answer would make RGW retry them).
/// </summary>
public sealed class DeployEndpoints(byte[]? secret, PullTrigger trigger, Func<bool> healthy, Func<byte[]> metrics, ILogger log, string bucket, string key)
{
    public const int MaxPerMinute = 60;

    private long _notifications;
    private int _ignoredLogged;

    /// <summary>Notifications accepted as a hint for the watched object, since the start.</summary>
    public long Notifications => Interlocked.Read(ref _notifications);

    private readonly Lock _lock = new();
    private readonly Queue<long> _accepted = new();

    public Task<HttpResponse> HandleAsync(HttpRequest request, CancellationToken cancellationToken) => Task.FromResult(Handle(request));

    private HttpResponse Handle(HttpRequest request)
    {
        switch (request.Path)
        {
            case "/deploy":
                if (request.Method != "POST") return HttpResponse.Text(405, "POST a signed body (X-Hub-Signature-256)\n");
                if (secret is null) return HttpResponse.Text(404, "no deploy secret is configured (CONTENT_PULL_DEPLOY_SECRET or _FILE)\n");
                if (!HubSignature.Verify(secret, request.Body, request.Header(HubSignature.Header)))
                {
                    log.Warning("deploy trigger refused: {Why}", request.Header(HubSignature.Header) is null ? "no X-Hub-Signature-256 header" : "bad signature");
                    return HttpResponse.Text(401, "bad or missing X-Hub-Signature-256\n");
                }
                if (!Admit()) return HttpResponse.Text(429, $"more than {MaxPerMinute} deploy triggers in a minute\n");
                var queued = trigger.Request("deploy trigger");
                log.Debug("deploy trigger accepted ({State})", queued ? "pull requested" : "a pull was already requested");
                return HttpResponse.Text(202, queued ? "pull requested\n" : "a pull is already requested\n");
            case "/notify":
                if (request.Method is "GET" or "HEAD") return HttpResponse.Text(200, "POST S3 event notifications (RGW, MinIO) here\n"); // MinIO's liveness check
                if (request.Method != "POST") return HttpResponse.Text(405, "POST an S3 event notification (JSON)\n");
                return Notify(request.Body);
            case "/health":
                if (request.Method is not ("GET" or "HEAD")) return HttpResponse.Text(405, "only GET and HEAD\n");
                return healthy() ? HttpResponse.Text(200, "OK") : HttpResponse.Text(503, "no release published yet, or stopping\n");
            case "/metrics":
                if (request.Method is not ("GET" or "HEAD")) return HttpResponse.Text(405, "only GET and HEAD\n");
                return new HttpResponse(200, "text/plain; version=0.0.4; charset=utf-8", metrics());
            default:
                return HttpResponse.Text(404, "content-pull watch: POST /deploy, POST /notify, GET /health, GET /metrics\n");
        }
    }

    /// <summary>An S3 event (<c>{"Records":[{"s3":{"bucket":{"name":..},"object":{"key":..}}}]}</c>): a poll hint if a record names the watched object.</summary>
    private HttpResponse Notify(byte[] body)
    {
        var (matched, other) = (false, (string?)null);
        try
        {
            using var json = JsonDocument.Parse(body);
            if (json.RootElement.ValueKind != JsonValueKind.Object || !json.RootElement.TryGetProperty("Records", out var records) || records.ValueKind != JsonValueKind.Array)
                return HttpResponse.Text(400, "not an S3 event notification (no Records array)\n");
            foreach (var record in records.EnumerateArray())
            {
                var (recordBucket, recordKey) = (Text(record, "s3", "bucket", "name"), Text(record, "s3", "object", "key"));
                if (recordBucket == bucket && recordKey is not null && (recordKey == key || Unescape(recordKey) == key)) matched = true;
                else other ??= $"{recordBucket}/{recordKey}";
            }
        }
        catch (JsonException)
        {
            return HttpResponse.Text(400, "not JSON\n");
        }
        if (!matched)
        {
            // Logged once (an operator whose filter is wrong learns it); after that only at debug level, so a flood logs nothing.
            if (Interlocked.Exchange(ref _ignoredLogged, 1) == 0)
                log.Information("S3 notifications for other objects than {Bucket}/{Key} are ignored (first: {Other}; logged once)", bucket, key, other ?? "none");
            else log.Debug("S3 notification ignored ({Other})", other ?? "no records");
            return HttpResponse.Text(200, "ignored: not the watched object\n");
        }
        Interlocked.Increment(ref _notifications);
        var queued = trigger.Hint("notification");
        log.Debug("S3 notification for {Key} accepted ({State})", key, queued ? "poll requested" : "already requested");
        return HttpResponse.Text(202, queued ? "poll requested\n" : "a poll or pull is already requested\n");
    }

    private static string? Text(JsonElement element, params string[] path)
    {
        foreach (var name in path)
        {
            if (element.ValueKind != JsonValueKind.Object || !element.TryGetProperty(name, out element)) return null;
        }
        return element.ValueKind == JsonValueKind.String ? element.GetString() : null;
    }

    /// <summary>AWS and MinIO send the key URL-encoded (space as '+'); RGW sends it as it is.</summary>
    private static string Unescape(string key) => Uri.UnescapeDataString(key.Replace('+', ' '));

    /// <summary>A sliding one-minute window of accepted triggers.</summary>
    private bool Admit()
    {
        var now = Stopwatch.GetTimestamp();
        lock (_lock)
        {
            while (_accepted.Count > 0 && Stopwatch.GetElapsedTime(_accepted.Peek(), now) > TimeSpan.FromMinutes(1)) _accepted.Dequeue();
            if (_accepted.Count >= MaxPerMinute) return false;
            _accepted.Enqueue(now);
            return true;
        }
    }
}
