using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using InfraTools.Backup;
using InfraTools.Backup.Tsdb;
using static InfraTools.Tests.Tsdb.TsdbFixtures;

namespace InfraTools.Tests.Tsdb;

/// <summary>
/// Incremental snapshots of a real Prometheus (Debian's 2.42): data backfilled with promtool into 2 h blocks,
/// snapshots through the admin API, pushed to the real S3 server; restored snapshots served by a fresh Prometheus.
/// </summary>
public class TsdbPrometheusTests
{
    private const int Series = 50;
    private const int StepSeconds = 60;
    private const long Window = 7200;
    private static readonly S3Server Server = S3Server.Shared;

    private static async Task<ProcessResult> BackupOk(params string[] args)
    {
        var result = await ProcessRunner.RunAsync(RepoPaths.Tool("backup"), args, Server.Environment(), timeout: TimeSpan.FromMinutes(5));
        Assert.True(result.ExitCode == 0, string.Join(' ', args) + "\n" + result);
        return result;
    }

    /// <summary>The sample value of a series at a time: series * 1e6 + minutes since the first window.</summary>
    private static double Value(int series, long time, long start) => series * 1_000_000 + (time - start) / 60;

    /// <summary>OpenMetrics text with every series of <paramref name="windows"/> (2 h windows from <paramref name="start"/>), one sample a minute.</summary>
    private static string OpenMetrics(long start, params int[] windows)
    {
        var text = new StringBuilder("# HELP tsdb_backup_sample A known sample.\n# TYPE tsdb_backup_sample gauge\n");
        for (var s = 0; s < Series; s++)
            foreach (var w in windows)
                for (var t = start + w * Window; t < start + (w + 1) * Window; t += StepSeconds)
                    text.Append(CultureInfo.InvariantCulture, $"tsdb_backup_sample{{series=\"{s}\"}} {Value(s, t, start)} {t}\n");
        return text.Append("# EOF\n").ToString();
    }

    private static async Task BackfillAsync(TempDir dir, string data, long start, params int[] windows)
    {
        var input = dir.Write($"backfill-{string.Join('-', windows)}.om", OpenMetrics(start, windows));
        var result = await ProcessRunner.RunAsync("promtool", ["tsdb", "create-blocks-from", "openmetrics", "--quiet", input, data], timeout: TimeSpan.FromMinutes(2));
        Assert.True(result.ExitCode == 0, result.ToString());
    }

    private sealed class Prometheus : IAsyncDisposable
    {
        private readonly Process _process;
        public int Port { get; }
        public string Url => $"http://127.0.0.1:{Port}";

        private Prometheus(Process process, int port) { _process = process; Port = port; }

        /// <summary>Starts Prometheus on <paramref name="data"/>; no compaction (max block duration 2 h), so the blocks are exactly those the test made.</summary>
        public static async Task<Prometheus> StartAsync(TempDir dir, string data, bool admin, bool scrapeSelf)
        {
            var port = Net.FreePort();
            var config = dir.Write($"prometheus-{port}.yml", scrapeSelf
                ? $"global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: self\n    static_configs:\n      - targets: ['127.0.0.1:{port}']\n"
                : "global:\n  scrape_interval: 1m\n");
            var log = dir.Combine($"prometheus-{port}.log");
            var flags = admin ? "--web.enable-admin-api" : "";
            var process = Process.Start(ProcessRunner.StartInfo("sh", ["-c",
                $"exec prometheus --config.file={config} --storage.tsdb.path={data} --web.listen-address=127.0.0.1:{port} --storage.tsdb.max-block-duration=2h --storage.tsdb.retention.time=30d {flags} > {log} 2>&1"]))!;
            var prometheus = new Prometheus(process, port);
            try
            {
                await Net.GetWhenUpAsync($"{prometheus.Url}/-/ready", TimeSpan.FromSeconds(60));
            }
            catch
            {
                await prometheus.DisposeAsync();
                throw new InvalidOperationException("Prometheus did not get ready:\n" + File.ReadAllText(log));
            }
            return prometheus;
        }

