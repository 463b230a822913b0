using System.CommandLine;
using InfraTools.Cli;
using InfraTools.ContentPull.Watch;
using InfraTools.Files;

namespace InfraTools.ContentPull;

/// <summary>content-pull's command line: its options, their checks, and the binding into <see cref="ContentPullOptions"/>.</summary>
public static class ContentPullCli
{
    public const string Tool = "content-pull";
    public const string DefaultStateDirectory = "/var/lib/content-pull";
    public const int DefaultParallel = 32;
    public const int DefaultKeepReleases = 3;

    private static readonly Argument<S3Location> Source = Options.S3Url("SOURCE", "s3://bucket[/prefix] to mirror");
    private static readonly Argument<string> Destination = Options.LocalPath("DEST", "Local directory to make an exact mirror of SOURCE", "the web root directory, e.g. /var/www/htdocs");
    private static readonly Option<bool> Delete = new("--delete", "--delete-removed") { Description = "Delete local files and directories that are not in SOURCE (after all downloads succeeded)" };
    private static readonly Option<string?> StateDirectory = new("--state-dir")
    {
        Description = $"Directory for the manifest of what was downloaded (env CONTENT_PULL_STATE_DIR; default {DefaultStateDirectory}); must be outside DEST",
        HelpName = "DIR",
    };
    private static readonly Option<int> Parallel = Options.IntRange("--parallel", "-j", $"Downloads at the same time (1-256, default {DefaultParallel})", 1, 256, DefaultParallel);
    private static readonly Option<bool> DryRun = new("--dry-run", "-n") { Description = "Print what would be done, change nothing" };
    private static readonly Option<string[]> Exclude = new("--exclude") { Description = "Skip keys matching GLOB (repeatable): neither downloaded nor deleted; '*' stays within a directory, '**' crosses them, a pattern without '/' matches file names anywhere", HelpName = "GLOB" };
    private static readonly Option<bool> Force = new("--force") { Description = "Mirror even an empty SOURCE into a non-empty DEST (deleting everything with --delete)" };
    private static readonly Option<int?> MaxDelete = Options.AtLeast("--max-delete", "Refuse the run, changing nothing, if more than N files would be deleted", 0,
        "is negative: give 0 or more (0 refuses any delete)");
    private static readonly Option<FileModes?> Umask = Options.Umask("Octal umask for created files and directories instead of the default 022 (files 0644, directories 0755)");
    private static readonly Option<FileModes?> Chmod = Options.Chmod("Octal modes FILE[:DIR] for created files and directories, e.g. 0640:0750");

    private static readonly Option<bool> Watch = new("--watch") { Description = "Keep running: pull when the watched object changes (--poll), on a signed POST /deploy (--listen), and every --resync" };
    private static readonly Option<TimeSpan> Poll = Options.Duration("--poll", "With --watch: how often to check the watched object with one conditional GET (default 5s)", "5s");
    private static readonly Option<TimeSpan> Resync = Options.Duration("--resync", "With --watch: a full pull at least this often, whatever the other signals say (default 10m)", "10m");
    private static readonly Option<string?> Listen = new("--listen")
    {
        Description = $"With --watch: serve POST /deploy (signed with {WatchRun.DeploySecretVariable} or _FILE, GitHub's X-Hub-Signature-256), /health and /metrics at ip[:port] (port defaults to 8080)",
        HelpName = "ADDR",
    };
    private static readonly Option<string> WatchKey = new("--watch-key")
    {
        Description = $"With --watch: the object under SOURCE to poll (default {DefaultWatchKey}, the release manifest a publisher writes last)",
        HelpName = "KEY",
        DefaultValueFactory = _ => DefaultWatchKey,
    };
    private static readonly Option<TimeSpan> StopGrace = Options.Duration("--stop-grace", "With --watch: how long SIGTERM lets a running pull finish before abandoning it (default 10s)", "10s");

    public const string DefaultWatchKey = ".release.json";

    private static readonly Option<bool> Releases = new("--releases")
    {
        Description = "Release mode: build each change as a new release DEST/releases/ID (unchanged files hard-linked) and switch the link DEST/current to it in one rename; serve DEST/current. A DEST that already holds releases is always run in release mode",
    };
    private static readonly Option<int> KeepReleases = Options.IntRange("--keep-releases", "-k", $"Release mode: releases kept besides the grace period (1-1000, default {DefaultKeepReleases})", 1, 1000, DefaultKeepReleases);
    private static readonly Option<TimeSpan> Grace = Options.Duration("--release-grace", "Release mode: a release that stopped being current less than this long ago is never deleted (requests in flight), e.g. 5m", "5m", TimeSpan.FromDays(30));
    private static readonly Option<string[]> KeepAssets = new("--keep-assets")
    {
        Description = "Release mode: carry files matching GLOB (repeatable, e.g. 'assets/**') from earlier releases into a new one that lacks them, for --keep-assets-for (skew protection)",
        HelpName = "GLOB",
    };
    private static readonly Option<TimeSpan> KeepAssetsFor = Options.Duration("--keep-assets-for", "Release mode: how long after its release stopped being current a file is carried (default 24h)", "24h", TimeSpan.FromDays(365));

