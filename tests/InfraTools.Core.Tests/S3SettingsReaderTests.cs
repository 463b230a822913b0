using InfraTools.Cli;
using InfraTools.S3;

namespace InfraTools.Tests;

public class S3SettingsReaderTests
{
    private static readonly Dictionary<string, string> Minimal = new()
    {
        ["S3_ENDPOINT"] = "http://127.0.0.1:7480",
        ["S3_ACCESS_KEY"] = "AKIDEXAMPLE",
        ["S3_SECRET_KEY"] = "secret-value-123",
    };

    private static S3Settings Read(Dictionary<string, string> env, S3SettingsOverrides? overrides = null) =>
        S3SettingsReader.Read(overrides ?? new S3SettingsOverrides(), name => env.GetValueOrDefault(name));

    private static Dictionary<string, string> With(params (string Key, string? Value)[] changes)
    {
        var env = new Dictionary<string, string>(Minimal);
        foreach (var (key, value) in changes)
        {
            if (value is null) env.Remove(key);
            else env[key] = value;
        }
        return env;
    }

    [Fact]
    public void Reads_the_S3_variables_with_defaults()
    {
        var settings = Read(Minimal);
        Assert.Equal(new Uri("http://127.0.0.1:7480/"), settings.Endpoint);
        Assert.Equal("AKIDEXAMPLE", settings.AccessKey.Reveal());
        Assert.Equal("secret-value-123", settings.SecretKey.Reveal());
        Assert.Equal("us-east-1", settings.Region);
        Assert.Equal(S3Addressing.Path, settings.Addressing);
        Assert.Null(settings.SessionToken);
    }

    [Fact]
    public void S3_variables_win_over_the_AWS_fallbacks_and_the_fallbacks_work_alone()
    {
        var both = Read(With(("AWS_ACCESS_KEY_ID", "aws-access"), ("AWS_ENDPOINT_URL", "http://aws.example:1")));
        Assert.Equal("AKIDEXAMPLE", both.AccessKey.Reveal());
        Assert.Equal("aws.example", Read(With(("S3_ENDPOINT", null), ("AWS_ENDPOINT_URL", "http://aws.example:1"))).Endpoint.Host);
        var fallback = Read(With(("S3_ACCESS_KEY", null), ("S3_SECRET_KEY", null),
            ("AWS_ACCESS_KEY_ID", "aws-access"), ("AWS_SECRET_ACCESS_KEY", "aws-secret"), ("AWS_SESSION_TOKEN", "token-abc")));
        Assert.Equal("aws-access", fallback.AccessKey.Reveal());
        Assert.Equal("aws-secret", fallback.SecretKey.Reveal());
        Assert.Equal("token-abc", fallback.SessionToken!.Reveal());
    }

    [Fact]
    public void Region_comes_from_the_flag_then_S3_REGION_then_AWS_REGION_then_AWS_DEFAULT_REGION()
    {
        var env = With(("S3_REGION", "ch-gva-2"), ("AWS_REGION", "eu-west-1"), ("AWS_DEFAULT_REGION", "eu-central-1"));
        Assert.Equal("de-fra-1", Read(env, new S3SettingsOverrides(Region: "de-fra-1")).Region);
        Assert.Equal("ch-gva-2", Read(env).Region);
        env.Remove("S3_REGION");
        Assert.Equal("eu-west-1", Read(env).Region);
        env.Remove("AWS_REGION");
        Assert.Equal("eu-central-1", Read(env).Region);
    }

    [Fact]
    public void Endpoint_flag_wins_over_the_environment()
    {
        Assert.Equal("other.example", Read(Minimal, new S3SettingsOverrides(Endpoint: "https://other.example")).Endpoint.Host);
    }

    [Fact]
    public void Secrets_can_come_from_files_and_the_trailing_newline_is_dropped()
    {
        using var dir = new TempDir();
        var secretFile = dir.Write("secret", "from-file-secret\n");
        var accessFile = dir.Write("access", "from-file-access\r\n");
        var settings = Read(With(("S3_SECRET_KEY", null), ("S3_SECRET_KEY_FILE", secretFile), ("S3_ACCESS_KEY", null), ("S3_ACCESS_KEY_FILE", accessFile)));
        Assert.Equal("from-file-secret", settings.SecretKey.Reveal());
        Assert.Equal("from-file-access", settings.AccessKey.Reveal());
    }

