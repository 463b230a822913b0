using InfraTools.Backup;

namespace InfraTools.Tests;

/// <summary>backup's command line in-process: option values and combinations are checked by the parser.</summary>
public class CommandLineTests
{
    private static string? FirstError(params string[] args) => BackupCli.Create().Parse(args).Errors.FirstOrDefault()?.Message;

    [Theory]
    [InlineData("--keep-last only applies with --snapshot", "push", "/data", "s3://b-1/p/", "--keep-last", "3")]
    [InlineData("--keep-last 0 must be at least 1", "push", "/data", "s3://b-1/p/", "--snapshot", "--keep-last", "0")]
    [InlineData("--keep-daily only applies with --snapshot", "push", "/data", "s3://b-1/p/", "--keep-daily", "7")]
    [InlineData("--keep-monthly only applies with --snapshot", "push", "/data", "s3://b-1/p/", "--keep-monthly", "6")]
    [InlineData("--keep-weekly -1 must be 0 or more", "push", "/data", "s3://b-1/p/", "--snapshot", "--keep-weekly", "-1")]
    [InlineData("--acme and --prometheus-snapshot cannot be combined", "push", "/data", "s3://b-1/p/", "--acme", "--prometheus-snapshot", "http://p:9090")]
    [InlineData("--snapshot and --delete cannot be combined", "push", "/data", "s3://b-1/p/", "--snapshot", "--delete")]
    [InlineData("--require-json and --prometheus-snapshot cannot be combined", "push", "/data", "s3://b-1/p/", "--require-json", "--prometheus-snapshot", "http://p:9090")]
    [InlineData("is not an http(s) URL", "push", "/data", "s3://b-1/p/", "--prometheus-snapshot", "ftp://p")]
    [InlineData("--name 'a b' must be letters", "push", "/data", "s3://b-1/p/", "--name", "a b")]
    [InlineData("SRC is empty", "push", "", "s3://b-1/p/")]
    [InlineData("--parallel 65 is out of range: use 1 to 64", "push", "/data", "s3://b-1/p/", "-j", "65")]
    [InlineData("DEST is empty", "restore", "s3://b-1/p/", "")]
    [InlineData("is neither latest nor a snapshot name", "restore", "s3://b-1/p/", "/restore", "--snapshot", "yesterday")]
    public void Bad_command_lines_are_refused_by_the_parser(string message, params string[] args) =>
        Assert.Contains(message, FirstError(args));

    [Theory]
    [InlineData("push", "/data", "s3://b-1/p/", "--snapshot", "--keep-last", "7", "--prometheus-snapshot", "http://prometheus:9090")]
    [InlineData("push", "--require-json", "/srv/acme/acme.json", "s3://b-1/acme/acme.json", "--name", "acme")]
    [InlineData("push", "/data", "s3://b-1/p/", "--delete", "--exclude", "snapshots")]
    [InlineData("push", "/data", "s3://b-1/p/", "--snapshot", "--keep-daily", "7", "--keep-weekly", "4", "--keep-monthly", "6", "--prometheus-snapshot", "http://prometheus:9090")]
    [InlineData("push", "--acme", "--force", "/srv/acme/acme.json", "s3://b-1/acme/acme.json", "--name", "acme")]
    [InlineData("restore", "s3://b-1/p/", "/restore", "--snapshot", "latest", "--chmod", "0640")]
    [InlineData("restore", "s3://b-1/p/", "/restore", "--snapshot", "20261124T201502Z")]
    public void Good_command_lines_parse(params string[] args) => Assert.Null(FirstError(args));
}
