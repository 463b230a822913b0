using InfraTools.Cli;

namespace InfraTools.S3;

/// <summary>An s3://bucket/path URL given on the command line.</summary>
public sealed record S3Location(string Bucket, string Path)
{
    public static S3Location Parse(string text, string argumentName = "location")
    {
        const string scheme = "s3://";
        if (!text.StartsWith(scheme, StringComparison.OrdinalIgnoreCase))
            throw new UsageException($"{argumentName} '{text}' is not an S3 URL: write it as s3://bucket/prefix");
        var rest = text[scheme.Length..];
        var slash = rest.IndexOf('/');
        var bucket = slash < 0 ? rest : rest[..slash];
        var path = slash < 0 ? "" : rest[(slash + 1)..];
        if (!IsValidBucketName(bucket))
            throw new UsageException($"{argumentName} '{text}' has no valid bucket name: write it as s3://bucket/prefix (bucket: 3-63 letters, digits, dots or dashes)");
        return new S3Location(bucket, path);
    }

    /// <summary>The path as a "folder" prefix: empty, or ending in '/'. s3://b/site and s3://b/site/ both mean the keys under site/.</summary>
    public string Prefix => Path.Length == 0 || Path.EndsWith('/') ? Path : Path + "/";

    /// <summary>The path as one object's key; throws if it names a folder.</summary>
    public string RequireKey(string argumentName)
    {
        if (Path.Length == 0 || Path.EndsWith('/'))
            throw new UsageException($"{argumentName} '{this}' names a folder, not an object: write it as s3://bucket/path/to/file");
        return Path;
    }

    public string Describe(string key) => $"s3://{Bucket}/{key}";

    public override string ToString() => $"s3://{Bucket}/{Path}";

    private static bool IsValidBucketName(string name) =>
        name.Length is >= 3 and <= 63
        && char.IsAsciiLetterOrDigit(name[0]) && char.IsAsciiLetterOrDigit(name[^1])
        && name.All(c => char.IsAsciiLetterOrDigit(c) || c is '.' or '-' or '_');
}
