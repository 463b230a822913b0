using InfraTools.Cli;
using InfraTools.Files;

namespace InfraTools.Backup;

/// <summary>A `backup push` command line, bound once and already checked by the parser.</summary>
public sealed record PushOptions(
    string Source,
    S3Location Target,
    string Name,
    bool RequireJson,
    bool Delete,
    bool Snapshot,
    int? KeepLast,
    Uri? PrometheusSnapshot,
    string? StateDirectory,
    IReadOnlyList<string> Exclude,
    bool Force,
    int Parallel,
    IReadOnlyList<string> EncryptTo,
    IReadOnlyList<string> EncryptToFiles,
    bool Acme = false,
    RetentionCounts? Keep = null);

/// <summary>--keep-daily/--keep-weekly/--keep-monthly (GFS, counted in snapshots), null where not given.</summary>
public sealed record RetentionCounts(int? Daily, int? Weekly, int? Monthly);

/// <summary>A `backup restore` command line, bound once and already checked by the parser.</summary>
public sealed record RestoreOptions(
    S3Location Source,
    string Destination,
    string? Snapshot,
    bool Force,
    FileModes Modes,
    int Parallel,
    string? IdentityFile);
