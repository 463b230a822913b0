using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using InfraTools.S3;

namespace InfraTools.Tests.Live;

[CollectionDefinition(Name)]
public sealed class LiveStackCollection : ICollectionFixture<LiveStack>
{
    public const string Name = "live stack";
}

/// <summary>
/// The stack, run for real: a private Docker engine (scripts/engine-start.sh) in namespaces of its own, the
/// stand-in images (scripts/stack-images.sh), an S3 server of its own (Ceph RGW bound to the host end of the
/// engine's veth pair, so the containers reach it), and the shipped docker-compose.yaml with an override that
/// only swaps image sources (tests/Stack.Tests/Live/docker-compose.live.yaml). Grafana and cAdvisor are left
/// out: their images cannot be pulled here and nothing else depends on them.
/// Everything it starts is stopped in <see cref="DisposeAsync"/>, by pid and id (the scripts), also when a
/// test failed; what a crashed run leaves is cleaned up by the next engine-start.
/// </summary>
public sealed partial class LiveStack : IAsyncLifetime
{
    /// <summary>Services of docker-compose.yaml the live test does not start, and why.</summary>
    public static readonly IReadOnlyDictionary<string, string> LeftOut = new Dictionary<string, string>
    {
        ["grafana"] = "Grafana's image cannot be pulled here (no Docker Hub); nothing depends on it",
        ["cadvisor"] = "cAdvisor's image cannot be pulled here; nothing depends on it",
    };

    public const string Project = "infratools-live";
    public const string SiteHost = "www.example.org";

    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private readonly StringBuilder _timings = new();
    private S3Server? _s3;
    private string? _engineState;
    private TempDir? _work;

    /// <summary>Set when this machine cannot run the engine (another kind of machine): the tests are skipped.</summary>
    public string? SkipReason { get; private set; }

    public IReadOnlyDictionary<string, string> Engine { get; private set; } = new Dictionary<string, string>();
    public S3Server S3 => _s3 ?? throw new InvalidOperationException("the live stack did not start");
    public string ContentBucket { get; private set; } = "";
    public string BackupBucket { get; private set; } = "";
    public string EnvFile { get; private set; } = "";
    public string RunId { get; } = Guid.NewGuid().ToString("N")[..10];

    /// <summary>The deploy webhook's secret in the test's .env (CONTENT_PULL_DEPLOY_SECRET): POST /deploy is on.</summary>
    public string DeploySecret { get; } = Convert.ToHexString(System.Security.Cryptography.RandomNumberGenerator.GetBytes(32)).ToLowerInvariant();

    /// <summary>The services the test starts: every service of docker-compose.yaml but <see cref="LeftOut"/>.</summary>
    public IReadOnlyList<string> Services { get; private set; } = [];

    /// <summary>The host's view of the engine's /srv (a bind mount in the engine's mount namespace).</summary>
    public string Srv(params string[] parts) => Path.Combine([Engine["INFRATOOLS_ENGINE_SRV"], .. parts]);

    public TimeSpan Elapsed => _clock.Elapsed;

    /// <summary>Durations worth reporting (setup, up, restart gaps...), also written to artifacts/test-results.</summary>
    public void Record(string what, TimeSpan duration) => Record($"{what}: {duration.TotalSeconds:F1} s");

    public void Record(string line)
    {
        lock (_timings) _timings.AppendLine(line);
        Console.Error.WriteLine("live stack: " + line);
    }

