using System.Globalization;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using System.Text.Json;

namespace InfraTools.Tests;

/// <summary>
/// Builds acme.json files the way Traefik v3 writes them (json.MarshalIndent of map[resolver]*StoredData: "Account",
/// "Certificates" with "domain"/"certificate"/"key"/"Store", []byte as base64), with real certificates: an ECDSA leaf
/// per entry, signed by a test CA whose certificate follows it in the PEM chain (as lego stores the issuer after the
/// leaf), with the chosen NotAfter.
///
/// Spec, for readable tables: resolvers separated by spaces, each <c>name{item; item}</c>; an item is
/// <c>acct1</c> (an account with a key, registered as .../acct/1), <c>acct-nokey</c> (an account without a key), or a
/// certificate: its domains (main first) and its expiry day, e.g. <c>example.org www.example.org 2027-02-01</c>,
/// optionally prefixed by <c>!nokey</c>, <c>!nocert</c> or <c>!garbage</c> (not a certificate). <c>le{}</c> is the
/// empty resolver a fresh Traefik writes (Account and Certificates null); an empty spec is <c>{}</c>.
/// </summary>
internal static class AcmeJson
{
    private static readonly Lazy<(X509Certificate2 Cert, ECDsa Key)> Ca = new(() =>
    {
        var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest("CN=infra-tools test CA", key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        return (request.CreateSelfSigned(new DateTimeOffset(2020, 1, 1, 0, 0, 0, TimeSpan.Zero), new DateTimeOffset(2099, 1, 1, 0, 0, 0, TimeSpan.Zero)), key);
    });

    private static readonly Lazy<string> AccountKey = new(() =>
    {
        using var rsa = RSA.Create(2048);
        return Convert.ToBase64String(rsa.ExportRSAPrivateKey()); // x509.MarshalPKCS1PrivateKey, as Traefik stores it
    });

    /// <summary>Every private key (account and certificates, base64 as stored and the PEM body) put into a file: none may ever show up in output.</summary>
    public static readonly List<string> Secrets = [];

    public static readonly DateTimeOffset CaNotAfter = new(2099, 1, 1, 0, 0, 0, TimeSpan.Zero);

    /// <summary>A base64 PEM chain (leaf for <paramref name="domains"/> expiring at <paramref name="notAfter"/>, then the CA) and its key, base64 PEM.</summary>
    public static (string Certificate, string Key) Certificate(DateTimeOffset notAfter, params string[] domains)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest($"CN={domains[0]}", key, HashAlgorithmName.SHA256);
        var sans = new SubjectAlternativeNameBuilder();
        foreach (var domain in domains) sans.AddDnsName(domain.TrimEnd('.'));
        request.CertificateExtensions.Add(sans.Build());
        var serial = RandomNumberGenerator.GetBytes(12);
        serial[0] &= 0x7f;
        var notBefore = notAfter.AddDays(-90) < Ca.Value.Cert.NotBefore ? new DateTimeOffset(Ca.Value.Cert.NotBefore.ToUniversalTime(), TimeSpan.Zero) : notAfter.AddDays(-90);
        using var leaf = request.Create(Ca.Value.Cert, notBefore, notAfter, serial);
        var chain = leaf.ExportCertificatePem() + "\n" + Ca.Value.Cert.ExportCertificatePem() + "\n";
        var keyPem = key.ExportECPrivateKeyPem();
        var keyBase64 = Convert.ToBase64String(Encoding.UTF8.GetBytes(keyPem));
        lock (Secrets)
        {
            Secrets.Add(keyBase64);
            Secrets.AddRange(keyPem.Split('\n').Where(l => l.Length > 20 && !l.StartsWith("-----", StringComparison.Ordinal)));
        }
        return (Convert.ToBase64String(Encoding.UTF8.GetBytes(chain)), keyBase64);
    }

