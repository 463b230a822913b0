using InfraTools.Secrets;
using InfraTools.S3;

namespace InfraTools.Tests;

/// <summary>
/// The real S3 server (Ceph RGW) the tests talk to. scripts/test.sh starts one for the whole suite and passes
/// its settings in INFRATOOLS_TEST_S3_ENV; when that is not set (a test run from an IDE), the first test that
/// needs it starts one with scripts/s3-server-start.sh and it is stopped when the test process exits.
/// Every test gets its own bucket from <see cref="NewBucketAsync"/>.
/// </summary>
public sealed class S3Server
{
    private static readonly Lazy<S3Server> Instance = new(Start, LazyThreadSafetyMode.ExecutionAndPublication);
    private static int _bucketCounter;

    public static S3Server Shared => Instance.Value;

    public IReadOnlyDictionary<string, string> Settings { get; }
    public string Endpoint => Settings["S3_ENDPOINT"];
    public string AccessKey => Settings["S3_ACCESS_KEY"];
    public string SecretKey => Settings["S3_SECRET_KEY"];
    /// <summary>The server's state directory (logs, pids), for tests that stop and restart it.</summary>
    public string StateDir => Settings["S3_TEST_STATE_DIR"];

    private S3Server(IReadOnlyDictionary<string, string> settings) => Settings = settings;

    /// <summary>The S3_* variables a tool needs to reach this server, plus any extra ones.</summary>
    public Dictionary<string, string?> Environment(params (string Key, string? Value)[] extra)
    {
        var env = new Dictionary<string, string?>
        {
            ["S3_ENDPOINT"] = Endpoint,
            ["S3_ACCESS_KEY"] = AccessKey,
            ["S3_SECRET_KEY"] = SecretKey,
            ["S3_REGION"] = "us-east-1",
        };
        foreach (var (key, value) in extra) env[key] = value;
        return env;
    }

    /// <summary>An S3 client in the test process, for setting up and checking buckets.</summary>
    public S3Store Client() => new(ClientSettings());

    /// <summary>The server's settings for an in-process client, at <paramref name="endpoint"/> (a proxy in front of it) when given.</summary>
    public S3Settings ClientSettings(string? endpoint = null) =>
        new(new Uri(endpoint ?? Endpoint), new Secret(AccessKey), new Secret(SecretKey), null, "us-east-1", S3Addressing.Path);

    /// <summary>Creates a new, empty bucket with a unique name.</summary>
    public async Task<string> NewBucketAsync(string purpose = "t")
    {
        var name = $"{purpose.ToLowerInvariant()}-{System.Environment.ProcessId}-{Interlocked.Increment(ref _bucketCounter)}-{Guid.NewGuid():N}"[..40].TrimEnd('-');
        using var client = Client();
        await client.MakeBucketAsync(name);
        return name;
    }


    /// <summary>
    /// Starts a separate server that belongs to the caller, for tests that stop the server mid-way.
    /// Stop it with <see cref="Stop"/>. <paramref name="address"/> binds its S3 endpoint to another address
    /// than 127.0.0.1 (one of an interface the caller created); <paramref name="stateDir"/> chooses where its
    /// state lives.
    /// </summary>
    public static S3Server StartDedicated(string? stateDir = null, string? address = null)
    {
        var state = stateDir ?? System.IO.Path.Combine(System.IO.Path.GetTempPath(), $"infratools-s3-{Guid.NewGuid():N}"[..32]);
        var server = FromEnvFile(StartScript(state, address));
        AppDomain.CurrentDomain.ProcessExit += (_, _) => server.Stop();
        return server;
    }

    /// <summary>Stops this server (its daemons, by pid) and removes its state.</summary>
    public void Stop() =>
        ProcessRunner.RunAsync(System.IO.Path.Combine(RepoPaths.Scripts, "s3-server-stop.sh"), [StateDir]).GetAwaiter().GetResult();

    /// <summary>Stops only radosgw (an S3 outage); the buckets survive in the cluster.</summary>
    public async Task StopGatewayAsync()
    {
        var result = await ProcessRunner.RunAsync(System.IO.Path.Combine(RepoPaths.Scripts, "s3-server-stop.sh"), ["--rgw-only", StateDir]);
        if (result.ExitCode != 0) throw new InvalidOperationException("could not stop radosgw: " + result);
    }

    /// <summary>Starts radosgw again after <see cref="StopGatewayAsync"/>, on the same address and port.</summary>
    public async Task StartGatewayAsync()
    {
        var result = await ProcessRunner.RunAsync(System.IO.Path.Combine(RepoPaths.Scripts, "s3-server-start.sh"), ["--rgw-only", StateDir],
            timeout: TimeSpan.FromMinutes(2));
        if (result.ExitCode != 0) throw new InvalidOperationException("could not start radosgw again: " + result);
    }

    private static S3Server Start()
    {
        var envFile = System.Environment.GetEnvironmentVariable("INFRATOOLS_TEST_S3_ENV");
        if (!string.IsNullOrEmpty(envFile)) return FromEnvFile(envFile);
        var server = FromEnvFile(StartScript(System.IO.Path.Combine(System.IO.Path.GetTempPath(), $"infratools-s3-{System.Environment.ProcessId}")));
        AppDomain.CurrentDomain.ProcessExit += (_, _) => server.Stop();
        return server;
    }

    private static string StartScript(string state, string? address = null)
    {
        var environment = address is null ? null : new Dictionary<string, string?> { ["S3_TEST_ADDRESS"] = address };
        var result = ProcessRunner.RunAsync(System.IO.Path.Combine(RepoPaths.Scripts, "s3-server-start.sh"), [state], environment,
                timeout: TimeSpan.FromMinutes(10))
            .GetAwaiter().GetResult();
        if (result.ExitCode != 0) throw new InvalidOperationException("could not start the S3 test server: " + result);
        return result.Stdout.Trim().Split('\n').Last();
    }

    private static S3Server FromEnvFile(string envFile) =>
        new(File.ReadAllLines(envFile).Where(l => l.Contains('=')).Select(l => l.Split('=', 2)).ToDictionary(p => p[0], p => p[1]));
}
