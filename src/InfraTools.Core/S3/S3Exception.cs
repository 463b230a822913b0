using InfraTools.Cli;

namespace InfraTools.S3;

public enum S3ErrorKind
{
    Unreachable,
    AuthenticationFailed,
    AccessDenied,
    BucketNotFound,
    ObjectNotFound,
    IntegrityCheckFailed,
    ServerError,
}

/// <summary>An S3 failure, already turned into a message for the operator and an exit code.</summary>
public sealed class S3Exception(S3ErrorKind kind, string message, Exception? inner = null)
    : ToolException(ExitCodeFor(kind), message, inner)
{
    public S3ErrorKind Kind { get; } = kind;

    /// <summary>True for failures worth retrying a little later (network trouble, 5xx).</summary>
    public bool IsTransient => Kind is S3ErrorKind.Unreachable or S3ErrorKind.ServerError;

    public static int ExitCodeFor(S3ErrorKind kind) => kind switch
    {
        S3ErrorKind.Unreachable => ExitCodes.S3Unreachable,
        S3ErrorKind.AuthenticationFailed => ExitCodes.S3AuthenticationFailed,
        S3ErrorKind.AccessDenied => ExitCodes.S3AccessDenied,
        S3ErrorKind.BucketNotFound => ExitCodes.S3BucketNotFound,
        S3ErrorKind.ObjectNotFound => ExitCodes.S3ObjectNotFound,
        _ => ExitCodes.S3Error,
    };
}
