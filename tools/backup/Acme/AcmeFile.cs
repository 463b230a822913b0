using System.Buffers.Text;
using System.Globalization;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using System.Text.Json;

namespace InfraTools.Backup.Acme;

/// <summary>Which of Traefik's acme.json layouts a file has.</summary>
public enum AcmeLayout
{
    /// <summary>Traefik v2 and v3: an object of resolver name to { Account, Certificates }.</summary>
    Resolvers,
    /// <summary>Traefik v1: one { Account, Certificates, HTTPChallenges, TLSChallenges } object, read as resolver "default".</summary>
    Legacy,
    /// <summary>age-encrypted (age-encryption.org/v1): its content cannot be seen without the identity.</summary>
    Encrypted,
    /// <summary>Not an acme.json at all (not JSON, not an object): <see cref="AcmeFile.Problems"/> says why.</summary>
    Unreadable,
}

/// <summary>The ACME account of a resolver, as far as the guard needs it. The private key itself is never kept.</summary>
/// <param name="hasKey">The account has a non-empty, well-formed private key (without one Traefik registers a new account).</param>
/// <param name="registrationUri">The account's URI at the CA (Registration.uri), null if not registered; not secret.</param>
public sealed class AcmeAccount(bool hasKey, string? registrationUri)
{
    public bool HasKey { get; } = hasKey;
    public string? RegistrationUri { get; } = registrationUri;
}

/// <summary>
/// One entry of a resolver's Certificates list. <see cref="Names"/> are the domain (main) and SANs as Traefik compares
/// them (lower case, trimmed, no trailing dot). <see cref="NotAfter"/> comes from the leaf X.509 certificate, the first
/// one in the PEM chain. An entry with a <see cref="Problem"/> is one Traefik could not use: it protects nothing.
/// The certificate's private key is checked for presence and form only, never decoded or kept.
/// </summary>
public sealed class AcmeCertificate(string resolver, int index, string main, IReadOnlyList<string> sans, IReadOnlyList<string> names,
    DateTimeOffset? notAfter, string? problem)
{
    public string Resolver { get; } = resolver;
    /// <summary>Position in the resolver's Certificates list, from 0.</summary>
    public int Index { get; } = index;
    /// <summary>domain.main as written.</summary>
    public string Main { get; } = main;
    /// <summary>domain.sans as written.</summary>
    public IReadOnlyList<string> Sans { get; } = sans;
    public IReadOnlyList<string> Names { get; } = names;
    public DateTimeOffset? NotAfter { get; } = notAfter;
    public string? Problem { get; } = problem;

    public bool IsUsable => Problem is null && NotAfter is not null && Names.Count > 0;

    /// <summary>How the entry is named in messages: "certificate 2 (example.org) of resolver letsencrypt".</summary>
    public string Description => $"certificate {Index + 1}{(Names.Count > 0 ? $" ({Names[0]})" : "")} of resolver {Resolver}";
}

/// <summary>A resolver (Traefik v2/v3 certificatesResolvers name) with its account and certificates.</summary>
public sealed class AcmeResolver(string name, AcmeAccount? account, IReadOnlyList<AcmeCertificate> certificates)
{
    public string Name { get; } = name;
    public AcmeAccount? Account { get; } = account;
    public IReadOnlyList<AcmeCertificate> Certificates { get; } = certificates;
}

/// <summary>
/// Traefik's acme.json, read the way Traefik reads it (pkg/provider/acme/local_store.go, store.go, account.go and
/// provider.go; Go's encoding/json): property names match case-insensitively, the last of duplicate names wins,
/// []byte fields are standard base64, and entries without a certificate or key are dropped. Parsing never throws:
/// whatever cannot be read is listed in <see cref="Problems"/> (naming entries, never quoting key material).
/// </summary>
public sealed class AcmeFile
{
    /// <summary>The resolver name a Traefik v1 file (one account, one certificate list) is read as.</summary>
    public const string LegacyResolverName = "default";

    private static ReadOnlySpan<byte> AgeHeader => "age-encryption.org/"u8;

    public AcmeLayout Layout { get; }
    public IReadOnlyList<AcmeResolver> Resolvers { get; }
    /// <summary>What could not be read, one sentence each (e.g. "certificate 2 (example.org) of resolver le: the certificate is not base64").</summary>
    public IReadOnlyList<string> Problems { get; }

