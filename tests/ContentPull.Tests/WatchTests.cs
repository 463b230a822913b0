using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Text;
using InfraTools.Http;

namespace InfraTools.Tests;

/// <summary>A content-pull --watch process (the AOT binary) with its log lines collected as they come.</summary>
public sealed class Watcher : IDisposable
{
    private readonly Process _process;
    private readonly ConcurrentQueue<string> _lines = new();

    public Watcher(PullSandbox box, Dictionary<string, string?> env, params string[] extra)
    {
        _process = new Process
        {
            StartInfo = ProcessRunner.StartInfo(RepoPaths.Tool("content-pull"),
                [box.Source(), box.Dest, "--delete", "--state-dir", box.State, "--metrics-file", box.Metrics, "--watch", .. extra], env),
        };
        _process.OutputDataReceived += (_, e) => { if (e.Data is not null) _lines.Enqueue(e.Data); };
        _process.ErrorDataReceived += (_, e) => { if (e.Data is not null) _lines.Enqueue(e.Data); };
        _process.Start();
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();
    }

    public string[] Lines => [.. _lines];
    public string Log => string.Join('\n', _lines);
    public int Count(string text) => Lines.Count(l => l.Contains(text, StringComparison.Ordinal));

    /// <summary>Waits (bounded) until <paramref name="condition"/> holds.</summary>
    public async Task UntilAsync(Func<bool> condition, string what, TimeSpan? timeout = null)
    {
        var clock = Stopwatch.StartNew();
        while (!condition() && clock.Elapsed < (timeout ?? TimeSpan.FromSeconds(30)) && !_process.HasExited) await Task.Delay(50);
        Assert.True(condition(), $"{what}\n{Log}");
    }

    public Task LoggedAsync(string text, int times = 1, TimeSpan? timeout = null) =>
        UntilAsync(() => Count(text) >= times, $"'{text}' not logged {times} time(s)", timeout);

    public void Terminate() => _process.Kill(false); // SIGKILL: only for cleanup

    public void Signal(int signal) => Assert.Equal(0, InfraTools.Interop.Libc.Kill(_process.Id, signal));

    public async Task<int> ExitAsync(TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        await _process.WaitForExitAsync(cts.Token);
        _process.WaitForExit();
        return _process.ExitCode;
    }

    public void Dispose()
    {
        if (!_process.HasExited) { _process.Kill(true); _process.WaitForExit(); }
        _process.Dispose();
    }
}

/// <summary>content-pull --watch against the real S3 server: polls, signed triggers, outages, SIGTERM.</summary>
public class WatchTests
{
    private const string Secret = "test-deploy-secret";
    private static readonly Dictionary<string, byte[]> Site = new() { ["index.html"] = "v1"u8.ToArray(), ["assets/app.js"] = "js1"u8.ToArray() };

    private static async Task<HttpResponseMessage> DeployAsync(int port, string body, string? signature)
    {
        using var http = new HttpClient();
        using var request = new HttpRequestMessage(HttpMethod.Post, $"http://127.0.0.1:{port}/deploy") { Content = new StringContent(body) };
        if (signature is not null) request.Headers.TryAddWithoutValidation("X-Hub-Signature-256", signature);
        return await http.SendAsync(request);
    }

    private static string Sign(string body) => HubSignature.Sign(Encoding.UTF8.GetBytes(Secret), Encoding.UTF8.GetBytes(body));