    public async Task InitializeAsync()
    {
        var start = Stopwatch.StartNew();
        var engine = await ProcessRunner.RunAsync(Script("engine-start.sh"), ["--owner", Environment.ProcessId.ToString(CultureInfo.InvariantCulture)],
            timeout: TimeSpan.FromMinutes(10));
        if (engine.ExitCode == 3)
        {
            SkipReason = engine.Stderr.Trim().Split('\n').Last();
            Console.Error.WriteLine("live stack: skipped: " + SkipReason);
            return;
        }
        if (engine.ExitCode != 0) throw new InvalidOperationException("scripts/engine-start.sh failed: " + engine);
        var envFile = engine.Stdout.Trim().Split('\n').Last();
        Engine = ReadEnvFile(envFile);
        _engineState = Engine["INFRATOOLS_ENGINE_STATE"];
        Record("engine started", start.Elapsed);

        try
        {
            // The images and the S3 server do not depend on each other: start both at once.
            var images = Task.Run(async () =>
            {
                var sw = Stopwatch.StartNew();
                var result = await ProcessRunner.RunAsync(Script("stack-images.sh"), [envFile], timeout: TimeSpan.FromMinutes(20));
                if (result.ExitCode != 0) throw new InvalidOperationException("scripts/stack-images.sh failed: " + result);
                Record("images (" + string.Join("; ", result.Stderr.Split('\n').Where(l => l.Contains(" s)", StringComparison.Ordinal)).Select(l => l.Replace("stack-images: ", "", StringComparison.Ordinal))) + ")", sw.Elapsed);
            });
            var s3 = Task.Run(async () =>
            {
                var sw = Stopwatch.StartNew();
                _s3 = S3Server.StartDedicated(Path.Combine(_engineState, "s3"), Engine["INFRATOOLS_ENGINE_HOST_ADDRESS"]);
                ContentBucket = await _s3.NewBucketAsync("site");
                BackupBucket = await _s3.NewBucketAsync("backup");
                Record("S3 server started and buckets created", sw.Elapsed);
            });
            await Task.WhenAll(images, s3);

            _work = new TempDir("live-stack");
            EnvFile = WriteEnvFile();
            Services = Stack.Services.Entries().Select(e => e.Key).Where(s => !LeftOut.ContainsKey(s)).ToList();
        }
        catch
        {
            await DisposeAsync();
            throw;
        }
    }

    public async Task DisposeAsync()
    {
        try
        {
            if (_engineState is not null && Directory.Exists(_engineState))
            {
                // No `docker-compose down` (step 3 runs one): engine-stop.sh removes every container of the engine
                // by id (docker rm -f), which does not wait for graceful stops, then stops dockerd by pid.
                File.WriteAllText(Stack.Path("artifacts", "test-results", "live-stack-timings.txt").EnsureDirectory(), _timings.ToString());
            }
        }
        catch (Exception e) { Console.Error.WriteLine("live stack: writing the timings failed: " + e.Message); }
        finally
        {
            try { _s3?.Stop(); }
            finally
            {
                if (_engineState is not null)
                {
                    var stop = await ProcessRunner.RunAsync(Script("engine-stop.sh"), [_engineState], timeout: TimeSpan.FromMinutes(3));
                    if (stop.ExitCode != 0) Console.Error.WriteLine("live stack: engine-stop failed: " + stop);
                    _engineState = null;
                }
                _work?.Dispose();
            }
        }
    }

    private static string Script(string name) => Path.Combine(RepoPaths.Scripts, name);

    private static Dictionary<string, string> ReadEnvFile(string path) =>
        File.ReadAllLines(path).Where(l => l.Contains('=')).Select(l => l.Split('=', 2)).ToDictionary(p => p[0], p => p[1]);

    /// <summary>.env.example with the S3 settings of the test's server and its buckets, mode 0600.</summary>
    private string WriteEnvFile()
    {
        var values = new Dictionary<string, string>
        {
            ["S3_ENDPOINT"] = S3.Endpoint,
            ["S3_REGION"] = "us-east-1",
            ["S3_ADDRESSING"] = "path",
            ["S3_ACCESS_KEY"] = S3.AccessKey,
            ["S3_SECRET_KEY"] = S3.SecretKey,
            ["CONTENT_BUCKET"] = ContentBucket,
            ["CONTENT_PREFIX"] = "",
            ["BACKUP_BUCKET"] = BackupBucket,
            ["DOMAIN"] = SiteHost,
            ["CONTENT_PULL_DEPLOY_SECRET"] = DeploySecret,
        };
        var text = File.ReadAllText(Stack.EnvExample);
        foreach (var (name, value) in values)
        {
            Assert.Matches($"(?m)^{name}=", text);
            text = Regex.Replace(text, $"(?m)^{name}=.*$", $"{name}={value}");
        }
        var path = _work!.Combine(".env");
        File.WriteAllText(path, "");
        File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        File.WriteAllText(path, text);
        return path;
    }

