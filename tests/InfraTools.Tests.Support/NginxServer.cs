using System.Diagnostics;
using System.Net;

namespace InfraTools.Tests;

/// <summary>
/// A real nginx (Debian's) serving DEST with the shipped images/nginx/nginx.conf: its listen addresses moved to
/// free ports on 127.0.0.1, its /tmp paths into a temporary directory and /srv/www to DEST. Stopped (the master
/// and its workers, the processes this started) when disposed.
/// </summary>
public sealed class NginxServer : IAsyncDisposable
{
    private readonly Process _process;

    private NginxServer(Process process, int port)
    {
        _process = process;
        Http = new HttpClient { Timeout = TimeSpan.FromSeconds(10), BaseAddress = new Uri($"http://127.0.0.1:{port}") };
    }

    public HttpClient Http { get; }

    public async Task<(HttpStatusCode Status, string Body)> GetAsync(string path)
    {
        using var response = await Http.GetAsync(path);
        return (response.StatusCode, await response.Content.ReadAsStringAsync());
    }

    /// <summary>The image's nginx.conf for a test: DEST for /srv/www, free ports, <paramref name="extraHttp"/> added to the http block.</summary>
    public static string Config(string tempDirectory, string dest, int sitePort, int statusPort, string extraHttp = "", bool oneWorker = false)
    {
        var config = File.ReadAllText(Path.Join(RepoPaths.Root, "images", "nginx", "nginx.conf"));
        if (!config.Contains("/srv/www/current")) throw new InvalidOperationException("images/nginx/nginx.conf does not serve /srv/www/current");
        config = config
            .Replace(" /tmp/", $" {tempDirectory}/")
            .Replace("/srv/www", dest)
            .Replace("listen 8080;", $"listen 127.0.0.1:{sitePort};")
            .Replace("listen 8081;", $"listen 127.0.0.1:{statusPort};")
            .Replace("http {\n", "http {\n" + extraHttp);
        if (oneWorker) config = config.Replace("worker_processes auto;", "worker_processes 1;");
        return config;
    }

    public static async Task<NginxServer> StartAsync(TempDir dir, string dest, string extraHttp = "", bool oneWorker = false)
    {
        var sitePort = Net.FreePort();
        var statusPort = Net.FreePort();
        var path = dir.Write("nginx.conf", Config(dir.Path, dest, sitePort, statusPort, extraHttp, oneWorker));
        var process = Process.Start(ProcessRunner.StartInfo("nginx", ["-e", "stderr", "-p", dir.Path, "-c", path, "-g", "daemon off;"]))!;
        process.BeginErrorReadLine();
        process.BeginOutputReadLine();
        var server = new NginxServer(process, sitePort);
        try
        {
            await Net.GetWhenUpAsync($"http://127.0.0.1:{statusPort}/healthz", TimeSpan.FromSeconds(30));
        }
        catch
        {
            await server.DisposeAsync();
            throw;
        }
        return server;
    }

    public async ValueTask DisposeAsync()
    {
        Http.Dispose();
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true); // its workers too
            await _process.WaitForExitAsync();
        }
        _process.Dispose();
    }
}
