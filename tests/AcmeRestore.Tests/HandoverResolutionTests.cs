using InfraTools.AcmeRestore;
using InfraTools.Cli;

namespace InfraTools.Tests;

/// <summary>The hand-over's scrub list and command resolution in-process, as tables (the exec itself is tested on the AOT binary).</summary>
public class HandoverResolutionTests : IDisposable
{
    private readonly TempDir _dir = new("handover");

    public void Dispose() => _dir.Dispose();

    [Fact]
    public void Every_credential_variable_and_its_file_twin_is_scrubbed_by_default()
    {
        var scrub = Handover.ScrubList([], []);
        Assert.NotEmpty(scrub);
        foreach (var name in new[] { "S3_SECRET_KEY", "S3_SECRET_KEY_FILE", "AWS_ACCESS_KEY_ID", "AWS_SESSION_TOKEN_FILE", "S3_ACCESS_KEY" })
            Assert.Contains(name, scrub);
        Assert.DoesNotContain("S3_ENDPOINT", scrub);
    }

    [Theory]
    [InlineData(new[] { "EXOSCALE_SECRET" }, new string[0], "EXOSCALE_SECRET", true)]
    [InlineData(new string[0], new[] { "AWS_ACCESS_KEY_ID" }, "AWS_ACCESS_KEY_ID", false)]
    [InlineData(new[] { "S3_ENDPOINT" }, new string[0], "S3_ENDPOINT", true)]
    public void Scrub_adds_and_keep_removes(string[] scrub, string[] keep, string name, bool scrubbed) =>
        Assert.Equal(scrubbed, Handover.ScrubList(scrub, keep).Contains(name));

    [Theory]
    [InlineData(new[] { "X" }, new[] { "X" }, "X is given to both --scrub and --keep")]
    [InlineData(new[] { "A=B" }, new string[0], "is not an environment variable name")]
    [InlineData(new[] { "" }, new string[0], "is not an environment variable name")]
    public void Contradictions_and_bad_names_are_usage_errors(string[] scrub, string[] keep, string message) =>
        Assert.Contains(message, Assert.Throws<UsageException>(() => Handover.ScrubList(scrub, keep)).Message);

    [Fact]
    public void Commands_resolve_like_execvp_through_the_PATH_the_command_will_get()
    {
        var bin = _dir.Combine("bin");
        var other = _dir.Combine("other");
        Directory.CreateDirectory(bin);
        Directory.CreateDirectory(other);
        var tool = _dir.Write("bin/traefik", "#!/bin/sh\n");
        File.SetUnixFileMode(tool, (UnixFileMode)0x1ED);
        _dir.Write("other/traefik", "not executable");
        _dir.Write("other/plain", "not executable");

        Assert.Equal(tool, Handover.Resolve("traefik", $"{other}:{bin}")); // the first executable one wins
        Assert.Equal(tool, Handover.Resolve(tool, "/nowhere"));

        var cases = new (string Command, string Path, int Code, string Message)[]
        {
            ("nosuch", bin, HandoverExitCodes.NotFound, "command not found in PATH"),
            ("plain", other, HandoverExitCodes.NotExecutable, "is not executable"),
            (bin, "", HandoverExitCodes.NotExecutable, "it is a directory"),
            (_dir.Combine("missing/traefik"), "", HandoverExitCodes.NotFound, "no such file"),
            ("", bin, HandoverExitCodes.NotFound, "empty string"),
        };
        Assert.NotEmpty(cases);
        foreach (var (command, path, code, message) in cases)
        {
            var error = Assert.Throws<ToolException>(() => Handover.Resolve(command, path));
            Assert.Equal(code, error.ExitCode);
            Assert.Contains(message, error.Message);
        }
    }
}
