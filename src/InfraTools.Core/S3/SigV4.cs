using System.Globalization;
using System.Security.Cryptography;
using System.Text;

namespace InfraTools.S3;

/// <summary>
/// AWS Signature Version 4 for S3, used only to re-sign a request that Minio already signed once, after
/// <see cref="S3HttpHandler"/> moved the bucket from the path into the host name (Minio 7 can only build
/// path-style URLs). It keeps Minio's signed header list, date and payload hash, and recomputes the signature
/// for the new host and path, for both header (Authorization) and query (presigned URL) signatures.
/// </summary>
public static class SigV4
{
    private const string Algorithm = "AWS4-HMAC-SHA256";

    /// <summary>Re-signs <paramref name="request"/> in place; it must already carry a Minio SigV4 signature.</summary>
    public static void Resign(HttpRequestMessage request, string secretKey)
    {
        var uri = request.RequestUri ?? throw new InvalidOperationException("request has no URI");
        // Minio adds the header without validation, and HttpHeaders cannot parse it back as an AuthenticationHeaderValue.
        if (request.Headers.NonValidated.TryGetValues("Authorization", out var authorizationValues)
            && authorizationValues.ToString() is { } authorization
            && authorization.StartsWith(Algorithm + " ", StringComparison.Ordinal))
        {
            var fields = ParseAuthorization(authorization[(Algorithm.Length + 1)..]);
            var signedHeaders = fields["SignedHeaders"];
            var credential = fields["Credential"];
            var amzDate = HeaderValue(request, "x-amz-date") ?? throw new InvalidOperationException("signed request has no x-amz-date");
            var payloadHash = HeaderValue(request, "x-amz-content-sha256") ?? "UNSIGNED-PAYLOAD";
            var canonicalHeaders = new StringBuilder();
            foreach (var name in signedHeaders.Split(';'))
                canonicalHeaders.Append(name).Append(':').Append(CanonicalHeaderValue(name == "host" ? HostHeader(uri) : HeaderValue(request, name) ?? "")).Append('\n');
            var canonicalRequest = string.Join('\n', request.Method.Method, uri.AbsolutePath, CanonicalQuery(uri.Query, skip: null),
                canonicalHeaders.ToString(), signedHeaders, payloadHash);
            var scope = credential[(credential.IndexOf('/') + 1)..];
            var signature = Sign(secretKey, amzDate, scope, canonicalRequest);
            request.Headers.Remove("Authorization");
            request.Headers.TryAddWithoutValidation("Authorization", $"{Algorithm} Credential={credential}, SignedHeaders={signedHeaders}, Signature={signature}");
        }
        else if (uri.Query.Contains("X-Amz-Signature=", StringComparison.Ordinal))
        {
            var query = ParseQuery(uri.Query);
            var amzDate = query["X-Amz-Date"];
            var credential = query["X-Amz-Credential"];
            var signedHeaders = query["X-Amz-SignedHeaders"];
            var canonicalHeaders = new StringBuilder();
            foreach (var name in signedHeaders.Split(';'))
                canonicalHeaders.Append(name).Append(':').Append(CanonicalHeaderValue(name == "host" ? HostHeader(uri) : HeaderValue(request, name) ?? "")).Append('\n');
            var canonicalRequest = string.Join('\n', request.Method.Method, uri.AbsolutePath, CanonicalQuery(uri.Query, skip: "X-Amz-Signature"),
                canonicalHeaders.ToString(), signedHeaders, "UNSIGNED-PAYLOAD");
            var scope = credential[(credential.IndexOf('/') + 1)..];
            var signature = Sign(secretKey, amzDate, scope, canonicalRequest);
            var rebuilt = new UriBuilder(uri) { Query = ReplaceQueryValue(uri.Query, "X-Amz-Signature", signature) };
            request.RequestUri = rebuilt.Uri;
        }
    }

    /// <summary>SHA-256 of an empty payload: the x-amz-content-sha256 of a GET.</summary>
    public const string EmptyPayloadHash = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    /// <summary>
    /// Signs a request in the Authorization header. Signed are host, x-amz-date, x-amz-content-sha256 (the
    /// payload's SHA-256, <paramref name="payloadHash"/>), x-amz-security-token with temporary credentials, and
    /// every other x-amz-* and Content-MD5 header the request already has. The request URI must be built from
    /// <see cref="EncodePath"/> and <see cref="Encode"/>d query parts.
    /// </summary>
    public static void SignHeaders(HttpRequestMessage request, string accessKey, string secretKey, string? sessionToken, string region,
        DateTimeOffset now, string payloadHash = EmptyPayloadHash)
    {
        var uri = request.RequestUri ?? throw new InvalidOperationException("request has no URI");
        var amzDate = now.UtcDateTime.ToString("yyyyMMdd'T'HHmmss'Z'", CultureInfo.InvariantCulture);
        var scope = $"{amzDate[..8]}/{region}/s3/aws4_request";
        request.Headers.TryAddWithoutValidation("x-amz-date", amzDate);
        request.Headers.TryAddWithoutValidation("x-amz-content-sha256", payloadHash);
        if (sessionToken is not null) request.Headers.TryAddWithoutValidation("x-amz-security-token", sessionToken);
        var headers = new SortedDictionary<string, string>(StringComparer.Ordinal) { ["host"] = HostHeader(uri) };
        foreach (var header in request.Headers.NonValidated)
            if (header.Key.StartsWith("x-amz-", StringComparison.OrdinalIgnoreCase))
                headers[header.Key.ToLowerInvariant()] = string.Join(',', header.Value);
        if (request.Content is not null && request.Content.Headers.NonValidated.TryGetValues("Content-MD5", out var md5))
            headers["content-md5"] = md5.ToString();
        var signedHeaders = string.Join(';', headers.Keys);
        var canonicalHeaders = string.Concat(headers.Select(h => $"{h.Key}:{CanonicalHeaderValue(h.Value)}\n"));
        var canonicalRequest = string.Join('\n', request.Method.Method, uri.AbsolutePath, CanonicalQuery(uri.Query, skip: null),
            canonicalHeaders, signedHeaders, payloadHash);
        var signature = Sign(secretKey, amzDate, scope, canonicalRequest);
        request.Headers.TryAddWithoutValidation("Authorization", $"{Algorithm} Credential={accessKey}/{scope}, SignedHeaders={signedHeaders}, Signature={signature}");
    }

