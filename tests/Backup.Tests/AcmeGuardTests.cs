using InfraTools.Backup.Acme;

namespace InfraTools.Tests;

/// <summary>
/// The guard of backup push --acme, in-process, as a table: the local acme.json against the copy in S3 (both real
/// files with real certificates, see <see cref="AcmeJson"/>), "now" being 2026-12-01.
/// </summary>
public class AcmeGuardTests
{
    private static readonly DateTimeOffset Now = AcmeJson.Day("2026-12-01");

    private const string Full = "le{acct1; example.org www.example.org 2027-02-01}";
    private const string Tail = " that the local acme.json lacks: nothing was uploaded; use --force to replace it";
    private const string FreshTail = " that the local acme.json lacks: a fresh Traefik that started without a restore? nothing was uploaded; use --force to replace it";

    /// <param name="Remote">Spec of the copy in S3, or null when there is none, or raw content when it starts with "raw:".</param>
    /// <param name="Expected">"allowed", or the exact refusal line, or "refused" when only the losses are checked.</param>
    /// <param name="Losses">Expected losses, "kind resolver domain" each, e.g. "MissingDomain le www.example.org".</param>
    /// <param name="Warning">A text some warning must contain, or null for no warnings.</param>
    public sealed record Case(string Local, string? Remote, string Expected, string[]? Losses = null, string? Warning = null);

