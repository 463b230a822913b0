using InfraTools.Interop;
using System.Diagnostics;
using System.Text;

namespace InfraTools.Tests;

/// <summary>acme-restore replacing itself with the command after -- (execve): PID, signals, environment, arguments.</summary>
public class AcmeRestoreHandoverTests
{
    private const int SigTerm = Libc.SIGTERM;

    private static int Kill(int pid, int signal) => Libc.Kill(pid, signal);

    /// <summary>The variables of a running process, read from /proc/PID/environ (what it was exec'd with).</summary>
    private static Dictionary<string, string> EnvironOf(int pid) =>
        Encoding.UTF8.GetString(File.ReadAllBytes($"/proc/{pid}/environ"))
            .Split('\0', StringSplitOptions.RemoveEmptyEntries)
            .Select(e => e.Split('=', 2))
            .ToDictionary(p => p[0], p => p.Length > 1 ? p[1] : "");

    /// <summary>Starts acme-restore with a command that reports its PID and waits for SIGTERM.</summary>
    private static (Process Process, StringBuilder Stderr) Start(IEnumerable<string> args, Dictionary<string, string?> env)
    {
        var process = Process.Start(ProcessRunner.StartInfo(AcmeRestore.Binary, args, env))!;
        var stderr = new StringBuilder();
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (stderr) stderr.Append(e.Data).Append('\n'); };
        process.BeginErrorReadLine();
        return (process, stderr);
    }

    private static async Task<string> ReadLineAsync(Process process, StringBuilder stderr)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(1));
        var line = await process.StandardOutput.ReadLineAsync(timeout.Token);
        lock (stderr) return line ?? throw new InvalidOperationException($"the command printed nothing (exit {(process.HasExited ? process.ExitCode : -1)}):\n{stderr}");
    }

    [Fact]
    public async Task The_command_keeps_the_PID_gets_SIGTERM_directly_and_has_no_scrubbed_variable()
    {
        var bucket = await AcmeRestore.BucketWithAsync(AcmeRestore.SampleAcmeJson);
        using var dir = new TempDir("acme");
        var file = dir.Combine("acme.json");
        var env = S3Server.Shared.Environment(("EXOSCALE_API_SECRET", "exoscale-secret-value-1234"), ("KEEP_ME", "still-here"));
        // The shell traps SIGTERM and says so; `sleep 0.1` in a loop lets it run the trap promptly.
        var script = "trap 'echo got-SIGTERM; exit 42' TERM; echo \"pid=$$\"; while :; do sleep 0.1; done";
        var (process, stderr) = Start(["--source", $"s3://{bucket}/acme.json", "--file", file, "--scrub", "EXOSCALE_API_SECRET",
            "--", "sh", "-c", script], env);
        using (process)
        {
            try
            {
                var pidLine = await ReadLineAsync(process, stderr);
                Assert.Equal($"pid={process.Id}", pidLine);
                Assert.Equal(AcmeRestore.SampleAcmeJson, File.ReadAllBytes(file));

                var environ = EnvironOf(process.Id);
                foreach (var scrubbed in new[] { "S3_ACCESS_KEY", "S3_SECRET_KEY", "EXOSCALE_API_SECRET" })
                    Assert.False(environ.ContainsKey(scrubbed), $"{scrubbed} was handed to the command");
                var all = Encoding.UTF8.GetString(File.ReadAllBytes($"/proc/{process.Id}/environ"));
                Assert.DoesNotContain(S3Server.Shared.SecretKey, all);
                Assert.DoesNotContain(S3Server.Shared.AccessKey, all);
                Assert.DoesNotContain("exoscale-secret-value-1234", all);
                Assert.Equal(S3Server.Shared.Endpoint, environ["S3_ENDPOINT"]);
                Assert.Equal("us-east-1", environ["S3_REGION"]);
                Assert.Equal("still-here", environ["KEEP_ME"]);
                Assert.True(environ.ContainsKey("PATH"));

                Assert.Equal(0, Kill(process.Id, SigTerm));
                Assert.Equal("got-SIGTERM", await ReadLineAsync(process, stderr));
                await process.WaitForExitAsync(new CancellationTokenSource(TimeSpan.FromMinutes(1)).Token);
                Assert.Equal(42, process.ExitCode);
                lock (stderr)
                    Assert.Contains($"sh as PID {process.Id}; removed from its environment: EXOSCALE_API_SECRET, S3_ACCESS_KEY, S3_SECRET_KEY", stderr.ToString());
            }
            finally
            {
                if (!process.HasExited) process.Kill();
            }
        }
    }

    [Fact]
    public async Task A_command_that_does_not_trap_SIGTERM_dies_of_it()
    {
        using var dir = new TempDir("acme");
        var file = dir.Write("acme.json", "{}");
        var (process, stderr) = Start(["--source", "s3://backups/acme.json", "--file", file, "--", "sh", "-c", "echo \"pid=$$\"; exec sleep 60"],
            S3Server.Shared.Environment());
        using (process)
        {
            try
            {
                Assert.Equal($"pid={process.Id}", await ReadLineAsync(process, stderr));
                // Wait until the shell has exec'd sleep, so the signal reaches sleep and not the shell.
                var deadline = DateTime.UtcNow.AddMinutes(1);
                while (!File.ReadAllText($"/proc/{process.Id}/cmdline").StartsWith("sleep", StringComparison.Ordinal) && DateTime.UtcNow < deadline)
                    await Task.Delay(20);
                Assert.Equal(0, Kill(process.Id, SigTerm));
                await process.WaitForExitAsync(new CancellationTokenSource(TimeSpan.FromMinutes(1)).Token);
                // .NET reports a process killed by a signal as 128 + the signal number.
                Assert.Equal(128 + SigTerm, process.ExitCode);
            }
            finally
            {
                if (!process.HasExited) process.Kill();
            }
        }
    }

    [Fact]
    public async Task Kept_AWS_credentials_reach_the_command_for_Route53_and_were_used_for_the_restore()
    {
        var bucket = await AcmeRestore.BucketWithAsync(AcmeRestore.SampleAcmeJson);
        using var dir = new TempDir("acme");
        var file = dir.Combine("acme.json");
        var env = S3Server.Shared.Environment(("S3_ACCESS_KEY", null), ("S3_SECRET_KEY", null),
            ("AWS_ACCESS_KEY_ID", S3Server.Shared.AccessKey), ("AWS_SECRET_ACCESS_KEY", S3Server.Shared.SecretKey));

        var result = await AcmeRestore.RunAsync(["--source", $"s3://{bucket}/acme.json", "--file", file,
            "--keep", "AWS_ACCESS_KEY_ID", "--keep", "AWS_SECRET_ACCESS_KEY", "--", "sh", "-c", "tr '\\0' '\\n' < /proc/$$/environ"], env);

        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Equal(AcmeRestore.SampleAcmeJson, File.ReadAllBytes(file));
        var lines = result.Stdout.Split('\n');
        Assert.Contains($"AWS_ACCESS_KEY_ID={S3Server.Shared.AccessKey}", lines);
        Assert.Contains($"AWS_SECRET_ACCESS_KEY={S3Server.Shared.SecretKey}", lines);
        Assert.Contains("removed from its environment: nothing", result.Stderr);
        Assert.DoesNotContain(S3Server.Shared.SecretKey, result.Stderr);
    }

    [Fact]
    public async Task Every_credential_variable_and_its_FILE_twin_is_scrubbed_by_default()
    {
        using var dir = new TempDir("acme");
        var file = dir.Write("acme.json", "{}");
        var env = S3Server.Shared.Environment(("S3_ACCESS_KEY", null), ("S3_SECRET_KEY", null),
            ("S3_ACCESS_KEY_FILE", dir.Write("access", S3Server.Shared.AccessKey)),
            ("S3_SECRET_KEY_FILE", dir.Write("secret", S3Server.Shared.SecretKey)),
            ("S3_SESSION_TOKEN_FILE", dir.Write("token", "session-token-value")),
            ("AWS_ACCESS_KEY_ID", "aws-access-value"), ("AWS_SECRET_ACCESS_KEY", "aws-secret-value"), ("AWS_SESSION_TOKEN", "aws-token-value"),
            ("AWS_ACCESS_KEY_ID_FILE", "/run/secrets/a"), ("AWS_SECRET_ACCESS_KEY_FILE", "/run/secrets/b"), ("AWS_SESSION_TOKEN_FILE", "/run/secrets/c"),
            ("HOME", "/home/traefik"));

        // The file is present, so nothing is downloaded (the session token would be refused by the server).
        var result = await AcmeRestore.RunAsync(["--source", "s3://backups/acme.json", "--file", file, "--", "sh", "-c", "tr '\\0' '\\n' < /proc/$$/environ"], env);

        Assert.True(result.ExitCode == 0, result.ToString());
        var names = result.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => l.Split('=')[0]).ToHashSet();
        string[] credentials = ["S3_ACCESS_KEY", "S3_SECRET_KEY", "S3_SESSION_TOKEN", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"];
        foreach (var name in credentials.SelectMany(c => new[] { c, c + "_FILE" }))
            Assert.DoesNotContain(name, names);
        Assert.Contains("S3_ENDPOINT", names);
        Assert.Contains("S3_REGION", names);
        Assert.Contains("HOME", names);
        Assert.Contains("PATH", names);
    }

    [Fact]
    public async Task Arguments_after_the_double_dash_reach_the_command_unchanged()
    {
        using var dir = new TempDir("acme");
        var file = dir.Write("acme.json", "{}");
        string[] passed = ["--some-flag", "--providers.docker=true", "--help", "--version", "@not-a-response-file", "--", "-q", "with space", ""];

        var result = await AcmeRestore.RunAsync(["--source", "s3://backups/acme.json", "--file", file, "--", "sh", "-c", "printf '[%s]\\n' \"$@\"", "sh", .. passed]);

        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Equal(string.Concat(passed.Select(p => $"[{p}]\n")), result.Stdout);
    }

    [Fact]
    public async Task After_a_restore_the_command_inherits_no_extra_descriptors()
    {
        var bucket = await AcmeRestore.BucketWithAsync(AcmeRestore.SampleAcmeJson);
        using var dir = new TempDir("acme");
        var file = dir.Combine("acme.json");
        // Each open descriptor and the kind of thing it points to (pipe, socket, /path).
        const string probe = "for fd in /proc/$$/fd/*; do echo \"${fd##*/} $(readlink $fd | cut -d: -f1)\"; done";
        var direct = await ProcessRunner.RunAsync("sh", ["-c", probe]);
        Assert.True(direct.ExitCode == 0, direct.ToString());

        // The restore made HTTP connections, wrote files and registered signal handlers before the hand-over.
        var handedOver = await AcmeRestore.RunAsync(["--source", $"s3://{bucket}/acme.json", "--file", file, "--", "sh", "-c", probe]);

        Assert.True(handedOver.ExitCode == 0, handedOver.ToString());
        Assert.Equal(AcmeRestore.SampleAcmeJson, File.ReadAllBytes(file));
        Assert.Equal(direct.Stdout, handedOver.Stdout);
        Assert.DoesNotContain("socket", handedOver.Stdout);
    }

    [Fact]
    public async Task The_command_starts_with_no_signal_blocked_and_SIGPIPE_not_ignored_whatever_the_parent_did()
    {
        using var dir = new TempDir("acme");
        var file = dir.Write("acme.json", "{}");
        // A parent that blocks SIGTERM and SIGINT and ignores SIGPIPE before starting its child (perl-base is always on Debian).
        string[] parent = ["-MPOSIX", "-e", "sigprocmask(SIG_BLOCK, POSIX::SigSet->new(SIGTERM, SIGINT)) or die; $SIG{PIPE} = 'IGNORE'; exec @ARGV", "--"];
        // cat reads its own status: the signal state execve gave it (a shell would change it).
        string[] probe = ["cat", "/proc/self/status"];
        static string Mask(string status, string name) => status.Split('\n').Single(l => l.StartsWith(name + ":", StringComparison.Ordinal)).Split('\t')[1];

        var direct = await ProcessRunner.RunAsync("perl", [.. parent, .. probe]);
        Assert.True(direct.ExitCode == 0, direct.ToString());
        Assert.Equal("0000000000004002", Mask(direct.Stdout, "SigBlk"));
        Assert.Equal(1UL << 12, Convert.ToUInt64(Mask(direct.Stdout, "SigIgn"), 16) & (1UL << 12));

        var handedOver = await ProcessRunner.RunAsync("perl", [.. parent, AcmeRestore.Binary, "--source", "s3://backups/acme.json", "--file", file, "--", .. probe],
            S3Server.Shared.Environment());

        Assert.True(handedOver.ExitCode == 0, handedOver.ToString());
        Assert.Equal("0000000000000000", Mask(handedOver.Stdout, "SigBlk"));
        Assert.Equal(0UL, Convert.ToUInt64(Mask(handedOver.Stdout, "SigIgn"), 16) & (1UL << 12));
    }

    [Theory]
    [InlineData("no-such-command-acme-restore", 127, "command not found in PATH")]
    [InlineData("/nonexistent/traefik", 127, "no such file")]
    [InlineData("NOT-EXECUTABLE", 126, "is not executable (chmod +x it)")]
    [InlineData("/usr", 126, "is a directory")]
    public async Task A_command_that_cannot_be_started_is_one_line_and_a_shell_exit_code(string command, int exitCode, string message)
    {
        using var dir = new TempDir("acme");
        var file = dir.Combine("acme.json");
        var bucket = await AcmeRestore.BucketWithAsync(AcmeRestore.SampleAcmeJson);
        if (command == "NOT-EXECUTABLE")
        {
            command = dir.Write("traefik", "#!/bin/sh\necho started\n");
            File.SetUnixFileMode(command, AcmeRestore.Mode0644);
        }

        var result = await AcmeRestore.RunAsync(["--source", $"s3://{bucket}/acme.json", "--file", file, "--", command, "--flag"]);

        Assert.True(result.ExitCode == exitCode, result.ToString());
        Assert.Contains(message, Assert.Single(result.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries)));
        // Checked before anything else: nothing was restored for a command that cannot run.
        Assert.False(File.Exists(file));
    }

    [Fact]
    public async Task An_executable_the_kernel_cannot_run_fails_after_the_restore_with_exit_126()
    {
        var bucket = await AcmeRestore.BucketWithAsync(AcmeRestore.SampleAcmeJson);
        using var dir = new TempDir("acme");
        var file = dir.Combine("acme.json");
        // Executable, but neither ELF nor #! script: execve fails with ENOEXEC (acme-restore does not fall back to sh).
        var command = dir.Write("traefik", "echo should-not-run\n");
        File.SetUnixFileMode(command, AcmeRestore.Mode0644 | UnixFileMode.UserExecute);

        var result = await AcmeRestore.RunAsync(["--source", $"s3://{bucket}/acme.json", "--file", file, "--json", "--", command]);

        Assert.True(result.ExitCode == 126, result.ToString());
        Assert.Equal("", result.Stdout);
        var last = result.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries).Last();
        Assert.Contains("\"level\":\"error\"", last);
        Assert.Contains($"cannot start {command}: Exec format error", last);
        Assert.Equal(AcmeRestore.SampleAcmeJson, File.ReadAllBytes(file));
    }
}
