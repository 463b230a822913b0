namespace InfraTools.Sync;

/// <summary>A run refused before it changed anything (an empty source, too many deletes, another run at work).</summary>
public sealed class RefusedException(string message) : Exception(message);

/// <summary>When an empty source is a mistake rather than an intent.</summary>
public enum EmptySourceRule
{
    /// <summary>Refused when the target holds files (a wrong bucket or prefix would wipe it): pulls, and pushes with delete.</summary>
    RefuseIfTargetHasFiles,
    /// <summary>Always refused: a new snapshot of nothing would count as the newest backup.</summary>
    Refuse,
    /// <summary>Nothing to lose (a push without delete changes nothing when the source is empty).</summary>
    Allow,
}

public sealed record SafetyOptions(EmptySourceRule EmptySource, bool Force, int? MaxDelete);

/// <summary>
/// The one safety policy of every run, checked after planning and before anything changes: an empty source that
/// looks like a mistake, and more deletes than --max-delete, refuse the whole run (unless --force for the first).
/// The third rule, deletes only after every transfer succeeded, is the runner's (<see cref="SyncRunner"/>).
/// </summary>
public static class SafetyPolicy
{
    /// <summary>Throws <see cref="RefusedException"/> if the run must not go ahead; <paramref name="source"/> and <paramref name="target"/> name the sides in the message.</summary>
    public static void Check(SyncPlan plan, SafetyOptions options, ISyncSide targetSide, string source, string target)
    {
        if (plan.SourceEntries == 0 && !options.Force)
        {
            if (options.EmptySource == EmptySourceRule.Refuse)
                throw new RefusedException($"SRC '{source}' has no files: refusing to write an empty snapshot, which would count as the newest backup (and with --keep-last push real ones out); nothing was uploaded. Use --force if an empty backup is really wanted.");
            if (options.EmptySource == EmptySourceRule.RefuseIfTargetHasFiles && plan.TargetFiles > 0)
                throw new RefusedException(targetSide.IsTree
                    ? $"{source} is empty but {target} holds {plan.TargetFiles} file(s): refusing to mirror an empty source (wrong bucket or prefix?); nothing was changed. Use --force if the source really is empty."
                    : $"SRC '{source}' has no files but {target} holds {plan.TargetFiles} object(s): refusing to delete the backup (wrong SRC?); nothing was changed. Use --force if that is really wanted.");
        }
        if (options.MaxDelete is { } limit && plan.DeleteCount > limit)
            throw new RefusedException($"{plan.DeleteCount} file(s) would be deleted, more than --max-delete {limit}: nothing was changed. Check the source, or raise --max-delete.");
    }
}
