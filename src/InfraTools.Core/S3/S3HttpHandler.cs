using System.Collections.Concurrent;
using System.Net;
using System.Xml;

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

        if (settings.Addressing == S3Addressing.VirtualHost) MoveBucketToHost(request);

        var response = await SendWithRetriesAsync(request, cancellationToken).ConfigureAwait(false);
        if (bucketHead is not null && response.StatusCode == HttpStatusCode.OK) _existingBuckets[bucketHead] = true;
        if (response.IsSuccessStatusCode && IsListing(request)) await EnsureS3ListingAsync(response, cancellationToken).ConfigureAwait(false);
        return response;
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
            catch (HttpRequestException ex) when (!last && ex.HttpRequestError != HttpRequestError.ConnectionError && !cancellationToken.IsCancellationRequested)
            {
                // A refused connection is not retried: the endpoint is down or wrong, and waiting will not help.
            }
            await Task.Delay(RetryDelays[attempt], cancellationToken).ConfigureAwait(false);
        }
    }

    private static bool IsListing(HttpRequestMessage request) =>
        request.Method == HttpMethod.Get && request.RequestUri?.Query.Contains("list-type=2", StringComparison.Ordinal) == true;

    /// <summary>
    /// A web server or proxy at the endpoint URL answers a listing with 200 and a page, which Minio reads as an
    /// empty bucket: a mirror would then report success with nothing in it. Such an answer is an error here.
    /// </summary>
    private async Task EnsureS3ListingAsync(HttpResponseMessage response, CancellationToken cancellationToken)
    {
        await response.Content.LoadIntoBufferAsync(cancellationToken).ConfigureAwait(false);
        var body = await response.Content.ReadAsByteArrayAsync(cancellationToken).ConfigureAwait(false); // a copy: Minio reads the buffer after us
        try
        {
            using var reader = XmlReader.Create(new MemoryStream(body), new XmlReaderSettings
            {
                DtdProcessing = DtdProcessing.Prohibit, IgnoreComments = true, IgnoreProcessingInstructions = true, IgnoreWhitespace = true,
            });
            if (reader.MoveToContent() == XmlNodeType.Element && reader.LocalName == "ListBucketResult") return;
        }
        catch (XmlException)
        {
            // Not XML at all: reported below.
        }
        var contentType = response.Content.Headers.ContentType?.MediaType ?? "no content type";
        response.Dispose();
        throw new S3Exception(S3ErrorKind.ServerError,
            $"the server at {settings.EndpointText} answered a bucket listing with something that is not an S3 listing ({contentType}): check that S3_ENDPOINT is the S3 service's URL, not a web site or proxy");
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
