namespace InfraTools.Cli;

/// <summary>Exit codes shared by every tool; docs/configuration.md documents them.</summary>
public static class ExitCodes
{
    public const int Ok = 0;
    /// <summary>An unexpected internal error (a bug); rerun with --debug for the stack trace.</summary>
    public const int Failure = 1;
    /// <summary>Bad command line: unknown flag, missing or malformed argument.</summary>
    public const int Usage = 2;
    /// <summary>A missing or malformed setting (environment variable, *_FILE, config value).</summary>
    public const int Configuration = 3;
    /// <summary>The run finished, but some items failed or were skipped (e.g. hostile keys).</summary>
    public const int PartialFailure = 4;
    /// <summary>Refused for safety: nothing was changed (empty source, --max-delete exceeded, non-empty restore target).</summary>
    public const int Refused = 5;
    /// <summary>The S3 endpoint could not be reached (DNS, connection refused, timeout, TLS).</summary>
    public const int S3Unreachable = 6;
    /// <summary>The S3 server rejected the credentials (unknown access key or wrong secret).</summary>
    public const int S3AuthenticationFailed = 7;
    /// <summary>The bucket does not exist.</summary>
    public const int S3BucketNotFound = 8;
    /// <summary>The object does not exist (where one is required).</summary>
    public const int S3ObjectNotFound = 9;
    /// <summary>The credentials are valid but not allowed to do this.</summary>
    public const int S3AccessDenied = 10;
    /// <summary>Any other error answered by the S3 server (5xx, unexpected response, integrity check failed).</summary>
    public const int S3Error = 11;
    /// <summary>A local file system error (permission denied, disk full, path not writable).</summary>
    public const int LocalIo = 12;
    /// <summary>Another service the tool depends on failed (Prometheus' snapshot admin API).</summary>
    public const int ServiceFailed = 13;
    /// <summary>Stopped by SIGINT (128 + 2).</summary>
    public const int Interrupted = 130;
    /// <summary>Stopped by SIGTERM (128 + 15).</summary>
    public const int Terminated = 143;
}