    // ---- docker and docker-compose -----------------------------------------------------------------------------

    private Dictionary<string, string?> DockerEnvironment() => new()
    {
        ["DOCKER_HOST"] = Engine["DOCKER_HOST"],
        ["COMPOSE_FILE"] = null,
        ["COMPOSE_PROJECT_NAME"] = null,
        ["DOCKER_BUILDKIT"] = null,
    };

    /// <summary>docker-compose (Debian's 1.29) with the shipped file, the stand-in override and the test's .env.</summary>
    public Task<ProcessResult> ComposeAsync(params string[] args) => ComposeAsync(TimeSpan.FromMinutes(3), args);

    public Task<ProcessResult> ComposeAsync(TimeSpan timeout, params string[] args) => ComposeWithAsync([], timeout, args);

    /// <summary>docker-compose with more files after the shipped one and the override (e.g. "-f", PATH).</summary>
    public Task<ProcessResult> ComposeWithAsync(string[] extraFiles, TimeSpan timeout, params string[] args) =>
        ProcessRunner.RunAsync("docker-compose",
            ["--no-ansi", "-p", Project, "--env-file", EnvFile, "-f", Stack.ComposeFile, "-f", Stack.Path("tests", "Stack.Tests", "Live", "docker-compose.live.yaml"), .. extraFiles, .. args],
            DockerEnvironment(), workingDirectory: RepoPaths.Root, timeout: timeout);

    public async Task<ProcessResult> DockerAsync(params string[] args) =>
        await ProcessRunner.RunAsync(Engine["INFRATOOLS_ENGINE_DOCKER"], args, DockerEnvironment(), timeout: TimeSpan.FromMinutes(2));

    private static string Checked(ProcessResult result, string what) =>
        result.ExitCode == 0 ? result.Stdout : throw new InvalidOperationException($"{what} failed: {result}");

    /// <summary>`up -d` of every service the test runs (or the ones given); returns how long it took.</summary>
    public async Task<TimeSpan> UpAsync(params string[] services)
    {
        var sw = Stopwatch.StartNew();
        var result = await ComposeAsync(TimeSpan.FromMinutes(5), ["up", "-d", "--no-build", .. (services.Length == 0 ? Services : services)]);
        Assert.True(result.ExitCode == 0, "docker-compose up failed: " + result);
        return sw.Elapsed;
    }

    /// <summary>The id of a service's container, running or not (there is one of each), found by the labels
    /// docker-compose puts on it (the docker CLI answers in milliseconds, docker-compose in about a second).</summary>
    public async Task<string> ContainerAsync(string service)
    {
        var ids = Checked(await DockerAsync("ps", "-aq", "--filter", $"label=com.docker.compose.project={Project}",
            "--filter", $"label=com.docker.compose.service={service}"), "docker ps").Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.True(ids.Length == 1, $"{service}: expected one container, found {ids.Length}");
        return ids[0];
    }

    public async Task<string> InspectAsync(string service, string format) =>
        Checked(await DockerAsync("inspect", "-f", format, await ContainerAsync(service)), "docker inspect").Trim();

    /// <summary>The address of a service's container on one of its networks (as the other containers see it).</summary>
    public async Task<string> AddressAsync(string service, string network = "infra-backend")
    {
        var address = await InspectAsync(service, $"{{{{with index .NetworkSettings.Networks \"{network}\"}}}}{{{{.IPAddress}}}}{{{{end}}}}");
        Assert.Matches("^\\d+\\.\\d+\\.\\d+\\.\\d+$", address);
        return address;
    }

    public async Task<ProcessResult> ExecAsync(string service, params string[] command) =>
        await DockerAsync(["exec", await ContainerAsync(service), .. command]);

