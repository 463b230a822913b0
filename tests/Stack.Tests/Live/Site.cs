using System.Net;
using System.Security.Cryptography;
using System.Text;
using System.Text.RegularExpressions;

namespace InfraTools.Tests.Live;

/// <summary>One version of the site: every file's path (its S3 key under the content prefix) and bytes.</summary>
public sealed class SiteVersion
{
    public string Name { get; }
    public IReadOnlyDictionary<string, byte[]> Files { get; }

    public SiteVersion(string name, IReadOnlyDictionary<string, byte[]> files)
    {
        Assert.NotEmpty(files);
        Name = name;
        Files = files;
    }

    /// <summary>A small site: pages that link their assets, a binary asset, a .well-known file.</summary>
    public static SiteVersion Small(string name, string runId, params string[] pages)
    {
        var files = new Dictionary<string, byte[]>
        {
            ["index.html"] = Page(name, runId, "home"),
            ["css/site.css"] = Encoding.UTF8.GetBytes($"/* {name} {runId} */ body {{ font-family: sans-serif }}\n"),
            ["img/logo.bin"] = RandomBytes(20_000, $"{name}-logo"),
            [".well-known/security.txt"] = Encoding.UTF8.GetBytes("Contact: mailto:security@example.org\n"),
        };
        foreach (var page in pages) files[$"{page}/index.html"] = Page(name, runId, page);
        return new SiteVersion(name, files);
    }

    /// <summary>This version with other files added or replaced (and some removed).</summary>
    public SiteVersion With(string name, IReadOnlyDictionary<string, byte[]> changes, params string[] removed)
    {
        var files = Files.Where(f => !removed.Contains(f.Key)).ToDictionary(f => f.Key, f => f.Value);
        foreach (var (path, content) in changes) files[path] = content;
        return new SiteVersion(name, files);
    }

    public static byte[] Page(string version, string runId, string page) =>
        Encoding.UTF8.GetBytes($"<!doctype html><title>{page}</title><link rel=stylesheet href=/css/site.css>" +
            $"<img src=/img/logo.bin><p>{page} of version {version} (run {runId})</p>\n");

    /// <summary>Deterministic pseudo-random bytes (so a partial or mixed file cannot match by chance).</summary>
    public static byte[] RandomBytes(int size, string seed)
    {
        var bytes = new byte[size];
        var block = SHA256.HashData(Encoding.UTF8.GetBytes(seed));
        for (var offset = 0; offset < size; offset += block.Length)
        {
            block = SHA256.HashData(block);
            block.AsSpan(0, Math.Min(block.Length, size - offset)).CopyTo(bytes.AsSpan(offset));
        }
        return bytes;
    }

    /// <summary>
    /// Deploys this version as CI does (docs/releases.md, "The CI side"): the real `content-pull publish` of a
    /// directory holding exactly its files, which uploads what changed, writes the release manifest
    /// (.release.json) last, and deletes what no recent manifest names. Returns when publish returned.
    /// </summary>
    public async Task PublishAsync(LiveStack stack)
    {
        using var dir = new TempDir("live-publish");
        foreach (var (path, content) in Files)
        {
            var full = dir.Combine(path);
            Directory.CreateDirectory(Path.GetDirectoryName(full)!);
            await File.WriteAllBytesAsync(full, content);
        }
        var publish = await ProcessRunner.RunAsync(RepoPaths.Tool("content-pull"), ["publish", dir.Path, $"s3://{stack.ContentBucket}/"], stack.S3.Environment(),
            timeout: TimeSpan.FromMinutes(2));
        Assert.True(publish.ExitCode == 0, "content-pull publish: " + publish);
    }

    /// <summary>The asset paths a page references (src= and href= of the pages <see cref="Page"/> writes).</summary>
    public static IReadOnlyList<string> Assets(byte[] page) =>
        [.. Regex.Matches(Encoding.UTF8.GetString(page), "(?:src|href)=/([^ >]+)").Select(m => m.Groups[1].Value)];

    /// <summary>The URL path of a file ("about/index.html" is served as /about/ too; the file path always works).</summary>
    public static string UrlPath(string file) => "/" + file;
}

/// <summary>
/// The site as a visitor gets it. Today: straight from nginx (the Traefik stand-in does not route), with the
/// site's Host header. Once Traefik is real or nginx serves a `current` release (issues 14 and 15), this is the
/// one place to change.
/// </summary>
public sealed class SiteProbe(LiveStack stack) : IDisposable
{
    private readonly HttpClient _http = new(new SocketsHttpHandler { PooledConnectionLifetime = TimeSpan.FromSeconds(5), ConnectTimeout = TimeSpan.FromSeconds(3) }) { Timeout = TimeSpan.FromSeconds(10) };

    private string? _nginx;