    public static readonly Dictionary<string, Case> Cases = new()
    {
        ["first push: no copy in S3 yet"] = new(Full, null, "allowed"),
        ["the same content"] = new(Full, Full, "allowed"),
        ["nothing in either"] = new("le{}", "le{}", "allowed"),
        ["a fresh Traefik (new account, no certificates) over a full backup"] = new("le{acct2}", Full, "the copy in S3 holds certificates of resolver le for example.org, www.example.org (expiring 2027-02-01)" + FreshTail,
            ["MissingDomain le example.org", "MissingDomain le www.example.org"], "the ACME account of resolver le changes from https://acme-v02.api.letsencrypt.org/acme/acct/1 to"),
        ["a fresh Traefik's empty resolver (Account and Certificates null) over a full backup"] = new("le{}", Full,
            "the copy in S3 holds certificates of resolver le for example.org, www.example.org (expiring 2027-02-01); the ACME account of resolver le" + FreshTail,
            ["MissingDomain le example.org", "MissingDomain le www.example.org", "Account le"]),
        ["an empty object over a full backup"] = new("", Full, "refused", ["MissingDomain le example.org", "MissingDomain le www.example.org", "Account le"]),
        ["the account disappears (no certificates anywhere)"] = new("le{}", "le{acct1}", "the copy in S3 holds the ACME account of resolver le" + FreshTail, ["Account le"]),
        ["the account loses its key"] = new("le{acct-nokey; example.org www.example.org 2027-02-01}", Full, "the copy in S3 holds the ACME account of resolver le" + Tail, ["Account le"]),
        ["a new account with the same certificates (e.g. another CA server)"] = new("le{acct2; example.org www.example.org 2027-02-01}", Full, "allowed",
            Warning: "the ACME account of resolver le changes from https://acme-v02.api.letsencrypt.org/acme/acct/1 to https://acme-v02.api.letsencrypt.org/acme/acct/2"),
        ["an account appears"] = new(Full, "le{example.org www.example.org 2027-02-01}", "allowed"),
        ["renewal: a later expiry locally"] = new("le{acct1; example.org www.example.org 2027-03-01}", Full, "allowed"),
        ["the same expiry in another entry order"] = new("le{acct1; other.org 2027-01-01; example.org www.example.org 2027-02-01}", "le{acct1; example.org www.example.org 2027-02-01; other.org 2027-01-01}", "allowed"),
        ["a domain added"] = new("le{acct1; example.org www.example.org 2027-02-01; shop.example.org 2027-02-20}", Full, "allowed"),
        ["a SAN added"] = new("le{acct1; example.org www.example.org api.example.org 2027-02-25}", Full, "allowed"),
        ["a SAN removed"] = new("le{acct1; example.org 2027-02-25}", Full, "the copy in S3 holds a certificate of resolver le for www.example.org (expiring 2027-02-01)" + Tail,
            ["MissingDomain le www.example.org"]),
        ["a certificate split in two, both renewed"] = new("le{acct1; example.org 2027-02-25; www.example.org 2027-02-26}", Full, "allowed"),
        ["an older acme.json (earlier expiry) over a renewed backup"] = new("le{acct1; example.org www.example.org 2026-12-20}", Full,
            "the copy in S3 holds a later certificate of resolver le for example.org (expiring 2027-02-01, the local one 2026-12-20); a later certificate of resolver le for www.example.org (expiring 2027-02-01, the local one 2026-12-20)" + Tail,
            ["EarlierExpiry le example.org", "EarlierExpiry le www.example.org"]),
        ["a later expiry for one name is enough, from any certificate"] = new("le{acct1; example.org www.example.org 2026-12-20; www.example.org 2027-03-01; example.org 2027-02-01}", Full, "allowed"),
        ["an expired certificate in S3 protects nothing"] = new("le{acct1; example.org www.example.org 2027-02-01}", "le{acct1; example.org www.example.org 2027-02-01; old.example.org 2026-11-30}", "allowed"),
        ["an expired local certificate does not replace a valid one"] = new("le{acct1; example.org www.example.org 2026-11-01}", Full, "refused",
            ["EarlierExpiry le example.org", "EarlierExpiry le www.example.org"]),
        ["a resolver renamed, certificates only under the new name"] = new("letsencrypt{acct1; example.org www.example.org 2027-02-01}", Full,
            "the copy in S3 holds certificates of resolver le for example.org, www.example.org (expiring 2027-02-01); the ACME account of resolver le" + Tail,
            ["MissingDomain le example.org", "MissingDomain le www.example.org", "Account le"]),
        ["a resolver renamed, Traefik keeping the old one in the file"] = new("letsencrypt{acct2; example.org www.example.org 2027-02-10} " + Full, Full, "allowed"),
        ["a resolver added"] = new(Full + " staging{acct3}", Full, "allowed"),
        ["one of two resolvers loses a domain"] = new("le{acct1; example.org www.example.org 2027-02-01} dns{acct2; wild.example.org 2027-01-10}",
            "le{acct1; example.org www.example.org 2027-02-01} dns{acct2; wild.example.org 2027-01-10; *.example.org 2027-01-15}",
            "the copy in S3 holds a certificate of resolver dns for *.example.org (expiring 2027-01-15)" + Tail, ["MissingDomain dns *.example.org"]),
        ["a domain moved to another resolver"] = new("le{acct1; example.org 2027-02-01} dns{acct2; www.example.org 2027-02-02}", Full, "refused", ["MissingDomain le www.example.org"]),
        ["a wildcard serves a name of its parent (Traefik's MatchDomain)"] = new("le{acct1; example.org *.example.org 2027-02-10}", Full, "allowed"),
        ["a wildcard that expires earlier than the name's certificate"] = new("le{acct1; example.org *.example.org 2027-01-10}", Full, "refused",
            ["EarlierExpiry le example.org", "EarlierExpiry le www.example.org"]),
        ["a wildcard covers one label only, and a name never covers a wildcard"] = new("le{acct1; www.example.org b.example.org 2027-03-01}",
            "le{acct1; a.b.example.org 2027-02-01; *.example.org 2027-02-01}", "refused", ["MissingDomain le a.b.example.org", "MissingDomain le *.example.org"]),
        ["domains compare as Traefik's canonical names"] = new("le{acct1; example.org www.example.org 2027-02-01}", "le{acct1; Example.ORG. WWW.example.org 2027-02-01}", "allowed"),
        ["many domains lost: eight are named"] = new("le{acct1}", "le{acct1; a.org b.org c.org d.org e.org f.org 2027-02-01; g.org h.org i.org j.org 2027-03-01}",
            "the copy in S3 holds certificates of resolver le for a.org, b.org, c.org, d.org, e.org, f.org (expiring 2027-02-01); certificates of resolver le for g.org, h.org (expiring 2027-03-01); certificates for 2 more domains" + FreshTail,
            ["MissingDomain le a.org", "MissingDomain le b.org", "MissingDomain le c.org", "MissingDomain le d.org", "MissingDomain le e.org", "MissingDomain le f.org",
             "MissingDomain le g.org", "MissingDomain le h.org", "MissingDomain le i.org", "MissingDomain le j.org"]),
        ["an unusable entry in S3 (no key) protects nothing"] = new("le{acct1}", "le{acct1; !nokey example.org 2027-02-01}", "allowed",
            Warning: "the copy in S3: certificate 1 (example.org) of resolver le: the key is empty or not base64"),
        ["an unusable local entry does not count"] = new("le{acct1; !garbage example.org www.example.org 2027-03-01}", Full, "refused",
            ["MissingDomain le example.org", "MissingDomain le www.example.org"], "the local acme.json: certificate 1 (example.org) of resolver le: the certificate holds no PEM CERTIFICATE block"),
        ["a local entry without certificate does not count"] = new("le{acct1; !nocert example.org www.example.org 2027-03-01}", Full, "refused",
            ["MissingDomain le example.org", "MissingDomain le www.example.org"], "has no certificate"),
        ["a copy in S3 that is not JSON is replaced"] = new(Full, "raw:{\"le\": {\"Account\":", "allowed", Warning: "the copy in S3 is not valid JSON"),
        ["a copy in S3 that is a JSON array is replaced"] = new(Full, "raw:[]", "allowed", Warning: "the copy in S3 is a JSON array, not an object: it cannot be restored anyway and is replaced"),
        ["an empty copy in S3 is replaced"] = new("le{}", "raw:", "allowed", Warning: "the copy in S3 is empty"),
        ["an age-encrypted copy in S3 cannot be checked"] = new(Full, "raw:age-encryption.org/v1\n-> X25519 abc\n", "the copy in S3 is encrypted, so the local acme.json cannot be checked against it: nothing was uploaded; use --force to replace it"),
        ["a Traefik v1 file in S3, the same content locally in v1"] = new("raw-v1", "raw-v1", "allowed"),
        ["a Traefik v1 file in S3, a fresh v2 Traefik locally"] = new("le{acct2}", "raw-v1", "the copy in S3 holds a certificate of resolver default for v1.example.org (expiring 2027-02-01); the ACME account of resolver default" + FreshTail,
            ["MissingDomain default v1.example.org", "Account default"]),
        ["a Traefik v1 file in S3, migrated to resolver default"] = new("default{acct1; v1.example.org 2027-02-01}", "raw-v1", "allowed"),
    };

