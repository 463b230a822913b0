using System.Text.Json;

namespace InfraTools.Tests;

/// <summary>How every tool built on the shared host reports usage, configuration and failures (exercised through the AOT driver).</summary>
public class CliBehaviourTests
{
    [Fact]
    public async Task An_unknown_flag_is_one_line_and_exit_code_2()
    {
        var result = await ProcessRunner.RunAsync(RepoPaths.TestDriver, ["ls", "s3://bucket/", "--no-such-flag"]);
        Assert.Equal(2, result.ExitCode);
        var line = Assert.Single(result.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.Contains("--no-such-flag", line);
        Assert.Contains("--help", line);
    }

    [Fact]
    public async Task A_missing_setting_is_one_line_naming_the_variable_and_exit_code_3()
    {
        var env = S3Server.Shared.Environment(("S3_ENDPOINT", null));
        var result = await ProcessRunner.RunAsync(RepoPaths.TestDriver, ["ls", "s3://bucket/"], env);
        Assert.Equal(3, result.ExitCode);
        Assert.Contains("S3_ENDPOINT", Assert.Single(result.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries)));
    }

    [Fact]
    public async Task A_secret_file_that_cannot_be_read_is_exit_code_3()
    {
        var env = S3Server.Shared.Environment(("S3_SECRET_KEY", null), ("S3_SECRET_KEY_FILE", "/nonexistent/secret"));
        var result = await ProcessRunner.RunAsync(RepoPaths.TestDriver, ["ls", "s3://bucket/"], env);
        Assert.Equal(3, result.ExitCode);
        Assert.Contains("S3_SECRET_KEY_FILE=/nonexistent/secret: no such file", result.Stderr);
    }

    [Fact]
    public async Task Json_logs_are_one_object_per_line_with_level_and_message_and_no_secret()
    {
        var env = S3Server.Shared.Environment(("S3_SECRET_KEY", "json-mode-wrong-secret"));
        var result = await ProcessRunner.RunAsync(RepoPaths.TestDriver, ["ls", "s3://bucket-json/", "--json"], env);
        Assert.Equal(7, result.ExitCode);
        var line = Assert.Single(result.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        using var json = JsonDocument.Parse(line);
        Assert.Equal("error", json.RootElement.GetProperty("level").GetString());
        Assert.Equal("s3-driver", json.RootElement.GetProperty("tool").GetString());
        Assert.Contains("rejected the credentials", json.RootElement.GetProperty("msg").GetString());
        Assert.DoesNotContain("json-mode-wrong-secret", result.Output);
    }

    [Fact]
    public async Task Debug_adds_the_stack_trace_but_still_hides_the_secret()
    {
        var env = S3Server.Shared.Environment(("S3_SECRET_KEY", "debug-mode-wrong-secret"));
        var result = await ProcessRunner.RunAsync(RepoPaths.TestDriver, ["ls", "s3://bucket-debug/", "--debug"], env);
        Assert.Equal(7, result.ExitCode);
        Assert.Contains("   at ", result.Stderr);
        Assert.Contains("StoreException", result.Stderr); // the object-store port's error type (was S3Exception)
        Assert.DoesNotContain("debug-mode-wrong-secret", result.Output);
    }

    [Fact]
    public async Task Help_lists_the_settings_but_never_their_values()
    {
        var env = S3Server.Shared.Environment();
        var result = await ProcessRunner.RunAsync(RepoPaths.TestDriver, ["ls", "--help"], env);
        Assert.Equal(0, result.ExitCode);
        Assert.Contains("--endpoint", result.Stdout);
        Assert.Contains("S3_ENDPOINT", result.Stdout);
        Assert.DoesNotContain(S3Server.Shared.SecretKey, result.Output);
        Assert.DoesNotContain(S3Server.Shared.AccessKey, result.Output);
    }
}