    [Theory]
    [InlineData("S3_ENDPOINT", "S3_ENDPOINT")]
    [InlineData("S3_ACCESS_KEY", "S3_ACCESS_KEY")]
    [InlineData("S3_SECRET_KEY", "S3_SECRET_KEY")]
    public void A_missing_setting_names_its_variable(string removed, string named)
    {
        var error = Assert.Throws<ConfigurationException>(() => Read(With((removed, null))));
        Assert.Contains(named, error.Message);
        Assert.Equal(ExitCodes.Configuration, error.ExitCode);
        Assert.DoesNotContain('\n', error.Message);
    }

    [Theory]
    [InlineData("127.0.0.1:7480", "no scheme")]
    [InlineData("ftp://host", "not an endpoint URL")]
    [InlineData("http://host/bucket", "must not have a path")]
    [InlineData("http://user:pw@host", "must not have a path, query or user name")]
    public void A_malformed_endpoint_names_the_variable_and_says_what_is_expected(string endpoint, string expected)
    {
        var error = Assert.Throws<ConfigurationException>(() => Read(With(("S3_ENDPOINT", endpoint))));
        Assert.StartsWith("S3_ENDPOINT", error.Message);
        Assert.Contains(expected, error.Message);
        Assert.Contains("http(s)://host", error.Message);
    }

    [Fact]
    public void Both_a_variable_and_its_file_twin_is_an_error()
    {
        using var dir = new TempDir();
        var error = Assert.Throws<ConfigurationException>(() => Read(With(("S3_SECRET_KEY_FILE", dir.Write("s", "x")))));
        Assert.Contains("both S3_SECRET_KEY and S3_SECRET_KEY_FILE", error.Message);
    }

    [Fact]
    public void A_missing_or_empty_secret_file_names_the_variable_and_never_shows_a_secret()
    {
        using var dir = new TempDir();
        var missing = Assert.Throws<ConfigurationException>(() => Read(With(("S3_SECRET_KEY", null), ("S3_SECRET_KEY_FILE", dir.Combine("nope")))));
        Assert.Contains("S3_SECRET_KEY_FILE", missing.Message);
        Assert.Contains("no such file", missing.Message);
        var empty = Assert.Throws<ConfigurationException>(() => Read(With(("S3_SECRET_KEY", null), ("S3_SECRET_KEY_FILE", dir.Write("empty", "\n")))));
        Assert.Contains("empty", empty.Message);
    }

    [Fact]
    public void A_credential_with_a_stray_newline_is_refused_without_printing_it()
    {
        var error = Assert.Throws<ConfigurationException>(() => Read(With(("S3_SECRET_KEY", "abc\ndef-secret"))));
        Assert.Contains("S3_SECRET_KEY", error.Message);
        Assert.DoesNotContain("def-secret", error.Message);
    }

    [Theory]
    [InlineData("https://sos-ch-gva-2.exo.io", null, S3Addressing.VirtualHost)]
    [InlineData("https://s3.eu-west-1.amazonaws.com", null, S3Addressing.VirtualHost)]
    [InlineData("http://127.0.0.1:7480", null, S3Addressing.Path)]
    [InlineData("https://minio.internal", "auto", S3Addressing.Path)]
    [InlineData("https://sos-ch-gva-2.exo.io", "path", S3Addressing.Path)]
    [InlineData("http://127.0.0.1:7480", "virtual", S3Addressing.VirtualHost)]
    public void Addressing_is_selectable_and_auto_picks_by_provider(string endpoint, string? addressing, S3Addressing expected)
    {
        var env = With(("S3_ENDPOINT", endpoint), ("S3_ADDRESSING", addressing));
        Assert.Equal(expected, Read(env).Addressing);
    }

    [Fact]
    public void Bad_addressing_and_region_values_name_their_source()
    {
        Assert.Contains("S3_ADDRESSING", Assert.Throws<ConfigurationException>(() => Read(With(("S3_ADDRESSING", "sideways")))).Message);
        Assert.Contains("--region", Assert.Throws<ConfigurationException>(() => Read(Minimal, new S3SettingsOverrides(Region: "Not A Region"))).Message);
    }

    [Fact]
    public void Settings_never_print_their_secrets()
    {
        var settings = Read(Minimal);
        Assert.DoesNotContain("secret-value-123", settings.ToString());
        Assert.DoesNotContain("secret-value-123", settings.SecretKey.ToString());
        Assert.Equal("[REDACTED]", $"{settings.SecretKey}");
    }

    [Fact]
    public void Credential_variables_cover_both_spellings_and_their_file_twins()
    {
        var names = S3SettingsReader.CredentialVariables.ToHashSet();
        foreach (var name in new[] { "S3_ACCESS_KEY", "S3_SECRET_KEY_FILE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN" })
            Assert.Contains(name, names);
        Assert.DoesNotContain("S3_ENDPOINT", names);
    }
}
