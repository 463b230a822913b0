namespace InfraTools.Backup.Acme;

/// <summary>What replacing the copy in S3 with the local file would lose.</summary>
public enum AcmeLossKind
{
    /// <summary>The copy in S3 has a valid certificate for a domain of this resolver; the local file has none.</summary>
    MissingDomain,
    /// <summary>Both have a certificate for the domain, but the one in S3 expires later.</summary>
    EarlierExpiry,
    /// <summary>The copy in S3 has an ACME account (with its key) for this resolver; the local file has none.</summary>
    Account,
}

/// <summary>One thing the copy in S3 holds that the local file lacks.</summary>
public sealed class AcmeLoss(AcmeLossKind kind, string resolver, string? domain, DateTimeOffset? remoteNotAfter, DateTimeOffset? localNotAfter)
{
    public AcmeLossKind Kind { get; } = kind;
    public string Resolver { get; } = resolver;
    /// <summary>The canonical domain name (not for <see cref="AcmeLossKind.Account"/>).</summary>
    public string? Domain { get; } = domain;
    /// <summary>Expiry of the certificate in S3 (not for <see cref="AcmeLossKind.Account"/>).</summary>
    public DateTimeOffset? RemoteNotAfter { get; } = remoteNotAfter;
    /// <summary>Expiry of the local certificate (only for <see cref="AcmeLossKind.EarlierExpiry"/>).</summary>
    public DateTimeOffset? LocalNotAfter { get; } = localNotAfter;
}

/// <summary>
/// The guard's answer. <see cref="Allowed"/>: the local file may replace the copy in S3. Otherwise <see cref="Refusal"/>
/// is the one line to print (exit 5, nothing uploaded). <see cref="Warnings"/> are worth logging either way (unusable
/// entries, an unreadable copy in S3, a replaced account); none of them quotes key material.
/// </summary>
public sealed class AcmeGuardResult(bool allowed, string? refusal, IReadOnlyList<AcmeLoss> losses, List<string> warnings)
{
    public bool Allowed { get; } = allowed;
    public string? Refusal { get; } = refusal is null ? null : AcmeFile.OneLine(refusal);
    public IReadOnlyList<AcmeLoss> Losses { get; } = losses;
    public IReadOnlyList<string> Warnings { get; } = warnings.ConvertAll(AcmeFile.OneLine);
}

/// <summary>
/// Decides whether the local acme.json may replace the copy in S3: refused when the copy in S3 holds, for some
/// resolver, a certificate for a domain (main or SAN) that the local file has no certificate for (its own name or a
/// wildcard for its parent, as Traefik matches them), a certificate that
/// expires later than the local one for the same domain, or an ACME account the local file lacks. Certificates in S3
/// that have already expired, and entries Traefik could not use, protect nothing. A copy in S3 that is not an
/// acme.json at all (not JSON) is replaced with a warning: neither Traefik nor acme-restore could use it. An
/// encrypted copy is refused: the guard cannot see what it holds (compare against its summary instead).
/// </summary>
public static class AcmeGuard
{
    /// <summary>How many domains a refusal names before it says "and N more".</summary>
    private const int MaxNamedDomains = 8;

    /// <summary>Compares the bytes about to be uploaded with the bytes in S3 (<paramref name="remote"/> null: no object yet).</summary>
    public static AcmeGuardResult Check(ReadOnlySpan<byte> local, byte[]? remote, DateTimeOffset now) =>
        Decide(AcmeFile.Parse(local), remote is null ? null : AcmeFile.Parse(remote), now);

    public static AcmeGuardResult Decide(AcmeFile local, AcmeFile? remote, DateTimeOffset now)
    {
        var warnings = new List<string>();
        foreach (var problem in local.Problems) warnings.Add($"the local acme.json{(local.IsReadable ? ":" : "")} {problem}");
        if (remote is null) return new AcmeGuardResult(true, null, [], warnings);
        if (remote.Layout == AcmeLayout.Encrypted)
            return new AcmeGuardResult(false,
                "the copy in S3 is encrypted, so the local acme.json cannot be checked against it: nothing was uploaded; use --force to replace it",
                [], warnings);
        if (!remote.IsReadable)
        {
            warnings.Add($"the copy in S3 {remote.Problems[0]}: it cannot be restored anyway and is replaced");
            return new AcmeGuardResult(true, null, [], warnings);
        }
        foreach (var problem in remote.Problems) warnings.Add($"the copy in S3: {problem}");

        var losses = new List<AcmeLoss>();
        foreach (var theirs in remote.Resolvers)
        {
            var ours = local.Resolver(theirs.Name);
            if (theirs.Account is { HasKey: true } && ours?.Account is not { HasKey: true })
                losses.Add(new AcmeLoss(AcmeLossKind.Account, theirs.Name, null, null, null));
            else if (theirs.Account is { HasKey: true, RegistrationUri: { } before } && ours?.Account is { HasKey: true, RegistrationUri: { } after } && before != after)
                warnings.Add($"the ACME account of resolver {theirs.Name} changes from {before} to {after}");

            var mine = Latest(ours?.Certificates ?? []);
            foreach (var (domain, certificate) in Latest(theirs.Certificates))
            {
                var remoteNotAfter = certificate.NotAfter!.Value;
                if (remoteNotAfter <= now) continue;
                var kept = Covering(mine, domain);
                if (kept is null)
                    losses.Add(new AcmeLoss(AcmeLossKind.MissingDomain, theirs.Name, domain, remoteNotAfter, null));
                else if (kept.NotAfter!.Value < remoteNotAfter)
                    losses.Add(new AcmeLoss(AcmeLossKind.EarlierExpiry, theirs.Name, domain, remoteNotAfter, kept.NotAfter));
            }
        }
        if (losses.Count == 0) return new AcmeGuardResult(true, null, [], warnings);
        var fresh = !local.Certificates.Any(c => c.IsUsable);
        return new AcmeGuardResult(false, RefusalLine(losses, fresh), losses, warnings);
    }