    /// <summary>Runs a job of a crontab exactly as cron does (/bin/sh -c COMMAND, the container's environment).</summary>
    public async Task<ProcessResult> RunCronJobAsync(string service, string job)
    {
        var command = Crontab.Job(Stack.Path("images", service, "crontab"), job).Command;
        return await ExecAsync(service, "/bin/sh", "-c", command);
    }

    /// <summary>POST /deploy to the pull container's watcher (its address on the backend network, port 9746), signed
    /// with <paramref name="secret"/> as a GitHub webhook is (X-Hub-Signature-256), or unsigned when null.</summary>
    public async Task<HttpStatusCode> TriggerDeployAsync(string? secret, string body = "{\"ref\":\"live-test\"}")
    {
        var pull = await AddressAsync("pull");
        using var request = new HttpRequestMessage(HttpMethod.Post, $"http://{pull}:9746/deploy") { Content = new StringContent(body, Encoding.UTF8, "application/json") };
        if (secret is not null)
            request.Headers.Add("X-Hub-Signature-256", "sha256=" + Convert.ToHexString(System.Security.Cryptography.HMACSHA256.HashData(Encoding.UTF8.GetBytes(secret), Encoding.UTF8.GetBytes(body))).ToLowerInvariant());
        using var response = await Http.SendAsync(request);
        return response.StatusCode;
    }

    /// <summary>Compose's view plus the last log lines of every service: attached to a failed wait.</summary>
    public async Task<string> DiagnosticsAsync()
    {
        try
        {
            var ps = await ComposeAsync("ps");
            var logs = await ComposeAsync("logs", "--no-color", "--tail", "15");
            return $"--- docker-compose ps\n{ps.Stdout}\n--- last log lines\n{logs.Stdout}";
        }
        catch (Exception e) { return "(no diagnostics: " + e.Message + ")"; }
    }

    // ---- waiting ------------------------------------------------------------------------------------------------

