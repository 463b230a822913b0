using InfraTools.Cli;
using InfraTools.Crypto;
using InfraTools.S3;

namespace InfraTools.AcmeRestore;

/// <summary>
/// One acme-restore run: restore acme.json if needed, report the outcome, and decide the command to hand over
/// to. The hand-over itself (execve) is the host's, once the log is closed and the signal handlers released.
/// </summary>
public sealed class AcmeRestoreRun(AcmeRestoreOptions options, ToolContext context) : IToolRun
{
    private Outcome _outcome = Outcome.Failed;

    /// <summary>acme_restore_*: the run's time and duration, and its outcome (no success metrics: every outcome but failed lets Traefik start).</summary>
    public RunReport Report { get; } = new("acme_restore", "acme-restore run") { SuccessMetrics = false, WritesMetrics = false };

    RunReport? IToolRun.Report => Report;

    public async Task<ToolResult> RunAsync()
    {
        Report.Live = () =>
        [
            new ReportGauge("acme_restore_last_run_outcome", "Outcome of the last acme-restore run: 1 for the outcome it had, 0 for the others.", 0, "outcome",
                Outcomes.All.Select(o => (Outcomes.Label(o), o == _outcome ? 1.0 : 0.0)).ToList()),
        ];
        var log = context.Log;
        var file = options.File;
        var key = options.Source.Path;
        // The command is resolved before anything else: a typo in it changes nothing (exit 127 or 126, no metrics).
        var handover = options.Command.Count > 0 ? Handover.Prepare(options.Command, options.Scrub) : null;
        Report.WritesMetrics = true;

        // Read even when the file is present, so a wrong setting shows at the first start, not on the day the server is rebuilt.
        var settings = context.ReadS3Settings();
        var identities = AgeSettingsReader.ReadIdentities(options.IdentityFile, context.Environment);
        var target = AcmeRestorer.ResolveTarget(file);
        var result = AcmeRestorer.CheckLocal(file, target, log);
        if (result is null)
        {
            log.Information("{File} is missing or empty: restoring it from {Source}", target == file ? file : $"{file} (a link to {target})", options.Source.Describe(key));
            using var store = new S3Store(settings);
            var decryption = key.EndsWith(AgeObjectTransform.Suffix, StringComparison.Ordinal) ? new AgeObjectTransform([], identities, AgeSettingsReader.IdentityHint) : null;
            result = await new AcmeRestorer(store, options.Source, key, file, target, options.Timeout, log, decryption).RestoreAsync(context.Stopping).ConfigureAwait(false);
        }
        _outcome = result.Outcome;
        if (result.Error is { } error)
        {
            var (code, reason) = ToolHost.Describe(error);
            var message = $"could not restore {file}: {reason}";
            if (options.Required) throw new ToolException(code, message + " (--required: not starting the command)", error);
            log.Error(handover is null ? "{Message}" : "{Message}; starting the command without it (add --required to stop here instead)", message);
        }

        if (handover is null) return ExitCodes.Ok;
        log.Information("starting {Command} as PID {Pid}; removed from its environment: {Removed}", handover.Path, Environment.ProcessId,
            handover.Removed.Count == 0 ? "nothing (no credential variable was set)" : string.Join(", ", handover.Removed));
        return new ToolResult(ExitCodes.Ok, handover);
    }
}
