// bench/tsdb: bytes uploaded per day and bytes stored after N daily snapshots of a Prometheus TSDB, incremental
// snapshots (tools/backup/Tsdb, in-process) against today's full copies (`backup push --snapshot`, the AOT binary),
// both into the real S3 test server. bench/README.md says what it simulates; the results are in bench/RESULTS.md.
using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using InfraTools.Backup;
using InfraTools.Backup.Tsdb;
using InfraTools.Tests;
using InfraTools.Tests.Tsdb;
using Serilog;

var options = Options.Parse(args);
var started = Stopwatch.StartNew();
var log = new LoggerConfiguration().MinimumLevel.Warning().WriteTo.Console(standardErrorFromLevel: Serilog.Events.LogEventLevel.Verbose).CreateLogger();
void Say(string text) => Console.Error.WriteLine($"[{started.Elapsed:mm\\:ss}] {text}");

var server = S3Server.Shared;
var bucket = await server.NewBucketAsync("tsdb-bench");
using var client = server.Client();
var store = new CountingStore(client, bucket, "incremental/");
var root = Path.Combine(Path.GetTempPath(), $"tsdb-bench-{Environment.ProcessId}");
Directory.CreateDirectory(root);
var data = Path.Combine(root, "data");
Directory.CreateDirectory(data);

// Simulated time: day 1 starts at a fixed UTC midnight well in the past (block times do not depend on the wall clock).
const long Window = 7200;
var day1 = DateTimeOffset.UtcNow.AddDays(-(options.HistoryDays + options.Days + 5)).ToUnixTimeSeconds() / 86400 * 86400;
long WindowStart(int day, int window) => day1 + (day - 1) * 86400L + window * Window;
var generator = new Generator(options.Series, options.Interval, options.Seed);

async Task BackfillAsync(string output, int day, int window)
{
    var file = Path.Combine(root, "window.om");
    generator.Write(file, WindowStart(day, window), Window);
    var result = await ProcessRunner.RunAsync("promtool", ["tsdb", "create-blocks-from", "openmetrics", "--quiet", file, output], timeout: TimeSpan.FromMinutes(5));
    if (result.ExitCode != 0) throw new InvalidOperationException("promtool failed: " + result);
    File.Delete(file);
}

// History: days 1..H, all but the last 2 h window of day H (the head when day H+1 is snapshotted).
Say($"backfilling {options.HistoryDays} days of history: {options.Series} series every {options.Interval} s");
for (var day = 1; day <= options.HistoryDays; day++)
    for (var w = 0; w < 12; w++)
        if (!(day == options.HistoryDays && w == 11)) await BackfillAsync(data, day, w);

var port = Net.FreePort();
var config = Path.Combine(root, "prometheus.yml");
File.WriteAllText(config, "global:\n  scrape_interval: 1m\n");
var prometheusLog = Path.Combine(root, "prometheus.log");
using var prometheus = Process.Start(ProcessRunner.StartInfo("sh", ["-c",
    $"exec prometheus --config.file={config} --storage.tsdb.path={data} --web.listen-address=127.0.0.1:{port} --web.enable-admin-api --storage.tsdb.retention.time={options.RetentionDays}d > {prometheusLog} 2>&1"]))!;
