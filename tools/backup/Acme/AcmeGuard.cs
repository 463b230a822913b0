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

/// <param name="RemoteNotAfter">Expiry of the certificate in S3 (not for <see cref="AcmeLossKind.Account"/>).</param>
/// <param name="LocalNotAfter">Expiry of the local certificate (only for <see cref="AcmeLossKind.EarlierExpiry"/>).</param>
public sealed record AcmeLoss(AcmeLossKind Kind, string Resolver, string? Domain, DateTimeOffset? RemoteNotAfter, DateTimeOffset? LocalNotAfter);

/// <summary>
/// The guard's answer. <see cref="Allowed"/>: the local file may replace the copy in S3. Otherwise <see cref="Refusal"/>
/// is the one line to print (exit 5, nothing uploaded). <see cref="Warnings"/> are worth logging either way (unusable
/// entries, an unreadable copy in S3, a replaced account); none of them quotes key material.
/// </summary>
public sealed record AcmeGuardResult(bool Allowed, string? Refusal, IReadOnlyList<AcmeLoss> Losses, IReadOnlyList<string> Warnings);

/// <summary>
/// Decides whether the local acme.json may replace the copy in S3: refused when the copy in S3 holds, for some
/// resolver, a certificate for a domain (main or SAN) that the local file has no certificate for, a certificate that
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

            var mine = LatestExpiry(ours?.Certificates ?? []);
            foreach (var (domain, remoteNotAfter) in LatestExpiry(theirs.Certificates))
            {
                if (remoteNotAfter <= now) continue;
                if (!mine.TryGetValue(domain, out var localNotAfter))
                    losses.Add(new AcmeLoss(AcmeLossKind.MissingDomain, theirs.Name, domain, remoteNotAfter, null));
                else if (localNotAfter < remoteNotAfter)
                    losses.Add(new AcmeLoss(AcmeLossKind.EarlierExpiry, theirs.Name, domain, remoteNotAfter, localNotAfter));
            }
        }
        if (losses.Count == 0) return new AcmeGuardResult(true, null, [], warnings);
        var fresh = !local.Certificates.Any(c => c.IsUsable);
        return new AcmeGuardResult(false, RefusalLine(losses, fresh), losses, warnings);
    }

    /// <summary>Domain to the latest NotAfter among the usable certificates that name it.</summary>
    public static Dictionary<string, DateTimeOffset> LatestExpiry(IEnumerable<AcmeCertificate> certificates)
    {
        var latest = new Dictionary<string, DateTimeOffset>(StringComparer.Ordinal);
        foreach (var certificate in certificates.Where(c => c.IsUsable))
            foreach (var name in certificate.Names)
                if (!latest.TryGetValue(name, out var known) || certificate.NotAfter!.Value > known) latest[name] = certificate.NotAfter!.Value;
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
        string Domains(IEnumerable<string> domains)
        {
            var list = domains.Order(StringComparer.Ordinal).ToList();
            var shown = list.Take(Math.Max(0, MaxNamedDomains - named)).ToList();
            named += shown.Count;
            unnamed += list.Count - shown.Count;
            return string.Join(", ", shown);
        }

        foreach (var group in losses.Where(l => l.Kind == AcmeLossKind.MissingDomain)
                     .GroupBy(l => (l.Resolver, Day: AcmeFile.Day(l.RemoteNotAfter!.Value)))
                     .OrderBy(g => g.Key.Resolver, StringComparer.Ordinal).ThenBy(g => g.Key.Day, StringComparer.Ordinal))
        {
            var domains = Domains(group.Select(l => l.Domain!));
            if (domains.Length == 0) continue;
            parts.Add($"{(group.Count() == 1 ? "a certificate" : "certificates")} of resolver {group.Key.Resolver} for {domains} (expiring {group.Key.Day})");
        }
        foreach (var loss in losses.Where(l => l.Kind == AcmeLossKind.EarlierExpiry).OrderBy(l => l.Resolver, StringComparer.Ordinal).ThenBy(l => l.Domain, StringComparer.Ordinal))
        {
            var domain = Domains([loss.Domain!]);
            if (domain.Length == 0) continue;
            parts.Add($"a later certificate of resolver {loss.Resolver} for {domain} (expiring {AcmeFile.Day(loss.RemoteNotAfter!.Value)}, the local one {AcmeFile.Day(loss.LocalNotAfter!.Value)})");
        }
        if (unnamed > 0) parts.Add($"certificates for {unnamed} more domain{(unnamed == 1 ? "" : "s")}");
        foreach (var loss in losses.Where(l => l.Kind == AcmeLossKind.Account).OrderBy(l => l.Resolver, StringComparer.Ordinal))
            parts.Add($"the ACME account of resolver {loss.Resolver}");
        var hint = fresh ? "a fresh Traefik that started without a restore? " : "";
        return $"the copy in S3 holds {string.Join("; ", parts)} that the local acme.json lacks: {hint}nothing was uploaded; use --force to replace it";
    }
}
