using System.Net;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Xml;
using InfraTools.Storage;
using InfraTools.Time;
using Minio.Exceptions;

namespace InfraTools.S3;

/// <summary>
/// The one place where whatever went wrong with an S3 request becomes a <see cref="StoreException"/>: an error
/// answer (parsed here from its XML, whatever the status), an answer that is not S3 at all (an HTML page from a
/// web server or proxy, an empty body), or a network failure (refused, reset, stalled). Messages say what
/// happened in S3 terms and what to check; they never show .NET internals.
/// </summary>
internal static class S3Errors
{
    /// <summary>The exception for a non-success answer to <paramref name="request"/>, from its status, content type and body.</summary>
    public static StoreException FromResponse(HttpStatusCode status, string? contentType, byte[] body, S3Request request, string endpoint)
    {
        if (status == HttpStatusCode.NotModified) return new StoreException(StoreErrorKind.NotModified, $"{request.Where} has not changed");
        var (code, message) = ParseError(body);
        if (code is not null) return FromCode(code, message, (int)status, request, endpoint);
        var what = body.Length == 0 ? "an empty body" : contentType ?? "a body without a content type";
        var statusText = $"HTTP {(int)status} {ReasonPhrase(status)}";
        // A 5xx from a proxy in front of S3 (502 while the server restarts) may pass; a 4xx page will not.
        var kind = (int)status >= 500 ? StoreErrorKind.ServerError : StoreErrorKind.UnexpectedAnswer;
        return new StoreException(kind,
            $"{request.Operation} {request.Where} failed: the server at {endpoint} answered {statusText} with {what}, not an S3 error: check that S3_ENDPOINT is the S3 service's URL, not a web site or proxy");
    }

    /// <summary>The exception for an S3 error code (NoSuchKey, AccessDenied...).</summary>
    public static StoreException FromCode(string code, string? message, int status, S3Request request, string endpoint, Exception? inner = null)
    {
        var detail = string.IsNullOrWhiteSpace(message) ? "" : $": {message.Trim().TrimEnd('.')}";
        return code switch
        {
            "NoSuchBucket" => new StoreException(StoreErrorKind.BucketNotFound,
                $"bucket '{request.Bucket}' does not exist at {endpoint}: check the bucket name in the s3:// URL, or create the bucket", inner),
            "NoSuchKey" => new StoreException(StoreErrorKind.ObjectNotFound, $"{request.Where} does not exist", inner),
            "SignatureDoesNotMatch" or "InvalidAccessKeyId" or "InvalidToken" or "ExpiredToken" or "TokenRefreshRequired" => new StoreException(
                StoreErrorKind.AuthenticationFailed,
                $"the S3 server at {endpoint} rejected the credentials ({code}): check S3_ACCESS_KEY and S3_SECRET_KEY", inner),
            "AccessDenied" or "AllAccessDisabled" => new StoreException(StoreErrorKind.AccessDenied,
                $"access denied to {request.Where} on {request.Operation}: check S3_ACCESS_KEY/S3_SECRET_KEY and that they may {request.Operation} in this bucket", inner),
            _ => new StoreException(status is >= 400 and < 500 ? StoreErrorKind.UnexpectedAnswer : StoreErrorKind.ServerError,
                $"{request.Operation} {request.Where} failed: the server answered {code}{(status > 0 ? $" (HTTP {status})" : "")}{detail}", inner),
        };
    }

    /// <summary>Network trouble before an answer arrived (the endpoint is unreachable) or while its body was read (the transfer broke).</summary>
    public static StoreException FromNetwork(Exception ex, S3Request request, string endpoint, bool duringBody, TimeSpan ioTimeout)
    {
        var reason = IsIdleTimeout(ex) ? $"nothing received or sent for {GoDuration.FormatShort(ioTimeout)}, S3_IO_TIMEOUT" : Innermost(ex).Message.TrimEnd('.');
        return duringBody
            ? new StoreException(StoreErrorKind.Interrupted, $"the transfer of {request.Where} from {endpoint} broke off ({reason}); the local copy, if any, was kept", ex)
            : new StoreException(StoreErrorKind.Unreachable, $"cannot reach the S3 endpoint {endpoint} ({reason}): check S3_ENDPOINT and that the server is up", ex);
    }

