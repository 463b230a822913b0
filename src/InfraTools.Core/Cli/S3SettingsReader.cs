// Where a tool's S3 settings come from: flags, environment and *_FILE variables (S3SettingsReader), and the
// s3://bucket/prefix argument (S3Location).
using System.Text.RegularExpressions;
using InfraTools.Files;
using InfraTools.S3;
using InfraTools.Secrets;
using InfraTools.Time;

namespace InfraTools.Cli;

/// <summary>Values given on the command line; they win over the environment.</summary>
public sealed record S3SettingsOverrides(string? Endpoint = null, string? Region = null, string? Addressing = null, string? IoTimeout = null);

/// <summary>
/// Reads the S3 connection settings the same way for every tool: command-line flag, then the S3_* variable,
/// then the AWS_* fallback; every variable may instead be given as NAME_FILE pointing at a file (Docker and
/// Kubernetes secrets). A missing or malformed setting throws a <see cref="ConfigurationException"/> whose one
/// line names the variable.
/// </summary>
public static partial class S3SettingsReader
{
    public static readonly string[] EndpointVariables = ["S3_ENDPOINT", "AWS_ENDPOINT_URL"];
    public static readonly string[] AccessKeyVariables = ["S3_ACCESS_KEY", "AWS_ACCESS_KEY_ID"];
    public static readonly string[] SecretKeyVariables = ["S3_SECRET_KEY", "AWS_SECRET_ACCESS_KEY"];
    public static readonly string[] SessionTokenVariables = ["S3_SESSION_TOKEN", "AWS_SESSION_TOKEN"];
    public static readonly string[] RegionVariables = ["S3_REGION", "AWS_REGION", "AWS_DEFAULT_REGION"];
    public static readonly string[] AddressingVariables = ["S3_ADDRESSING"];
    public static readonly string[] IoTimeoutVariables = ["S3_IO_TIMEOUT"];
    public const string DefaultRegion = "us-east-1";

    /// <summary>Every variable that can carry a credential, with its _FILE twin: what acme-restore scrubs by default.</summary>
    public static IEnumerable<string> CredentialVariables =>
        AccessKeyVariables.Concat(SecretKeyVariables).Concat(SessionTokenVariables).SelectMany(v => new[] { v, v + "_FILE" });

    public static S3Settings Read(S3SettingsOverrides overrides, Func<string, string?> environment)
    {
        var endpointText = overrides.Endpoint is { Length: > 0 } e ? new Setting("--endpoint", e) : Lookup(EndpointVariables, environment);
        if (endpointText is null)
            throw new ConfigurationException("no S3 endpoint: set S3_ENDPOINT (or AWS_ENDPOINT_URL, or --endpoint) to the server's URL, e.g. https://sos-ch-gva-2.exo.io");
        var endpoint = ParseEndpoint(endpointText);

        var accessKey = Lookup(AccessKeyVariables, environment)
            ?? throw new ConfigurationException("no S3 access key: set S3_ACCESS_KEY or S3_ACCESS_KEY_FILE (or AWS_ACCESS_KEY_ID)");
        var secretKey = Lookup(SecretKeyVariables, environment)
            ?? throw new ConfigurationException("no S3 secret key: set S3_SECRET_KEY or S3_SECRET_KEY_FILE (or AWS_SECRET_ACCESS_KEY)");
        var sessionToken = Lookup(SessionTokenVariables, environment);
        CheckCredential(accessKey);
        CheckCredential(secretKey);

        var region = overrides.Region is { Length: > 0 } r ? new Setting("--region", r) : Lookup(RegionVariables, environment);
        if (region is not null && !RegionPattern().IsMatch(region.Value))
            throw new ConfigurationException($"{region.Name} ('{region.Value}') is not a region name: use letters, digits and dashes, e.g. us-east-1 or ch-gva-2");

        var addressingText = overrides.Addressing is { Length: > 0 } a ? new Setting("--addressing", a) : Lookup(AddressingVariables, environment);
        var addressing = ParseAddressing(addressingText, endpoint);

        var ioTimeoutText = overrides.IoTimeout is { Length: > 0 } t ? new Setting("--io-timeout", t) : Lookup(IoTimeoutVariables, environment);
        var ioTimeout = ioTimeoutText is null ? S3Settings.DefaultIoTimeout : ParseIoTimeout(ioTimeoutText);

        return new S3Settings(endpoint, new Secret(accessKey.Value), new Secret(secretKey.Value),
            sessionToken is null ? null : new Secret(sessionToken.Value), region?.Value ?? DefaultRegion, addressing) { IoTimeout = ioTimeout };
    }