var url = $"http://127.0.0.1:{port}";
var rows = new List<Row>();
try
{
    await Net.GetWhenUpAsync($"{url}/-/ready", TimeSpan.FromMinutes(5));
    await SettleAsync(url, Say);
    for (var day = options.HistoryDays + 1; day <= options.HistoryDays + options.Days; day++)
    {
        // The day's data: the window held back yesterday (the head then) and today's first 11 windows as blocks.
        await BackfillAsync(data, day - 1, 11);
        for (var w = 0; w < 11; w++) await BackfillAsync(data, day, w);
        await SettleAsync(url, Say);
        var snapshot = await PrometheusSnapshotApi.CreateAsync(new Uri(url + "/"), data, CancellationToken.None);
        // The head cut: today's last window, a new block in every snapshot.
        await BackfillAsync(snapshot, day, 11);
        var blocks = Directory.GetDirectories(snapshot).Length;
        var snapshotBytes = Directory.EnumerateFiles(snapshot, "*", SearchOption.AllDirectories).Sum(f => new FileInfo(f).Length);
        var levels = Directory.GetDirectories(snapshot).Select(b => JsonDocument.Parse(File.ReadAllText(Path.Combine(b, "meta.json"))).RootElement.GetProperty("compaction").GetProperty("level").GetInt32())
            .GroupBy(l => l).OrderBy(g => g.Key).Select(g => $"{g.Count()}×L{g.Key}").ToList();
        var name = Snapshots.NewName(DateTimeOffset.UtcNow);

        store.Reset();
        var clock = Stopwatch.StartNew();
        var pushed = await TsdbBackup.PushAsync(store, snapshot, new TsdbPushOptions { Name = name, Parallel = 8 }, log, CancellationToken.None);
        if (!pushed.Complete) throw new InvalidOperationException("incremental push failed");
        // Daily runs: objects are days apart in reality, minutes here, so the grace period is 0 in the bench.
        await TsdbBackup.PruneAfterPushAsync(store, new RetentionPolicy(options.Keep, BlockGrace: TimeSpan.Zero), pushed, log, CancellationToken.None);
        var incrementalSeconds = clock.Elapsed.TotalSeconds;
        var requests = store.Puts + store.Lists + store.Gets + store.Deletes;

        clock.Restart();
        var metrics = Path.Combine(root, "full.prom");
        var full = await ProcessRunner.RunAsync(RepoPaths.Tool("backup"), ["push", "--snapshot", "--keep-last", options.Keep.ToString(CultureInfo.InvariantCulture),
            "--metrics-file", metrics, "--name", "full", snapshot, $"s3://{bucket}/full/"], server.Environment(), timeout: TimeSpan.FromMinutes(30));
        if (full.ExitCode != 0) throw new InvalidOperationException("full-copy push failed: " + full);
        var fullSeconds = clock.Elapsed.TotalSeconds;
        var fullUploaded = ReadMetric(metrics, "backup_last_run_uploaded_bytes");
        Directory.Delete(snapshot, recursive: true);

        var stored = await StoredAsync(client, bucket);
        rows.Add(new Row(day - options.HistoryDays, blocks, string.Join(" ", levels), snapshotBytes, pushed.UploadedBytes + pushed.Manifest!.Serialize().Length, pushed.BlocksNew, pushed.BlocksAlreadyUp,
            requests, incrementalSeconds, fullUploaded, fullSeconds, stored.Incremental, stored.Full));
        Say($"day {day - options.HistoryDays}: {blocks} blocks ({string.Join(" ", levels)}), snapshot {Mb(snapshotBytes)}; incremental sent {Mb(rows[^1].IncrementalSent)} in {incrementalSeconds:0.0} s; full copy {Mb((long)fullUploaded)} in {fullSeconds:0.0} s; stored {Mb(stored.Incremental)} vs {Mb(stored.Full)}");
    }
}
finally
{
    if (!prometheus.HasExited) prometheus.Kill();
    await prometheus.WaitForExitAsync();
    if (!options.Keep_) Directory.Delete(root, recursive: true);
}

var report = Report(options, rows, generator.SampleLine);
Console.WriteLine(report);
if (options.Output is { } output)
{
    File.WriteAllText(output, report);
    Say($"wrote {output}");
}
return 0;

static string Mb(long bytes) => (bytes / 1e6).ToString("0.00", CultureInfo.InvariantCulture) + " MB";

static double ReadMetric(string path, string name) =>
    File.ReadAllLines(path).Where(l => l.StartsWith(name + "{", StringComparison.Ordinal)).Select(l => double.Parse(l[(l.LastIndexOf(' ') + 1)..], CultureInfo.InvariantCulture)).Single();

/// <summary>Waits until Prometheus has reloaded its blocks twice since now (the 1-minute loop: reload, then compaction of whatever is due).</summary>
static async Task SettleAsync(string url, Action<string> say)
{
    var start = await ReloadsAsync(url);
    var deadline = DateTime.UtcNow.AddMinutes(10);
    while (await ReloadsAsync(url) < start + 2)
    {
        if (DateTime.UtcNow > deadline) throw new TimeoutException("Prometheus did not reload its blocks within 10 minutes");
        await Task.Delay(2000);
    }
    say("Prometheus reloaded and compacted");
}