    /// <summary>
    /// The local certificate that serves <paramref name="domain"/> and expires last: one for the name itself or a wildcard
    /// for its parent (*.example.org for www.example.org, as Traefik's types.MatchDomain; ACME wildcards are one label).
    /// </summary>
    private static AcmeCertificate? Covering(Dictionary<string, AcmeCertificate> certificates, string domain)
    {
        certificates.TryGetValue(domain, out var exact);
        var dot = domain.IndexOf('.');
        if (domain.StartsWith("*.", StringComparison.Ordinal) || dot <= 0 || !certificates.TryGetValue("*" + domain[dot..], out var wildcard)) return exact;
        return exact is null || wildcard.NotAfter!.Value > exact.NotAfter!.Value ? wildcard : exact;
    }

    /// <summary>Domain to the usable certificate that names it and expires last (the first of equal ones), in order of first appearance.</summary>
    public static Dictionary<string, AcmeCertificate> Latest(IEnumerable<AcmeCertificate> certificates)
    {
        // Reference-type values: a Dictionary of DateTimeOffset would add its own generic code to the AOT binary.
        var latest = new Dictionary<string, AcmeCertificate>(StringComparer.Ordinal);
        foreach (var certificate in certificates)
        {
            if (!certificate.IsUsable) continue;
            foreach (var name in certificate.Names)
                if (!latest.TryGetValue(name, out var known) || certificate.NotAfter!.Value > known.NotAfter!.Value) latest[name] = certificate;
        }
        return latest;
    }

    /// <summary>
    /// "the copy in S3 holds certificates of resolver le for example.org, www.example.org (expiring 2027-02-01); the ACME
    /// account of resolver le that the local acme.json lacks: a fresh Traefik that started without a restore? nothing
    /// was uploaded; use --force to replace it"
    /// </summary>
    private static string RefusalLine(List<AcmeLoss> losses, bool fresh)
    {
        var parts = new List<string>();
        var named = 0;
        var unnamed = 0;
        // Missing domains grouped by resolver and expiry day, then earlier expiries, each sorted by domain.
        var missing = losses.FindAll(l => l.Kind == AcmeLossKind.MissingDomain);
        missing.Sort((a, b) => Compare(a, b, byDay: true));
        for (var i = 0; i < missing.Count;)
        {
            var day = AcmeFile.Day(missing[i].RemoteNotAfter!.Value);
            var end = i;
            while (end < missing.Count && missing[end].Resolver == missing[i].Resolver && AcmeFile.Day(missing[end].RemoteNotAfter!.Value) == day) end++;
            var shown = Math.Min(end - i, Math.Max(0, MaxNamedDomains - named));
            if (shown > 0)
            {
                var domains = string.Join(", ", missing.GetRange(i, shown).Select(l => l.Domain));
                parts.Add($"{(end - i == 1 ? "a certificate" : "certificates")} of resolver {missing[i].Resolver} for {domains} (expiring {day})");
            }
            named += shown;
            unnamed += end - i - shown;
            i = end;
        }
        var earlier = losses.FindAll(l => l.Kind == AcmeLossKind.EarlierExpiry);
        earlier.Sort((a, b) => Compare(a, b, byDay: false));
        foreach (var loss in earlier)
        {
            if (named >= MaxNamedDomains)
            {
                unnamed++;
                continue;
            }
            named++;
            parts.Add($"a later certificate of resolver {loss.Resolver} for {loss.Domain} (expiring {AcmeFile.Day(loss.RemoteNotAfter!.Value)}, the local one {AcmeFile.Day(loss.LocalNotAfter!.Value)})");
        }
        if (unnamed > 0) parts.Add($"certificates for {unnamed} more domain{(unnamed == 1 ? "" : "s")}");
        foreach (var loss in losses)
            if (loss.Kind == AcmeLossKind.Account) parts.Add($"the ACME account of resolver {loss.Resolver}");
        var hint = fresh ? "a fresh Traefik that started without a restore? " : "";
        return $"the copy in S3 holds {string.Join("; ", parts)} that the local acme.json lacks: {hint}nothing was uploaded; use --force to replace it";
    }

    private static int Compare(AcmeLoss a, AcmeLoss b, bool byDay)
    {
        var order = string.CompareOrdinal(a.Resolver, b.Resolver);
        if (order == 0 && byDay) order = a.RemoteNotAfter!.Value.UtcDateTime.Date.CompareTo(b.RemoteNotAfter!.Value.UtcDateTime.Date);
        return order != 0 ? order : string.CompareOrdinal(a.Domain, b.Domain);
    }
}
