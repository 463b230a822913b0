using System.Diagnostics;
using InfraTools.Http;
using Serilog;

namespace InfraTools.ContentPull.Watch;

/// <summary>
/// The watcher's HTTP endpoints: <c>POST /deploy</c> (signed like a GitHub webhook, <see cref="HubSignature"/>;
/// a bad or missing signature is 401 and nothing of the body is logged; accepted requests are coalesced by
/// <see cref="PullTrigger"/> and limited to <see cref="MaxPerMinute"/> a minute), <c>/health</c> (503 until the first
/// pull succeeded, and while stopping) and <c>/metrics</c> (the last run's gauges plus the watcher's).
/// </summary>
public sealed class DeployEndpoints(byte[]? secret, PullTrigger trigger, Func<bool> healthy, Func<byte[]> metrics, ILogger log)
{
    public const int MaxPerMinute = 60;

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
            case "/health":
                if (request.Method is not ("GET" or "HEAD")) return HttpResponse.Text(405, "only GET and HEAD\n");
                return healthy() ? HttpResponse.Text(200, "OK") : HttpResponse.Text(503, "no release published yet, or stopping\n");
            case "/metrics":
                if (request.Method is not ("GET" or "HEAD")) return HttpResponse.Text(405, "only GET and HEAD\n");
                return new HttpResponse(200, "text/plain; version=0.0.4; charset=utf-8", metrics());
            default:
                return HttpResponse.Text(404, "content-pull watch: POST /deploy, GET /health, GET /metrics\n");
        }
    }

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
