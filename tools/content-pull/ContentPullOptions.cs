using InfraTools.Cli;
using InfraTools.ContentPull.Watch;
using InfraTools.Files;

namespace InfraTools.ContentPull;

/// <summary>A content-pull command line, bound once and already checked by the parser.</summary>
public sealed record ContentPullOptions(
    S3Location Source,
    string Destination,
    bool Delete,
    string? StateDirectory,
    int Parallel,
    bool DryRun,
    IReadOnlyList<string> Exclude,
    bool Force,
    int? MaxDelete,
    FileModes Modes,
    WatchOptions? Watch = null);