    /// <summary>A bucket name or key as a URI path: every byte but unreserved characters and '/' percent-encoded.</summary>
    public static string EncodePath(string path) => string.Join('/', path.Split('/').Select(Encode));

    /// <summary>The signature for a canonical request; scope is date/region/service/aws4_request.</summary>
    public static string Sign(string secretKey, string amzDate, string scope, string canonicalRequest)
    {
        var stringToSign = $"{Algorithm}\n{amzDate}\n{scope}\n{Hex(SHA256.HashData(Encoding.UTF8.GetBytes(canonicalRequest)))}";
        var parts = scope.Split('/');
        var key = Encoding.UTF8.GetBytes("AWS4" + secretKey);
        foreach (var part in parts) key = HMACSHA256.HashData(key, Encoding.UTF8.GetBytes(part));
        return Hex(HMACSHA256.HashData(key, Encoding.UTF8.GetBytes(stringToSign)));
    }

    /// <summary>Query parameters sorted by name, each name and value encoded the way SigV4 wants (RFC 3986).</summary>
    public static string CanonicalQuery(string query, string? skip)
    {
        var pairs = new List<(string Name, string Value)>();
        foreach (var (name, value) in SplitQuery(query))
        {
            if (name == skip) continue;
            pairs.Add((Encode(name), Encode(value)));
        }
        pairs.Sort((a, b) => a.Name != b.Name ? string.CompareOrdinal(a.Name, b.Name) : string.CompareOrdinal(a.Value, b.Value));
        return string.Join('&', pairs.Select(p => $"{p.Name}={p.Value}"));
    }

    private static IEnumerable<(string Name, string Value)> SplitQuery(string query)
    {
        foreach (var part in query.TrimStart('?').Split('&', StringSplitOptions.RemoveEmptyEntries))
        {
            var eq = part.IndexOf('=');
            var name = Uri.UnescapeDataString(eq < 0 ? part : part[..eq]);
            var value = eq < 0 ? "" : Uri.UnescapeDataString(part[(eq + 1)..]);
            yield return (name, value);
        }
    }

    private static Dictionary<string, string> ParseQuery(string query) =>
        SplitQuery(query).GroupBy(p => p.Name).ToDictionary(g => g.Key, g => g.First().Value, StringComparer.Ordinal);

    private static string ReplaceQueryValue(string query, string name, string value) =>
        string.Join('&', query.TrimStart('?').Split('&').Select(p => p.StartsWith(name + "=", StringComparison.Ordinal) ? $"{name}={value}" : p));

    private static Dictionary<string, string> ParseAuthorization(string parameter) =>
        parameter.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries)
            .Select(p => p.Split('=', 2))
            .ToDictionary(p => p[0], p => p.Length > 1 ? p[1] : "", StringComparer.Ordinal);

    private static string HostHeader(Uri uri) => uri.IsDefaultPort ? uri.Host : $"{uri.Host}:{uri.Port.ToString(CultureInfo.InvariantCulture)}";

    private static string? HeaderValue(HttpRequestMessage request, string name)
    {
        if (request.Headers.TryGetValues(name, out var values)) return string.Join(',', values);
        if (request.Content is not null && request.Content.Headers.TryGetValues(name, out var contentValues)) return string.Join(',', contentValues);
        return null;
    }

    private static string CanonicalHeaderValue(string value) => string.Join(' ', value.Trim().Split(' ', StringSplitOptions.RemoveEmptyEntries));

    /// <summary>RFC 3986 percent-encoding of everything but unreserved characters, as SigV4 wants it.</summary>
    public static string Encode(string value)
    {
        var bytes = Encoding.UTF8.GetBytes(value);
        var sb = new StringBuilder(bytes.Length * 3);
        foreach (var b in bytes)
        {
            var c = (char)b;
            if (char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.' or '~') sb.Append(c);
            else sb.Append('%').Append(b.ToString("X2", CultureInfo.InvariantCulture));
        }
        return sb.ToString();
    }

    private static string Hex(byte[] bytes) => Convert.ToHexStringLower(bytes);
}
