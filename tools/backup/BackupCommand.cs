using System.CommandLine;
using System.Globalization;
using InfraTools.Cli;

namespace InfraTools.Backup;

/// <summary>backup: push files and Prometheus snapshots to S3, restore them on a fresh host.</summary>
public static class BackupCommand
{
    public const string Tool = "backup";

    public static RootCommand Create()
    {
        var root = new RootCommand("Back up files, acme.json and Prometheus data to S3, and restore them on a fresh host.");
        CommonOptions.AddTo(root, s3: true, metrics: false);
        root.Subcommands.Add(PushCommand.Create());
        root.Subcommands.Add(RestoreCommand.Create());
        return root;
    }

    public static Option<int> ParallelOption(int defaultValue) =>
        new("--parallel", "-j") { Description = $"Transfers at the same time (1-64, default {defaultValue})", DefaultValueFactory = _ => defaultValue, HelpName = "N" };

    public static int CheckParallel(int parallel) =>
        parallel is >= 1 and <= 64 ? parallel : throw new UsageException($"--parallel {parallel} is out of range: use 1 to 64");

    internal static string FormatBytes(long bytes) => bytes switch
    {
        < 1024 => $"{bytes} B",
        < 1024 * 1024 => (bytes / 1024.0).ToString("0.0 KB", CultureInfo.InvariantCulture),
        _ => (bytes / 1024.0 / 1024.0).ToString("0.0 MB", CultureInfo.InvariantCulture),
    };
}