    /// <summary>Whatever Minio or HttpClient threw for a request that got no usable answer.</summary>
    public static StoreException FromException(Exception ex, S3Request request, string endpoint, TimeSpan ioTimeout)
    {
        if (Find<StoreException>(ex) is { } known) return known;
        switch (ex)
        {
            case HttpRequestException or SocketException or ConnectionException or AuthenticationException or OperationCanceledException or IOException:
                return FromNetwork(ex, request, endpoint, duringBody: false, ioTimeout);
            case BucketNotFoundException:
                return FromCode("NoSuchBucket", null, 404, request, endpoint, ex);
            case ObjectNotFoundException:
                return FromCode("NoSuchKey", null, 404, request, endpoint, ex);
            case AuthorizationException:
                return FromCode((ex as MinioException)?.Response?.Code is { Length: > 0 } c ? c : "SignatureDoesNotMatch", null, 403, request, endpoint, ex);
            case AccessDeniedException:
                return FromCode("AccessDenied", null, 403, request, endpoint, ex);
            case MinioException { Response.Code: { Length: > 0 } code } minio:
                return FromCode(code, minio.Response.Message, 0, request, endpoint, ex);
            default:
                return new StoreException(StoreErrorKind.ServerError, $"{request.Operation} {request.Where} failed: {Innermost(ex).Message.TrimEnd('.')}", ex);
        }
    }

    /// <summary>The Code and Message of an S3 error body, or (null, null) if the body is not one.</summary>
    public static (string? Code, string? Message) ParseError(byte[] body)
    {
        if (body.Length == 0) return (null, null);
        try
        {
            using var reader = XmlReader.Create(new MemoryStream(body), new XmlReaderSettings
            {
                DtdProcessing = DtdProcessing.Prohibit, IgnoreComments = true, IgnoreProcessingInstructions = true, IgnoreWhitespace = true,
            });
            if (reader.MoveToContent() != XmlNodeType.Element || reader.LocalName != "Error") return (null, null);
            string? code = null, message = null;
            reader.Read();
            while (!reader.EOF)
            {
                // ReadElementContentAsString moves to the next node itself: read on only when nothing was consumed.
                if (reader.NodeType == XmlNodeType.Element && reader.Depth == 1 && reader.LocalName == "Code") code = reader.ReadElementContentAsString();
                else if (reader.NodeType == XmlNodeType.Element && reader.Depth == 1 && reader.LocalName == "Message") message = reader.ReadElementContentAsString();
                else reader.Read();
            }
            return (string.IsNullOrWhiteSpace(code) ? null : code.Trim(), message);
        }
        catch (XmlException)
        {
            return (null, null);
        }
    }

    public static bool IsIdleTimeout(Exception ex) => Find<TimeoutException>(ex) is not null;

    private static T? Find<T>(Exception? ex) where T : Exception
    {
        for (; ex is not null; ex = ex.InnerException)
            if (ex is T found) return found;
        return null;
    }

    private static Exception Innermost(Exception ex)
    {
        while (ex.InnerException is not null) ex = ex.InnerException;
        return ex;
    }

    private static string ReasonPhrase(HttpStatusCode status) =>
        string.Concat(status.ToString().Select((c, i) => i > 0 && char.IsUpper(c) ? " " + c : c.ToString()));

}

/// <summary>What a request was about, for messages: the operation ("get", "list"...), bucket and key.</summary>
internal sealed record S3Request(string Operation, string Bucket, string? Key)
{
    public string Where => Key is null ? $"s3://{Bucket}" : $"s3://{Bucket}/{Key}";

    /// <summary>Reads the operation, bucket and key from a path-style request.</summary>
    public static S3Request Of(HttpRequestMessage request)
    {
        var uri = request.RequestUri!;
        var path = uri.AbsolutePath.TrimStart('/');
        var slash = path.IndexOf('/');
        var bucket = Uri.UnescapeDataString(slash < 0 ? path : path[..slash]);
        var key = slash < 0 || slash == path.Length - 1 ? null : Uri.UnescapeDataString(path[(slash + 1)..]);
        var query = uri.Query;
        var method = request.Method.Method;
        var operation = method switch
        {
            "GET" when query.Contains("list-type=", StringComparison.Ordinal) || key is null => "list",
            "GET" => "get",
            "HEAD" => key is null ? "check bucket" : "stat",
            "PUT" when key is null => "create bucket",
            "PUT" or "POST" when !query.Contains("delete", StringComparison.Ordinal) => "put",
            _ => "delete",
        };
        if (operation == "list")
            foreach (var part in query.TrimStart('?').Split('&'))
                if (part.StartsWith("prefix=", StringComparison.Ordinal) && part.Length > "prefix=".Length) key = Uri.UnescapeDataString(part["prefix=".Length..]);
        return new S3Request(operation, bucket, key);
    }
}
