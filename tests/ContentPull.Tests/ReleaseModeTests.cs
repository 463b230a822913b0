using InfraTools.Files;
using System.Text;
using InfraTools.Releases;
using InfraTools.Storage;
using InfraTools.Sync;

namespace InfraTools.Tests;

/// <summary>content-pull --releases, publish, rollback and releases (issue 14): the AOT binary against the real S3 server.</summary>
public class ReleaseModeTests
{
    private static string CurrentLink(PullSandbox box) => Path.Join(box.Dest, "current");

    private static string CurrentId(PullSandbox box)
    {
        var target = new FileInfo(CurrentLink(box)).LinkTarget;
        Assert.NotNull(target);
        Assert.StartsWith("releases/", target); // relative: works wherever the volume is mounted
        return target!["releases/".Length..].TrimEnd('/');
    }

    /// <summary>The tree below <paramref name="root"/> is exactly <paramref name="expected"/>, byte for byte (the root may be the current link).</summary>
    internal static void AssertTree(string root, IReadOnlyDictionary<string, byte[]> expected)
    {
        var actual = Directory.EnumerateFiles(root + "/", "*", SearchOption.AllDirectories)
            .Select(f => Path.GetRelativePath(root, f)).Order(StringComparer.Ordinal).ToList();
        Assert.Equal(expected.Keys.Order(StringComparer.Ordinal), actual);
        foreach (var (path, content) in expected)
            Assert.True(content.AsSpan().SequenceEqual(File.ReadAllBytes(Path.Join(root, path))), $"{path} differs");
    }

