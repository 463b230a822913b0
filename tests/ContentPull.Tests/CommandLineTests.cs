using InfraTools.ContentPull;

namespace InfraTools.Tests;

/// <summary>content-pull's command line in-process: the parser checks values and combinations before any run starts.</summary>
public class CommandLineTests
{
    private static string? FirstError(params string[] args) => ContentPullCli.Create().Parse(args).Errors.FirstOrDefault()?.Message;

    [Theory]
    [InlineData("DEST is empty", "s3://site/", "")]
    [InlineData("is not an S3 URL", "site/", "/srv/www")]
    [InlineData("has no valid bucket name", "s3://a/", "/srv/www")]
    [InlineData("--parallel 0 is out of range: use 1 to 256", "s3://site/", "/srv/www", "--parallel", "0")]
    [InlineData("--parallel 257 is out of range", "s3://site/", "/srv/www", "-j", "257")]
    [InlineData("--max-delete -1 is negative", "s3://site/", "/srv/www", "--max-delete", "-1")]
    [InlineData("--umask and --chmod cannot be combined", "s3://site/", "/srv/www", "--umask", "022", "--chmod", "0644")]
    [InlineData("--chmod '0999' is not FILE[:DIR] in octal", "s3://site/", "/srv/www", "--chmod", "0999")]
    [InlineData("--umask 'abc' is not an octal mask", "s3://site/", "/srv/www", "--umask", "abc")]
    public void Bad_command_lines_are_refused_by_the_parser(string message, params string[] args) =>
        Assert.Contains(message, FirstError(args));

    [Theory]
    [InlineData("s3://site/", "/srv/www")]
    [InlineData("s3://site/prefix", "/srv/www", "--delete", "--max-delete", "0", "-j", "256", "--chmod", "0640:0750")]
    [InlineData("s3://site", "www", "--umask", "027", "--exclude", "drafts", "--exclude", "*.bak", "--dry-run")]
    public void Good_command_lines_parse(params string[] args) => Assert.Null(FirstError(args));
}
