using System.Text;
using InfraTools.Backup.Acme;

namespace InfraTools.Tests;

/// <summary>The acme.json parser of backup push --acme, in-process, on files laid out as Traefik v1, v2 and v3 write them.</summary>
public class AcmeFileTests
{
    private static byte[] Utf8(string text) => Encoding.UTF8.GetBytes(text);

    [Fact]
    public void A_Traefik_v3_file_gives_resolvers_accounts_domains_and_the_leaf_certificates_expiry()
    {
        var file = AcmeFile.Parse(AcmeJson.Build("le{acct1; example.org www.example.org 2027-02-01; shop.example.org 2026-12-24} staging{}"));

        Assert.Equal(AcmeLayout.Resolvers, file.Layout);
        Assert.True(file.IsReadable);
        Assert.Empty(file.Problems);
        Assert.Equal(["le", "staging"], file.Resolvers.Select(r => r.Name));
        var le = file.Resolver("le")!;
        Assert.True(le.Account!.HasKey);
        Assert.Equal("https://acme-v02.api.letsencrypt.org/acme/acct/1", le.Account.RegistrationUri);
        Assert.Equal(2, le.Certificates.Count);
        Assert.Equal("example.org", le.Certificates[0].Main);
        Assert.Equal(["www.example.org"], le.Certificates[0].Sans);
        Assert.Equal(["example.org", "www.example.org"], le.Certificates[0].Names);
        // The leaf's NotAfter, not the issuer's that follows it in the chain (2099).
        Assert.Equal(AcmeJson.Day("2027-02-01"), le.Certificates[0].NotAfter);
        Assert.Equal(AcmeJson.Day("2026-12-24"), le.Certificates[1].NotAfter);
        Assert.All(le.Certificates, c => Assert.True(c.IsUsable));
        var staging = file.Resolver("staging")!;
        Assert.Null(staging.Account);
        Assert.Empty(staging.Certificates);
    }

    [Fact]
    public void NotAfter_is_exact_to_the_second_also_after_2049_when_X509_switches_to_GeneralizedTime()
    {
        DateTimeOffset[] expiries = [new(2026, 10, 25, 0, 30, 17, TimeSpan.Zero), new(2051, 6, 30, 23, 59, 59, TimeSpan.Zero)];
        Assert.NotEmpty(expiries);
        foreach (var notAfter in expiries)
        {
            var (certificate, key) = AcmeJson.Certificate(notAfter, "example.org");
            var file = AcmeFile.Parse(Utf8($$$"""{"le":{"Certificates":[{"domain":{"main":"example.org"},"certificate":"{{{certificate}}}","key":"{{{key}}}"}]}}"""));
            Assert.Equal(notAfter, file.Certificates.Single().NotAfter);
            Assert.Equal(TimeSpan.Zero, file.Certificates.Single().NotAfter!.Value.Offset);
        }
    }

    [Fact]
    public void A_Traefik_v1_file_is_read_as_resolver_default()
    {
        var file = AcmeFile.Parse(AcmeJson.Legacy.Value);

        Assert.Equal(AcmeLayout.Legacy, file.Layout);
        Assert.Empty(file.Problems);
        var resolver = Assert.Single(file.Resolvers);
        Assert.Equal(AcmeFile.LegacyResolverName, resolver.Name);
        Assert.True(resolver.Account!.HasKey);
        var certificate = Assert.Single(resolver.Certificates);
        Assert.Equal(["v1.example.org"], certificate.Names);
        Assert.Equal(AcmeJson.Day("2027-02-01"), certificate.NotAfter);
    }

