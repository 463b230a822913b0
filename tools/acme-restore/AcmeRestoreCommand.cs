using System.CommandLine;
using System.Diagnostics;
using InfraTools.Cli;
using InfraTools.Logging;
using InfraTools.S3;
using InfraTools.Time;
using Serilog;

namespace InfraTools.AcmeRestore;

/// <summary>
/// The acme-restore command line and what it does: restore acme.json if needed, write the metrics, and decide
/// which command to hand over to. The hand-over itself (execve) happens in Program.cs after the host has
/// flushed and closed the log and released its signal handlers.
/// </summary>
public sealed class AcmeRestoreCommand
{
    public const string Tool = "acme-restore";
    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(60);

    private readonly Option<string> _source = new("--source")
    {
        Description = "The backup of acme.json, e.g. s3://backups/traefik/acme.json",
        HelpName = "S3URL",
        Required = true,
    };

    private readonly Option<string> _file = new("--file")
    {
        Description = "Traefik's acme.json, e.g. /etc/traefik/acme/acme.json; restored only if missing or empty",
        HelpName = "PATH",
        Required = true,
    };

    private readonly Option<bool> _required = new("--required")
    {
        Description = "Exit with an error instead of starting the command if the backup cannot be read from S3 or the file cannot be written",
    };

    private readonly Option<string> _timeout = new("--timeout")
    {
        Description = "How long to keep retrying an unreachable S3 endpoint, e.g. 30s, 2m",
        HelpName = "DURATION",
        DefaultValueFactory = _ => "60s",
    };

    private readonly Option<string[]> _scrub = new("--scrub")
    {
        Description = "Also remove this variable from the command's environment (repeatable; the S3 credential variables are always removed unless kept)",
        HelpName = "VAR",
        Arity = ArgumentArity.ZeroOrMore,
    };

    private readonly Option<string[]> _keep = new("--keep")
    {
        Description = "Keep this credential variable in the command's environment, e.g. AWS_ACCESS_KEY_ID for Traefik's Route53 challenge (repeatable)",
        HelpName = "VAR",
        Arity = ArgumentArity.ZeroOrMore,
    };

    private readonly Argument<string[]> _command = new("command")
    {
        Description = "The command to replace acme-restore with, after --, e.g. -- traefik --configFile=/etc/traefik/traefik.yml",
        Arity = ArgumentArity.ZeroOrMore,
    };

    public RootCommand Root { get; }

    /// <summary>What to exec after a successful run; null if there is no command after --.</summary>
    public Handover? Handover { get; private set; }

    /// <summary>The log options of the run, to log a failed hand-over the same way.</summary>
    public LogOptions LogOptions { get; private set; } = new();

    public AcmeRestoreCommand()
    {
        Root = new RootCommand(
            "Restores Traefik's acme.json from S3 if it is missing or empty, then replaces itself with the command after -- " +
            "(e.g. traefik), without the S3 credentials in its environment.");
        Root.Options.Add(_source);
        Root.Options.Add(_file);
        Root.Options.Add(_required);
        Root.Options.Add(_timeout);
        Root.Options.Add(_scrub);
        Root.Options.Add(_keep);
        Root.Arguments.Add(_command);
        CommonOptions.AddTo(Root, s3: true, metrics: true);
        ToolHost.SetAction(Root, Tool, RunAsync);
    }

    private async Task<int> RunAsync(ToolContext context)
    {
        var started = DateTimeOffset.UtcNow;
        var clock = Stopwatch.StartNew();
        var parse = context.Parse;
        var log = context.Log;
        LogOptions = CommonOptions.LogOptions(parse);

        // Everything about the command line first: a usage error changes nothing and starts nothing.
        var metricsPath = context.MetricsPath;
        var source = S3Location.Parse(parse.GetValue(_source)!, "--source");
        var key = source.RequireKey("--source");
        var file = parse.GetValue(_file)!;
        if (file.Length == 0 || file.EndsWith('/') || Directory.Exists(file))
            throw new UsageException($"--file '{file}' is a directory: give the path of the acme.json file, e.g. /etc/traefik/acme/acme.json");
        var timeout = GoDuration.Parse(parse.GetValue(_timeout)!, "--timeout", TimeSpan.FromDays(1));
        if (timeout <= TimeSpan.Zero) throw new UsageException("--timeout must be more than 0, e.g. 60s");
        var scrub = Handover.ScrubList(parse.GetValue(_scrub) ?? [], parse.GetValue(_keep) ?? []);
        var command = parse.GetValue(_command) ?? [];
        var handover = command.Length > 0 ? Handover.Prepare(command, scrub) : null;
        var required = parse.GetValue(_required);

        var outcome = Outcome.Failed;
        try
        {
            // Read even when the file is present, so a wrong setting shows at the first start, not on the day the server is rebuilt.
            var settings = context.ReadS3Settings();
            var result = AcmeRestorer.CheckLocal(file, log);
            if (result is null)
            {
                log.Information("{File} is missing or empty: restoring it from {Source}", file, source.Describe(key));
                using var s3 = new S3Client(settings);
                result = await new AcmeRestorer(s3, source, key, file, timeout, log).RestoreAsync(context.Stopping).ConfigureAwait(false);
            }
            outcome = result.Outcome;
            if (result.Error is { } error)
            {
                var message = $"could not restore {file}: {error.Message}";
                if (required) throw new ToolException(error.ExitCode, message + " (--required: not starting the command)", error);
                log.Error(handover is null
                    ? "{Message}"
                    : "{Message}; starting the command without it (add --required to stop here instead)", message);
            }
        }
        finally
        {
            if (metricsPath is not null) await WriteMetricsAsync(metricsPath, outcome, started, clock.Elapsed, log).ConfigureAwait(false);
        }

        if (handover is not null)
        {
            log.Information("starting {Command} as PID {Pid}; removed from its environment: {Removed}", handover.Path, Environment.ProcessId,
                handover.Removed.Count == 0 ? "nothing (no credential variable was set)" : string.Join(", ", handover.Removed));
            Handover = handover;
        }
        return ExitCodes.Ok;
    }

    private static async Task WriteMetricsAsync(string path, Outcome outcome, DateTimeOffset started, TimeSpan duration, ILogger log)
    {
        try
        {
            await RestoreMetrics.WriteAsync(path, outcome, started, duration, CancellationToken.None).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            // Metrics must never keep Traefik from starting.
            log.Warning("cannot write the metrics file {Path}: {Error}", path, ToolHost.Describe(ex).Message);
        }
    }
}