    /// <summary>
    /// A setting that may be a secret: the variable NAME, or the content of the file NAME_FILE points at (one
    /// trailing newline removed); null when neither is set; a configuration error (exit 3) when both are, or the
    /// file cannot be read or is empty.
    /// </summary>
    public static string? ReadVariable(string name, Func<string, string?> environment) => Lookup([name], environment)?.Value;

    /// <summary>A value and the name of the variable or flag it came from, for error messages.</summary>
    private sealed record Setting(string Name, string Value);

    /// <summary>The first of <paramref name="names"/> that is set, as NAME or as NAME_FILE.</summary>
    private static Setting? Lookup(IEnumerable<string> names, Func<string, string?> environment)
    {
        foreach (var name in names)
        {
            var direct = environment(name);
            var file = environment(name + "_FILE");
            if (!string.IsNullOrEmpty(direct) && !string.IsNullOrEmpty(file))
                throw new ConfigurationException($"both {name} and {name}_FILE are set: set only one of them");
            if (!string.IsNullOrEmpty(direct)) return new Setting(name, direct);
            if (!string.IsNullOrEmpty(file)) return new Setting(name + "_FILE", ReadSettingFile(name + "_FILE", file));
        }
        return null;
    }

    private static string ReadSettingFile(string variable, string path)
    {
        var text = System.Text.Encoding.UTF8.GetString(SettingFile.Read(path, MaxSettingFileBytes, $"{variable}={path}",
            $"the file is larger than {MaxSettingFileBytes >> 10} KiB", "point it at a readable file that holds the value"));
        // Secret files usually end with a newline; the value never does.
        text = text.TrimEnd('\r', '\n');
        if (text.Length == 0) throw new ConfigurationException($"{variable}={path}: the file is empty; put the value in it");
        return text;
    }

    /// <summary>Largest *_FILE read: a key or URL is far shorter.</summary>
    private const long MaxSettingFileBytes = 64 * 1024;

    private static void CheckCredential(Setting setting)
    {
        if (setting.Value.Any(c => char.IsControl(c) || c == ' '))
            throw new ConfigurationException($"{setting.Name} contains spaces or control characters: check the value (a stray newline or quote?)");
    }

    private static Uri ParseEndpoint(Setting setting)
    {
        // A password in the URL never reaches a message: user:password@ is shown as [REDACTED]@.
        var text = WithoutUserInfo(setting.Value.Trim());
        const string hint = "expected http(s)://host[:port], e.g. https://sos-ch-gva-2.exo.io or http://127.0.0.1:7480";
        if (text != setting.Value.Trim())
            throw new ConfigurationException($"{setting.Name} ('{text}') must not have a path, query or user name (nor a password): {hint}; give the keys in S3_ACCESS_KEY and S3_SECRET_KEY (or their _FILE variables)");
        if (!text.Contains("://", StringComparison.Ordinal))
            throw new ConfigurationException($"{setting.Name} ('{text}') has no scheme: {hint}");
        if (!Uri.TryCreate(text, UriKind.Absolute, out var uri)
            || (uri.Scheme != Uri.UriSchemeHttp && uri.Scheme != Uri.UriSchemeHttps)
            || string.IsNullOrEmpty(uri.Host))
            throw new ConfigurationException($"{setting.Name} ('{text}') is not an endpoint URL: {hint}");
        if (uri.AbsolutePath != "/" || uri.Query.Length > 0 || uri.Fragment.Length > 0 || uri.UserInfo.Length > 0)
            throw new ConfigurationException($"{setting.Name} ('{text}') must not have a path, query or user name: {hint}; put the bucket in the s3:// URL");
        return new Uri($"{uri.Scheme}://{uri.Authority}/");
    }

