using System.Collections.Concurrent;
using System.Net;
using System.Xml;
using InfraTools.Storage;

namespace InfraTools.S3;

/// <summary>
/// Sits between Minio and the network and fixes what Minio 7 gets in the way of:
/// <list type="bullet">
/// <item>Minio only builds path-style URLs; with virtual-host addressing this moves the bucket into the host
/// name and re-signs the request (<see cref="SigV4"/>).</item>
/// <item>Minio sends a bucket-exists HEAD before every stat; once a bucket answered 200, later HEADs of the
/// same bucket are answered here without a round trip.</item>
/// <item>Transient failures (connection reset, 500/502/503/504) of requests that are safe to repeat are
/// retried twice with a short backoff.</item>
/// <item>Error answers become <see cref="StoreException"/>s here (<see cref="S3Errors"/>). Listings are not
/// Minio's: <see cref="S3Store"/> sends and checks their pages itself (<see cref="ListingPage"/>).</item>
/// </list>
/// </summary>
public sealed class S3HttpHandler(S3Settings settings, HttpMessageHandler inner) : DelegatingHandler(inner)
{
    private static readonly TimeSpan[] RetryDelays = [TimeSpan.FromMilliseconds(200), TimeSpan.FromMilliseconds(800)];
    private readonly ConcurrentDictionary<string, bool> _existingBuckets = new(StringComparer.Ordinal);
    private readonly string _secretKey = settings.SecretKey.Reveal();

    /// <summary>Requests that reached the network, for tests and debug output.</summary>
    public long RequestsSent => Interlocked.Read(ref _requestsSent);
    private long _requestsSent;

    protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        var bucketHead = BucketOfBucketHead(request);
        if (bucketHead is not null && _existingBuckets.ContainsKey(bucketHead))
            return new HttpResponseMessage(HttpStatusCode.OK) { RequestMessage = request, Content = new ByteArrayContent([]) };

        var what = S3Request.Of(request);
        if (settings.Addressing == S3Addressing.VirtualHost) MoveBucketToHost(request);

        var response = await SendWithRetriesAsync(request, cancellationToken).ConfigureAwait(false);
        if (bucketHead is not null && response.StatusCode == HttpStatusCode.OK) _existingBuckets[bucketHead] = true;
        // Error answers are translated here, once: Minio would read an HTML page or an error without a message
        // as .NET internals ("DTD is prohibited", "Value cannot be null"). A HEAD has no body to read; Minio
        // turns its status into "no such bucket/object", which is all a HEAD can say.
        if (!response.IsSuccessStatusCode && request.Method != HttpMethod.Head)
        {
            using (response)
            {
                var body = await ReadBodyAsync(response, what, cancellationToken).ConfigureAwait(false);
                throw S3Errors.FromResponse(response.StatusCode, response.Content.Headers.ContentType?.MediaType, body, what, settings.EndpointText);
            }
        }
        return response;
    }

    private async Task<byte[]> ReadBodyAsync(HttpResponseMessage response, S3Request what, CancellationToken cancellationToken)
    {
        try
        {
            return await response.Content.ReadAsByteArrayAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is HttpRequestException or IOException && !cancellationToken.IsCancellationRequested)
        {
            throw S3Errors.FromNetwork(ex, what, settings.EndpointText, duringBody: true, settings.IoTimeout);
        }
    }

    private async Task<HttpResponseMessage> SendWithRetriesAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        var repeatable = request.Method == HttpMethod.Get || request.Method == HttpMethod.Head
            || request.Method == HttpMethod.Put || request.Method == HttpMethod.Delete;
        for (var attempt = 0; ; attempt++)
        {
            var last = !repeatable || attempt == RetryDelays.Length;
            try
            {
                Interlocked.Increment(ref _requestsSent);
                var response = await base.SendAsync(request, cancellationToken).ConfigureAwait(false);
                if (last || !IsTransient(response.StatusCode)) return response;
                response.Dispose();
            }
            catch (HttpRequestException ex) when (!last && ex.HttpRequestError != HttpRequestError.ConnectionError && !cancellationToken.IsCancellationRequested
                                                  && !S3Errors.IsIdleTimeout(ex))
            {
                // A refused connection is not retried: the endpoint is down or wrong, and waiting will not help.
                // Neither is a request that got no answer for the whole I/O timeout: that would triple the wait.
            }
            await Task.Delay(RetryDelays[attempt], cancellationToken).ConfigureAwait(false);
        }
    }

    private static bool IsTransient(HttpStatusCode status) =>
        status is HttpStatusCode.InternalServerError or HttpStatusCode.BadGateway or HttpStatusCode.ServiceUnavailable or HttpStatusCode.GatewayTimeout;

    /// <summary>The bucket name if this is Minio's bucket-exists request (HEAD on the bucket itself).</summary>
    private string? BucketOfBucketHead(HttpRequestMessage request)
    {
        if (request.Method != HttpMethod.Head || request.RequestUri is not { } uri || uri.Query.Length > 0) return null;
        var path = uri.AbsolutePath.Trim('/');
        return path.Length > 0 && !path.Contains('/') && uri.Host == settings.Endpoint.Host ? path : null;
    }

    /// <summary>http://endpoint/bucket/key?q becomes http://bucket.endpoint/key?q, signed again.</summary>
    private void MoveBucketToHost(HttpRequestMessage request)
    {
        if (request.RequestUri is not { } uri || uri.Host != settings.Endpoint.Host) return;
        var path = uri.AbsolutePath;
        var slash = path.IndexOf('/', 1);
        var bucket = slash < 0 ? path[1..] : path[1..slash];
        if (bucket.Length == 0) return;
        var rest = slash < 0 ? "/" : path[slash..];
        request.RequestUri = new UriBuilder(uri) { Host = $"{bucket}.{uri.Host}", Path = rest }.Uri;
        request.Headers.Host = null;
        SigV4.Resign(request, _secretKey);
    }
}