    [Fact]
    public void Names_match_case_insensitively_and_the_last_duplicate_wins_as_in_Go()
    {
        var (old, oldKey) = AcmeJson.Certificate(AcmeJson.Day("2026-12-10"), "example.org");
        var (renewed, key) = AcmeJson.Certificate(AcmeJson.Day("2027-03-01"), "example.org", "www.example.org");
        var file = AcmeFile.Parse(Utf8($$"""
            {
              "le": { "certificates": [ { "DOMAIN": { "Main": "gone.example.org" }, "Certificate": "{{old}}", "KEY": "{{oldKey}}" } ] },
              "le": {
                "account": { "privatekey": "{{Convert.ToBase64String(new byte[64])}}", "registration": { "URI": "https://ca.example/acct/9" } },
                "CERTIFICATES": [ { "Domain": { "MAIN": " Example.Org. ", "SANS": ["www.example.org", "WWW.EXAMPLE.ORG"] }, "certificate": "{{renewed}}", "key": "{{key}}", "store": "default" } ]
              }
            }
            """));

        Assert.Empty(file.Problems);
        var resolver = Assert.Single(file.Resolvers);
        Assert.True(resolver.Account!.HasKey);
        Assert.Equal("https://ca.example/acct/9", resolver.Account.RegistrationUri);
        var certificate = Assert.Single(resolver.Certificates);
        Assert.Equal(["example.org", "www.example.org"], certificate.Names);
        Assert.Equal(AcmeJson.Day("2027-03-01"), certificate.NotAfter);
    }

    [Fact]
    public void Escaped_JSON_strings_are_read_like_plain_ones()
    {
        var (certificate, key) = AcmeJson.Certificate(AcmeJson.Day("2027-02-01"), "example.org");
        static string Escaped(string value) => string.Concat(value.Select(c => c is '/' or '+' ? $"\\u{(int)c:x4}" : c.ToString()));
        var file = AcmeFile.Parse(Utf8($$$"""{"le":{"Account":{"PrivateKey":"{{{Escaped(key)}}}"},"Certificates":[{"domain":{"main":"ex\u0061mple.org"},"certificate":"{{{Escaped(certificate)}}}","key":"{{{Escaped(key)}}}"}]}}"""));

        Assert.Empty(file.Problems);
        Assert.True(file.Resolvers[0].Account!.HasKey);
        Assert.Equal(AcmeJson.Day("2027-02-01"), file.Certificates.Single().NotAfter);
        Assert.Equal(["example.org"], file.Certificates.Single().Names);
    }

    public static TheoryData<string, string> UnreadableFiles => new()
    {
        { "", "is empty" },
        { "  \n", "is empty" },
        { "[]", "is a JSON array, not an object" },
        { "null", "is a JSON null, not an object" },
        { "\"acme\"", "is a JSON string, not an object" },
        { "{\"le\": {\"Account\": ", "is not valid JSON (" },
        { "{\"le\": {}} trailing", "is not valid JSON (" },
        { "age-encryption.org/v1\n-> X25519 abc\n--- def\n", "is age-encrypted" },
    };

    [Theory]
    [MemberData(nameof(UnreadableFiles))]
    public void A_file_that_is_not_an_acme_json_is_reported_not_thrown(string content, string problem)
    {
        var file = AcmeFile.Parse(Utf8(content));

        Assert.False(file.IsReadable);
        Assert.Empty(file.Resolvers);
        Assert.StartsWith(problem, Assert.Single(file.Problems), StringComparison.Ordinal);
    }