        /// <summary>Waits (bounded) until the head holds a few samples of its own scrape, so a snapshot has a head block.</summary>
        public async Task WaitForHeadSamplesAsync()
        {
            var deadline = DateTime.UtcNow.AddSeconds(60);
            while (DateTime.UtcNow < deadline)
            {
                using var json = JsonDocument.Parse(await Net.GetWhenUpAsync($"{Url}/api/v1/query?query=up[1m]", TimeSpan.FromSeconds(10)));
                var result = json.RootElement.GetProperty("data").GetProperty("result");
                if (result.GetArrayLength() > 0 && result[0].GetProperty("values").GetArrayLength() >= 3) return;
                await Task.Delay(500);
            }
            throw new TimeoutException("Prometheus stored no samples of its own scrape within 60 s");
        }

        public async Task PostAsync(string pathAndQuery)
        {
            using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(60) };
            using var response = await http.PostAsync($"{Url}{pathAndQuery}", null);
            Assert.True(response.IsSuccessStatusCode, $"POST {pathAndQuery}: {(int)response.StatusCode} {await response.Content.ReadAsStringAsync()}");
        }

        /// <summary>tsdb_backup_sample at <paramref name="time"/>: series label → value.</summary>
        public async Task<Dictionary<string, double>> SamplesAtAsync(long time)
        {
            using var json = JsonDocument.Parse(await Net.GetWhenUpAsync($"{Url}/api/v1/query?query=tsdb_backup_sample&time={time}", TimeSpan.FromSeconds(10)));
            return json.RootElement.GetProperty("data").GetProperty("result").EnumerateArray().ToDictionary(
                r => r.GetProperty("metric").GetProperty("series").GetString()!,
                r => double.Parse(r.GetProperty("value")[1].GetString()!, CultureInfo.InvariantCulture));
        }

