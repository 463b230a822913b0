using InfraTools.Cli;

namespace InfraTools.Backup.Acme;

/// <summary>
/// Per-certificate textfile metrics of an acme.json, added to a push's <see cref="RunReport"/> (which adds its
/// constant label name=...). They describe the copy in S3 after the push, so that the expiry alert works from the
/// backup side: the local file when it was uploaded or was already there, the remote one when the push was refused.
/// </summary>
public static class AcmeMetrics
{
    public const string ExpiryTimestamp = "backup_acme_certificate_expiry_timestamp_seconds";
    public const string Certificates = "backup_acme_certificates";

    /// <summary>Every metric name <see cref="Gauges"/> writes (images/prometheus/metric-names.txt, section [backup-acme]).</summary>
    public static readonly IReadOnlyList<string> Names = [ExpiryTimestamp, Certificates];

    public static IReadOnlyList<ReportGauge> Gauges(AcmeFile file)
    {
        var expiries = new List<(string[], double)>();
        var counts = new List<(string[], double)>();
        foreach (var resolver in file.Resolvers)
        {
            counts.Add(([resolver.Name], resolver.Certificates.Count(c => c.IsUsable)));
            var latest = AcmeGuard.Latest(resolver.Certificates);
            var domains = new List<string>(latest.Keys);
            domains.Sort(StringComparer.Ordinal);
            foreach (var domain in domains) expiries.Add(([resolver.Name, domain], latest[domain].NotAfter!.Value.ToUnixTimeSeconds()));
        }
        return
        [
            new(ExpiryTimestamp, "Unix time at which the latest backed-up certificate of the resolver for the domain (main or SAN) expires.", 0)
                { Labels = ["resolver", "domain"], Rows = expiries },
            new(Certificates, "Usable certificates of the resolver in the backed-up acme.json.", 0) { Labels = ["resolver"], Rows = counts },
        ];
    }
}
