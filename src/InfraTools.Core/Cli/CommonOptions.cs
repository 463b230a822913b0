using System.CommandLine;
using InfraTools.Logging;

namespace InfraTools.Cli;

/// <summary>The flags every tool shares, so they are spelled and documented the same everywhere.</summary>
public static class CommonOptions
{
    public static readonly Option<bool> Json = new("--json") { Description = "Log one JSON object per line (for log shippers)", Recursive = true };
    public static readonly Option<bool> Debug = new("--debug") { Description = "Log debug details, and stack traces of errors", Recursive = true };
    public static readonly Option<bool> Quiet = new("--quiet", "-q") { Description = "Log only warnings and errors", Recursive = true };

    public static readonly Option<string?> MetricsFile = new("--metrics-file")
    {
        Description = "Write Prometheus textfile metrics to this .prom file (env METRICS_FILE)",
        HelpName = "PATH",
        Recursive = true,
    };

    public static readonly Option<string?> Endpoint = new("--endpoint")
    {
        Description = "S3 endpoint URL, e.g. https://sos-ch-gva-2.exo.io (env S3_ENDPOINT, AWS_ENDPOINT_URL)",
        HelpName = "URL",
        Recursive = true,
    };

    public static readonly Option<string?> Region = new("--region")
    {
        Description = "S3 region (env S3_REGION, AWS_REGION, AWS_DEFAULT_REGION; default us-east-1)",
        HelpName = "NAME",
        Recursive = true,
    };

    public static readonly Option<string?> Addressing = new("--addressing")
    {
        Description = "Bucket addressing: path, virtual or auto (env S3_ADDRESSING; auto = virtual for AWS and Exoscale, else path)",
        HelpName = "STYLE",
        Recursive = true,
    };

    public static readonly Option<string?> IoTimeout = new("--io-timeout")
    {
        Description = "Fail a request when the S3 connection sends or receives nothing for this long, e.g. 30s (env S3_IO_TIMEOUT; default 60s)",
        HelpName = "DURATION",
        Recursive = true,
    };

    /// <summary>Adds the logging flags, and with <paramref name="s3"/> the S3 connection flags, and with <paramref name="metrics"/> --metrics-file.</summary>
    public static void AddTo(Command command, bool s3, bool metrics)
    {
        command.Options.Add(Json);
        command.Options.Add(Debug);
        command.Options.Add(Quiet);
        if (metrics) command.Options.Add(MetricsFile);
        if (s3)
        {
            command.Options.Add(Endpoint);
            command.Options.Add(Region);
            command.Options.Add(Addressing);
            command.Options.Add(IoTimeout);
        }
    }

    /// <summary>The shared flags of a parse result, bound once.</summary>
    public static CommonSettings Bind(ParseResult parse) => new(
        new LogOptions(parse.GetValue(Json), parse.GetValue(Debug), parse.GetValue(Quiet)),
        parse.GetValue(MetricsFile),
        new S3SettingsOverrides(parse.GetValue(Endpoint), parse.GetValue(Region), parse.GetValue(Addressing), parse.GetValue(IoTimeout)));

    /// <summary>--metrics-file, else METRICS_FILE, else null (no metrics written).</summary>
    public static string? MetricsPath(string? flag, Func<string, string?> environment)
    {
        var path = flag;
        if (string.IsNullOrEmpty(path)) path = environment("METRICS_FILE");
        if (string.IsNullOrEmpty(path)) return null;
        if (!path.EndsWith(".prom", StringComparison.Ordinal))
            throw new UsageException($"metrics file '{path}' must end in .prom (node_exporter's textfile collector reads only *.prom)");
        return path;
    }
}

/// <summary>The flags every tool shares, bound once: logging, the metrics file, the S3 connection overrides.</summary>
public sealed record CommonSettings(LogOptions Log, string? MetricsFile, S3SettingsOverrides S3);