        public async ValueTask DisposeAsync()
        {
            if (!_process.HasExited) _process.Kill();
            await _process.WaitForExitAsync();
            _process.Dispose();
        }
    }

    /// <summary>Snapshots through the admin API, pushes incrementally, deletes the local snapshot.</summary>
    private static async Task<(TsdbPushResult Result, List<string> Blocks)> SnapshotAndPushAsync(Prometheus prometheus, string data, CountingStore store)
    {
        await Task.Delay(1100); // snapshot names have one-second resolution
        var snapshot = await PrometheusSnapshotApi.CreateAsync(new Uri(prometheus.Url + "/"), data, CancellationToken.None);
        try
        {
            var blocks = Directory.GetDirectories(snapshot).Select(d => Path.GetFileName(d)).Order(StringComparer.Ordinal).ToList();
            store.Reset();
            var (log, lines) = Logger();
            var result = await TsdbBackup.PushAsync(store, snapshot, new TsdbPushOptions { Source = Path.GetFileName(snapshot) }, log, CancellationToken.None);
            Assert.True(result.Complete, lines.ToString());
            return (result, blocks);
        }
        finally
        {
            Directory.Delete(snapshot, recursive: true);
        }
    }

    [Fact]
    public async Task The_second_snapshot_uploads_only_new_blocks_and_every_snapshot_restores_to_a_Prometheus_that_answers()
    {
        var (store, client, bucket) = await NewStoreAsync("tsdb-prom");
        using var _ = client;
        using var dir = new TempDir("tsdbprom");
        var data = dir.Combine("data");
        // Four 2 h windows two days ago: 0-2 now, 3 later.
        var start = (DateTimeOffset.UtcNow.ToUnixTimeSeconds() - 2 * 86400) / Window * Window;
        long Mid(int window) => start + window * Window + Window / 2;
        await BackfillAsync(dir, data, start, 0, 1, 2);
        var backfilled = Directory.GetDirectories(data).Select(Path.GetFileName).Where(BlockUlid.IsValid).ToList();
        Assert.Equal(3, backfilled.Count);

        string fullCopy;
        TsdbPushResult first, second, third;
        List<string> blocks1, blocks2, blocks3;
        long requestsBefore;
        await using (var prometheus = await Prometheus.StartAsync(dir, data, admin: true, scrapeSelf: true))
        {
            await prometheus.WaitForHeadSamplesAsync();
            // A full copy as earlier versions wrote it (and `backup push --snapshot DIR` of any tree still does), by the AOT
            // binary: it must stay restorable beside the incremental snapshots.
            var fullSnapshot = await PrometheusSnapshotApi.CreateAsync(new Uri(prometheus.Url + "/"), data, CancellationToken.None);
            await BackupOk("push", "--snapshot", fullSnapshot, $"s3://{bucket}/prometheus/");
            Directory.Delete(fullSnapshot, recursive: true);
            fullCopy = Assert.Single(Catalog.List(await store.Tsdb.ListAsync("", CancellationToken.None)), s => s.Kind == SnapshotKind.FullCopy).Name;

            (first, blocks1) = await SnapshotAndPushAsync(prometheus, data, store);
            Assert.Equal(4, blocks1.Count); // three backfilled blocks and the head cut
            Assert.Equal(4, first.BlocksNew);
        }

        // A day later: a new 2 h block (backfilled here; Prometheus would have cut it from its head), series 0 deleted in window 1.
        await BackfillAsync(dir, data, start, 3);
        await using (var prometheus = await Prometheus.StartAsync(dir, data, admin: true, scrapeSelf: true))
        {
            await prometheus.WaitForHeadSamplesAsync();
            await prometheus.PostAsync($"/api/v1/admin/tsdb/delete_series?match[]=tsdb_backup_sample%7Bseries%3D%220%22%7D&start={start + Window}&end={start + 2 * Window - 1}");
            requestsBefore = client.RequestsSent;
            (second, blocks2) = await SnapshotAndPushAsync(prometheus, data, store);
            var sentRequests = client.RequestsSent - requestsBefore;
            var newBlocks = blocks2.Except(blocks1).ToList();
            Assert.Equal(2, newBlocks.Count); // window 3 and the new head cut; the three others are the same blocks
            var changed = Assert.Single(second.Manifest!.Blocks, b => b.Files.Any(f => f.Key != $"blocks/{b.Ulid}/{f.Path}")); // window 1: its variants
            var uploadedBlockKeys = store.PutKeys.Where(k => k.StartsWith("blocks/", StringComparison.Ordinal)).Order(StringComparer.Ordinal).ToList();
            var expectedKeys = second.Manifest.Blocks.Where(b => newBlocks.Contains(b.Ulid)).SelectMany(b => b.Files).Select(f => f.Key)
                .Concat(changed.Files.Where(f => f.Path is "meta.json" or "tombstones").Select(f => f.Key)).Order(StringComparer.Ordinal).ToList();
            Assert.NotEmpty(expectedKeys);
            Assert.Equal(expectedKeys, uploadedBlockKeys); // only the new blocks, and the rewritten meta.json and tombstones of window 1
            var expectedBytes = second.Manifest.Blocks.Where(b => newBlocks.Contains(b.Ulid)).Sum(b => b.Bytes)
                + changed.Files.Where(f => f.Path is "meta.json" or "tombstones").Sum(f => f.Size);
            Assert.Equal(expectedBytes, second.UploadedBytes);
            Assert.Equal(expectedBytes + second.Manifest.Serialize().Length, store.PutBytes);
            var kept = second.Manifest.Blocks.Where(b => !newBlocks.Contains(b.Ulid)).SelectMany(b => b.Files).Where(f => !changed.Files.Contains(f) || f.Path is not ("meta.json" or "tombstones"));
            Assert.Equal(kept.Sum(f => f.Size), second.ReusedBytes); // the three old blocks' index and chunks were not sent again
            Assert.True(second.ReusedBytes > 0);
            // On the wire: one request per upload (all single-part here) and per listing page, nothing else.
            Assert.Equal(store.Puts + store.Lists, sentRequests);
            Assert.Equal(3, store.Lists);

            await prometheus.PostAsync("/api/v1/admin/tsdb/clean_tombstones"); // rewrites window 1 as a new block
            (third, blocks3) = await SnapshotAndPushAsync(prometheus, data, store);
            var newInThird = blocks3.Except(blocks2).ToList();
            Assert.Equal(2, newInThird.Count); // the cleaned window-1 block (new ULID) and the new head cut
            Assert.DoesNotContain(changed.Ulid, blocks3);
            Assert.Equal(Keys3(third.Manifest!, newInThird), store.PutKeys.Where(k => k.StartsWith("blocks/", StringComparison.Ordinal)).Order(StringComparer.Ordinal));
        }

        // Restores: each snapshot, into a fresh directory, served by a fresh Prometheus, holds exactly its samples.
        var expected = new Dictionary<string, (bool Window1Series0, bool Window3)>
        {
            [fullCopy] = (true, false),
            [first.Name] = (true, false),
            [second.Name] = (false, true),
            [third.Name] = (false, true),
        };
        foreach (var (name, (window1Series0, window3)) in expected)
        {
            var restored = dir.Combine("restored-" + name);
            if (name == third.Name || name == fullCopy)
            {
                // The AOT binary: the newest snapshot by default, the full copy by name.
                var restore = await BackupOk(["restore", .. name == fullCopy ? new[] { "--snapshot", name } : [], $"s3://{bucket}/prometheus/", restored]);
                Assert.Contains(name == fullCopy ? name + "/ (full copy)" : BucketLayout.ManifestKey(name), Assert.Single(restore.Stderr.Split('\n'), l => l.Contains("restored snapshot", StringComparison.Ordinal)));
            }
            else
            {
                var result = await TsdbRestore.RestoreAsync(store, restored, new TsdbRestoreOptions { Snapshot = name }, Logger().Log, CancellationToken.None);
                Assert.Equal((name, 0L), (result.Snapshot.Name, result.Failed));
            }
            await AssertServesAsync(dir, restored, start, Mid, window1Series0, window3);
        }

        // Retention: keep the newest two. The full copy and the first snapshot go; of the blocks, only what neither kept snapshot names.
        var pruned = await TsdbBackup.PruneAsync(store, new RetentionPolicy(2, BlockGrace: TimeSpan.Zero), third.Name, Logger().Log, CancellationToken.None);
        Assert.Equal([fullCopy, first.Name], pruned.Pruned.Select(s => s.Name));
        var stored = (await store.Tsdb.ListAsync("", CancellationToken.None)).Select(o => o.Key).ToHashSet();
        var needed = second.Manifest!.Keys.Concat(third.Manifest!.Keys).ToHashSet();
        Assert.Subset(stored, needed);
        var onlyFirst = first.Manifest!.Keys.Except(needed).ToList();
        Assert.NotEmpty(onlyFirst); // the first head cut, the first versions of window 1's meta.json and tombstones
        Assert.Empty(onlyFirst.Intersect(stored));
        Assert.DoesNotContain(stored, k => k.StartsWith(fullCopy + "/", StringComparison.Ordinal));
        Assert.Equal(needed.Count + 2, stored.Count); // and the two manifests

        var afterPrune = dir.Combine("restored-after-prune");
        await TsdbRestore.RestoreAsync(store, afterPrune, new TsdbRestoreOptions { Snapshot = second.Name }, Logger().Log, CancellationToken.None);
        await AssertServesAsync(dir, afterPrune, start, Mid, window1Series0: false, window3: true);
    }

    private static List<string> Keys3(SnapshotManifest manifest, List<string> ulids) =>
        manifest.Blocks.Where(b => ulids.Contains(b.Ulid)).SelectMany(b => b.Files).Select(f => f.Key).Order(StringComparer.Ordinal).ToList();

    private static async Task AssertServesAsync(TempDir dir, string restored, long start, Func<int, long> mid, bool window1Series0, bool window3)
    {
        await using var prometheus = await Prometheus.StartAsync(dir, restored, admin: false, scrapeSelf: false);
        var w0 = await prometheus.SamplesAtAsync(mid(0));
        Assert.Equal(Enumerable.Range(0, Series).ToDictionary(s => s.ToString(CultureInfo.InvariantCulture), s => Value(s, mid(0), start)), w0);
        var w1 = await prometheus.SamplesAtAsync(mid(1));
        Assert.Equal(window1Series0, w1.ContainsKey("0"));
        Assert.Equal(Value(1, mid(1), start), w1["1"]);
        var w3 = await prometheus.SamplesAtAsync(mid(3));
        Assert.Equal(window3 ? Series : 0, w3.Count);
        if (window3) Assert.Equal(Value(2, mid(3), start), w3["2"]);
    }
}
