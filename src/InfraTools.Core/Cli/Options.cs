// Typed options checked by the parser (Options) and the flags every tool shares (CommonOptions).
using System.CommandLine;
using System.CommandLine.Parsing;
using InfraTools.Files;
using InfraTools.Logging;
using InfraTools.Time;

namespace InfraTools.Cli;

/// <summary>
/// Typed options and arguments whose values are checked by the parser (dotnet/format's way): a malformed value
/// or a bad combination is a parse error, one line and exit 2, before a run starts; the run gets values that
/// are already valid.
/// </summary>
public static class Options
{
    /// <summary>A custom parser from a function of the token's text that gives the value or the problem.</summary>
    private static Func<ArgumentResult, T?> Parser<T>(Func<string, (T? Value, string? Problem)> parse) => result =>
    {
        var (value, problem) = parse(result.Tokens.Count > 0 ? result.Tokens[0].Value : "");
        if (problem is not null) result.AddError(problem);
        return value;
    };

    private static (S3Location?, string?) ParseS3(string text, string name, bool requireKey)
    {
        var location = S3Location.TryParse(text, name, out var problem);
        if (location is not null && requireKey && !location.IsKey) problem = location.FolderProblem(name);
        return (location, problem);
    }

    /// <summary>An s3://bucket/prefix argument.</summary>
    public static Argument<S3Location> S3Url(string name, string description, bool requireKey = false) => new(name)
    {
        Description = description,
        CustomParser = Parser(text => ParseS3(text, name, requireKey))!,
    };

    /// <summary>A required s3:// option (e.g. acme-restore's --source).</summary>
    public static Option<S3Location> S3UrlOption(string name, string description, string helpName, bool requireKey = false) => new(name)
    {
        Description = description,
        HelpName = helpName,
        Required = true,
        CustomParser = Parser(text => ParseS3(text, name, requireKey))!,
    };

    /// <summary>A local path argument that must not be empty (an empty DEST is a mistake, never "the current directory").</summary>
    public static Argument<string> LocalPath(string name, string description, string example)
    {
        var argument = new Argument<string>(name) { Description = description };
        argument.Validators.Add(result =>
        {
            if (string.IsNullOrWhiteSpace(result.GetValueOrDefault<string>()))
                result.AddError($"{name} is empty: give {example}");
        });
        return argument;
    }

    /// <summary>An integer option with an inclusive range (and a default when given).</summary>
    public static Option<int> IntRange(string name, string alias, string description, int min, int max, int defaultValue, string helpName = "N")
    {
        var option = new Option<int>(name, alias) { Description = description, DefaultValueFactory = _ => defaultValue, HelpName = helpName };
        option.Validators.Add(result =>
        {
            var value = result.GetValueOrDefault<int>();
            if (value < min || value > max) result.AddError($"{name} {value} is out of range: use {min} to {max}");
        });
        return option;
    }

    /// <summary>An optional integer that must be at least <paramref name="min"/>.</summary>
    public static Option<int?> AtLeast(string name, string description, int min, string why, string helpName = "N")
    {
        var option = new Option<int?>(name) { Description = description, HelpName = helpName };
        option.Validators.Add(result =>
        {
            if (result.GetValueOrDefault<int?>() is { } value && value < min) result.AddError($"{name} {value} {why}");
        });
        return option;
    }

    /// <summary>Octal modes FILE[:DIR] (--chmod).</summary>
    public static Option<FileModes?> Chmod(string description) => new("--chmod")
    {
        Description = description,
        HelpName = "MODES",
        CustomParser = Parser(text => (FileModes.ParseChmod(text), FileModes.ParseChmod(text) is null ? $"--chmod '{text}' is not FILE[:DIR] in octal, e.g. 0644 or 0640:0750" : null)),
    };

    /// <summary>An octal umask (--umask).</summary>
    public static Option<FileModes?> Umask(string description) => new("--umask")
    {
        Description = description,
        HelpName = "MASK",
        CustomParser = Parser(text => (FileModes.FromUmask(text), FileModes.FromUmask(text) is null ? $"--umask '{text}' is not an octal mask, e.g. 022 or 027" : null)),
    };

    /// <summary>A Go-style duration (500ms, 60s, 1m30s), more than zero and at most <paramref name="max"/> (default one day).</summary>
    public static Option<TimeSpan> Duration(string name, string description, string defaultText, TimeSpan? max = null)
    {
        var limit = max ?? TimeSpan.FromDays(1);
        return new Option<TimeSpan>(name)
        {
            Description = description,
            HelpName = "DURATION",
            DefaultValueFactory = _ => GoDuration.Parse(defaultText, name, limit),
            CustomParser = result =>
            {
                var text = result.Tokens.Count > 0 ? result.Tokens[0].Value : defaultText;
                try
                {
                    var value = GoDuration.Parse(text, name, limit);
                    if (value <= TimeSpan.Zero) result.AddError($"{name} must be more than 0, e.g. {defaultText}");
                    return value;
                }
                catch (UsageException ex)
                {
                    result.AddError(ex.Message);
                    return default;
                }
            },
        };
    }

    /// <summary>A validator: the two options cannot both be given.</summary>
    public static void Exclusive(Command command, Option first, Option second, string? why = null) =>
        command.Validators.Add(result =>
        {
            if (Given(result, first) && Given(result, second))
                result.AddError($"{first.Name} and {second.Name} cannot be combined{(why is null ? "" : ": " + why)}");
        });

    /// <summary>A validator: <paramref name="option"/> only applies together with <paramref name="requires"/>.</summary>
    public static void Requires(Command command, Option option, Option requires, string message) =>
        command.Validators.Add(result =>
        {
            if (Given(result, option) && !Given(result, requires)) result.AddError(message);
        });

    /// <summary>True if the option was given on the command line (not only defaulted), and for a flag, given as true.</summary>
    public static bool Given(CommandResult result, Option option) =>
        result.GetResult(option) is OptionResult { Implicit: false } found && (option is not Option<bool> flag || found.GetValueOrDefault<bool>());
}

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
