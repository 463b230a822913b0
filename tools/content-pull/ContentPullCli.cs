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

    public static RootCommand Create()
    {
        var root = new RootCommand("Mirror an S3 prefix into a local directory (the web root): atomic, parallel, safe.");
        root.Arguments.Add(Source);
        root.Arguments.Add(Destination);
        foreach (var option in new Option[] { Delete, StateDirectory, Parallel, DryRun, Exclude, Force, MaxDelete, Umask, Chmod, Watch, Poll, Resync, Listen, WatchKey, StopGrace })
            root.Options.Add(option);
        Options.Exclusive(root, Umask, Chmod, "use one of them");
        Options.Exclusive(root, Watch, DryRun, "a dry run prints one plan and ends");
        foreach (var option in new Option[] { Poll, Resync, Listen, WatchKey, StopGrace })
            Options.Requires(root, option, Watch, $"{option.Name} only applies with --watch");
        CommonOptions.AddTo(root, s3: true, metrics: true);
        ToolHost.SetAction(root, Tool, Bind, (options, context) =>
            options.Watch is { } watch ? new WatchRun(options, watch, context) : new ContentPullRun(options, context));
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
        parse.GetValue(Watch) ? new WatchOptions(parse.GetValue(Poll), parse.GetValue(Resync), parse.GetValue(Listen), parse.GetValue(WatchKey)!, parse.GetValue(StopGrace)) : null);
}
