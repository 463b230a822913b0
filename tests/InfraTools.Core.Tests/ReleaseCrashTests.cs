using System.Diagnostics;
using System.Text;
using InfraTools.Releases;
using Xunit.Abstractions;

namespace InfraTools.Tests;

/// <summary>
/// SIGKILL at named steps and at random points of a release run, in a real Native AOT process (the test
/// driver's release-run, which uses src/InfraTools.Core/Releases as the engine will): current must always be a
/// complete, byte-exact release, and the next run must converge and leave no leftovers.
/// </summary>
public sealed class ReleaseCrashTests(ITestOutputHelper output) : IDisposable
{
    private const int Files = 500;
    private readonly TempDir _dir = new("rel-crash");
    private string Dest => _dir.Combine("www");
    private string Source(int version) => _dir.Combine($"v{version}");

    private static readonly string[] Options = ["--keep-releases", "1", "--grace-seconds", "0", "--keep-assets", "assets/**"];

    public void Dispose() => _dir.Dispose();

    /// <summary>
    /// Three versions of a 500-file site; 20 % of the files change from one to the next, one hashed asset
    /// per version (carried into later releases by --keep-assets), and every file's content says its version.
    /// </summary>
    private void WriteSources()
    {
        Directory.CreateDirectory(Dest);
        for (var version = 1; version <= 3; version++)
        {
            for (var i = 0; i < Files; i++)
            {
                var changes = i % 5 == version % 5; // a different fifth changes in each version
                var content = $"file {i} of version {(changes ? version : 0)}\n" + new string('x', i % 1500);
                var path = Path.Join(Source(version), $"d{i % 17}", $"e{i % 5}", $"f{i}.html");
                Directory.CreateDirectory(Path.GetDirectoryName(path)!);
                File.WriteAllText(path, content);
                File.SetLastWriteTimeUtc(path, new DateTime(2026, 1, 1, 0, 0, 0, DateTimeKind.Utc).AddSeconds(changes ? version : 0));
            }
            var asset = Path.Join(Source(version), "assets", $"app.{version}{version}{version}.js");
            Directory.CreateDirectory(Path.GetDirectoryName(asset)!);
            File.WriteAllText(asset, $"asset of version {version}\n");
        }
    }

    private static Dictionary<string, byte[]> ReadTree(string root)
    {
        var tree = InfraTools.Sync.LocalTree.Scan(root);
        Assert.Empty(tree.Others);
        Assert.Empty(tree.Unreadable);
        return tree.Files.Keys.ToDictionary(k => k, k => File.ReadAllBytes(Path.Join(root, k)), StringComparer.Ordinal);
    }

    /// <summary>
    /// DEST/current is a relative link to a complete release whose files are byte for byte those of one version
    /// (plus files carried from earlier versions, each byte-exact too); returns that version.
    /// </summary>
    private int AssertCurrentIsComplete(params int[] allowed)
    {
        Assert.NotEmpty(allowed);
        var link = Path.Join(Dest, "current");
        var target = ReleaseSites.LinkTarget(link);
        Assert.Matches(@"^releases/\d{8}T\d{6}Z-[0-9a-f]{4}$", target);
        var id = target["releases/".Length..];
        var served = ReadTree(link);
        var carriedPath = Path.Join(Dest, "releases", id + ".carried");
        var carried = File.Exists(carriedPath) ? File.ReadAllLines(carriedPath).Select(l => l.Split('\t')[1]).ToHashSet() : [];
        foreach (var version in allowed)
        {
            var expected = ReadTree(Source(version));
            var own = served.Where(f => !carried.Contains(f.Key)).ToDictionary();
            if (own.Count != expected.Count || !own.All(f => expected.TryGetValue(f.Key, out var e) && e.AsSpan().SequenceEqual(f.Value))) continue;
            foreach (var path in carried)
                Assert.True(Enumerable.Range(1, 3).Any(v => File.Exists(Path.Join(Source(v), path)) && File.ReadAllBytes(Path.Join(Source(v), path)).AsSpan().SequenceEqual(served[path])),
                    $"carried file {path} is not byte-exact");
            return version;
        }
        Assert.Fail($"current ({id}, {served.Count} files) is not a complete release of version {string.Join(" or ", allowed)}");
        return 0;
    }