    public static RootCommand Create()
    {
        var root = new RootCommand("Mirror an S3 prefix into a local directory (the web root): atomic, parallel, safe; in release mode whole-site atomic.");
        root.Arguments.Add(Source);
        root.Arguments.Add(Destination);
        foreach (var option in new Option[] { Delete, StateDirectory, Parallel, DryRun, Exclude, Force, MaxDelete, Umask, Chmod, Releases, KeepReleases, Grace, KeepAssets, KeepAssetsFor,
                     Watch, Poll, Resync, Listen, WatchKey, StopGrace })
            root.Options.Add(option);
        Options.Exclusive(root, Umask, Chmod, "use one of them");
        Options.Requires(root, KeepAssetsFor, KeepAssets, "--keep-assets-for applies to the files --keep-assets names: give --keep-assets GLOB too");
        Options.Exclusive(root, Watch, DryRun, "a dry run prints one plan and ends");
        foreach (var option in new Option[] { Poll, Resync, Listen, WatchKey, StopGrace })
            Options.Requires(root, option, Watch, $"{option.Name} only applies with --watch");
        CommonOptions.AddTo(root, s3: true, metrics: true);
        ToolHost.SetAction(root, Tool, Bind, (options, context) =>
            options.Watch is { } watch ? new WatchRun(options, watch, context) : new ContentPullRun(options, context));
        // The shared flags are recursive: the subcommands inherit them (rollback and releases use no S3 settings).
        root.Subcommands.Add(PublishCommand());
        root.Subcommands.Add(RollbackCommand());
        root.Subcommands.Add(ListCommand());
        return root;
    }

    private static ContentPullOptions Bind(ParseResult parse) => new(
        parse.GetValue(Source)!,
        parse.GetValue(Destination)!,
        parse.GetValue(Delete),
        parse.GetValue(StateDirectory),
        parse.GetValue(Parallel),
        parse.GetValue(DryRun),
        parse.GetValue(Exclude) ?? [],
        parse.GetValue(Force),
        parse.GetValue(MaxDelete),
        parse.GetValue(Chmod) ?? parse.GetValue(Umask) ?? FileModes.WebReadable,
        new ReleaseSettings(parse.GetValue(Releases), parse.GetValue(KeepReleases), parse.GetValue(Grace), parse.GetValue(KeepAssets) ?? [], parse.GetValue(KeepAssetsFor),
            Given: new[] { KeepReleases, Grace, KeepAssets, (Option)KeepAssetsFor }.Any(o => Options.Given(parse.CommandResult, o))),
        parse.GetValue(Watch) ? new WatchOptions(parse.GetValue(Poll), parse.GetValue(Resync), parse.GetValue(Listen), parse.GetValue(WatchKey)!, parse.GetValue(StopGrace)) : null);

    private static Command PublishCommand()
    {
        var directory = Options.LocalPath("DIR", "The built site to publish as a release", "the build output directory, e.g. ./public");
        var target = Options.S3Url("TARGET", "s3://bucket[/prefix] that content-pull mirrors");
        var parallel = Options.IntRange("--parallel", "-j", $"Uploads at the same time (1-256, default {DefaultParallel})", 1, 256, DefaultParallel);
        var exclude = new Option<string[]>("--exclude") { Description = "Skip paths matching GLOB (repeatable): neither uploaded nor deleted", HelpName = "GLOB" };
        var keep = Options.IntRange("--keep-releases", "-k", $"Objects referenced by the newest N releases are kept (2-1000, default {DefaultKeepReleases}); the rest are deleted after the manifest is written", 2, 1000, DefaultKeepReleases);
        var force = new Option<bool>("--force") { Description = "Publish even an empty DIR" };
        var command = new Command("publish", "Upload a build directory as a release: changed files (parallel, checked), then the release manifest PREFIX/.release.json, then delete objects no recent release references");
        command.Arguments.Add(directory);
        command.Arguments.Add(target);
        foreach (var option in new Option[] { parallel, exclude, keep, force }) command.Options.Add(option);
        ToolHost.SetAction(command, Tool,
            p => new PublishOptions(p.GetValue(directory)!, p.GetValue(target)!, p.GetValue(parallel), p.GetValue(exclude) ?? [], p.GetValue(keep), p.GetValue(force)),
            (options, context) => new PublishRun(options, context));
        return command;
    }

    private static Argument<string> DestArgument() => Options.LocalPath("DEST", "The directory content-pull --releases writes (it holds current and releases/)", "the web root's parent, e.g. /srv/site");

    private static Command RollbackCommand()
    {
        var dest = DestArgument();
        var id = new Argument<string?>("ID") { Description = "The release to make current (default: the newest one older than the current one)", Arity = ArgumentArity.ZeroOrOne };
        var command = new Command("rollback", "Point DEST/current at an earlier release in one rename (no network)");
        command.Arguments.Add(dest);
        command.Arguments.Add(id);
        ToolHost.SetAction(command, Tool, p => new ReleaseCommandOptions(p.GetValue(dest)!, p.GetValue(id)), (options, context) => new RollbackRun(options, context));
        return command;
    }

    private static Command ListCommand()
    {
        var dest = DestArgument();
        var removeLegacy = new Option<bool>("--remove-legacy")
        {
            Description = "Remove the site DEST held at its top before its first release (once every nginx serves DEST/current); refused before the first release",
        };
        var command = new Command("releases", "List the releases of DEST: id, time, files, bytes, which one is current");
        command.Arguments.Add(dest);
        command.Options.Add(removeLegacy);
        ToolHost.SetAction(command, Tool, p => new ReleaseCommandOptions(p.GetValue(dest)!, null, p.GetValue(removeLegacy)), (options, context) => new ListReleasesRun(options, context));
        return command;
    }
}
