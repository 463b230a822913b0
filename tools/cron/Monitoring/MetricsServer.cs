using System.Net;
using InfraTools.Http;
using Prometheus;

namespace InfraTools.Cron.Monitoring;

/// <summary>
/// cron's endpoints on the shared small HTTP server: /metrics (Prometheus text format) and /health ("OK" as
/// supercronic answers, 503 while stopping); GET and HEAD only.
/// </summary>
public static class MetricsServer
{
    public const int DefaultPort = 9746;
    private const string Option = "-prometheus-listen-address";

    /// <summary>Parses supercronic's -prometheus-listen-address: ip[:port], :port, [ipv6]:port or host[:port].</summary>
    public static IPEndPoint ParseAddress(string address) => SmallHttpServer.ParseAddress(address, Option, DefaultPort);

    /// <summary>Binds and starts serving; a bind failure is a configuration error (exit code 3).</summary>
    public static SmallHttpServer Start(string address, CollectorRegistry registry, Func<bool> healthy) =>
        SmallHttpServer.Start(ParseAddress(address), address, Option, "metrics", async (request, cancellationToken) =>
        {
            if (request.Method is not ("GET" or "HEAD")) return HttpResponse.Text(405, "only GET and HEAD\n");
            switch (request.Path)
            {
                case "/metrics":
                    using (var body = new MemoryStream())
                    {
                        await registry.CollectAndExportAsTextAsync(body, ExpositionFormat.PrometheusText, cancellationToken).ConfigureAwait(false);
                        return new HttpResponse(200, "text/plain; version=0.0.4; charset=utf-8", body.ToArray());
                    }
                case "/health":
                    return healthy() ? HttpResponse.Text(200, "OK") : HttpResponse.Text(503, "stopping\n");
                case "/":
                    return HttpResponse.Text(200, "cron: see /metrics and /health\n");
                default:
                    return HttpResponse.Text(404, "not found\n");
            }
        });
}
