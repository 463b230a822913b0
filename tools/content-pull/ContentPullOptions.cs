using InfraTools.Cli;
using InfraTools.ContentPull.Watch;
using InfraTools.Files;

namespace InfraTools.ContentPull;

/// <summary>How release mode keeps releases (--releases and the options that go with it).</summary>
public sealed record ReleaseSettings(bool Requested, int KeepReleases, TimeSpan Grace, IReadOnlyList<string> KeepAssets, TimeSpan KeepAssetsFor, bool Given);

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
    ReleaseSettings Releases,
    WatchOptions? Watch = null);

/// <summary>`content-pull publish DIR s3://bucket/prefix`.</summary>
public sealed record PublishOptions(string Directory, S3Location Target, int Parallel, IReadOnlyList<string> Exclude, int KeepReleases, bool Force);

/// <summary>`content-pull rollback DEST [ID]` and `content-pull releases DEST`.</summary>
public sealed record ReleaseCommandOptions(string Destination, string? Id, bool RemoveLegacy = false);
