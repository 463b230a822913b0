using System.CommandLine;
using InfraTools.Cli;

namespace InfraTools.AcmeRestore;

/// <summary>An acme-restore command line, bound once and already checked by the parser.</summary>
public sealed record AcmeRestoreOptions(
    S3Location Source,
    string File,
    bool Required,
    TimeSpan Timeout,
    IReadOnlySet<string> Scrub,
    IReadOnlyList<string> Command,
    string? IdentityFile = null);

/// <summary>acme-restore's command line: its options and checks, bound into <see cref="AcmeRestoreOptions"/>.</summary>
public static class AcmeRestoreCli
{
    public const string Tool = "acme-restore";

    private static readonly Option<S3Location> Source = Options.S3UrlOption("--source", "The backup of acme.json, e.g. s3://backups/traefik/acme.json", "S3URL", requireKey: true);

    private static readonly Option<string> File = new("--file")
    {
        Description = "Traefik's acme.json, e.g. /etc/traefik/acme/acme.json; restored only if missing or empty",
        HelpName = "PATH",
        Required = true,
    };

    private static readonly Option<bool> Required = new("--required")
    {
        Description = "Exit with an error instead of starting the command if the backup cannot be read from S3 or the file cannot be written",
    };

    private static readonly Option<TimeSpan> Timeout = Options.Duration("--timeout", "How long to keep retrying an unreachable S3 endpoint, e.g. 30s, 2m", "60s");

    private static readonly Option<string[]> Scrub = new("--scrub")
    {
        Description = "Also remove this variable from the command's environment (repeatable; the S3 credential variables are always removed unless kept)",
        HelpName = "VAR",
        Arity = ArgumentArity.ZeroOrMore,
    };

    private static readonly Option<string[]> Keep = new("--keep")
    {
        Description = "Keep this credential variable in the command's environment, e.g. AWS_ACCESS_KEY_ID for Traefik's Route53 challenge (repeatable)",
        HelpName = "VAR",
        Arity = ArgumentArity.ZeroOrMore,
    };

    private static readonly Option<string?> IdentityFile = new("--identity-file")
    {
        Description = $"The age identity file (AGE-SECRET-KEY-1..., as age-keygen writes it) that decrypts a --source ending in .age (env {AgeSettingsReader.IdentityVariable}_FILE, or {AgeSettingsReader.IdentityVariable} with the key itself; both are removed from the command's environment)",
        HelpName = "PATH",
    };

    private static readonly Argument<string[]> Command = new("command")
    {
        Description = "The command to replace acme-restore with, after --, e.g. -- traefik --configFile=/etc/traefik/traefik.yml",
        Arity = ArgumentArity.ZeroOrMore,
    };

    public static RootCommand Create()
    {
        var root = new RootCommand(
            "Restores Traefik's acme.json from S3 if it is missing or empty, then replaces itself with the command after -- " +
            "(e.g. traefik), without the S3 credentials in its environment.");
        foreach (var option in new Option[] { Source, File, Required, Timeout, Scrub, Keep, IdentityFile }) root.Options.Add(option);
        root.Arguments.Add(Command);
        File.Validators.Add(result =>
        {
            var file = result.GetValueOrDefault<string>();
            if (file.Length == 0 || file.EndsWith('/') || Directory.Exists(file))
                result.AddError($"--file '{file}' is a directory: give the path of the acme.json file, e.g. /etc/traefik/acme/acme.json");
        });
        root.Validators.Add(result =>
        {
            try { Handover.ScrubList(result.GetValue(Scrub) ?? [], result.GetValue(Keep) ?? []); }
            catch (UsageException ex) { result.AddError(ex.Message); }
        });
        CommonOptions.AddTo(root, s3: true, metrics: true);
        ToolHost.SetAction(root, Tool, Bind, (options, context) => new AcmeRestoreRun(options, context));
        return root;
    }

    private static AcmeRestoreOptions Bind(ParseResult parse) => new(
        parse.GetValue(Source)!,
        parse.GetValue(File)!,
        parse.GetValue(Required),
        parse.GetValue(Timeout),
        Handover.ScrubList(parse.GetValue(Scrub) ?? [], parse.GetValue(Keep) ?? []),
        parse.GetValue(Command) ?? [],
        parse.GetValue(IdentityFile));
}