    /// <summary>Inode by relative path of every file below a release.</summary>
    private static async Task<Dictionary<string, string>> InodesAsync(string root)
    {
        var find = await ProcessRunner.RunAsync("find", [root, "-type", "f", "-printf", "%i %P\n"]);
        Assert.Equal(0, find.ExitCode);
        return find.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => l.Split(' ', 2)).ToDictionary(p => p[1], p => p[0], StringComparer.Ordinal);
    }

    private static double? ReleaseFiles(PullSandbox box, string how) => box.MetricValue("content_pull_last_run_release_files", $"how=\"{how}\"");

    [Fact]
    public async Task Releases_link_unchanged_files_swap_a_relative_link_and_a_run_with_no_change_creates_no_release_and_reads_no_file()
    {
        using var box = await PullSandbox.CreateAsync("rel-mode");
        var tree = PullSandbox.RandomTree(200, 10, seed: 41);
        await box.PutAsync(tree);
        await box.PullOkAsync("--releases");
        var first = CurrentId(box);
        AssertTree(CurrentLink(box), tree);
        Assert.Equal(200, ReleaseFiles(box, "downloaded"));
        Assert.Equal(1, box.MetricValue("content_pull_release_info", $"release=\"{first}\""));

        var keys = tree.Keys.Order(StringComparer.Ordinal).ToList();
        var changed = keys.Where((_, i) => i % 10 == 0).ToList();
        var deleted = keys.Where((_, i) => i % 10 == 5).ToList();
        var next = new Dictionary<string, byte[]>(tree, StringComparer.Ordinal);
        foreach (var key in changed) next[key] = Encoding.UTF8.GetBytes("changed " + key);
        foreach (var key in deleted) next.Remove(key);
        for (var i = 0; i < 5; i++) next[$"new/n{i}.html"] = Encoding.UTF8.GetBytes("new " + i);
        await box.PutAsync(changed.Concat(next.Keys.Where(k => k.StartsWith("new/"))).ToDictionary(k => k, k => next[k]));
        await box.DeleteAsync([.. deleted]);
        var before = await InodesAsync(Path.Join(box.Dest, "releases", first));

        await box.PullOkAsync("--releases");
        var second = CurrentId(box);
        Assert.NotEqual(first, second);
        AssertTree(CurrentLink(box), next);
        AssertTree(Path.Join(box.Dest, "releases", first), tree); // the previous release is untouched
        var after = await InodesAsync(Path.Join(box.Dest, "releases", second));
        var unchanged = keys.Except(changed).Except(deleted).ToList();
        Assert.Equal(160, unchanged.Count);
        Assert.All(unchanged, k => Assert.Equal(before[k], after[k])); // hard links: same inode, same mtime, no download
        Assert.All(changed, k => Assert.NotEqual(before[k], after[k]));
        Assert.Equal(160, ReleaseFiles(box, "linked"));
        Assert.Equal(25, ReleaseFiles(box, "downloaded"));
        Assert.Equal(1, box.MetricValue("content_pull_release_info", $"release=\"{second}\""));
        Assert.Equal(2, box.MetricValue("content_pull_releases"));

        // No change: no release, and (traced) no file under DEST is opened.
        var trace = Path.Combine(box.Root, "strace.log");
        var third = await ProcessRunner.RunAsync("strace", ["-f", "-e", "trace=open,openat,openat2", "-o", trace, RepoPaths.Tool("content-pull"),
            box.Source(), box.Dest, "--releases", "--delete", "--state-dir", box.State, "--metrics-file", box.Metrics], box.Server.Environment());
        Assert.True(third.ExitCode == 0, third.ToString());
        var opened = File.ReadAllLines(trace).Where(l => l.Contains($"\"{box.Dest}/", StringComparison.Ordinal) && !l.Contains("O_DIRECTORY")).ToList();
        Assert.True(opened.Count == 0, "files under DEST were opened:\n" + string.Join('\n', opened.Take(5)));
        Assert.Equal(second, CurrentId(box));
        Assert.Equal(2, Directory.GetDirectories(Path.Join(box.Dest, "releases")).Length);
        Assert.Equal(0, ReleaseFiles(box, "linked"));
        Assert.Equal(185, box.Files("unchanged"));

        var list = await ProcessRunner.RunAsync(RepoPaths.Tool("content-pull"), ["releases", box.Dest]);
        Assert.True(list.ExitCode == 0, list.ToString());
        var lines = list.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal("ID\tPUBLISHED\tFILES\tBYTES\tCURRENT", lines[0]);
        Assert.StartsWith($"{second}\t", lines[1]);
        Assert.EndsWith("\tcurrent", lines[1]);
        Assert.Contains($"\t{next.Count}\t{next.Values.Sum(v => (long)v.Length)}\t", lines[1]);
        Assert.StartsWith($"{first}\t", lines[2]);
        Assert.EndsWith("\t", lines[2]);

        // A DEST that holds releases is never mirrored in place, even without --releases.
        var plain = await box.PullAsync();
        Assert.True(plain.ExitCode == 0, plain.ToString());
        Assert.Contains("running in release mode", plain.Stderr);
        Assert.True(Directory.Exists(Path.Join(box.Dest, "releases", first)));
    }

    [Fact]
    public async Task Rollback_needs_no_network_and_shows_in_the_metrics()
    {
        using var box = await PullSandbox.CreateAsync("rel-rollback");
        var v1 = PullSandbox.RandomTree(20, 2, seed: 42);
        await box.PutAsync(v1);
        await box.PullOkAsync("--releases");
        var first = CurrentId(box);
        var v2 = new Dictionary<string, byte[]>(v1) { [v1.Keys.First()] = "v2"u8.ToArray() };
        await box.PutAsync(v2);
        await box.PullOkAsync("--releases");
        var second = CurrentId(box);

        // No network at all (a new network namespace: not even loopback is up), no S3 settings.
        var rollback = await ProcessRunner.RunAsync("unshare", ["-n", RepoPaths.Tool("content-pull"), "rollback", box.Dest, "--metrics-file", box.Metrics],
            new Dictionary<string, string?> { ["S3_ENDPOINT"] = null, ["S3_ACCESS_KEY"] = null, ["S3_SECRET_KEY"] = null });
        Assert.True(rollback.ExitCode == 0, rollback.ToString());
        Assert.Equal(first, rollback.Stdout.Trim());
        Assert.Equal(first, CurrentId(box));
        AssertTree(CurrentLink(box), v1);
        Assert.Equal(1, box.MetricValue("content_pull_release_info", $"release=\"{first}\""));
        Assert.Null(box.MetricValue("content_pull_release_info", $"release=\"{second}\""));

        // A pull without network fails (exit 6) and leaves the rollback in place.
        var pull = await ProcessRunner.RunAsync("unshare", ["-n", RepoPaths.Tool("content-pull"), box.Source(), box.Dest, "--releases", "--state-dir", box.State],
            box.Server.Environment());
        Assert.True(pull.ExitCode == 6, pull.ToString());
        Assert.Equal(first, CurrentId(box));

        // While a pull holds the DEST lock: rollback refuses (exit 5, nothing changed), releases still lists.
        using (var held = FileLock.TryAcquireDirectory(box.Dest))
        {
            Assert.NotNull(held);
            var locked = await ProcessRunner.RunAsync(RepoPaths.Tool("content-pull"), ["rollback", box.Dest, second]);
            Assert.True(locked.ExitCode == 5, locked.ToString());
            Assert.Contains("holds the lock", locked.Stderr);
            Assert.Equal(first, CurrentId(box));
            var listed = await ProcessRunner.RunAsync(RepoPaths.Tool("content-pull"), ["releases", box.Dest]);
            Assert.True(listed.ExitCode == 0, listed.ToString());
            Assert.Contains(first + "\t", listed.Stdout);
            Assert.Contains(second + "\t", listed.Stdout);
        }

        var forward = await ProcessRunner.RunAsync(RepoPaths.Tool("content-pull"), ["rollback", box.Dest, second]);
        Assert.True(forward.ExitCode == 0, forward.ToString());
        AssertTree(CurrentLink(box), v2);
        var none = await ProcessRunner.RunAsync(RepoPaths.Tool("content-pull"), ["rollback", box.Dest, "20200101T000000Z-0000"]);
        Assert.True(none.ExitCode == 5, none.ToString());
        Assert.Contains("there is no release '20200101T000000Z-0000'", none.Stderr);
        Assert.Equal(second, CurrentId(box));
    }

    private static Task<ProcessResult> PublishAsync(PullSandbox box, string directory, params string[] extra) =>
        ProcessRunner.RunAsync(RepoPaths.Tool("content-pull"), ["publish", directory, box.Source(), "-j", "8", .. extra], box.Server.Environment());

    private static void WriteTree(string root, IReadOnlyDictionary<string, byte[]> tree)
    {
        if (Directory.Exists(root)) Directory.Delete(root, recursive: true);
        foreach (var (path, content) in tree)
        {
            Directory.CreateDirectory(Path.GetDirectoryName(Path.Join(root, path))!);
            File.WriteAllBytes(Path.Join(root, path), content);
        }
    }

    [Fact]
    public async Task Publish_then_pull_round_trips_byte_exact_and_a_release_whose_object_was_overwritten_or_deleted_is_not_published()
    {
        using var box = await PullSandbox.CreateAsync("rel-publish");
        var build = Path.Join(box.Root, "build");
        var v1 = PullSandbox.RandomTree(120, 6, seed: 43);
        v1["empty.txt"] = [];
        v1["deep/a/b/c/d.json"] = "{}"u8.ToArray();
        WriteTree(build, v1);
        var published = await PublishAsync(box, build);
        Assert.True(published.ExitCode == 0, published.ToString());
        var release1 = published.Stdout.Trim();
        Assert.True(ReleaseIds.IsId(release1), published.ToString());
        // The same build again (a CI job run twice): no new release for the watchers to pull, nothing uploaded.
        var again = await PublishAsync(box, build);
        Assert.True(again.ExitCode == 0, again.ToString());
        Assert.Equal(release1, again.Stdout.Trim());
        Assert.Contains($"already names release {release1}", again.Stderr);

        await box.PullOkAsync("--releases");
        var local1 = CurrentId(box);
        AssertTree(CurrentLink(box), v1); // and not .release.json or .releases/
        Assert.Contains($"following release {release1}", (await box.PullOkAsync("--releases", "--debug")).Stderr);

        // CI overwrites an object the release names (the next deploy, before its manifest): not published.
        var victim = v1.Keys.Order(StringComparer.Ordinal).First(k => k.StartsWith("d"));
        await box.PutAsync(new Dictionary<string, byte[]> { [victim] = "half-way through the next deploy"u8.ToArray() });
        var refused = await box.PullAsync("--releases");
        Assert.True(refused.ExitCode == 5, refused.ToString());
        Assert.Contains($"{victim} was overwritten", refused.Stderr);
        Assert.Equal(local1, CurrentId(box));
        Assert.Equal(1, box.MetricValue("content_pull_release_withheld"));
        AssertTree(CurrentLink(box), v1);

        // A missing object is refused the same way.
        await box.DeleteAsync(victim);
        refused = await box.PullAsync("--releases");
        Assert.True(refused.ExitCode == 5, refused.ToString());
        Assert.Contains($"{victim} is missing", refused.Stderr);

        // The next publish names the new content: the pull converges, byte-exact.
        var v2 = new Dictionary<string, byte[]>(v1) { [victim] = "the next deploy"u8.ToArray(), ["added.html"] = "added"u8.ToArray() };
        v2.Remove(v1.Keys.Order(StringComparer.Ordinal).Last());
        WriteTree(build, v2);
        published = await PublishAsync(box, build);
        Assert.True(published.ExitCode == 0, published.ToString());
        Assert.Contains("2 uploaded", published.Stderr); // only what changed
        await box.PullOkAsync("--releases");
        Assert.NotEqual(local1, CurrentId(box));
        AssertTree(CurrentLink(box), v2);
        Assert.Equal(0, box.MetricValue("content_pull_release_withheld"));
    }

    [Fact]
    public async Task Publish_deletes_only_objects_that_no_manifest_of_the_last_K_releases_references()
    {
        using var box = await PullSandbox.CreateAsync("rel-gc");
        var build = Path.Join(box.Root, "build");
        async Task<string> Publish(Dictionary<string, byte[]> tree)
        {
            WriteTree(build, tree);
            var result = await PublishAsync(box, build, "--keep-releases", "2");
            Assert.True(result.ExitCode == 0, result.ToString());
            return result.Stdout.Trim();
        }
        async Task<List<string>> Keys()
        {
            using var client = box.Server.Client();
            return await client.ListAsync(box.Bucket, "").Select(o => o.Key).ToListAsync();
        }

        var r1 = await Publish(new() { ["a"] = "a"u8.ToArray(), ["b"] = "b1"u8.ToArray(), ["c"] = "c"u8.ToArray() });
        var r2 = await Publish(new() { ["a"] = "a"u8.ToArray(), ["b"] = "b2"u8.ToArray(), ["d"] = "d"u8.ToArray() });
        Assert.Equal(["a", "b", "c", "d"], (await Keys()).Where(k => !k.StartsWith('.')));  // c: release 1 is one of the last 2
        var r3 = await Publish(new() { ["a"] = "a"u8.ToArray(), ["e"] = "e"u8.ToArray() });
        var keys = await Keys();
        Assert.Equal(["a", "b", "d", "e"], keys.Where(k => !k.StartsWith('.'))); // c: no release of the last 2 has it; b, d: release 2
        Assert.Equal([".release.json", $".releases/{r2}.json", $".releases/{r3}.json"], keys.Where(k => k.StartsWith('.')).Order(StringComparer.Ordinal));
        Assert.NotEqual(r1, r2);

        // A pull follows the manifest: b and d are in the bucket but not in release 3.
        await box.PullOkAsync("--releases");
        AssertTree(CurrentLink(box), new Dictionary<string, byte[]> { ["a"] = "a"u8.ToArray(), ["e"] = "e"u8.ToArray() });
    }

    [Fact]
    public async Task A_download_whose_object_changed_since_the_manifest_fails_and_one_deleted_since_fails_too()
    {
        // In process: the check of every GET against the manifest's ETag (the listing check runs before it).
        var store = new InMemoryObjectStore();
        store.Put("b", "site/a.html", "new content"u8.ToArray());
        var stale = InMemoryObjectStore.ETagOf("old content"u8.ToArray());
        var bucket = new BucketSide(store, "b", "site/", new GlobFilter([]),
            listed: [new StoredObject("site/a.html", 11, stale, DateTimeOffset.UnixEpoch), new StoredObject("site/gone.html", 3, "x", DateTimeOffset.UnixEpoch)]);
        var side = new ManifestSourceSide(bucket, "the manifest of release R");
        var listing = await side.ListAsync(default);
        var read = await Assert.ThrowsAsync<StoreException>(() => side.ReadAsync(listing.Files["a.html"], (_, _, _) => Task.CompletedTask, default));
        Assert.Equal(StoreErrorKind.IntegrityCheckFailed, read.Kind);
        Assert.Contains("overwritten after the manifest of release R was written", read.Message);
        var gone = await Assert.ThrowsAsync<StoreException>(() => side.ReadAsync(listing.Files["gone.html"], (_, _, _) => Task.CompletedTask, default));
        Assert.Equal(StoreErrorKind.IntegrityCheckFailed, gone.Kind); // not "vanished": that would skip it and publish without it

        // The control: the same read through the plain bucket side succeeds.
        await bucket.ReadAsync(listing.Files["a.html"], (_, _, _) => Task.CompletedTask, default);
    }
}
