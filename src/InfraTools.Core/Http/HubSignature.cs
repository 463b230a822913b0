using System.Security.Cryptography;

namespace InfraTools.Http;

/// <summary>
/// GitHub's webhook signature (<c>X-Hub-Signature-256: sha256=HEX</c>, HMAC-SHA256 of the body with a shared
/// secret), so CI steps and GitHub webhooks can call a trigger directly. Compared in constant time.
/// </summary>
public static class HubSignature
{
    public const string Header = "x-hub-signature-256";
    private const string Prefix = "sha256=";

    /// <summary>The header value for <paramref name="body"/>.</summary>
    public static string Sign(ReadOnlySpan<byte> secret, ReadOnlySpan<byte> body) => Prefix + Convert.ToHexStringLower(HMACSHA256.HashData(secret, body));

    /// <summary>Whether <paramref name="header"/> is the signature of <paramref name="body"/> (false when missing or malformed).</summary>
    public static bool Verify(ReadOnlySpan<byte> secret, ReadOnlySpan<byte> body, string? header)
    {
        if (header is null || !header.StartsWith(Prefix, StringComparison.OrdinalIgnoreCase) || header.Length != Prefix.Length + 64) return false;
        Span<byte> given = stackalloc byte[32];
        try
        {
            if (Convert.FromHexString(header.AsSpan(Prefix.Length), given, out _, out var written) != System.Buffers.OperationStatus.Done || written != 32) return false;
        }
        catch (FormatException)
        {
            return false;
        }
        Span<byte> expected = stackalloc byte[32];
        HMACSHA256.HashData(secret, body, expected);
        return CryptographicOperations.FixedTimeEquals(expected, given);
    }
}
