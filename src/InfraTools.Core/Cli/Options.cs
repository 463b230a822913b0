using System.CommandLine;
using System.CommandLine.Parsing;
using InfraTools.Files;
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