    public static TheoryData<string, string> BrokenEntries => new()
    {
        // JSON around a good certificate entry (CERT and KEY are replaced), and the problem it must report
        { """{"le": 42}""", "resolver le is a JSON number, not an object" },
        { """{"le": {"Account": [], "Certificates": []}}""", "the account of resolver le is a JSON array, not an object" },
        { """{"le": {"Account": {"PrivateKey": 7}}}""", "the account of resolver le: the private key is a JSON number, not a string" },
        { """{"le": {"Account": {"PrivateKey": "SECRET-NOT-BASE64!"}}}""", "the account of resolver le: the private key is not base64" },
        { """{"le": {"Certificates": {"domain": {}}}}""", "the certificates of resolver le are a JSON object, not an array" },
        { """{"le": {"Certificates": ["example.org"]}}""", "certificate 1 of resolver le: is a JSON string, not an object" },
        { """{"le": {"Certificates": [null]}}""", "certificate 1 of resolver le: is a JSON null, not an object" },
        { """{"le": {"Certificates": [{"domain": {"main": "example.org"}, "key": KEY}]}}""", "certificate 1 (example.org) of resolver le: has no certificate" },
        { """{"le": {"Certificates": [{"domain": {"main": "example.org"}, "certificate": "", "key": KEY}]}}""", "certificate 1 (example.org) of resolver le: has no certificate" },
        { """{"le": {"Certificates": [{"domain": {"main": "example.org"}, "certificate": "%%%", "key": KEY}]}}""", "certificate 1 (example.org) of resolver le: the certificate is not base64" },
        { """{"le": {"Certificates": [{"domain": {"main": "example.org"}, "certificate": "bm90IGEgY2VydA==", "key": KEY}]}}""", "certificate 1 (example.org) of resolver le: the certificate holds no PEM CERTIFICATE block" },
        { """{"le": {"Certificates": [{"domain": {"main": "example.org"}, "certificate": BADDER, "key": KEY}]}}""", "certificate 1 (example.org) of resolver le: the certificate is not a valid X.509 certificate" },
        { """{"le": {"Certificates": [{"domain": {"main": "example.org"}, "certificate": CERT}]}}""", "certificate 1 (example.org) of resolver le: has no key" },
        { """{"le": {"Certificates": [{"domain": {"main": "example.org"}, "certificate": CERT, "key": ""}]}}""", "certificate 1 (example.org) of resolver le: the key is empty or not base64" },
        { """{"le": {"Certificates": [{"domain": {"main": "example.org"}, "certificate": CERT, "key": "SECRET-PRIVATE-BYTES!"}]}}""", "certificate 1 (example.org) of resolver le: the key is empty or not base64" },
        { """{"le": {"Certificates": [{"domain": {"main": "example.org"}, "certificate": CERT, "key": 5}]}}""", "certificate 1 (example.org) of resolver le: the key is empty or not base64" },
        { """{"le": {"Certificates": [{"certificate": CERT, "key": KEY}]}}""", "certificate 1 of resolver le: has no domain" },
        { """{"le": {"Certificates": [{"domain": {"main": " . "}, "certificate": CERT, "key": KEY}]}}""", "certificate 1 of resolver le: has no domain" },
        { """{"le": {"Certificates": [{"domain": "example.org", "certificate": CERT, "key": KEY}]}}""", "certificate 1 of resolver le: the domain is a JSON string, not an object" },
    };

    [Theory]
    [MemberData(nameof(BrokenEntries))]
    public void A_broken_entry_is_reported_and_the_rest_of_the_file_is_still_read(string json, string problem)
    {
        var (certificate, key) = AcmeJson.Certificate(AcmeJson.Day("2027-02-01"), "example.org");
        var badDer = Convert.ToBase64String(Utf8("-----BEGIN CERTIFICATE-----\nMIIBIjANBgkqhkiG9w0BAQEFAAOC\n-----END CERTIFICATE-----\n"));
        // A good resolver after the broken one: it must still be read.
        var good = $"\"good\": {{\"Certificates\": [{{\"domain\": {{\"main\": \"good.example.org\"}}, \"certificate\": \"{certificate}\", \"key\": \"{key}\"}}]}}";
        var content = json.Replace("CERT", $"\"{certificate}\"").Replace("KEY", $"\"{key}\"").Replace("BADDER", $"\"{badDer}\"");
        content = content[..content.LastIndexOf('}')] + ", " + good + "}";

        var file = AcmeFile.Parse(Utf8(content));

        Assert.True(file.IsReadable);
        Assert.Equal(problem, Assert.Single(file.Problems));
        Assert.DoesNotContain(file.Certificates.Where(c => c.Resolver == "le"), c => c.IsUsable);
        Assert.Equal(AcmeJson.Day("2027-02-01"), Assert.Single(file.Resolver("good")!.Certificates).NotAfter);
        Assert.DoesNotContain("SECRET", string.Join('\n', file.Problems), StringComparison.Ordinal);
        AcmeJson.AssertNoSecrets(string.Join('\n', file.Problems));
    }
}
