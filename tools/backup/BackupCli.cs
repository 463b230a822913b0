using System.CommandLine;
using InfraTools.Cli;
using InfraTools.Files;

namespace InfraTools.Backup;

/// <summary>backup's command line: push and restore, their options and checks, bound into <see cref="PushOptions"/> and <see cref="RestoreOptions"/>.</summary>
public static class BackupCli
{
    public const string Tool = "backup";
    public const string DefaultStateDirectory = "/var/lib/backup";
    /// <summary>How often a file given with --require-json is read before giving up (Traefik may be rewriting it).</summary>
    public const int JsonAttempts = 5;

    public static RootCommand Create()
    {
        var root = new RootCommand("Back up files, acme.json and Prometheus data to S3, and restore them on a fresh host.");
        CommonOptions.AddTo(root, s3: true, metrics: false);
        root.Subcommands.Add(Push.Create());
        root.Subcommands.Add(Restore.Create());
        return root;
    }

    private static Option<int> ParallelOption(int defaultValue) =>
        Options.IntRange("--parallel", "-j", $"Transfers at the same time (1-64, default {defaultValue})", 1, 64, defaultValue);

    private static class Push
    {
        private static readonly Argument<string> Source = Options.LocalPath("SRC", "File or directory to back up", "the file or directory to back up");
        private static readonly Argument<S3Location> Target = Options.S3Url("TARGET",
            "s3://bucket/prefix/ for a tree (or a file, under its own name); s3://bucket/path/name to store a single file under that key");
        private static readonly Option<string> Name = new("--name") { Description = "Name of this backup in the metrics (label name=...)", DefaultValueFactory = _ => "default", HelpName = "NAME" };
        private static readonly Option<bool> RequireJson = new("--require-json") { Description = $"SRC is a single JSON file (acme.json): upload it only if it parses, reading it up to {JsonAttempts} times" };
        private static readonly Option<bool> Delete = new("--delete") { Description = "Delete remote objects under the prefix that no longer exist locally (after all uploads succeeded)" };
        private static readonly Option<bool> Snapshot = new("--snapshot") { Description = "Upload into a new timestamped prefix (TARGET/yyyyMMddTHHmmssZ/) instead of mirroring into TARGET" };
        private static readonly Option<int?> KeepLast = Options.AtLeast("--keep-last", "With --snapshot: keep the N newest complete snapshots, delete older ones (with --keep-daily/-weekly/-monthly: always keep the N newest, default 3)", 1, "must be at least 1");
        private static readonly Option<int?> KeepDaily = Options.AtLeast("--keep-daily", "With --snapshot: also keep the newest snapshot of each of the N most recent days that have one (counted in snapshots, not calendar days)", 0, "must be 0 or more");
        private static readonly Option<int?> KeepWeekly = Options.AtLeast("--keep-weekly", "With --snapshot: also keep the newest snapshot of each of the N most recent ISO weeks that have one", 0, "must be 0 or more");
        private static readonly Option<int?> KeepMonthly = Options.AtLeast("--keep-monthly", "With --snapshot: also keep the newest snapshot of each of the N most recent months that have one", 0, "must be 0 or more");
        private static readonly Option<bool> Acme = new("--acme")
        {
            Description = "SRC is Traefik's acme.json (implies --require-json): refuse to replace a copy in S3 that holds a certificate for a domain the local file lacks, a later expiry or an ACME account (unless --force); write per-certificate expiry metrics",
        };
        private static readonly Option<Uri?> PrometheusSnapshot = new("--prometheus-snapshot")
        {
            Description = "Ask the Prometheus at URL for a TSDB snapshot (needs --web.enable-admin-api), upload it from SRC/snapshots/NAME, then delete it; SRC is Prometheus' data directory",
            HelpName = "URL",
            CustomParser = result =>
            {
                var text = result.Tokens.Count > 0 ? result.Tokens[0].Value : "";
                if (Uri.TryCreate(text.EndsWith('/') ? text : text + "/", UriKind.Absolute, out var uri) && (uri.Scheme == Uri.UriSchemeHttp || uri.Scheme == Uri.UriSchemeHttps))
                    return uri;
                result.AddError($"--prometheus-snapshot '{text}' is not an http(s) URL, e.g. http://prometheus:9090");
                return null;
            },
        };
        private static readonly Option<string?> StateDirectory = new("--state-dir")
        {
            Description = $"Directory for the manifest of what was uploaded (env BACKUP_STATE_DIR; default {DefaultStateDirectory})",
            HelpName = "DIR",
        };
        private static readonly Option<string[]> Exclude = new("--exclude") { Description = "Skip local paths matching GLOB (repeatable; same rules as content-pull)", HelpName = "GLOB" };
        private static readonly Option<bool> Force = new("--force") { Description = "With --delete, mirror even an empty SRC (deleting every remote object under the prefix); with --snapshot, write a snapshot of an empty SRC; with --acme, replace a copy in S3 that holds more" };
        private static readonly Option<int> Parallel = ParallelOption(8);
        private static readonly Option<string[]> EncryptTo = new("--encrypt-to")
        {
            Description = $"Encrypt every object for this age recipient (age1..., repeatable; env {AgeSettingsReader.RecipientsVariable}): objects are stored as NAME.age, readable with age -d",
            HelpName = "RECIPIENT",
        };
        private static readonly Option<string[]> EncryptToFile = new("--encrypt-to-file")
        {
            Description = $"Encrypt for the recipients in this file (age -R format: one age1... a line, # comments; repeatable; env {AgeSettingsReader.RecipientsVariable}_FILE)",
            HelpName = "PATH",
        };