    private AcmeFile(AcmeLayout layout, IReadOnlyList<AcmeResolver> resolvers, List<string> problems)
    {
        Layout = layout;
        Resolvers = resolvers;
        Problems = problems.ConvertAll(OneLine);
    }

    /// <summary>Whether the content could be read as an acme.json (even with unusable entries).</summary>
    public bool IsReadable => Layout is AcmeLayout.Resolvers or AcmeLayout.Legacy;

    public IEnumerable<AcmeCertificate> Certificates => Resolvers.SelectMany(r => r.Certificates);

    public AcmeResolver? Resolver(string name) => Resolvers.FirstOrDefault(r => r.Name == name);

    public static AcmeFile Parse(ReadOnlySpan<byte> content)
    {
        var problems = new List<string>();
        if (content.StartsWith(AgeHeader)) return new AcmeFile(AcmeLayout.Encrypted, [], ["is age-encrypted"]);
        if (content.Trim(" \t\r\n"u8).IsEmpty) return Unreadable("is empty");
        try
        {
            var reader = new Utf8JsonReader(content);
            reader.Read();
            if (reader.TokenType != JsonTokenType.StartObject) return Unreadable($"is a JSON {KindName(reader.TokenType)}, not an object");
            var legacy = LooksLegacy(content);
            var resolvers = new List<AcmeResolver>();
            if (legacy)
            {
                resolvers.Add(ReadStoredData(ref reader, LegacyResolverName, problems));
            }
            else
            {
                while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
                {
                    var name = reader.GetString()!;
                    reader.Read();
                    // Go's map: the last value of a repeated name wins.
                    resolvers.RemoveAll(r => r.Name == name);
                    if (reader.TokenType == JsonTokenType.Null) resolvers.Add(new AcmeResolver(name, null, []));
                    else if (reader.TokenType == JsonTokenType.StartObject) resolvers.Add(ReadStoredData(ref reader, name, problems));
                    else
                    {
                        problems.Add($"resolver {name} is a JSON {KindName(reader.TokenType)}, not an object");
                        reader.Skip();
                    }
                }
            }
            while (reader.Read()) { }
            return new AcmeFile(legacy ? AcmeLayout.Legacy : AcmeLayout.Resolvers, resolvers, problems);
        }
        catch (JsonException ex)
        {
            return Unreadable($"is not valid JSON ({ex.Message.Split(". ")[0].TrimEnd('.')})");
        }
    }

    private static AcmeFile Unreadable(string problem) => new(AcmeLayout.Unreadable, [], [problem]);