    public static byte[] Build(string spec)
    {
        using var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer, new JsonWriterOptions { Indented = true }))
        {
            json.WriteStartObject();
            foreach (var (resolver, items) in Resolvers(spec))
            {
                json.WritePropertyName(resolver);
                json.WriteStartObject();
                var account = items.FirstOrDefault(i => i.StartsWith("acct", StringComparison.Ordinal));
                if (account is null) json.WriteNull("Account");
                else WriteAccount(json, account);
                var certificates = items.Where(i => !i.StartsWith("acct", StringComparison.Ordinal)).ToList();
                if (certificates.Count == 0) json.WriteNull("Certificates");
                else
                {
                    json.WriteStartArray("Certificates");
                    foreach (var item in certificates) WriteCertificate(json, item);
                    json.WriteEndArray();
                }
                json.WriteEndObject();
            }
            json.WriteEndObject();
        }
        return buffer.ToArray();
    }

    private static IEnumerable<(string Name, List<string> Items)> Resolvers(string spec)
    {
        var rest = spec.Trim();
        while (rest.Length > 0)
        {
            var open = rest.IndexOf('{');
            var close = rest.IndexOf('}');
            if (open <= 0 || close < open) throw new ArgumentException($"bad spec '{spec}'");
            var items = rest[(open + 1)..close].Split(';', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries).ToList();
            yield return (rest[..open].Trim(), items);
            rest = rest[(close + 1)..].Trim();
        }
    }

    private static void WriteAccount(Utf8JsonWriter json, string item)
    {
        json.WriteStartObject("Account");
        json.WriteString("Email", "ops@example.org");
        if (item == "acct-nokey")
        {
            json.WriteNull("Registration");
            json.WriteString("PrivateKey", "");
        }
        else
        {
            json.WriteStartObject("Registration");
            json.WriteStartObject("body");
            json.WriteString("status", "valid");
            json.WriteEndObject();
            json.WriteString("uri", $"https://acme-v02.api.letsencrypt.org/acme/acct/{item["acct".Length..]}");
            json.WriteEndObject();
            json.WriteString("PrivateKey", AccountKey.Value);
            lock (Secrets) Secrets.Add(AccountKey.Value);
        }
        json.WriteString("KeyType", "4096");
        json.WriteEndObject();
    }

    private static void WriteCertificate(Utf8JsonWriter json, string item)
    {
        var words = item.Split(' ', StringSplitOptions.RemoveEmptyEntries).ToList();
        var flaw = words[0].StartsWith('!') ? words[0] : null;
        if (flaw is not null) words.RemoveAt(0);
        var notAfter = DateTimeOffset.ParseExact(words[^1], "yyyy-MM-dd", CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal);
        var domains = words[..^1].ToArray();
        var (certificate, key) = Certificate(notAfter, domains);
        json.WriteStartObject();
        json.WriteStartObject("domain");
        json.WriteString("main", domains[0]);
        if (domains.Length > 1)
        {
            json.WriteStartArray("sans");
            foreach (var san in domains[1..]) json.WriteStringValue(san);
            json.WriteEndArray();
        }
        json.WriteEndObject();
        if (flaw == "!nocert") json.WriteNull("certificate");
        else if (flaw == "!garbage") json.WriteString("certificate", Convert.ToBase64String("not a certificate"u8));
        else json.WriteString("certificate", certificate);
        if (flaw == "!nokey") json.WriteString("key", "");
        else json.WriteString("key", key);
        json.WriteString("Store", "default");
        json.WriteEndObject();
    }

    /// <summary>What Traefik v1.7 wrote (one StoredData at the top: "Domain"/"Main"/"SANs", no resolver, challenges).</summary>
    public static readonly Lazy<byte[]> Legacy = new(() =>
    {
        var (certificate, key) = Certificate(Day("2027-02-01"), "v1.example.org");
        var account = System.Text.Json.JsonDocument.Parse(Build("x{acct1}")).RootElement.GetProperty("x").GetProperty("Account").GetRawText();
        return System.Text.Encoding.UTF8.GetBytes($$"""
            {
              "Account": {{account}},
              "Certificates": [ { "Domain": { "Main": "v1.example.org", "SANs": null }, "Certificate": "{{certificate}}", "Key": "{{key}}" } ],
              "HTTPChallenges": {},
              "TLSChallenges": {}
            }
            """);
    });

    /// <summary>Asserts that no private key that went into a test file appears in <paramref name="text"/>.</summary>
    public static void AssertNoSecrets(string text)
    {
        List<string> secrets;
        lock (Secrets) secrets = [.. Secrets];
        Assert.NotEmpty(secrets);
        foreach (var secret in secrets)
            Assert.False(text.Contains(secret, StringComparison.Ordinal), "private key material in the output");
    }

    public static DateTimeOffset Day(string day) =>
        DateTimeOffset.ParseExact(day, "yyyy-MM-dd", CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal);
}
