using System.Diagnostics;
using System.Net;

namespace InfraTools.Tests;

/// <summary>images/nginx/nginx.conf run by a real nginx (Debian's), with only its listen addresses and paths
/// moved into a temporary directory, and scraped by a real nginx-prometheus-exporter.</summary>
public sealed class NginxTests : IAsyncLifetime
{
    private readonly TempDir _dir = new("nginx");
    private readonly int _sitePort = Net.FreePort();
    private readonly int _statusPort = Net.FreePort();
    private Process? _nginx;
    private readonly HttpClient _http = new() { Timeout = TimeSpan.FromSeconds(10) };

    public async Task InitializeAsync()
    {
        var www = _dir.Combine("www");
        _dir.Write("www/index.html", "<h1>site</h1>");
        _dir.Write("www/docs/page.html", "page");
        // What content-pull leaves next to the files while it downloads them, and other hidden files.
        _dir.Write("www/.index.html.tmp-4242-1", "half-written");
        _dir.Write("www/docs/.page.html.tmp-4242-2", "half-written");
        _dir.Write("www/.git/config", "[core]");
        _dir.Write("www/.env", "SECRET=1");
        _dir.Write("www/.well-known/security.txt", "Contact: mailto:security@example.org");
        _dir.Write("www/.well-known/.security.txt.tmp-4242-3", "half-written");
        var config = File.ReadAllText(Stack.Path("images", "nginx", "nginx.conf"))
            .Replace(" /tmp/", $" {_dir.Path}/")
            .Replace("listen 8080;", $"listen 127.0.0.1:{_sitePort};")
            .Replace("listen 8081;", $"listen 127.0.0.1:{_statusPort};")
            .Replace("root /srv/www;", $"root {www};");
        Assert.DoesNotContain("listen 80", config.Replace($"listen 127.0.0.1:{_sitePort}", "").Replace($"listen 127.0.0.1:{_statusPort}", ""));
        var path = _dir.Write("nginx.conf", config);
        _nginx = Process.Start(ProcessRunner.StartInfo("nginx", ["-e", "stderr", "-p", _dir.Path, "-c", path, "-g", "daemon off;"]))!;
        await Net.GetWhenUpAsync($"http://127.0.0.1:{_statusPort}/healthz", TimeSpan.FromSeconds(30));
    }

    public async Task DisposeAsync()
    {
        _http.Dispose();
        if (_nginx is { HasExited: false })
        {
            // The workers too: killing only the master would leave them running, holding the ports.
            _nginx.Kill(entireProcessTree: true);
            await _nginx.WaitForExitAsync();
        }
        _nginx?.Dispose();
        _dir.Dispose();
    }

    private async Task<(HttpStatusCode Status, string Body)> GetAsync(int port, string path)
    {
        using var response = await _http.GetAsync($"http://127.0.0.1:{port}{path}");
        return (response.StatusCode, await response.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task Serves_the_site()
    {
        Assert.Equal((HttpStatusCode.OK, "<h1>site</h1>"), await GetAsync(_sitePort, "/"));
        Assert.Equal((HttpStatusCode.OK, "page"), await GetAsync(_sitePort, "/docs/page.html"));
        Assert.Equal(HttpStatusCode.NotFound, (await GetAsync(_sitePort, "/missing.html")).Status);
    }

    [Theory]
    [InlineData("/.index.html.tmp-4242-1")]
    [InlineData("/docs/.page.html.tmp-4242-2")]
    [InlineData("/%2Eindex.html.tmp-4242-1")]
    [InlineData("/.git/config")]
    [InlineData("/.env")]
    [InlineData("/.well-known/.security.txt.tmp-4242-3")]
    public async Task Never_serves_dot_files(string path)
    {
        var (status, body) = await GetAsync(_sitePort, path);
        Assert.Equal(HttpStatusCode.NotFound, status);
        Assert.DoesNotContain("half-written", body);
    }

    [Fact]
    public async Task Serves_well_known_files()
    {
        Assert.Equal((HttpStatusCode.OK, "Contact: mailto:security@example.org"), await GetAsync(_sitePort, "/.well-known/security.txt"));
    }

    [Fact]
    public async Task Stub_status_is_on_the_internal_port_only()
    {
        var (status, body) = await GetAsync(_statusPort, "/stub_status");
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.StartsWith("Active connections:", body);
        Assert.Equal(HttpStatusCode.NotFound, (await GetAsync(_sitePort, "/stub_status")).Status);
        Assert.Equal(HttpStatusCode.NotFound, (await GetAsync(_statusPort, "/index.html")).Status);
    }

    [Fact]
    public async Task Nginx_exporter_really_exposes_every_nginx_metric_in_the_list()
    {
        var port = Net.FreePort();
        using var exporter = Process.Start(ProcessRunner.StartInfo("prometheus-nginx-exporter",
            [$"--nginx.scrape-uri=http://127.0.0.1:{_statusPort}/stub_status", $"--web.listen-address=127.0.0.1:{port}"]))!;
        try
        {
            await GetAsync(_sitePort, "/");
            var metrics = await Net.GetWhenUpAsync($"http://127.0.0.1:{port}/metrics", TimeSpan.FromSeconds(30));
            Assert.Contains("nginx_up 1", metrics.Split('\n'));
            var exposed = MetricNameTests.ExposedNames(metrics);
            var missing = KnownMetrics.BySource["nginx_exporter"].Where(n => !exposed.Contains(n)).ToList();
            Assert.True(missing.Count == 0, "nginx-prometheus-exporter does not expose: " + string.Join(", ", missing));
        }
        finally
        {
            exporter.Kill();
            await exporter.WaitForExitAsync();
        }
    }
}