    /// <summary>
    /// Traefik v1 wrote one StoredData at the top (Account, Certificates as an array, HTTPChallenges, TLSChallenges);
    /// v2 and later an object of resolvers, each an object. A first pass over the top-level names decides.
    /// </summary>
    private static bool LooksLegacy(ReadOnlySpan<byte> content)
    {
        var reader = new Utf8JsonReader(content);
        reader.Read();
        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            var name = reader.GetString()!;
            reader.Read();
            if (Is(name, "HTTPChallenges") || Is(name, "TLSChallenges")) return true;
            if (Is(name, "Certificates") && reader.TokenType == JsonTokenType.StartArray) return true;
            reader.Skip();
        }
        return false;
    }

    /// <summary>Reads { "Account": ..., "Certificates": [...] } (the reader is on its StartObject).</summary>
    private static AcmeResolver ReadStoredData(ref Utf8JsonReader reader, string resolver, List<string> problems)
    {
        AcmeAccount? account = null;
        List<AcmeCertificate> certificates = [];
        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            var name = reader.GetString()!;
            reader.Read();
            if (Is(name, "Account"))
            {
                account = null;
                if (reader.TokenType == JsonTokenType.StartObject) account = ReadAccount(ref reader, resolver, problems);
                else if (reader.TokenType != JsonTokenType.Null)
                {
                    problems.Add($"the account of resolver {resolver} is a JSON {KindName(reader.TokenType)}, not an object");
                    reader.Skip();
                }
            }
            else if (Is(name, "Certificates"))
            {
                certificates = [];
                if (reader.TokenType == JsonTokenType.StartArray)
                {
                    while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
                        certificates.Add(ReadCertificate(ref reader, resolver, certificates.Count));
                }
                else if (reader.TokenType != JsonTokenType.Null)
                {
                    problems.Add($"the certificates of resolver {resolver} are a JSON {KindName(reader.TokenType)}, not an array");
                    reader.Skip();
                }
            }
            else
            {
                reader.Skip();
            }
        }
        foreach (var certificate in certificates)
            if (certificate.Problem is { } problem) problems.Add($"{certificate.Description}: {problem}");
        return new AcmeResolver(resolver, account, certificates);
    }

    private static AcmeAccount ReadAccount(ref Utf8JsonReader reader, string resolver, List<string> problems)
    {
        var hasKey = false;
        string? uri = null;
        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            var name = reader.GetString()!;
            reader.Read();
            if (Is(name, "PrivateKey"))
            {
                hasKey = false;
                if (reader.TokenType == JsonTokenType.String)
                {
                    hasKey = IsBase64(ref reader, out var empty);
                    if (!hasKey && !empty) problems.Add($"the account of resolver {resolver}: the private key is not base64");
                }
                else if (reader.TokenType != JsonTokenType.Null)
                {
                    problems.Add($"the account of resolver {resolver}: the private key is a JSON {KindName(reader.TokenType)}, not a string");
                    reader.Skip();
                }
            }
            else if (Is(name, "Registration") && reader.TokenType == JsonTokenType.StartObject)
            {
                uri = null;
                while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
                {
                    var field = reader.GetString()!;
                    reader.Read();
                    if (Is(field, "uri") && reader.TokenType == JsonTokenType.String) uri = reader.GetString();
                    else reader.Skip();
                }
            }
            else
            {
                reader.Skip();
            }
        }
        return new AcmeAccount(hasKey, string.IsNullOrEmpty(uri) ? null : uri);
    }

    /// <summary>Reads one element of Certificates; whatever it is, the reader ends after it.</summary>
    private static AcmeCertificate ReadCertificate(ref Utf8JsonReader reader, string resolver, int index)
    {
        if (reader.TokenType != JsonTokenType.StartObject)
        {
            var kind = KindName(reader.TokenType);
            reader.Skip();
            return new AcmeCertificate(resolver, index, "", [], [], null, $"is a JSON {kind}, not an object");
        }
        var main = "";
        List<string> sans = [];
        string? certificate = null;
        bool? keyOk = null;
        string? problem = null;
        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            var name = reader.GetString()!;
            reader.Read();
            if (Is(name, "domain"))
            {
                main = "";
                sans = [];
                if (reader.TokenType != JsonTokenType.StartObject)
                {
                    if (reader.TokenType != JsonTokenType.Null) problem ??= $"the domain is a JSON {KindName(reader.TokenType)}, not an object";
                    reader.Skip();
                    continue;
                }
                while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
                {
                    var field = reader.GetString()!;
                    reader.Read();
                    if (Is(field, "main") && reader.TokenType == JsonTokenType.String) main = reader.GetString()!;
                    else if (Is(field, "sans") && reader.TokenType == JsonTokenType.StartArray)
                    {
                        sans = [];
                        while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
                        {
                            if (reader.TokenType == JsonTokenType.String) sans.Add(reader.GetString()!);
                            else reader.Skip();
                        }
                    }
                    else reader.Skip();
                }
            }
            else if (Is(name, "certificate"))
            {
                certificate = reader.TokenType == JsonTokenType.String ? reader.GetString() : null;
                if (reader.TokenType is not (JsonTokenType.String or JsonTokenType.Null)) reader.Skip();
            }
            else if (Is(name, "key"))
            {
                keyOk = reader.TokenType == JsonTokenType.String && IsBase64(ref reader, out _);
                if (reader.TokenType is not (JsonTokenType.String or JsonTokenType.Null)) reader.Skip();
            }
            else
            {
                reader.Skip();
            }
        }
        var names = Canonical([main, .. sans]);
        DateTimeOffset? notAfter = null;
        if (string.IsNullOrEmpty(certificate)) problem ??= "has no certificate";
        else if (LeafNotAfter(certificate, out var leafProblem) is { } value) notAfter = value;
        else problem ??= leafProblem;
        if (keyOk is not true) problem ??= keyOk is null ? "has no key" : "the key is empty or not base64";
        if (names.Count == 0) problem ??= "has no domain";
        return new AcmeCertificate(resolver, index, main, sans, names, notAfter, problem);
    }

    /// <summary>Domain names as Traefik compares them (types.CanonicalDomain, dns01.UnFqdn): lower case, trimmed, no trailing dot; distinct, in order.</summary>
    public static List<string> Canonical(IEnumerable<string> domains)
    {
        var names = new List<string>();
        foreach (var domain in domains)
        {
            var name = domain.Trim().ToLowerInvariant().TrimEnd('.');
            if (name.Length > 0 && !names.Contains(name)) names.Add(name);
        }
        return names;
    }

    /// <summary>
    /// The NotAfter of the first certificate in a base64-encoded PEM chain (what lego stores: leaf first, then the
    /// issuers), or null with the reason. NotAfter is returned in UTC (X509Certificate2 gives local time).
    /// </summary>
    private static DateTimeOffset? LeafNotAfter(string base64Pem, out string problem)
    {
        problem = "";
        byte[] pemBytes;
        try
        {
            pemBytes = Convert.FromBase64String(base64Pem);
        }
        catch (FormatException)
        {
            problem = "the certificate is not base64";
            return null;
        }
        var pem = Encoding.UTF8.GetString(pemBytes).AsSpan();
        while (PemEncoding.TryFind(pem, out var fields))
        {
            if (pem[fields.Label].SequenceEqual("CERTIFICATE"))
            {
                var der = new byte[fields.DecodedDataLength];
                if (!Convert.TryFromBase64Chars(pem[fields.Base64Data], der, out var written))
                {
                    problem = "the certificate's PEM block is not base64";
                    return null;
                }
                try
                {
                    using var leaf = X509CertificateLoader.LoadCertificate(der.AsSpan(0, written));
                    return new DateTimeOffset(leaf.NotAfter.ToUniversalTime(), TimeSpan.Zero);
                }
                catch (CryptographicException)
                {
                    problem = "the certificate is not a valid X.509 certificate";
                    return null;
                }
            }
            pem = pem[fields.Location.End..];
        }
        problem = "the certificate holds no PEM CERTIFICATE block";
        return null;
    }

    /// <summary>Checks a base64 string value (a private key) without building a string of it; the bytes are wiped when copied.</summary>
    private static bool IsBase64(ref Utf8JsonReader reader, out bool empty)
    {
        if (!reader.ValueIsEscaped)
        {
            empty = reader.ValueSpan.IsEmpty;
            return !empty && Base64.IsValid(reader.ValueSpan);
        }
        var buffer = new byte[reader.ValueSpan.Length];
        try
        {
            var length = reader.CopyString(buffer);
            empty = length == 0;
            return !empty && Base64.IsValid(buffer.AsSpan(0, length));
        }
        finally
        {
            CryptographicOperations.ZeroMemory(buffer);
        }
    }

    private static bool Is(string name, string expected) => string.Equals(name, expected, StringComparison.OrdinalIgnoreCase);

    private static string KindName(JsonTokenType kind) => kind switch
    {
        JsonTokenType.StartObject => "object",
        JsonTokenType.StartArray => "array",
        JsonTokenType.String => "string",
        JsonTokenType.Number => "number",
        JsonTokenType.True or JsonTokenType.False => "boolean",
        _ => "null",
    };

    /// <summary>
    /// <paramref name="text"/> with control characters (a resolver or domain name in the file could hold a line break)
    /// replaced by '?', so that a message stays one line.
    /// </summary>
    public static string OneLine(string text)
    {
        var clean = true;
        foreach (var c in text) clean &= !char.IsControl(c);
        if (clean) return text;
        var chars = text.ToCharArray();
        for (var i = 0; i < chars.Length; i++) if (char.IsControl(chars[i])) chars[i] = '?';
        return new string(chars);
    }

    /// <summary>A date as the messages show it: 2027-02-01.</summary>
    public static string Day(DateTimeOffset time) => time.UtcDateTime.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture);
}
