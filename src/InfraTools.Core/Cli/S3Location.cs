namespace InfraTools.Cli;

/// <summary>An s3://bucket/path URL given on the command line.</summary>
public sealed record S3Location(string Bucket, string Path)
{
    /// <summary>Null and the reason when <paramref name="text"/> is not an s3:// URL with a valid bucket name.</summary>
    public static S3Location? TryParse(string text, string argumentName, out string? problem)
    {
        const string scheme = "s3://";
        problem = null;
        if (!text.StartsWith(scheme, StringComparison.OrdinalIgnoreCase))
        {
            problem = $"{argumentName} '{text}' is not an S3 URL: write it as s3://bucket/prefix";
            return null;
        }
        var rest = text[scheme.Length..];
        var slash = rest.IndexOf('/');
        var bucket = slash < 0 ? rest : rest[..slash];
        var path = slash < 0 ? "" : rest[(slash + 1)..];
        if (!IsValidBucketName(bucket))
        {
            problem = $"{argumentName} '{text}' has no valid bucket name: write it as s3://bucket/prefix (bucket: 3-63 letters, digits, dots or dashes)";
            return null;
        }
        return new S3Location(bucket, path);
    }

    public static S3Location Parse(string text, string argumentName = "location") =>
        TryParse(text, argumentName, out var problem) ?? throw new UsageException(problem!);

    /// <summary>The path as a "folder" prefix: empty, or ending in '/'. s3://b/site and s3://b/site/ both mean the keys under site/.</summary>
    public string Prefix => Path.Length == 0 || Path.EndsWith('/') ? Path : Path + "/";

    /// <summary>True when the path names one object (not empty, no trailing '/').</summary>
    public bool IsKey => Path.Length > 0 && !Path.EndsWith('/');

    /// <summary>The path as one object's key; a usage error if it names a folder.</summary>
    public string RequireKey(string argumentName) =>
        IsKey ? Path : throw new UsageException(FolderProblem(argumentName));

    public string FolderProblem(string argumentName) =>
        $"{argumentName} '{this}' names a folder, not an object: write it as s3://bucket/path/to/file";

    public string Describe(string key) => $"s3://{Bucket}/{key}";

    public override string ToString() => $"s3://{Bucket}/{Path}";

    private static bool IsValidBucketName(string name) =>
        name.Length is >= 3 and <= 63
        && char.IsAsciiLetterOrDigit(name[0]) && char.IsAsciiLetterOrDigit(name[^1])
        && name.All(c => char.IsAsciiLetterOrDigit(c) || c is '.' or '-' or '_');
}
