using System.Security.Cryptography;
using InfraTools.Monitoring;

namespace InfraTools.Tests;

/// <summary>One content-pull scenario: a bucket, a sandbox with DEST, state and metrics inside, and helpers to run the AOT binary.</summary>
public sealed class PullSandbox : IDisposable
{
    private readonly TempDir _dir = new("pull");

    public string Bucket { get; private init; } = "";
    public string Root => _dir.Path;
    public string Dest => _dir.Combine("www");
    public string State => _dir.Combine("state");
    public string Metrics => _dir.Combine("monitoring", "content-pull.prom");
    public S3Server Server { get; private init; } = S3Server.Shared;

    public static async Task<PullSandbox> CreateAsync(string purpose, S3Server? server = null)
    {
        server ??= S3Server.Shared;
        return new PullSandbox { Server = server, Bucket = await server.NewBucketAsync(purpose) };
    }

    public string Source(string prefix = "") => $"s3://{Bucket}/{prefix}";

    public Task<ProcessResult> PullAsync(params string[] extra) => PullAsync(Server.Environment(), extra);

    public Task<ProcessResult> PullAsync(Dictionary<string, string?> env, params string[] extra) =>
        ProcessRunner.RunAsync(RepoPaths.Tool("content-pull"),
            [Source(), Dest, "--delete", "--state-dir", State, "--metrics-file", Metrics, .. extra], env);

    public async Task<ProcessResult> PullOkAsync(params string[] extra)
    {
        var result = await PullAsync(extra);
        Assert.True(result.ExitCode == 0, result.ToString());
        return result;
    }

    public async Task PutAsync(IReadOnlyDictionary<string, byte[]> objects)
    {
        using var client = Server.Client();
        await Parallel.ForEachAsync(objects, new ParallelOptions { MaxDegreeOfParallelism = 16 }, async (o, ct) =>
            await client.PutAsync(Bucket, o.Key, new MemoryStream(o.Value), o.Value.Length, cancellationToken: ct));
    }

    public async Task DeleteAsync(params string[] keys)
    {
        using var client = Server.Client();
        await client.DeleteManyAsync(Bucket, keys);
    }

    public double? MetricValue(string name, string labels = "") => TextfileMetrics.ReadSample(Metrics, name, labels);

    public double? Files(string outcome) => MetricValue("content_pull_last_run_files", $"outcome=\"{outcome}\"");

    /// <summary>DEST holds exactly these files (no more, no less, no temporary files), byte for byte.</summary>
    public void AssertMirrors(IReadOnlyDictionary<string, byte[]> expected)
    {
        var actual = Directory.EnumerateFiles(Dest, "*", SearchOption.AllDirectories)
            .Select(f => Path.GetRelativePath(Dest, f)).Order(StringComparer.Ordinal).ToList();
        Assert.Equal(expected.Keys.Order(StringComparer.Ordinal), actual);
        foreach (var (path, content) in expected)
            Assert.True(content.AsSpan().SequenceEqual(File.ReadAllBytes(Path.Combine(Dest, path))), $"{path} differs from its object");
    }

    public void Dispose() => _dir.Dispose();

    public static Dictionary<string, byte[]> RandomTree(int files, int directories, int seed, int maxSize = 2048)
    {
        var random = new Random(seed);
        var tree = new Dictionary<string, byte[]>(StringComparer.Ordinal);
        for (var i = 0; i < files; i++)
        {
            var dir = i % directories;
            var path = $"d{dir % 10}/sub{dir}/page-{i:D5}.html";
            var content = new byte[random.Next(0, maxSize)];
            random.NextBytes(content);
            tree[path] = content;
        }
        return tree;
    }

    public static string Md5(byte[] data) => Convert.ToHexStringLower(MD5.HashData(data));
}