static async Task<double> ReloadsAsync(string url)
{
    var text = await Net.GetWhenUpAsync($"{url}/metrics", TimeSpan.FromSeconds(30));
    var line = text.Split('\n').First(l => l.StartsWith("prometheus_tsdb_reloads_total ", StringComparison.Ordinal));
    return double.Parse(line[(line.LastIndexOf(' ') + 1)..], CultureInfo.InvariantCulture);
}

static async Task<(long Incremental, long Full)> StoredAsync(InfraTools.S3.S3Store client, string bucket)
{
    long incremental = 0, full = 0;
    await foreach (var o in client.ListAsync(bucket, ""))
        if (o.Key.StartsWith("incremental/", StringComparison.Ordinal)) incremental += o.Size;
        else full += o.Size;
    return (incremental, full);
}

static string Report(Options o, List<Row> rows, string sampleLine)
{
    var text = new StringBuilder();
    var c = CultureInfo.InvariantCulture;
    text.AppendLine(c, $"Simulated: {o.Series} series scraped every {o.Interval} s ({o.Series * 86400 / o.Interval:N0} samples a day), {o.HistoryDays} days of history, Prometheus retention {o.RetentionDays} d, then {o.Days} daily snapshots, keep-last {o.Keep}; seed {o.Seed}.");
    text.AppendLine(c, $"Example sample line: `{sampleLine}`");
    text.AppendLine();
    text.AppendLine("| day | blocks in snapshot | snapshot | incremental: uploaded | new / already-up blocks | requests | s | full copy: uploaded | s | stored: incremental | stored: full copies |");
    text.AppendLine("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    foreach (var r in rows)
        text.AppendLine(c, $"| {r.Day} | {r.Blocks} ({r.Levels}) | {Mb(r.SnapshotBytes)} | {Mb(r.IncrementalSent)} | {r.New} / {r.Reused} | {r.Requests} | {r.IncrementalSeconds:0.0} | {Mb((long)r.FullSent)} | {r.FullSeconds:0.0} | {Mb(r.StoredIncremental)} | {Mb(r.StoredFull)} |");
    var later = rows.Skip(1).ToList();
    if (later.Count > 0)
    {
        var inc = later.Average(r => r.IncrementalSent);
        var full = later.Average(r => r.FullSent);
        text.AppendLine();
        text.AppendLine(c, $"Days 2-{rows.Count}: uploaded per day {Mb((long)inc)} incremental vs {Mb((long)full)} full copy ({inc / full:0.00}×).");
    }
    var last = rows[^1];
    text.AppendLine(c, $"Stored after {rows.Count} snapshots: {Mb(last.StoredIncremental)} incremental vs {Mb(last.StoredFull)} full copies ({(double)last.StoredIncremental / last.StoredFull:0.00}×).");
    text.AppendLine(c, $"Uploaded in {rows.Count} days: {Mb(rows.Sum(r => r.IncrementalSent))} incremental vs {Mb((long)rows.Sum(r => r.FullSent))} full copies.");
    return text.ToString();
}

internal sealed record Row(int Day, int Blocks, string Levels, long SnapshotBytes, long IncrementalSent, int New, int Reused, long Requests, double IncrementalSeconds,
    double FullSent, double FullSeconds, long StoredIncremental, long StoredFull);

internal sealed class Options
{
    public int Series { get; private set; } = 1000;
    public int Interval { get; private set; } = 30;
    public int HistoryDays { get; private set; } = 14;
    public int Days { get; private set; } = 7;
    public int Keep { get; private set; } = 7;
    public int RetentionDays { get; private set; } = 15;
    public int Seed { get; private set; } = 7;
    public string? Output { get; private set; }
    public bool Keep_ { get; private set; }

    public static Options Parse(string[] args)
    {
        var o = new Options();
        for (var i = 0; i < args.Length; i++)
        {
            int Int() => int.Parse(args[++i], CultureInfo.InvariantCulture);
            switch (args[i])
            {
                case "--series": o.Series = Int(); break;
                case "--interval": o.Interval = Int(); break;
                case "--history-days": o.HistoryDays = Int(); break;
                case "--days": o.Days = Int(); break;
                case "--keep-last": o.Keep = Int(); break;
                case "--retention-days": o.RetentionDays = Int(); break;
                case "--seed": o.Seed = Int(); break;
                case "--output": o.Output = args[++i]; break;
                case "--keep-temp": o.Keep_ = true; break;
                default: throw new ArgumentException($"unknown option {args[i]} (--series N --interval S --history-days N --days N --keep-last N --retention-days N --seed N --output FILE --keep-temp)");
            }
        }
        return o;
    }
}

/// <summary>
/// Samples like a node_exporter-and-application mix: 60 % counters (requests, bytes: a per-series rate with noise,
/// integer increments), 30 % integer gauges (memory-like, a random walk around a level), 10 % float gauges
/// (ratios 0..1 with 3 decimals). Deterministic per (seed, series, time).
/// </summary>
internal sealed class Generator(int series, int interval, int seed)
{
    public string SampleLine { get; private set; } = "";

    public void Write(string path, long start, long length)
    {
        using var output = new StreamWriter(path, false, new UTF8Encoding(false), 1 << 20);
        var c = CultureInfo.InvariantCulture;
        var counters = series * 6 / 10;
        var gauges = series * 3 / 10;
        output.Write("# HELP app_requests_total Requests.\n# TYPE app_requests_total counter\n");
        for (var s = 0; s < counters; s++)
            for (var t = start; t < start + length; t += interval)
            {
                var value = CounterValue(s, t);
                output.Write(string.Create(c, $"app_requests_total{{instance=\"host-{s % 50:00}:9100\",job=\"app\",handler=\"/api/v{s / 50}\"}} {value} {t}\n"));
            }
        output.Write("# HELP host_memory_bytes Memory.\n# TYPE host_memory_bytes gauge\n");
        for (var s = 0; s < gauges; s++)
            for (var t = start; t < start + length; t += interval)
                output.Write(string.Create(c, $"host_memory_bytes{{instance=\"host-{s % 50:00}:9100\",area=\"a{s / 50}\"}} {4_000_000_000L + s * 1_000_000L + (long)(Noise(s, t / 600) * 200_000_000)} {t}\n"));
        output.Write("# HELP host_cpu_ratio CPU.\n# TYPE host_cpu_ratio gauge\n");
        for (var s = 0; s < series - counters - gauges; s++)
            for (var t = start; t < start + length; t += interval)
            {
                var line = string.Create(c, $"host_cpu_ratio{{instance=\"host-{s % 50:00}:9100\",cpu=\"{s / 50}\"}} {Math.Round(0.5 + 0.45 * Noise(s + 7919, t / interval), 3)} {t}\n");
                if (SampleLine.Length == 0) SampleLine = line.TrimEnd();
                output.Write(line);
            }
        output.Write("# EOF\n");
    }

    /// <summary>A counter: rate r (1-50 per second) times the time, plus a bounded per-sample jitter, so it always grows.</summary>
    private long CounterValue(int s, long t)
    {
        var rate = 1 + (long)(Hash(s, 0) % 50);
        return rate * t + (long)(Hash(s, t) % (ulong)(rate * interval / 2 + 1));
    }

    /// <summary>A pseudo-random value in [-1, 1]: a hashed phase every 10 steps, advancing smoothly in between.</summary>
    private double Noise(int s, long k) => Math.Sin(Hash(s, k / 10) % 6283 / 1000.0 + (k % 10) / 10.0);

    private ulong Hash(int s, long t)
    {
        var x = unchecked((ulong)seed * 0x9E3779B97F4A7C15UL ^ (ulong)s * 0xBF58476D1CE4E5B9UL ^ (ulong)t * 0x94D049BB133111EBUL);
        x ^= x >> 31; x *= 0xD6E9E1E0F1C48D3BUL; x ^= x >> 29;
        return x;
    }
}