    /// <summary>
    /// Polls <paramref name="probe"/> until it returns a value, at most <paramref name="timeout"/> and a bounded
    /// number of times; an exception in the probe counts as "not yet" (the last one is reported).
    /// </summary>
    public async Task<T> WaitForAsync<T>(string what, Func<Task<T?>> probe, TimeSpan timeout, TimeSpan? interval = null) where T : class
    {
        var step = interval ?? TimeSpan.FromMilliseconds(500);
        var deadline = Stopwatch.StartNew();
        var maxAttempts = (int)(timeout / step) + 2;
        Exception? last = null;
        for (var attempt = 0; attempt < maxAttempts && deadline.Elapsed <= timeout; attempt++)
        {
            try
            {
                var value = await probe();
                if (value is not null) return value;
            }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException or InvalidOperationException or JsonException or IOException)
            {
                last = e;
            }
            await Task.Delay(step);
        }
        throw new TimeoutException($"timed out after {timeout.TotalSeconds:F0} s waiting for {what}" +
            (last is null ? "" : $" (last error: {last.Message})") + "\n" + await DiagnosticsAsync());
    }

    public async Task WaitUntilAsync(string what, Func<Task<bool>> condition, TimeSpan timeout, TimeSpan? interval = null) =>
        await WaitForAsync(what, async () => await condition() ? "" : null, timeout, interval);

    // ---- Prometheus ---------------------------------------------------------------------------------------------

    private static readonly HttpClient Http = new() { Timeout = TimeSpan.FromSeconds(10) };

    public sealed record Sample(IReadOnlyDictionary<string, string> Labels, double Value);

    /// <summary>An instant query against the stack's Prometheus (at <paramref name="at"/>, default now).</summary>
    public async Task<IReadOnlyList<Sample>> QueryAsync(string expression, DateTimeOffset? at = null)
    {
        var prometheus = await AddressAsync("prometheus");
        var url = $"http://{prometheus}:9090/api/v1/query?query={Uri.EscapeDataString(expression)}" +
            (at is { } t ? $"&time={t.ToUnixTimeMilliseconds() / 1000.0:F3}" : "");
        using var document = JsonDocument.Parse(await Http.GetStringAsync(url));
        var data = document.RootElement.GetProperty("data");
        Assert.Equal("vector", data.GetProperty("resultType").GetString());
        return data.GetProperty("result").EnumerateArray().Select(r => new Sample(
            r.GetProperty("metric").EnumerateObject().ToDictionary(p => p.Name, p => p.Value.GetString() ?? ""),
            double.Parse(r.GetProperty("value")[1].GetString()!, CultureInfo.InvariantCulture))).ToList();
    }

    /// <summary>The scrape targets Prometheus knows and their health ("up", "down", "unknown").</summary>
    public async Task<IReadOnlyList<(string Job, string Instance, string Health)>> TargetsAsync()
    {
        var prometheus = await AddressAsync("prometheus");
        using var document = JsonDocument.Parse(await Http.GetStringAsync($"http://{prometheus}:9090/api/v1/targets?state=active"));
        return document.RootElement.GetProperty("data").GetProperty("activeTargets").EnumerateArray()
            .Select(t => (t.GetProperty("labels").GetProperty("job").GetString()!, t.GetProperty("labels").GetProperty("instance").GetString()!,
                t.GetProperty("health").GetString()!)).ToList();
    }

    /// <summary>Alerts in state firing (name and labels).</summary>
    public async Task<IReadOnlyList<Sample>> FiringAlertsAsync() => await QueryAsync("ALERTS{alertstate=\"firing\"}");

    public sealed record AlertRule(string Name, string Query, TimeSpan For);

    /// <summary>The alerting rules Prometheus loaded: name, expression and `for`.</summary>
    public async Task<IReadOnlyList<AlertRule>> AlertRulesAsync()
    {
        var prometheus = await AddressAsync("prometheus");
        using var document = JsonDocument.Parse(await Http.GetStringAsync($"http://{prometheus}:9090/api/v1/rules?type=alert"));
        return document.RootElement.GetProperty("data").GetProperty("groups").EnumerateArray()
            .SelectMany(g => g.GetProperty("rules").EnumerateArray())
            .Select(r => new AlertRule(r.GetProperty("name").GetString()!, r.GetProperty("query").GetString()!, TimeSpan.FromSeconds(r.GetProperty("duration").GetDouble())))
            .ToList();
    }

    // ---- files under /srv ---------------------------------------------------------------------------------------

    /// <summary>uid:gid and mode (octal) of a file, as the host sees it.</summary>
    public static async Task<(string Owner, string Mode)> StatAsync(string path)
    {
        var result = await ProcessRunner.RunAsync("stat", ["-c", "%u:%g %a", path]);
        Assert.True(result.ExitCode == 0, result.ToString());
        var parts = result.Stdout.Trim().Split(' ');
        return (parts[0], parts[1]);
    }

    /// <summary>Writes a file under /srv the way a container's user would (owner and mode given).</summary>
    public static async Task WriteAsOwnerAsync(string path, byte[] content, string owner, UnixFileMode mode)
    {
        await File.WriteAllBytesAsync(path, content);
        File.SetUnixFileMode(path, mode);
        var result = await ProcessRunner.RunAsync("chown", [owner, path]);
        Assert.True(result.ExitCode == 0, result.ToString());
    }

    // ---- S3 -----------------------------------------------------------------------------------------------------

    public async Task PutAsync(string bucket, string key, byte[] content)
    {
        using var client = S3.Client();
        using var stream = new MemoryStream(content);
        await client.PutAsync(bucket, key, stream, content.Length);
    }

    public async Task DeleteAsync(string bucket, string key)
    {
        using var client = S3.Client();
        var errors = await client.DeleteManyAsync(bucket, [key]);
        Assert.True(errors.Count == 0, $"deleting s3://{bucket}/{key}: {string.Join("; ", errors)}");
    }

    public async Task<byte[]> GetAsync(string bucket, string key)
    {
        using var client = S3.Client();
        using var buffer = new MemoryStream();
        await client.GetAsync(bucket, key, async (stream, _, ct) => await stream.CopyToAsync(buffer, ct));
        return buffer.ToArray();
    }
}

internal static class PathExtensions
{
    public static string EnsureDirectory(this string file)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(file)!);
        return file;
    }
}