    private void AssertNoLeftovers()
    {
        var releases = Directory.EnumerateFileSystemEntries(Path.Join(Dest, "releases")).Select(Path.GetFileName).ToList();
        Assert.NotEmpty(releases);
        Assert.DoesNotContain(releases, n => n!.StartsWith('.'));
        Assert.All(releases, n => Assert.True(ReleaseIds.IsId(n!) || n!.EndsWith(".carried") && ReleaseIds.IsId(n[..^8]), n));
        Assert.All(releases.Where(n => n!.EndsWith(".carried")), n => Assert.Contains(n![..^8], releases));
        Assert.Equal(["current", "releases"], Directory.EnumerateFileSystemEntries(Dest).Select(Path.GetFileName).Order(StringComparer.Ordinal));
        // --keep-releases 1, no grace: the current one and the previous one.
        Assert.InRange(releases.Count(n => ReleaseIds.IsId(n!)), 1, 2);
    }

    private async Task<ProcessResult> RunToEnd(int version)
    {
        var result = await ProcessRunner.RunAsync(RepoPaths.TestDriver, ["release-run", Dest, Source(version), .. Options]);
        Assert.True(result.ExitCode == 0, result.ToString());
        return result;
    }

    /// <summary>Starts a run that stops at <paramref name="step"/>, waits until it is there, and kills it with SIGKILL.</summary>
    private async Task<string> KillAt(int version, string step)
    {
        var env = new Dictionary<string, string?> { ["RELEASE_TEST_STOP"] = step };
        using var process = Process.Start(ProcessRunner.StartInfo(RepoPaths.TestDriver, ["release-run", Dest, Source(version), .. Options], env))!;
        var stderr = new StringBuilder();
        var stopped = new TaskCompletionSource();
        process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is null) return;
            lock (stderr) stderr.AppendLine(e.Data);
            if (e.Data.StartsWith("stopped at ", StringComparison.Ordinal)) stopped.TrySetResult();
        };
        process.BeginErrorReadLine();
        process.BeginOutputReadLine();
        var exited = process.WaitForExitAsync();
        var first = await Task.WhenAny(stopped.Task, exited, Task.Delay(TimeSpan.FromMinutes(2)));
        Assert.True(first == stopped.Task, $"the run did not reach {step}:\n{stderr}");
        process.Kill(); // SIGKILL
        await process.WaitForExitAsync();
        Assert.Equal(137, process.ExitCode);
        lock (stderr) return stderr.ToString();
    }

    public static TheoryData<string, bool> Steps => new()
    {
        // step, whether current already shows the new release when the run dies there
        { "staging-created", false },
        { "link:1", false },
        { "link:250", false },
        { "write:1", false },
        { "write:75", false },
        { "carry:1", false },
        { "synced", false },
        { "sidecar-renamed", false },
        { "release-renamed", false },
        { "stamped", false },
        { "temp-link", false },
        { "swapped", true },
        { "cleanup-renamed", true },
        { "delete:1", true },
        { "delete:375", true },
    };

    [Theory]
    [MemberData(nameof(Steps))]
    public async Task SIGKILL_at_a_named_step_leaves_current_on_a_complete_release_and_the_next_run_converges(string step, bool swapped)
    {
        WriteSources();
        await RunToEnd(1);
        await RunToEnd(2);
        Assert.Equal(2, AssertCurrentIsComplete(1, 2, 3));

        var log = await KillAt(3, step);
        Assert.Contains($"stopped at {step}{(step.Contains(':') ? "" : ":0")}", log);

        Assert.Equal(swapped ? 3 : 2, AssertCurrentIsComplete(1, 2, 3));
        var next = await RunToEnd(3);
        Assert.Equal(3, AssertCurrentIsComplete(3));
        AssertNoLeftovers();
        output.WriteLine($"{step}: {next.Stdout.Split('\n').FirstOrDefault()} / {(swapped ? "unchanged" : "published")}: {next.Stdout.Contains("unchanged")}");
        Assert.Equal(swapped, next.Stdout.Contains("unchanged\n"));
    }

    [Fact]
    public async Task SIGKILL_while_removing_a_killed_runs_staging_tree_is_survived_too()
    {
        WriteSources();
        await RunToEnd(1);
        await KillAt(2, "link:250");
        Assert.Equal(1, AssertCurrentIsComplete(1, 2));
        var log = await KillAt(2, "leftover-delete:250");
        Assert.Contains("stopped at leftover-delete:250", log);
        Assert.Equal(1, AssertCurrentIsComplete(1, 2));
        await RunToEnd(2);
        Assert.Equal(2, AssertCurrentIsComplete(2));
        AssertNoLeftovers();
    }

    [Fact]
    public async Task SIGKILL_at_random_points_of_24_runs_never_leaves_current_incomplete_and_the_next_run_converges()
    {
        WriteSources();
        await RunToEnd(1);
        var watch = Stopwatch.StartNew();
        await RunToEnd(2);
        var runTime = watch.Elapsed;
        var random = new Random(Environment.TickCount);
        var phases = new Dictionary<string, int>();
        var version = 2;
        var steps = Steps.Select(row => ((string)row[0]).Split(':')[0]).Distinct().ToList();
        for (var round = 0; round < 24; round++)
        {
            var next = version % 3 + 1;
            string where;
            if (round % 2 == 0)
            {
                // A random moment: anywhere from process start to a little after a typical run's end.
                var delay = TimeSpan.FromMilliseconds(random.Next((int)(runTime.TotalMilliseconds * 1.2) + 1));
                var env = new Dictionary<string, string?> { ["RELEASE_TEST_TRACE"] = "1" };
                using var process = Process.Start(ProcessRunner.StartInfo(RepoPaths.TestDriver, ["release-run", Dest, Source(next), .. Options], env))!;
                var lastStep = "start";
                process.ErrorDataReceived += (_, e) => { if (e.Data?.StartsWith("step ") == true) lastStep = e.Data[5..]; };
                process.BeginErrorReadLine();
                process.BeginOutputReadLine();
                await Task.Delay(delay);
                var killed = !process.HasExited;
                if (killed) process.Kill();
                await process.WaitForExitAsync();
                where = killed ? $"random {delay.TotalMilliseconds:F0} ms, in {lastStep}" : "random, finished";
                phases[killed ? lastStep : "finished"] = phases.GetValueOrDefault(killed ? lastStep : "finished") + 1;
            }
            else
            {
                // A random step, and for counted steps a random count.
                var step = steps[random.Next(steps.Count)];
                var count = step switch { "link" => random.Next(1, 275), "write" => random.Next(1, 175), "delete" => random.Next(1, 500), "carry" => 1, _ => 0 };
                await KillAt(next, count > 0 ? $"{step}:{count}" : step);
                where = count > 0 ? $"{step}:{count}" : step;
                phases[step] = phases.GetValueOrDefault(step) + 1;
            }
            var served = AssertCurrentIsComplete(version, next);
            output.WriteLine($"round {round}: killed at {where}; current is version {served}");
            version = served;
            if (round % 6 == 5)
            {
                // Every few rounds a run to the end: it converges from whatever the kills left.
                var target = version % 3 + 1;
                await RunToEnd(target);
                Assert.Equal(target, AssertCurrentIsComplete(target));
                AssertNoLeftovers();
                version = target;
            }
        }
        output.WriteLine("kills by phase: " + string.Join(", ", phases.OrderBy(p => p.Key).Select(p => $"{p.Key} {p.Value}")));
        var final = version % 3 + 1;
        await RunToEnd(final);
        Assert.Equal(final, AssertCurrentIsComplete(final));
        AssertNoLeftovers();
    }

    [Fact]
    public async Task The_check_fails_on_a_release_that_is_not_complete()
    {
        // The invariant check itself: a release missing one file, or with one byte changed, is no version.
        WriteSources();
        await RunToEnd(1);
        var current = Path.Join(Dest, "current");
        var victim = Directory.EnumerateFiles(current, "*.html", SearchOption.AllDirectories).First();
        var bytes = File.ReadAllBytes(victim);
        File.Delete(victim);
        Assert.ThrowsAny<Xunit.Sdk.XunitException>(() => AssertCurrentIsComplete(1));
        bytes[0] ^= 1;
        File.WriteAllBytes(victim, bytes);
        Assert.ThrowsAny<Xunit.Sdk.XunitException>(() => AssertCurrentIsComplete(1));
        bytes[0] ^= 1;
        File.WriteAllBytes(victim, bytes);
        Assert.Equal(1, AssertCurrentIsComplete(1));
        Directory.CreateDirectory(Path.Join(Dest, "releases", ".staging-0123456789abcdef"));
        Assert.ThrowsAny<Xunit.Sdk.XunitException>(AssertNoLeftovers);
    }
}
