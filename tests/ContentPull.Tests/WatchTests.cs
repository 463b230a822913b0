using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Text;
using System.Text.Json;
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

    public int SignalUntilExited(int signal, int most) => ProcessRunner.SignalUntilExited(_process, signal, most);

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

    /// <summary>Publishes <paramref name="site"/> as CI does: `content-pull publish` (changed files, then the release manifest last), straight to the server.</summary>
    private static async Task PublishAsync(PullSandbox box, IReadOnlyDictionary<string, byte[]> site)
    {
        var build = Path.Combine(box.Root, "build");
        if (Directory.Exists(build)) Directory.Delete(build, true);
        foreach (var (path, content) in site)
        {
            Directory.CreateDirectory(Path.GetDirectoryName(Path.Combine(build, path))!);
            File.WriteAllBytes(Path.Combine(build, path), content);
        }
        var publish = await ProcessRunner.RunAsync(RepoPaths.Tool("content-pull"), ["publish", build, box.Source()], box.Server.Environment());
        Assert.True(publish.ExitCode == 0, publish.ToString());
    }

    private static string CurrentTarget(PullSandbox box) => new FileInfo(Path.Join(box.Dest, "current")).LinkTarget ?? "";

    private static async Task<string> AwsAsync(S3Server server, params string[] args)
    {
        var env = new Dictionary<string, string?>
        {
            ["AWS_ACCESS_KEY_ID"] = server.AccessKey, ["AWS_SECRET_ACCESS_KEY"] = server.SecretKey, ["AWS_DEFAULT_REGION"] = "us-east-1", ["AWS_CA_BUNDLE"] = null,
        };
        var result = await ProcessRunner.RunAsync("/usr/bin/aws", ["--endpoint-url", server.Endpoint, .. args], env);
        Assert.True(result.ExitCode == 0, result.ToString());
        return result.Stdout;
    }

    private static async Task<HttpResponseMessage> NotifyAsync(int port, string body)
    {
        using var http = new HttpClient();
        return await http.PostAsync($"http://127.0.0.1:{port}/notify", new StringContent(body));
    }

    /// <summary>An S3 event as RGW sends it (only the fields the watcher reads, plus a few).</summary>
    private static string Event(string bucket, string key) =>
        """{"Records":[{"eventVersion":"2.2","eventSource":"ceph:s3","eventName":"ObjectCreated:Put","s3":{"bucket":{"name":"BUCKET"},"object":{"key":"KEY","size":3}}}]}"""
            .Replace("BUCKET", bucket).Replace("KEY", key);

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
        var connections = proxy.ConnectionsAccepted;

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
        // The pull went over the connections the watcher already had open (polls and pulls share one client).
        Assert.Equal(connections, proxy.ConnectionsAccepted);
        await Task.Delay(TimeSpan.FromSeconds(1));
        Assert.Equal(2, watcher.Count("pulled "));
        Assert.Contains(watcher.Lines, l => l.Contains("pulling (.release.json changed)", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Deploy_triggers_need_the_signature_of_their_body_and_a_burst_during_a_pull_causes_one_more_pull()
    {
        using var box = await PullSandbox.CreateAsync("watch-hook");
        await box.PutAsync(Site);
        using var proxy = FaultyS3.InFrontOf(box.Server);
        var port = Net.FreePort();
        var env = proxy.Environment(box.Server, ("CONTENT_PULL_DEPLOY_SECRET", Secret));
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

        // One signed trigger starts a pull, held at its listing (the proxy waits on a gate), so the burst that
        // follows surely arrives during that pull: the 49 triggers must cause exactly one more pull, not 49
        // (and not "at most two" of a race between the burst and a fast pull).
        using var gate = new ManualResetEventSlim();
        var before = proxy.Requests.Count;
        proxy.When(r => r.IsListing, new Fault.Rewrite((_, _) => gate.Wait(TimeSpan.FromSeconds(30))), times: 1);
        try
        {
            Assert.Equal(HttpStatusCode.Accepted, (await DeployAsync(port, body, Sign(body))).StatusCode);
            await watcher.UntilAsync(() => proxy.Requests.Skip(before).Any(r => r.IsListing), "the triggered pull never listed");
            var answers = await Task.WhenAll(Enumerable.Range(0, 49).Select(_ => DeployAsync(port, body, Sign(body))));
            Assert.All(answers, a => Assert.Equal(HttpStatusCode.Accepted, a.StatusCode));
            Assert.Equal(1, watcher.Count("pulled "));
        }
        finally { gate.Set(); }
        await watcher.LoggedAsync("pulled ", 3);
        await Task.Delay(TimeSpan.FromSeconds(1.5));
        Assert.Equal(2, watcher.Count("pulling (deploy trigger)"));
        Assert.Equal(3, watcher.Count("pulled "));
        Assert.DoesNotContain("BODY-MUST-NOT-BE-LOGGED", watcher.Log);
        Assert.DoesNotContain(Secret, watcher.Log);
        Assert.Equal(4, watcher.Count("deploy trigger refused"));
    }

    [Fact]
    public async Task Health_is_503_until_a_pull_succeeded_and_an_outage_of_radosgw_is_logged_once_and_recovered()
    {
        // A server of its own: radosgw really stops (scripts/s3-server-stop.sh --rgw-only) and starts again.
        var server = S3Server.StartDedicated();
        try
        {
            using var box = await PullSandbox.CreateAsync("watch-outage", server);
            await box.PutAsync(Site);
            await server.StopGatewayAsync();
            var port = Net.FreePort();
            using var watcher = new Watcher(box, server.Environment(), "--poll", "200ms", "--listen", $"127.0.0.1:{port}");
            using var http = new HttpClient();
            await watcher.LoggedAsync("polling failed");
            Assert.Equal(HttpStatusCode.ServiceUnavailable, (await http.GetAsync($"http://127.0.0.1:{port}/health")).StatusCode);

            // S3 gone for over a minute: polls keep failing (about 350 of them), each state change is logged once, the
            // pull is retried with backoff.
            await Task.Delay(TimeSpan.FromSeconds(70));
            Assert.Equal(1, watcher.Count("polling failed"));
            Assert.Equal(1, watcher.Count("retrying with backoff"));
            var metrics = await http.GetStringAsync($"http://127.0.0.1:{port}/metrics");
            Assert.Contains("content_pull_watch_last_poll_success 0", metrics.Split('\n'));
            Assert.Contains("content_pull_watch_healthy 0", metrics.Split('\n'));
            Assert.True(double.Parse(metrics.Split('\n').Single(l => l.StartsWith("content_pull_watch_polls ", StringComparison.Ordinal)).Split(' ')[1],
                System.Globalization.CultureInfo.InvariantCulture) >= 150, metrics);
            // Backoff: 2 s, 4 s, 8 s, 16 s, 32 s, 64 s: attempts at 0, 2, 6, 14, 30 and 62 s, the next at 126 s.
            Assert.InRange(watcher.Count("pulling ("), 5, 7);
            Assert.Equal(0, watcher.Count("pulled "));

            // Back: the first poll that gets an answer retries the pull at once, not at the backoff's next step
            // (126 s: the 10 s below fail without it).
            await server.StartGatewayAsync();
            await watcher.LoggedAsync("polling works again", timeout: TimeSpan.FromSeconds(30));
            await watcher.LoggedAsync("pulled ", timeout: TimeSpan.FromSeconds(10));
            Assert.Equal(1, watcher.Count("pulling (retry, S3 answers again)"));
            box.AssertMirrors(Site);
            Assert.Equal(HttpStatusCode.OK, (await http.GetAsync($"http://127.0.0.1:{port}/health")).StatusCode);
            await watcher.LoggedAsync("pulls succeed again");
            Assert.Equal(1, box.MetricValue("content_pull_watch_healthy"));
            Assert.Equal(1, box.MetricValue("content_pull_last_run_success"));
        }
        finally
        {
            server.Stop();
        }
    }

    [Fact]
    public async Task An_RGW_bucket_notification_reaches_the_listener_and_causes_the_pull_and_a_forged_one_at_most_a_poll()
    {
        using var box = await PullSandbox.CreateAsync("watch-notify");
        await PublishAsync(box, Site);
        var port = Net.FreePort();
        // docs/content-pull.md: a persistent HTTP topic pointing at the listener, and a notification filtered to the manifest key.
        var topic = await AwsAsync(box.Server, "sns", "create-topic", "--name", box.Bucket, "--attributes",
            $$"""{"push-endpoint":"http://127.0.0.1:{{port}}/notify","persistent":"true"}""");
        var arn = JsonDocument.Parse(topic).RootElement.GetProperty("TopicArn").GetString()!;
        try
        {
            await AwsAsync(box.Server, "s3api", "put-bucket-notification-configuration", "--bucket", box.Bucket, "--notification-configuration",
                """{"TopicConfigurations":[{"Id":"release","TopicArn":"ARN","Events":["s3:ObjectCreated:*"],"Filter":{"Key":{"FilterRules":[{"Name":"prefix","Value":".release.json"}]}}}]}""".Replace("ARN", arn));
            // The watcher reaches S3 through a counting proxy; the poll interval is an hour: only a notification can make it pull.
            using var proxy = FaultyS3.InFrontOf(box.Server);
            using var watcher = new Watcher(box, proxy.Environment(box.Server), "--releases", "--poll", "1h", "--listen", $"127.0.0.1:{port}");
            await watcher.LoggedAsync("pulled ");
            var first = CurrentTarget(box);

            // Unsigned events anyone could send: for the watched key, a burst causes a few conditional GETs of the
            // manifest (coalesced, 100 ms apart), nothing else and no pull; for another key or not an event, nothing.
            var before = proxy.Requests.Count;
            var answers = await Task.WhenAll(Enumerable.Range(0, 50).Select(_ => NotifyAsync(port, Event(box.Bucket, ".release.json"))));
            Assert.All(answers, a => Assert.Equal(HttpStatusCode.Accepted, a.StatusCode));
            Assert.Equal(HttpStatusCode.OK, (await NotifyAsync(port, Event(box.Bucket, "index.html"))).StatusCode);
            Assert.Equal(HttpStatusCode.OK, (await NotifyAsync(port, Event("another-bucket", ".release.json"))).StatusCode);
            Assert.Equal(HttpStatusCode.BadRequest, (await NotifyAsync(port, "{\"not\":\"an event\"}")).StatusCode);
            Assert.Equal(HttpStatusCode.BadRequest, (await NotifyAsync(port, "not json")).StatusCode);
            await Task.Delay(500);
            var caused = proxy.Requests.Skip(before).ToList();
            Assert.InRange(caused.Count, 1, 6);
            Assert.All(caused, r => Assert.Equal(("GET", ".release.json"), (r.Method, r.Key)));
            Assert.Equal(1, watcher.Count("pulled "));
            Assert.Equal(1, watcher.Count("notifications for other objects than"));

            // A real deploy: RGW POSTs the event of the manifest's PUT to /notify, the watcher polls and pulls.
            var v2 = new Dictionary<string, byte[]>(Site) { ["index.html"] = "v2"u8.ToArray() };
            await PublishAsync(box, v2);
            await watcher.LoggedAsync("pulled ", 2);
            Assert.Equal(1, watcher.Count("pulling (.release.json changed, notified)"));
            Assert.NotEqual(first, CurrentTarget(box));
            ReleaseModeTests.AssertTree(Path.Join(box.Dest, "current"), v2);
            using var http = new HttpClient();
            var metrics = (await http.GetStringAsync($"http://127.0.0.1:{port}/metrics")).Split('\n');
            var notifications = metrics.Single(l => l.StartsWith("content_pull_watch_notifications ", StringComparison.Ordinal));
            Assert.True(double.Parse(notifications.Split(' ')[1], System.Globalization.CultureInfo.InvariantCulture) >= 51, notifications);
        }
        finally
        {
            await AwsAsync(box.Server, "sns", "delete-topic", "--topic-arn", arn);
        }
    }

    [Fact]
    public async Task Watch_with_releases_puts_a_published_release_live_and_a_failed_pull_keeps_current_on_the_last_good_release()
    {
        using var box = await PullSandbox.CreateAsync("watch-releases");
        await PublishAsync(box, Site);
        using var proxy = FaultyS3.InFrontOf(box.Server);
        var failing = false;
        proxy.When(r => Volatile.Read(ref failing) && r.IsGetObject && r.Key == "index.html",
            new Fault.Answer(_ => FaultResponse.Make(403, S3Xml.Error("AccessDenied", "injected by the test"))));
        using var watcher = new Watcher(box, proxy.Environment(box.Server), "--releases", "--poll", "200ms");
        await watcher.LoggedAsync("pulled ");
        var first = CurrentTarget(box);
        ReleaseModeTests.AssertTree(Path.Join(box.Dest, "current"), Site);

        var v2 = new Dictionary<string, byte[]>(Site) { ["index.html"] = "v2"u8.ToArray() };
        await PublishAsync(box, v2);
        await watcher.LoggedAsync("pulled ", 2);
        var second = CurrentTarget(box);
        Assert.NotEqual(first, second);
        ReleaseModeTests.AssertTree(Path.Join(box.Dest, "current"), v2);

        // The next release cannot be downloaded: the pull fails, current stays on v2, the watcher retries.
        Volatile.Write(ref failing, true);
        var v3 = new Dictionary<string, byte[]>(Site) { ["index.html"] = "v3"u8.ToArray() };
        await PublishAsync(box, v3);
        await watcher.LoggedAsync("retrying with backoff");
        Assert.Equal(second, CurrentTarget(box));
        ReleaseModeTests.AssertTree(Path.Join(box.Dest, "current"), v2);
        Assert.Equal(0, box.MetricValue("content_pull_last_run_success"));

        Volatile.Write(ref failing, false);
        await watcher.LoggedAsync("pulls succeed again");
        Assert.NotEqual(second, CurrentTarget(box));
        ReleaseModeTests.AssertTree(Path.Join(box.Dest, "current"), v3);
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
    public async Task SIGTERMs_after_the_first_do_not_kill_a_watcher_that_is_stopping()
    {
        // timeout(1) signals the child and then its process group: the second SIGTERM can arrive after the watcher
        // stopped cleanly. A storm of them stands for that; before the fix 4 of 10 such runs ended with 143.
        using var box = await PullSandbox.CreateAsync("watch-terms");
        await box.PutAsync(Site);
        for (var round = 1; round <= 5; round++)
        {
            using var watcher = new Watcher(box, box.Server.Environment(), "--poll", "200ms");
            await watcher.LoggedAsync("pulled ");
            var sent = watcher.SignalUntilExited(15, 200_000);
            Assert.True(sent >= 1, $"round {round}: no SIGTERM was sent");
            Assert.True(await watcher.ExitAsync(TimeSpan.FromSeconds(30)) == 0, $"round {round} ({sent} SIGTERMs):\n{watcher.Log}");
            Assert.Contains("stopped watching", watcher.Log);
        }
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