    public static TheoryData<string> CaseNames => [.. Cases.Keys];

    private static AcmeFile File(string spec) =>
        spec == "raw-v1" ? AcmeFile.Parse(AcmeJson.Legacy.Value)
        : spec.StartsWith("raw:", StringComparison.Ordinal) ? AcmeFile.Parse(System.Text.Encoding.UTF8.GetBytes(spec["raw:".Length..]))
        : AcmeFile.Parse(AcmeJson.Build(spec));

    [Fact]
    public void The_table_has_cases_of_every_kind()
    {
        Assert.True(Cases.Count >= 30, $"{Cases.Count} cases");
        Assert.Contains(Cases.Values, c => c.Expected == "allowed");
        Assert.Contains(Cases.Values, c => c.Expected.StartsWith("the copy in S3 holds", StringComparison.Ordinal));
        foreach (var kind in Enum.GetNames<AcmeLossKind>()) Assert.Contains(Cases.Values, c => c.Losses?.Any(l => l.StartsWith(kind + " ", StringComparison.Ordinal)) == true);
    }

    [Theory]
    [MemberData(nameof(CaseNames))]
    public void The_guard_decides(string name)
    {
        var test = Cases[name];
        var result = AcmeGuard.Decide(File(test.Local), test.Remote is null ? null : File(test.Remote), Now);

        if (test.Expected == "allowed")
        {
            Assert.True(result.Allowed, result.Refusal);
            Assert.Null(result.Refusal);
            Assert.Empty(result.Losses);
        }
        else
        {
            Assert.False(result.Allowed, "allowed, but should be refused");
            Assert.NotNull(result.Refusal);
            if (test.Expected != "refused") Assert.Equal(test.Expected, result.Refusal);
            Assert.DoesNotContain('\n', result.Refusal);
        }
        if (test.Losses is not null)
            Assert.Equal(test.Losses.Order(StringComparer.Ordinal), result.Losses.Select(l => $"{l.Kind} {l.Resolver} {l.Domain}".TrimEnd()).Order(StringComparer.Ordinal));
        else
            Assert.Empty(result.Losses);
        if (test.Warning is null) Assert.Empty(result.Warnings);
        else Assert.Contains(result.Warnings, w => w.Contains(test.Warning, StringComparison.Ordinal));
        AcmeJson.AssertNoSecrets(string.Join('\n', [result.Refusal ?? "", .. result.Warnings]));
    }

