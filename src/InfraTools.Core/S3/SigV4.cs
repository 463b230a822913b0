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

    /// <summary>
    /// A presigned URL (query signature, signed header host only) for <paramref name="method"/> on
    /// <paramref name="uri"/>, whose query may already hold parameters: the tools' own requests that Minio 7
    /// cannot build (a listing that starts after a key).
    /// </summary>
    public static Uri Presign(HttpMethod method, Uri uri, S3Settings settings, DateTime utcNow, TimeSpan expires)
    {
        var amzDate = utcNow.ToString("yyyyMMdd'T'HHmmss'Z'", CultureInfo.InvariantCulture);
        var scope = $"{amzDate[..8]}/{settings.Region}/s3/aws4_request";
        var query = uri.Query.TrimStart('?');
        var signing = new List<string>
        {
            "X-Amz-Algorithm=" + Algorithm,
            "X-Amz-Credential=" + Encode($"{settings.AccessKey.Reveal()}/{scope}"),
            "X-Amz-Date=" + amzDate,
            "X-Amz-Expires=" + ((int)expires.TotalSeconds).ToString(CultureInfo.InvariantCulture),
            "X-Amz-SignedHeaders=host",
        };
        if (settings.SessionToken is { } token) signing.Add("X-Amz-Security-Token=" + Encode(token.Reveal()));
        var canonicalQuery = CanonicalQuery(string.Join('&', query.Length == 0 ? signing : [query, .. signing]), skip: null);
        var canonicalRequest = string.Join('\n', method.Method, uri.AbsolutePath, canonicalQuery, $"host:{HostHeader(uri)}\n", "host", "UNSIGNED-PAYLOAD");
        var signature = Sign(settings.SecretKey.Reveal(), amzDate, scope, canonicalRequest);
        return new UriBuilder(uri) { Query = canonicalQuery + "&X-Amz-Signature=" + signature }.Uri;
    }

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

    private static string Encode(string value)
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
