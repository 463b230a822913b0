using InfraTools.Logging;
using InfraTools.Sync;

namespace InfraTools.ContentPull;

/// <summary>--dry-run's output: one line per action, keys escaped (one with a newline cannot forge a line), then a summary.</summary>
internal static class PlanPrinter
{
    public static void Print(SyncPlan plan)
    {
        foreach (var transfer in plan.Transfers)
            Console.WriteLine($"download {LogText.Escape(transfer.Source.Name)} ({transfer.Reason switch { TransferReason.New => "new", TransferReason.Changed => "changed", _ => "replaces a local entry of another type" }})");
        foreach (var check in plan.Checks) Console.WriteLine($"check {LogText.Escape(check.Source.Name)} (same size, compared by checksum)");
        foreach (var path in plan.DeleteFiles) Console.WriteLine($"delete {LogText.Escape(path)}");
        foreach (var entry in plan.DeleteUndecodable) Console.WriteLine($"delete {entry.Display} (name not UTF-8)");
        foreach (var path in plan.DeleteDirectories) Console.WriteLine($"delete directory {LogText.Escape(path)} (if empty)");
        foreach (var leftover in plan.Leftovers) Console.WriteLine($"remove leftover temporary file {LogText.Escape(leftover)}");
        foreach (var (path, reason) in plan.Unreadable) Console.WriteLine($"cannot read directory {LogText.Escape(path)}: {reason}");
        foreach (var skipped in plan.Skipped) Console.WriteLine($"skip {LogText.Escape(skipped.Key)}: {skipped.Problem}");
        Console.WriteLine($"dry run: {plan.Transfers.Count} to download, {plan.Checks.Count} to check, {plan.Unchanged.Count} unchanged, {plan.DeleteCount} to delete, {plan.Skipped.Count} skipped; nothing was changed");
    }
}
