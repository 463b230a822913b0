using System.Text;
using InfraTools.Files;
using InfraTools.Releases;
using InfraTools.Storage;
using InfraTools.Sync;
using Serilog;

namespace InfraTools.Tests;

/// <summary>Release mode on the one sync engine, in process (in-memory store, real files): what is published and what is not.</summary>
public class ReleaseEngineTests
{
    private static readonly ILogger Log = new LoggerConfiguration().CreateLogger();

    private static async Task<(SyncStats Stats, ReleasePublisher Publisher)> RunAsync(InMemoryObjectStore store, ReleaseDirectory releases, bool delete = true)
    {
        var state = SyncState.Ephemeral(Log);
        var side = new ReleaseSide(releases, FileModes.WebReadable, [], state.TempNames);
        var publisher = new ReleasePublisher(side, Log);
        var session = new SyncSession(new BucketSide(store, "b", "", new GlobFilter([])), side, state,
            new SyncOptions(delete, new SafetyOptions(EmptySourceRule.RefuseIfTargetHasFiles, false, null), 4), Log, publisher);
        var stats = new SyncStats();
        var plan = await session.PlanAsync("s3://b/", releases.Dest, default);
        await session.RunAsync(plan, stats, default);
        return (stats, publisher);
    }

    [Fact]
    public async Task A_failed_download_publishes_nothing_and_leaves_no_staging_tree_and_a_check_that_finds_equal_content_publishes_nothing_either()
    {
        using var dir = new TempDir("rel-engine");
        var store = new InMemoryObjectStore();
        for (var i = 0; i < 20; i++) store.Put("b", $"p{i}.html", Encoding.UTF8.GetBytes($"v1 {i}"));
        string first;
        using (var releases = ReleaseDirectory.TryOpen(dir.Path)!)
        {
            var (stats, publisher) = await RunAsync(store, releases);
            Assert.Equal(20, stats.Transferred);
            first = publisher.Published!.Release.Id;
        }

        store.Put("b", "p3.html", "v2 3"u8.ToArray());
        store.Put("b", "p4.html", "v2 4"u8.ToArray());
        store.BeforeRequest = (operation, _, key) =>
        {
            if (operation == "get" && key == "p4.html") throw new StoreException(StoreErrorKind.ServerError, "injected");
        };
        using (var releases = ReleaseDirectory.TryOpen(dir.Path)!)
        {
            var (stats, publisher) = await RunAsync(store, releases);
            Assert.Equal(1, stats.Failed);
            Assert.Null(publisher.Published);
            Assert.Equal(first, releases.CurrentId);
        }
        Assert.Equal([first], Directory.GetDirectories(Path.Join(dir.Path, "releases")).Select(Path.GetFileName));
        Assert.Equal("v1 3", File.ReadAllText(Path.Join(dir.Path, "current", "p3.html")));

        // An empty manifest (lost state): every same-size file is checked by checksum; equal content is no change.
        store.BeforeRequest = null;
        store.Put("b", "p3.html", "v1 3"u8.ToArray());
        store.Put("b", "p4.html", "v1 4"u8.ToArray());
        using (var releases = ReleaseDirectory.TryOpen(dir.Path)!)
        {
            var (stats, publisher) = await RunAsync(store, releases);
            Assert.Equal(0, stats.Transferred);
            Assert.Equal(20, stats.Unchanged);
            Assert.Null(publisher.Published);
            Assert.Equal(first, releases.CurrentId);
        }

        // Without --delete a file the source no longer has stays in the next release, as in place.
        store.Remove("b", "p0.html");
        store.Put("b", "p1.html", "v3 1"u8.ToArray());
        using (var releases = ReleaseDirectory.TryOpen(dir.Path)!)
        {
            var (_, publisher) = await RunAsync(store, releases, delete: false);
            Assert.Equal(19, publisher.Published!.Linked);
            Assert.Equal("v1 0", File.ReadAllText(Path.Join(dir.Path, "current", "p0.html")));
            Assert.Equal("v3 1", File.ReadAllText(Path.Join(dir.Path, "current", "p1.html")));
        }
    }
}