    private static TimeSpan ParseIoTimeout(Setting setting)
    {
        TimeSpan value;
        try
        {
            value = GoDuration.Parse(setting.Value, setting.Name, TimeSpan.FromDays(1));
        }
        catch (UsageException ex)
        {
            throw new ConfigurationException(ex.Message);
        }
        if (value < TimeSpan.FromMilliseconds(100))
            throw new ConfigurationException($"{setting.Name} ('{setting.Value}') is too short: give at least 100ms, e.g. 60s");
        return value;
    }

    private static S3Addressing ParseAddressing(Setting? setting, Uri endpoint)
    {
        switch (setting?.Value.Trim().ToLowerInvariant())
        {
            case "path": return S3Addressing.Path;
            case "virtual" or "virtual-host": return S3Addressing.VirtualHost;
            case null or "" or "auto":
                // Hosted services that prefer virtual-host addressing; everything else (Ceph, MinIO, IPs) gets path-style.
                var host = endpoint.Host.ToLowerInvariant();
                return host.EndsWith(".amazonaws.com", StringComparison.Ordinal) || host.EndsWith(".exo.io", StringComparison.Ordinal)
                    ? S3Addressing.VirtualHost
                    : S3Addressing.Path;
            default:
                throw new ConfigurationException($"{setting.Name} ('{setting.Value}') must be path, virtual or auto");
        }
    }

    /// <summary>The URL text with anything between "://" and "@" replaced by [REDACTED] (user names and passwords).</summary>
    public static string WithoutUserInfo(string text) => UserInfoPattern().Replace(text, "://" + SecretRedactor.Mask + "@");

    [GeneratedRegex("://[^/?#@]*@")]
    private static partial Regex UserInfoPattern();

    [GeneratedRegex("^[a-z0-9][a-z0-9-]{0,62}$")]
    private static partial Regex RegionPattern();
}

/// <summary>An s3://bucket/path URL given on the command line.</summary>
public sealed record S3Location(string Bucket, string Path)
{
    /// <summary>Null and the reason when <paramref name="text"/> is not an s3:// URL with a valid bucket name.</summary>
    public static S3Location? TryParse(string text, string argumentName, out string? problem)
    {
        const string scheme = "s3://";
        problem = null;
        if (!text.StartsWith(scheme, StringComparison.OrdinalIgnoreCase))
        {
            problem = $"{argumentName} '{text}' is not an S3 URL: write it as s3://bucket/prefix";
            return null;
        }
        var rest = text[scheme.Length..];
        var slash = rest.IndexOf('/');
        var bucket = slash < 0 ? rest : rest[..slash];
        var path = slash < 0 ? "" : rest[(slash + 1)..];
        if (!IsValidBucketName(bucket))
        {
            problem = $"{argumentName} '{text}' has no valid bucket name: write it as s3://bucket/prefix (bucket: 3-63 letters, digits, dots or dashes)";
            return null;
        }
        return new S3Location(bucket, path);
    }

    public static S3Location Parse(string text, string argumentName = "location") =>
        TryParse(text, argumentName, out var problem) ?? throw new UsageException(problem!);

    /// <summary>The path as a "folder" prefix: empty, or ending in '/'. s3://b/site and s3://b/site/ both mean the keys under site/.</summary>
    public string Prefix => Path.Length == 0 || Path.EndsWith('/') ? Path : Path + "/";

    /// <summary>True when the path names one object (not empty, no trailing '/').</summary>
    public bool IsKey => Path.Length > 0 && !Path.EndsWith('/');

    /// <summary>The path as one object's key; a usage error if it names a folder.</summary>
    public string RequireKey(string argumentName) =>
        IsKey ? Path : throw new UsageException(FolderProblem(argumentName));

    public string FolderProblem(string argumentName) =>
        $"{argumentName} '{this}' names a folder, not an object: write it as s3://bucket/path/to/file";

    public string Describe(string key) => $"s3://{Bucket}/{key}";

    public override string ToString() => $"s3://{Bucket}/{Path}";

    private static bool IsValidBucketName(string name) =>
        name.Length is >= 3 and <= 63
        && char.IsAsciiLetterOrDigit(name[0]) && char.IsAsciiLetterOrDigit(name[^1])
        && name.All(c => char.IsAsciiLetterOrDigit(c) || c is '.' or '-' or '_');
}
