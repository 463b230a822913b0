using System.Net.Sockets;
using System.Text;
using InfraTools.Cli;
using InfraTools.Files;

namespace InfraTools.Backup;

/// <summary>
/// Prometheus' TSDB snapshot admin API (POST /api/v1/admin/tsdb/snapshot, needs --web.enable-admin-api): a
/// consistent copy of the data directory made of hard links, instead of racing the live TSDB.
/// </summary>
public static class PrometheusSnapshotApi
{
    /// <summary>Asks Prometheus for a snapshot and returns its directory under <paramref name="dataDirectory"/>/snapshots.</summary>
    public static async Task<string> CreateAsync(Uri prometheus, string dataDirectory, CancellationToken cancellationToken)
    {
        var url = new Uri(prometheus, "api/v1/admin/tsdb/snapshot");
        using var http = new HttpClient { Timeout = TimeSpan.FromMinutes(10) };
        string body;
        int status;
        try
        {
            using var response = await http.PostAsync(url, null, cancellationToken).ConfigureAwait(false);
            status = (int)response.StatusCode;
            body = await response.Content.ReadAsStringAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is HttpRequestException or SocketException or TaskCanceledException && !cancellationToken.IsCancellationRequested)
        {
            throw new ToolException(ExitCodes.ServiceFailed, $"cannot reach Prometheus at {prometheus} ({ex.Message.TrimEnd('.')}): check --prometheus-snapshot");
        }
        if (status != 200)
        {
            var hint = status is 404 or 405 or 403 or 400 ? "; is Prometheus started with --web.enable-admin-api?" : "";
            throw new ToolException(ExitCodes.ServiceFailed, $"Prometheus at {prometheus} refused the snapshot (HTTP {status}: {Shorten(body)}){hint}");
        }
        var name = JsonObjectCheck.NestedString(Encoding.UTF8.GetBytes(body), "data", "name");
        if (string.IsNullOrEmpty(name) || name.Contains('/') || name.Contains(".."))
            throw new ToolException(ExitCodes.ServiceFailed, $"Prometheus at {prometheus} answered the snapshot request with something unexpected: {Shorten(body)}");
        var directory = Path.Combine(dataDirectory, "snapshots", name);
        if (!Directory.Exists(directory))
            throw new ToolException(ExitCodes.ServiceFailed,
                $"Prometheus made snapshot {name}, but {directory} does not exist: SRC must be Prometheus' data directory (--storage.tsdb.path) as mounted here");
        return directory;
    }

    private static string Shorten(string text) => text.Length > 200 ? text[..200] + "..." : text.Trim();
}
