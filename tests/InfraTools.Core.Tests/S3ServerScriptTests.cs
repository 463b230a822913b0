using System.Net;
using System.Net.Sockets;

namespace InfraTools.Tests;

/// <summary>
/// scripts/s3-server-start.sh, which every S3 test stands on. In CI a dedicated server once failed to start because
/// its mon's port was the local port of someone else's outgoing connection: free to a connect probe, taken for
/// bind(2). A port taken like that must cost one more try, not the test run.
/// </summary>
public class S3ServerScriptTests
{
    /// <summary>Binds 127.0.0.1:PORT (below the ephemeral range, where the script picks) as the local end of a connection.</summary>
    private static (Socket Client, Socket Accepted, TcpListener Listener, int Port) OutgoingConnectionFromAPickablePort()
    {
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        for (var attempt = 0; attempt < 50; attempt++)
        {
            var port = Random.Shared.Next(10000, 32000);
            var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            try
            {
                client.Bind(new IPEndPoint(IPAddress.Loopback, port));
                // then without SO_REUSEADDR (SOL_SOCKET 1, option 2), as curl's or a ceph daemon's outgoing socket:
                // .NET's Bind sets it (and the managed option reports it unset), and two sockets that both have it
                // may share a port that neither listens on
                client.SetRawSocketOption(1, 2, BitConverter.GetBytes(0));
                client.Connect((IPEndPoint)listener.LocalEndpoint);
                return (client, listener.AcceptSocket(), listener, port);
            }
            catch (SocketException)
            {
                client.Dispose();
            }
        }
        throw new InvalidOperationException("no port between 10000 and 32000 could be bound in 50 tries");
    }

    [Fact]
    public async Task A_mon_port_taken_by_an_outgoing_connection_costs_a_retry_not_the_start()
    {
        var (client, accepted, listener, taken) = OutgoingConnectionFromAPickablePort();
        var state = Path.Combine(Path.GetTempPath(), $"infratools-s3-port-{Guid.NewGuid():N}"[..32]);
        try
        {
            var start = await ProcessRunner.RunAsync(Path.Combine(RepoPaths.Scripts, "s3-server-start.sh"), [state],
                new Dictionary<string, string?> { ["S3_TEST_MON_PORT"] = taken.ToString() }, timeout: TimeSpan.FromMinutes(5));

            Assert.True(start.ExitCode == 0, start.ToString());
            Assert.Contains($"ceph-mon could not bind 127.0.0.1:{taken}", start.Stderr);
            var monHost = File.ReadAllLines(Path.Combine(state, "ceph.conf")).Single(l => l.StartsWith("mon host = "));
            Assert.DoesNotContain($":{taken}]", monHost);
            Assert.True(client.Connected, "the connection that holds the port was closed, so the test proved nothing");
            var endpoint = File.ReadAllLines(Path.Combine(state, "env")).Single(l => l.StartsWith("S3_ENDPOINT=")).Split('=', 2)[1];
            using var http = new HttpClient();
            var answer = await http.GetAsync(endpoint + "/");
            Assert.Contains((int)answer.StatusCode, new[] { 200, 403 });
        }
        finally
        {
            await ProcessRunner.RunAsync(Path.Combine(RepoPaths.Scripts, "s3-server-stop.sh"), [state]);
            client.Dispose();
            accepted.Dispose();
            listener.Stop();
        }
    }
}