    /// <summary>GET through nginx's address on the frontend network, looked up again when a connection fails
    /// (a restarted or recreated container may get another address).</summary>
    public async Task<(HttpStatusCode Status, byte[] Body)> GetAsync(string path)
    {
        for (var attempt = 0; ; attempt++)
        {
            // A container that is restarting has no address for a moment: for a caller that polls, that is a
            // failed request like a refused connection, not a failed assertion.
            try { _nginx ??= await stack.AddressAsync("nginx", "infra-frontend"); }
            catch (Xunit.Sdk.XunitException e) { throw new HttpRequestException("nginx has no address: " + e.Message); }
            var nginx = _nginx;
            try
            {
                using var request = new HttpRequestMessage(HttpMethod.Get, $"http://{nginx}:8080{path}");
                request.Headers.Host = LiveStack.SiteHost;
                using var response = await _http.SendAsync(request);
                return (response.StatusCode, await response.Content.ReadAsByteArrayAsync());
            }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException && attempt == 0)
            {
                _nginx = null;
            }
        }
    }

    /// <summary>null when every file of the version is served with exactly its bytes and every path of
    /// <paramref name="gone"/> answers 404; otherwise what differs.</summary>
    public async Task<string?> DifferenceAsync(SiteVersion version, IEnumerable<string>? gone = null)
    {
        string? difference = null;
        await Parallel.ForEachAsync(version.Files, new ParallelOptions { MaxDegreeOfParallelism = 8 }, async (file, ct) =>
        {
            if (Volatile.Read(ref difference) is not null) return;
            var (status, body) = await GetAsync(SiteVersion.UrlPath(file.Key));
            if (status != HttpStatusCode.OK) Interlocked.CompareExchange(ref difference, $"{file.Key}: {(int)status}", null);
            else if (!body.AsSpan().SequenceEqual(file.Value)) Interlocked.CompareExchange(ref difference, $"{file.Key}: {body.Length} bytes that are not version {version.Name}'s", null);
        });
        if (difference is not null) return difference;
        foreach (var file in gone ?? [])
        {
            var (status, _) = await GetAsync(SiteVersion.UrlPath(file));
            if (status != HttpStatusCode.NotFound) return $"{file}: {(int)status}, expected 404 (removed)";
        }
        return null;
    }

    public void Dispose() => _http.Dispose();
}

/// <summary>
/// A visitor that loads pages with their assets in a loop, in the background, during a deploy: GET a page, GET
/// every asset it references, GET the page again. When both page answers are the same version's page, every
/// asset must be that version's file: the pair page + asset belongs to one release. (When the two page answers
/// differ, the switch came between them: a straddle, counted but not judged.) In release mode every response
/// comes from the release `current` names at that instant, so a pair never mixes; a site mirrored in place,
/// file by file, would serve the new page with the old stylesheet for a while.
/// </summary>
public sealed class ReleaseVisitor : IDisposable
{
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _loop;
    private readonly List<string> _mixed = [];
    private readonly HashSet<string> _seen = [];
    private int _loads, _straddles, _missing, _errors;

    public sealed record Result(int Loads, int Straddles, int Missing, int Errors, IReadOnlyList<string> Mixed, IReadOnlyCollection<string> VersionsSeen);

    public ReleaseVisitor(SiteProbe site, SiteVersion[] versions, IReadOnlyList<string> pages)
    {
        Assert.NotEmpty(pages);
        _loop = Task.Run(async () =>
        {
            for (var i = 0; !_stop.IsCancellationRequested && i < 1_000_000; i++)
            {
                var page = pages[i % pages.Count];
                try
                {
                    var (status, first) = await site.GetAsync(SiteVersion.UrlPath(page));
                    if (status == HttpStatusCode.NotFound) { Interlocked.Increment(ref _missing); continue; }
                    var assets = new Dictionary<string, (HttpStatusCode, byte[])>();
                    foreach (var asset in status == HttpStatusCode.OK ? SiteVersion.Assets(first) : [])
                        assets[asset] = await site.GetAsync(SiteVersion.UrlPath(asset));
                    var (againStatus, again) = await site.GetAsync(SiteVersion.UrlPath(page));
                    Interlocked.Increment(ref _loads);
                    if (status != HttpStatusCode.OK || againStatus != HttpStatusCode.OK || !first.AsSpan().SequenceEqual(again))
                    {
                        Interlocked.Increment(ref _straddles);
                        continue;
                    }
                    var (mixed, version) = Verdict(page, first, assets, versions);
                    lock (_mixed)
                    {
                        if (mixed is not null) _mixed.Add(mixed);
                        if (version is not null) _seen.Add(version);
                    }
                }
                catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
                {
                    Interlocked.Increment(ref _errors);
                    await Task.Delay(10);
                }
            }
        });
    }

    /// <summary>Whether a page and the assets fetched while it stayed the same belong to one version: (null, that
    /// version's name) when they do, else (what mixes, null).</summary>
    public static (string? Mixed, string? Version) Verdict(string page, byte[] body, IReadOnlyDictionary<string, (HttpStatusCode Status, byte[] Body)> assets, SiteVersion[] versions)
    {
        var owners = versions.Where(v => v.Files.TryGetValue(page, out var c) && c.AsSpan().SequenceEqual(body)).ToList();
        if (owners.Count == 0) return ($"{page}: {body.Length} bytes that are no version's page", null);
        foreach (var v in owners)
            if (assets.All(a => a.Value.Status == HttpStatusCode.OK && v.Files.TryGetValue(a.Key, out var c) && c.AsSpan().SequenceEqual(a.Value.Body)))
                return (null, v.Name);
        var detail = assets.Select(a => $"{a.Key} {(int)a.Value.Status} " +
            (string.Join("/", versions.Where(v => v.Files.TryGetValue(a.Key, out var c) && c.AsSpan().SequenceEqual(a.Value.Body)).Select(v => v.Name)) is { Length: > 0 } names ? "of " + names : "of no version"));
        return ($"{page} of {string.Join("/", owners.Select(o => o.Name))} with {string.Join(", ", detail)}", null);
    }

    public Result Stop()
    {
        _stop.Cancel();
        _loop.Wait(TimeSpan.FromSeconds(30));
        lock (_mixed) return new Result(_loads, _straddles, _missing, _errors, [.. _mixed], [.. _seen]);
    }

    public void Dispose()
    {
        _stop.Cancel();
        _loop.Wait(TimeSpan.FromSeconds(30));
        _stop.Dispose();
    }
}
