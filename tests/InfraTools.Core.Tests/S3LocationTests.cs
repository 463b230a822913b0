using InfraTools.Cli;
using InfraTools.S3;

namespace InfraTools.Tests;

public class S3LocationTests
{
    [Theory]
    [InlineData("s3://site-bucket", "site-bucket", "", "")]
    [InlineData("s3://site-bucket/", "site-bucket", "", "")]
    [InlineData("s3://site-bucket/www", "site-bucket", "www", "www/")]
    [InlineData("s3://site-bucket/www/", "site-bucket", "www/", "www/")]
    [InlineData("S3://my.bucket/a/b", "my.bucket", "a/b", "a/b/")]
    public void Parses_bucket_path_and_folder_prefix(string text, string bucket, string path, string prefix)
    {
        var location = S3Location.Parse(text);
        Assert.Equal(bucket, location.Bucket);
        Assert.Equal(path, location.Path);
        Assert.Equal(prefix, location.Prefix);
    }

    [Theory]
    [InlineData("bucket/key")]
    [InlineData("http://bucket/key")]
    [InlineData("s3://")]
    [InlineData("s3://ab/x")]
    [InlineData("s3://bad bucket/x")]
    public void Rejects_what_is_not_an_s3_url_with_a_usage_error(string text)
    {
        var error = Assert.Throws<UsageException>(() => S3Location.Parse(text, "SOURCE"));
        Assert.Equal(ExitCodes.Usage, error.ExitCode);
        Assert.Contains("SOURCE", error.Message);
        Assert.Contains("s3://bucket/", error.Message);
    }

    [Fact]
    public void A_key_is_required_where_one_object_is_meant()
    {
        Assert.Equal("acme/acme.json", S3Location.Parse("s3://b-1/acme/acme.json").RequireKey("--source"));
        Assert.Contains("names a folder", Assert.Throws<UsageException>(() => S3Location.Parse("s3://b-1/acme/").RequireKey("--source")).Message);
    }
}
