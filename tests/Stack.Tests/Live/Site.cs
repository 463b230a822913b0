using System.Net;
using System.Security.Cryptography;
using System.Text;

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

    /// <summary>Uploads this version over <paramref name="previous"/>: new and changed files, then deletions.</summary>
    public async Task UploadAsync(LiveStack stack, SiteVersion? previous)
    {
        var changed = Files.Where(f => previous is null || !previous.Files.TryGetValue(f.Key, out var old) || !old.AsSpan().SequenceEqual(f.Value)).ToList();
        await Parallel.ForEachAsync(changed, new ParallelOptions { MaxDegreeOfParallelism = 16 },
            async (file, _) => await stack.PutAsync(stack.ContentBucket, file.Key, file.Value));
        foreach (var gone in previous?.Files.Keys.Except(Files.Keys) ?? [])
            await stack.DeleteAsync(stack.ContentBucket, gone);
    }

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