    [Fact]
    public async Task A_changed_manifest_is_pulled_at_the_next_poll_and_an_idle_watcher_only_polls()
    {
        using var box = await PullSandbox.CreateAsync("watch-poll");
        await box.PutAsync(Site);
        using var proxy = FaultyS3.InFrontOf(box.Server);
        using var watcher = new Watcher(box, proxy.Environment(box.Server), "--poll", "200ms");
        await watcher.LoggedAsync("pulled ");
        box.AssertMirrors(Site);

        // Idle: for 2 s only the conditional GETs of the manifest reach S3 (about 10 at 200 ms).
        var before = proxy.Requests.Count;
        await Task.Delay(TimeSpan.FromSeconds(2));
        var idle = proxy.Requests.Skip(before).ToList();
        Assert.InRange(idle.Count, 3, 20);
        Assert.All(idle, r => Assert.Equal(("GET", ".release.json"), (r.Method, r.Key)));
        Assert.Equal(1, watcher.Count("pulled "));

        // A new version published as CI does (changed files, then the release manifest last): pulled once, at the next poll.
        var v2 = new Dictionary<string, byte[]>(Site) { ["index.html"] = "v2"u8.ToArray() };
        var build = Path.Combine(box.Root, "build");
        foreach (var (path, content) in v2)
        {
            Directory.CreateDirectory(Path.GetDirectoryName(Path.Combine(build, path))!);
            File.WriteAllBytes(Path.Combine(build, path), content);
        }
        var publish = await ProcessRunner.RunAsync(RepoPaths.Tool("content-pull"), ["publish", build, box.Source()], box.Server.Environment());
        Assert.True(publish.ExitCode == 0, publish.ToString());
        await watcher.LoggedAsync("pulled ", 2);
        Assert.Equal("v2", File.ReadAllText(Path.Combine(box.Dest, "index.html")));
        await Task.Delay(TimeSpan.FromSeconds(1));
        Assert.Equal(2, watcher.Count("pulled "));
        Assert.Contains(watcher.Lines, l => l.Contains("pulling (.release.json changed)", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Deploy_triggers_need_the_signature_of_their_body_and_a_burst_causes_at_most_two_pulls()
    {
        using var box = await PullSandbox.CreateAsync("watch-hook");
        await box.PutAsync(Site);
        var port = Net.FreePort();
        var env = box.Server.Environment(("CONTENT_PULL_DEPLOY_SECRET", Secret));
        using var watcher = new Watcher(box, env, "--poll", "1h", "--listen", $"127.0.0.1:{port}");
        await watcher.LoggedAsync("pulled ");
        using var http = new HttpClient();
        Assert.Equal(HttpStatusCode.OK, (await http.GetAsync($"http://127.0.0.1:{port}/health")).StatusCode);

        const string body = "{\"ref\":\"refs/heads/main\",\"marker\":\"BODY-MUST-NOT-BE-LOGGED\"}";
        Assert.Equal(HttpStatusCode.Unauthorized, (await DeployAsync(port, body, null)).StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, (await DeployAsync(port, body, "sha256=" + new string('0', 64))).StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, (await DeployAsync(port, body, "sha256=nothex")).StatusCode);
        // A signature seen on the wire, replayed with another body.
        Assert.Equal(HttpStatusCode.Unauthorized, (await DeployAsync(port, body.Replace("main", "evil"), Sign(body))).StatusCode);
        await Task.Delay(300);
        Assert.Equal(1, watcher.Count("pulled "));

        // 50 signed triggers at once: one pull runs, the rest wait as one more.
        var answers = await Task.WhenAll(Enumerable.Range(0, 50).Select(_ => DeployAsync(port, body, Sign(body))));
        Assert.All(answers, a => Assert.Equal(HttpStatusCode.Accepted, a.StatusCode));
        await watcher.LoggedAsync("pulled ", 2);
        await Task.Delay(TimeSpan.FromSeconds(1.5));
        Assert.InRange(watcher.Count("pulling (deploy trigger)"), 1, 2);
        Assert.DoesNotContain("BODY-MUST-NOT-BE-LOGGED", watcher.Log);
        Assert.DoesNotContain(Secret, watcher.Log);
        Assert.Equal(4, watcher.Count("deploy trigger refused"));
    }

    [Fact]
    public async Task Health_is_503_until_a_pull_succeeded_and_an_outage_is_logged_once_and_recovered()
    {
        using var box = await PullSandbox.CreateAsync("watch-outage");
        await box.PutAsync(Site);
        using var proxy = FaultyS3.InFrontOf(box.Server);
        var down = true;
        proxy.When(_ => Volatile.Read(ref down), new Fault.CloseAfter(0));
        var port = Net.FreePort();
        using var watcher = new Watcher(box, proxy.Environment(box.Server), "--poll", "200ms", "--listen", $"127.0.0.1:{port}");
        using var http = new HttpClient();
        await watcher.LoggedAsync("polling failed");
        Assert.Equal(HttpStatusCode.ServiceUnavailable, (await http.GetAsync($"http://127.0.0.1:{port}/health")).StatusCode);

        // S3 gone for a minute: polls keep failing (about 300 of them), each state change is logged once, the pull is retried with backoff.
        await Task.Delay(TimeSpan.FromSeconds(60));
        Assert.Equal(1, watcher.Count("polling failed"));
        Assert.Equal(1, watcher.Count("retrying with backoff"));
        var metrics = await http.GetStringAsync($"http://127.0.0.1:{port}/metrics");
        Assert.Contains("content_pull_watch_last_poll_success 0", metrics.Split('\n'));
        Assert.Contains("content_pull_watch_healthy 0", metrics.Split('\n'));
        // Backoff: 2 s, 4 s, 8 s, 16 s, 32 s ... at most 6 attempts in a minute, at least 4.
        Assert.InRange(watcher.Count("pulling ("), 4, 7);

        Volatile.Write(ref down, false);
        await watcher.LoggedAsync("polling works again");
        await watcher.LoggedAsync("pulled ", timeout: TimeSpan.FromSeconds(70));
        box.AssertMirrors(Site);
        Assert.Equal(HttpStatusCode.OK, (await http.GetAsync($"http://127.0.0.1:{port}/health")).StatusCode);
        await watcher.LoggedAsync("pulls succeed again");
        Assert.Equal(1, box.MetricValue("content_pull_watch_healthy"));
        Assert.Equal(1, box.MetricValue("content_pull_last_run_success"));
    }

    [Fact]
    public async Task SIGTERM_during_a_pull_lets_it_finish_within_the_grace_period_and_exits_0()
    {
        using var box = await PullSandbox.CreateAsync("watch-term");
        await box.PutAsync(Site);
        using var proxy = FaultyS3.InFrontOf(box.Server);
        // The first download of app.js takes 2 s (headers, then the body after a pause): a pull is running when SIGTERM comes.
        var slow = proxy.When(r => r.IsGetObject && r.Key == "assets/app.js", new Fault.Answer(r =>
        {
            Thread.Sleep(2000);
            return FaultResponse.Make(200, "js1", "application/javascript");
        }), times: 1);
        using var watcher = new Watcher(box, proxy.Environment(box.Server), "--poll", "1h", "--stop-grace", "20s");
        await watcher.UntilAsync(() => proxy.Hits(slow) == 1, "the slow download did not start");
        watcher.Signal(15);
        Assert.Equal(0, await watcher.ExitAsync(TimeSpan.FromSeconds(30)));
        Assert.Contains("letting the running pull finish", watcher.Log);
        Assert.Equal(1, watcher.Count("pulled "));
        box.AssertMirrors(Site);
    }

    [Fact]
    public async Task Watch_options_are_refused_without_watch_and_a_dry_run_cannot_watch()
    {
        using var box = await PullSandbox.CreateAsync("watch-usage");
        var noWatch = await box.PullAsync("--poll", "1s");
        Assert.Equal(2, noWatch.ExitCode);
        Assert.Contains("--poll only applies with --watch", noWatch.Stderr);
        var dry = await box.PullAsync("--watch", "--dry-run");
        Assert.Equal(2, dry.ExitCode);
        Assert.Contains("--watch and --dry-run cannot be combined", dry.Stderr);
        Assert.False(Directory.Exists(box.Dest));
    }
}