    [Fact]
    public void Check_compares_the_bytes_and_treats_a_missing_remote_as_the_first_push()
    {
        var full = AcmeJson.Build(Full);
        var fresh = AcmeJson.Build("le{acct2}");

        Assert.True(AcmeGuard.Check(fresh, null, Now).Allowed);
        Assert.True(AcmeGuard.Check(full, full, Now).Allowed);
        var refused = AcmeGuard.Check(fresh, full, Now);
        Assert.False(refused.Allowed);
        Assert.Equal(["MissingDomain example.org", "MissingDomain www.example.org"], refused.Losses.Select(l => $"{l.Kind} {l.Domain}"));
        Assert.Equal(AcmeJson.Day("2027-02-01"), refused.Losses[0].RemoteNotAfter);
    }

    [Fact]
    public void Names_with_line_breaks_in_the_file_do_not_break_the_one_line_refusal_or_the_warnings()
    {
        var (certificate, key) = AcmeJson.Certificate(AcmeJson.Day("2027-02-01"), "example.org");
        var remote = System.Text.Encoding.UTF8.GetBytes($$$"""{"le\nFAKE: uploaded":{"Account":{"PrivateKey":"%%"},"Certificates":[{"domain":{"main":"example.org\r\nx"},"certificate":"{{{certificate}}}","key":"{{{key}}}"},{"domain":{"main":"b\u0000d"}}]}}""");

        var result = AcmeGuard.Check(AcmeJson.Build("le{}"), remote, Now);

        Assert.False(result.Allowed);
        Assert.Equal("the copy in S3 holds a certificate of resolver le?FAKE: uploaded for example.org??x (expiring 2027-02-01)" + FreshTail, result.Refusal);
        Assert.NotEmpty(result.Warnings);
        Assert.All(result.Warnings, w => Assert.False(w.Any(char.IsControl), w));
        Assert.Contains("the copy in S3: certificate 2 (b?d) of resolver le?FAKE: uploaded: has no certificate", result.Warnings);
    }

    [Fact]
    public void A_certificate_in_S3_counts_until_the_second_it_expires()
    {
        var (certificate, key) = AcmeJson.Certificate(new DateTimeOffset(2026, 12, 1, 12, 0, 0, TimeSpan.Zero), "example.org");
        var remote = System.Text.Encoding.UTF8.GetBytes($$$"""{"le":{"Account":null,"Certificates":[{"domain":{"main":"example.org"},"certificate":"{{{certificate}}}","key":"{{{key}}}","Store":"default"}]}}""");
        var local = AcmeJson.Build("le{}");

        Assert.False(AcmeGuard.Check(local, remote, new DateTimeOffset(2026, 12, 1, 11, 59, 59, TimeSpan.Zero)).Allowed);
        Assert.True(AcmeGuard.Check(local, remote, new DateTimeOffset(2026, 12, 1, 12, 0, 0, TimeSpan.Zero)).Allowed);
    }
}
