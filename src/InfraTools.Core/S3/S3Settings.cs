using InfraTools.Secrets;

namespace InfraTools.S3;

/// <summary>How bucket names go into request URLs.</summary>
public enum S3Addressing
{
    /// <summary>http://endpoint/bucket/key (Ceph, MinIO, most self-hosted servers).</summary>
    Path,
    /// <summary>http://bucket.endpoint/key (AWS, Exoscale, R2 and other hosted services).</summary>
    VirtualHost,
}

/// <summary>Everything needed to talk to one S3 endpoint. Read by <see cref="S3SettingsReader"/>.</summary>
public sealed record S3Settings(Uri Endpoint, Secret AccessKey, Secret SecretKey, Secret? SessionToken, string Region, S3Addressing Addressing)
{
    public static readonly TimeSpan DefaultIoTimeout = TimeSpan.FromSeconds(60);

    /// <summary>How long a connection may go without a byte received or sent before that request fails (S3_IO_TIMEOUT).</summary>
    public TimeSpan IoTimeout { get; init; } = DefaultIoTimeout;

    public bool Secure => Endpoint.Scheme == Uri.UriSchemeHttps;

    /// <summary>host[:port] of the endpoint, as Minio wants it.</summary>
    public string HostAndPort => Endpoint.IsDefaultPort ? Endpoint.Host : $"{Endpoint.Host}:{Endpoint.Port}";

    /// <summary>The endpoint as messages show it (no trailing slash).</summary>
    public string EndpointText => Endpoint.ToString().TrimEnd('/');

    public override string ToString() => $"{Endpoint} region={Region} addressing={Addressing}";
}