        public static Command Create()
        {
            var command = new Command("push", "Upload a file or a directory tree to S3: only what changed, checked, in parallel.");
            command.Arguments.Add(Source);
            command.Arguments.Add(Target);
            foreach (var option in new Option[] { Name, RequireJson, Acme, Delete, Snapshot, KeepLast, KeepDaily, KeepWeekly, KeepMonthly, PrometheusSnapshot, StateDirectory, Exclude, Force, Parallel, EncryptTo, EncryptToFile })
                command.Options.Add(option);
            command.Options.Add(CommonOptions.MetricsFile);
            Name.Validators.Add(result =>
            {
                var name = result.GetValueOrDefault<string>();
                if (!(name.Length is > 0 and <= 64 && name.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.')))
                    result.AddError($"--name '{name}' must be letters, digits, '-', '_' or '.', e.g. acme or prometheus");
            });
            foreach (var keep in new[] { KeepLast, KeepDaily, KeepWeekly, KeepMonthly })
                Options.Requires(command, keep, Snapshot, $"{keep.Name} only applies with --snapshot");
            Options.Exclusive(command, Snapshot, Delete, "each snapshot is a new prefix; use --keep-last to prune");
            Options.Exclusive(command, RequireJson, PrometheusSnapshot);
            Options.Exclusive(command, Acme, PrometheusSnapshot);
            Options.Exclusive(command, Acme, Delete);
            ToolHost.SetAction(command, Tool, Bind, (options, context) => new PushRun(options, context));
            return command;
        }

        private static PushOptions Bind(ParseResult parse) => new(
            parse.GetValue(Source)!,
            parse.GetValue(Target)!,
            parse.GetValue(Name)!,
            parse.GetValue(RequireJson) || parse.GetValue(Acme),
            parse.GetValue(Delete),
            parse.GetValue(Snapshot),
            parse.GetValue(KeepLast),
            parse.GetValue(PrometheusSnapshot),
            parse.GetValue(StateDirectory),
            parse.GetValue(Exclude) ?? [],
            parse.GetValue(Force),
            parse.GetValue(Parallel),
            parse.GetValue(EncryptTo) ?? [],
            parse.GetValue(EncryptToFile) ?? [],
            parse.GetValue(Acme),
            new RetentionCounts(parse.GetValue(KeepDaily), parse.GetValue(KeepWeekly), parse.GetValue(KeepMonthly)));
    }

    private static class Restore
    {
        private static readonly Argument<S3Location> Source = Options.S3Url("SOURCE", "s3://bucket/prefix/ of a tree or of snapshots, or s3://bucket/path/file of one file");
        private static readonly Argument<string> Destination = Options.LocalPath("DEST", "Directory to restore the tree into (or the file path, for one file)", "the directory (or file) to restore into");
        private static readonly Option<string?> Snapshot = new("--snapshot")
        {
            Description = "Which snapshot to restore: a name (yyyyMMddTHHmmssZ) or latest; default: the latest complete snapshot if SOURCE holds snapshots, else the tree itself",
            HelpName = "NAME",
        };
        private static readonly Option<bool> Force = new("--force") { Description = "Restore even if DEST is not empty, overwriting files that differ (other files are kept)" };
        private static readonly Option<FileModes?> Chmod = Options.Chmod("Octal modes FILE[:DIR] of restored files and directories (default 0600:0700, backups may hold secrets)");
        private static readonly Option<int> Parallel = ParallelOption(16);
        private static readonly Option<string?> IdentityFile = new("--identity-file")
        {
            Description = $"The age identity file (AGE-SECRET-KEY-1..., as age-keygen writes it) that decrypts NAME.age objects (env {AgeSettingsReader.IdentityVariable}_FILE, or {AgeSettingsReader.IdentityVariable} with the key itself)",
            HelpName = "PATH",
        };

        public static Command Create()
        {
            var command = new Command("restore", "Restore a backed-up tree (latest mirror or a named/latest snapshot) or file into DEST, only if DEST is empty or missing unless --force.");
            command.Arguments.Add(Source);
            command.Arguments.Add(Destination);
            foreach (var option in new Option[] { Snapshot, Force, Chmod, Parallel, IdentityFile }) command.Options.Add(option);
            Snapshot.Validators.Add(result =>
            {
                var name = result.GetValueOrDefault<string?>();
                if (name is not null && name != "latest" && !Snapshots.IsName(name))
                    result.AddError($"--snapshot '{name}' is neither latest nor a snapshot name like 20261124T201502Z");
            });
            ToolHost.SetAction(command, Tool, Bind, (options, context) => new RestoreRun(options, context));
            return command;
        }

        private static RestoreOptions Bind(ParseResult parse) => new(
            parse.GetValue(Source)!,
            parse.GetValue(Destination)!,
            parse.GetValue(Snapshot),
            parse.GetValue(Force),
            parse.GetValue(Chmod) ?? FileModes.Private,
            parse.GetValue(Parallel),
            parse.GetValue(IdentityFile));
    }
}
