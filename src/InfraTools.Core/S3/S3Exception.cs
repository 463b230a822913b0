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
    /// <summary>A 5xx, or an S3 error that is not one of the above.</summary>
    ServerError,
    /// <summary>An answer that is not S3 (a web page, an empty 4xx), or a listing that cannot be complete: not worth retrying.</summary>
    UnexpectedAnswer,
    /// <summary>The answer started but its body broke off or stalled: that transfer failed, the others may go on.</summary>
    Interrupted,
}

/// <summary>An S3 failure, already turned into a message for the operator and an exit code.</summary>
public sealed class S3Exception(S3ErrorKind kind, string message, Exception? inner = null)
    : ToolException(ExitCodeFor(kind), message, inner)
{
    public S3ErrorKind Kind { get; } = kind;

    /// <summary>True for failures worth retrying a little later (network trouble, 5xx).</summary>
    public bool IsTransient => Kind is S3ErrorKind.Unreachable or S3ErrorKind.ServerError or S3ErrorKind.Interrupted;

    public static int ExitCodeFor(S3ErrorKind kind) => kind switch
    {
        S3ErrorKind.Unreachable or S3ErrorKind.Interrupted => ExitCodes.S3Unreachable,
        S3ErrorKind.AuthenticationFailed => ExitCodes.S3AuthenticationFailed,
        S3ErrorKind.AccessDenied => ExitCodes.S3AccessDenied,
        S3ErrorKind.BucketNotFound => ExitCodes.S3BucketNotFound,
        S3ErrorKind.ObjectNotFound => ExitCodes.S3ObjectNotFound,
        _ => ExitCodes.S3Error,
    };
}
