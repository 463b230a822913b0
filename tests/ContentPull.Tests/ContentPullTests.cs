using System.Diagnostics;
using InfraTools.Files;
using InfraTools.Sync;

namespace InfraTools.Tests;

/// <summary>content-pull's AOT binary against the real S3 server.</summary>
public class ContentPullTests
{
    private const UnixFileMode Mode644 = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead;
    private const UnixFileMode Mode755 = Mode644 | UnixFileMode.UserExecute | UnixFileMode.GroupExecute | UnixFileMode.OtherExecute;

    [Fact]
    public async Task Mirrors_2500_nested_objects_exactly_then_a_second_run_transfers_and_reads_nothing()
    {
        using var box = await PullSandbox.CreateAsync("mirror");
        var tree = PullSandbox.RandomTree(2500, 50, seed: 1);
        await box.PutAsync(tree);

        await box.PullOkAsync();
        box.AssertMirrors(tree);
        Assert.Equal(2500, box.Files("downloaded"));
        Assert.Equal(1, box.MetricValue("content_pull_last_run_success"));
        Assert.Equal(tree.Values.Sum(v => (long)v.Length), box.MetricValue("content_pull_last_run_downloaded_bytes"));
        Assert.All(Directory.EnumerateFiles(box.Dest, "*", SearchOption.AllDirectories), f => Assert.Equal(Mode644, File.GetUnixFileMode(f)));
        Assert.All(Directory.EnumerateDirectories(box.Dest, "*", SearchOption.AllDirectories), d => Assert.Equal(Mode755, File.GetUnixFileMode(d)));
        using (var client = box.Server.Client())
        {
            var listed = await client.ListAsync(box.Bucket, "d3/").FirstAsync();
            Assert.Equal(listed.LastModified.ToUnixTimeSeconds(), new DateTimeOffset(File.GetLastWriteTimeUtc(Path.Combine(box.Dest, listed.Key))).ToUnixTimeSeconds());
        }
        var check = await ProcessRunner.RunAsync("sh", ["-c", $"promtool check metrics < {box.Metrics}"]);
        Assert.True(check.ExitCode == 0, check.ToString());

        // Second run, traced: no file under DEST is opened, and the only S3 requests are the GET of the release
        // manifest (PREFIX/.release.json, absent here: a 404, docs/releases.md) and the 3 listing pages.
        var trace = Path.Combine(box.Root, "strace.log");
        var second = await ProcessRunner.RunAsync("strace", ["-f", "-e", "trace=open,openat,openat2", "-o", trace, RepoPaths.Tool("content-pull"),
            box.Source(), box.Dest, "--delete", "--state-dir", box.State, "--metrics-file", box.Metrics, "--debug"], box.Server.Environment());
        Assert.True(second.ExitCode == 0, second.ToString());
        var opened = File.ReadAllLines(trace).Where(l => l.Contains($"\"{box.Dest}/", StringComparison.Ordinal) && !l.Contains("O_DIRECTORY")).ToList();
        Assert.True(opened.Count == 0, "files under DEST were opened:\n" + string.Join('\n', opened.Take(5)));
        Assert.Contains("4 S3 requests", second.Stderr);
        Assert.Equal(0, box.Files("downloaded"));
        Assert.Equal(2500, box.Files("unchanged"));
        box.AssertMirrors(tree);
    }

    [Fact]
    public async Task Changes_additions_and_deletions_converge_in_the_next_run()
    {
        using var box = await PullSandbox.CreateAsync("converge");
        var tree = PullSandbox.RandomTree(300, 12, seed: 2);
        var changed = tree.Keys.Where((_, i) => i % 10 == 0).ToList();
        var deleted = tree.Keys.Where((_, i) => i % 10 == 5).Append("lonely/only.html").ToList();
        tree["lonely/only.html"] = "alone"u8.ToArray();
        await box.PutAsync(tree);
        await box.PullOkAsync();

        foreach (var key in changed)
        {
            var same = (byte[])tree[key].Clone(); // same size, different bytes: only the ETag tells
            if (same.Length == 0) same = [42];
            else same[0] ^= 0xFF;
            tree[key] = same;
        }
        tree["new/dir/added.html"] = "added"u8.ToArray();
        await box.PutAsync(changed.Append("new/dir/added.html").ToDictionary(k => k, k => tree[k]));
        await box.DeleteAsync([.. deleted]);
        foreach (var key in deleted) tree.Remove(key);

        await box.PullOkAsync();
        box.AssertMirrors(tree);
        Assert.Equal(changed.Count + 1, box.Files("downloaded"));
        Assert.Equal(deleted.Count, box.Files("deleted"));
        Assert.False(Directory.Exists(Path.Combine(box.Dest, "lonely")), "the emptied directory should be removed");
    }

    [Fact]
    public async Task Without_a_manifest_identical_files_are_kept_by_checksum_and_changed_ones_replaced()
    {
        using var box = await PullSandbox.CreateAsync("checksum");
        var tree = PullSandbox.RandomTree(40, 4, seed: 3);
        await box.PutAsync(tree);
        await box.PullOkAsync();
        Directory.Delete(box.State, recursive: true);
        var victim = tree.Keys.First();
        var local = Path.Combine(box.Dest, victim);
        var bytes = File.ReadAllBytes(local);
        if (bytes.Length > 0) { bytes[^1] ^= 0x01; File.WriteAllBytes(local, bytes); }

        await box.PullOkAsync();
        box.AssertMirrors(tree);
        Assert.Equal(bytes.Length > 0 ? 1 : 0, box.Files("downloaded"));
        Assert.Equal(tree.Count - (bytes.Length > 0 ? 1 : 0), box.Files("unchanged"));
    }

    [Fact]
    public async Task A_multipart_object_is_downloaded_once_then_skipped_and_a_same_size_change_is_picked_up()
    {
        using var box = await PullSandbox.CreateAsync("multipart");
        var big = new byte[20 * 1024 * 1024];
        new Random(4).NextBytes(big);
        await box.PutAsync(new Dictionary<string, byte[]> { ["media/big.bin"] = big });
        using (var client = box.Server.Client())
            Assert.EndsWith("-2", (await client.StatAsync(box.Bucket, "media/big.bin")).ETag);

        await box.PullOkAsync();
        Assert.Equal(1, box.Files("downloaded"));
        await box.PullOkAsync();
        Assert.Equal(0, box.Files("downloaded"));
        Directory.Delete(box.State, recursive: true); // no manifest: the multipart ETag is recomputed from the file
        await box.PullOkAsync();
        Assert.Equal(0, box.Files("downloaded"));

        big[12345] ^= 0xFF;
        await box.PutAsync(new Dictionary<string, byte[]> { ["media/big.bin"] = big });
        await box.PullOkAsync();
        Assert.Equal(1, box.Files("downloaded"));
        box.AssertMirrors(new Dictionary<string, byte[]> { ["media/big.bin"] = big });
    }

    [Fact]
    public async Task A_multipart_object_uploaded_with_other_part_sizes_is_downloaded_at_most_once()
    {
        using var box = await PullSandbox.CreateAsync("foreignparts");
        var big = new byte[20 * 1024 * 1024];
        new Random(5).NextBytes(big);
        var file = Path.Combine(box.Root, "big.bin");
        File.WriteAllBytes(file, big);
        // awscli uploads in 8 MiB parts ("-3"); our own part size would give "-2".
        var env = box.Server.Environment(("AWS_ACCESS_KEY_ID", box.Server.AccessKey), ("AWS_SECRET_ACCESS_KEY", box.Server.SecretKey), ("AWS_DEFAULT_REGION", "us-east-1"));
        var upload = await ProcessRunner.RunAsync("/usr/bin/aws", ["--endpoint-url", box.Server.Endpoint, "s3", "cp", file, $"s3://{box.Bucket}/big.bin"], env);
        Assert.True(upload.ExitCode == 0, upload.ToString());

        Directory.CreateDirectory(box.Dest);
        File.Copy(file, Path.Combine(box.Dest, "big.bin")); // the right content, but no manifest to vouch for it
        await box.PullOkAsync();
        Assert.Equal(1, box.Files("downloaded")); // cannot prove equality from the ETag: downloaded once
        await box.PullOkAsync();
        Assert.Equal(0, box.Files("downloaded")); // ... and never again
        await box.PullOkAsync();
        Assert.Equal(0, box.Files("downloaded"));
        box.AssertMirrors(new Dictionary<string, byte[]> { ["big.bin"] = big });
    }

    [Fact]
    public async Task Sigkill_during_a_large_pull_leaves_no_partial_file_at_a_served_path_and_the_next_run_converges()
    {
        using var box = await PullSandbox.CreateAsync("sigkill");
        var tree = Enumerable.Range(0, 12).ToDictionary(i => $"big/file-{i:D2}.bin", i =>
        {
            var data = new byte[4 * 1024 * 1024 + i];
            new Random(i).NextBytes(data);
            return data;
        });
        await box.PutAsync(tree);

        var start = ProcessRunner.StartInfo(RepoPaths.Tool("content-pull"),
            [box.Source(), box.Dest, "--delete", "--state-dir", box.State, "--parallel", "2"], box.Server.Environment());
        using var pull = Process.Start(start)!;
        var killed = false;
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (!pull.HasExited && DateTime.UtcNow < deadline)
        {
            var done = Directory.Exists(Path.Combine(box.Dest, "big"))
                ? Directory.GetFiles(Path.Combine(box.Dest, "big")).Count(f => !Path.GetFileName(f).StartsWith('.'))
                : 0;
            var writing = Directory.Exists(Path.Combine(box.Dest, "big"))
                && Directory.GetFiles(Path.Combine(box.Dest, "big")).Any(f => Path.GetFileName(f).StartsWith('.') && Path.GetFileName(f).Contains(".tmp-", StringComparison.Ordinal));
            if (writing && done >= 2)
            {
                pull.Kill();
                killed = true;
                break;
            }
            await Task.Delay(1);
        }
        await pull.WaitForExitAsync();
        Assert.True(killed, "the pull finished before it could be killed mid-way");

        var served = Directory.GetFiles(Path.Combine(box.Dest, "big")).Where(f => !Path.GetFileName(f).StartsWith('.')).ToList();
        Assert.NotEmpty(served);
        Assert.True(served.Count < tree.Count);
        foreach (var file in served)
            Assert.True(tree[$"big/{Path.GetFileName(file)}"].AsSpan().SequenceEqual(File.ReadAllBytes(file)), $"{file} is a partial file at a served path");

        var next = await box.PullOkAsync();
        Assert.Contains("temporary file left by an interrupted run", next.Stderr);
        box.AssertMirrors(tree);
    }

    [Fact]
    public async Task An_empty_source_is_refused_and_nothing_changes()
    {
        using var box = await PullSandbox.CreateAsync("empty");
        var tree = PullSandbox.RandomTree(20, 2, seed: 6);
        await box.PutAsync(tree);
        await box.PullOkAsync();
        var lastSuccess = box.MetricValue("content_pull_last_success_timestamp_seconds");
        await box.DeleteAsync([.. tree.Keys]);

        var result = await box.PullAsync();
        Assert.Equal(5, result.ExitCode);
        Assert.Contains("is empty", Assert.Single(result.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries)));
        box.AssertMirrors(tree);
        Assert.Equal(0, box.MetricValue("content_pull_last_run_success"));
        Assert.Equal(lastSuccess, box.MetricValue("content_pull_last_success_timestamp_seconds"));

        await box.PullOkAsync("--force");
        box.AssertMirrors(new Dictionary<string, byte[]>());
    }

    public static TheoryData<string, int> ListingFailures => new() { { "server stopped", 6 }, { "wrong credentials", 7 }, { "missing bucket", 8 } };

    [Theory]
    [MemberData(nameof(ListingFailures))]
    public async Task A_failed_listing_deletes_nothing_says_why_in_one_line_and_keeps_the_last_success(string failure, int exitCode)
    {
        var server = failure == "server stopped" ? S3Server.StartDedicated() : S3Server.Shared;
        using var box = await PullSandbox.CreateAsync("listfail", server);
        var tree = PullSandbox.RandomTree(30, 3, seed: 7);
        await box.PutAsync(tree);
        await box.PullOkAsync();
        var lastSuccess = box.MetricValue("content_pull_last_success_timestamp_seconds");
        Assert.NotNull(lastSuccess);

        var env = server.Environment();
        var extra = Array.Empty<string>();
        switch (failure)
        {
            case "server stopped": server.Stop(); break;
            case "wrong credentials": env["S3_SECRET_KEY"] = "not-the-secret-at-all"; break;
            case "missing bucket": env["S3_ENDPOINT"] = server.Endpoint; break;
        }
        var result = failure == "missing bucket"
            ? await ProcessRunner.RunAsync(RepoPaths.Tool("content-pull"),
                [$"s3://{box.Bucket}-gone/", box.Dest, "--delete", "--state-dir", box.State, "--metrics-file", box.Metrics], env)
            : await box.PullAsync(env, extra);

        Assert.True(result.ExitCode == exitCode, result.ToString());
        Assert.Single(result.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.DoesNotContain("not-the-secret-at-all", result.Output);
        box.AssertMirrors(tree);
        Assert.Equal(0, box.MetricValue("content_pull_last_run_success"));
        Assert.Equal(lastSuccess, box.MetricValue("content_pull_last_success_timestamp_seconds"));
    }

    [Fact]
    public async Task More_deletes_than_max_delete_changes_nothing()
    {
        using var box = await PullSandbox.CreateAsync("maxdelete");
        var tree = PullSandbox.RandomTree(20, 2, seed: 8);
        await box.PutAsync(tree);
        await box.PullOkAsync();
        var doomed = tree.Keys.Take(6).ToArray();
        await box.DeleteAsync(doomed);
        await box.PutAsync(new Dictionary<string, byte[]> { ["fresh.html"] = "fresh"u8.ToArray() });

        var result = await box.PullAsync("--max-delete", "5");
        Assert.Equal(5, result.ExitCode);
        Assert.Contains("--max-delete 5", Assert.Single(result.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries)));
        box.AssertMirrors(tree); // nothing deleted, nothing downloaded

        await box.PullOkAsync("--max-delete", "6");
        foreach (var key in doomed) tree.Remove(key);
        tree["fresh.html"] = "fresh"u8.ToArray();
        box.AssertMirrors(tree);
    }

    [Fact]
    public async Task Hostile_keys_are_skipped_with_a_message_and_nothing_is_written_or_deleted_outside_DEST()
    {
        using var box = await PullSandbox.CreateAsync("hostile");
        var outsideVictim = Path.Combine(box.Root, "evil1.txt");
        File.WriteAllText(outsideVictim, "original");
        var hostile = new[] { "../evil1.txt", "a/../../evil2.txt", "/abs.txt", "back\\slash.txt", "./dot.txt", "x/./y.txt", "a//b.txt",
            new string('n', 300), "ctl\u0001x", "a" };
        // awscli sends keys as given; our own Minio-based client would normalise the dot segments away.
        var env = box.Server.Environment(("AWS_ACCESS_KEY_ID", box.Server.AccessKey), ("AWS_SECRET_ACCESS_KEY", box.Server.SecretKey), ("AWS_DEFAULT_REGION", "us-east-1"));
        var body = Path.Combine(box.Root, "body.txt");
        File.WriteAllText(body, "evil");
        foreach (var key in hostile)
        {
            var put = await ProcessRunner.RunAsync("/usr/bin/aws", ["--endpoint-url", box.Server.Endpoint, "s3api", "put-object", "--bucket", box.Bucket, "--key", key, "--body", body], env);
            Assert.True(put.ExitCode == 0, put.ToString());
        }
        // A name like our temporary files' is an ordinary key: ours carry a tag only the state directory knows.
        var good = new Dictionary<string, byte[]> { ["ok.html"] = "fine"u8.ToArray(), ["a/b"] = "dir wins"u8.ToArray(), [".page.html.tmp-1-1"] = "not ours"u8.ToArray() };
        await box.PutAsync(good);
        // Ceph RGW refuses keys with NUL (measured), so that case is covered by KeyPathsTests only.

        var result = await box.PullAsync();
        Assert.True(result.ExitCode == 4, result.ToString());
        Assert.NotEmpty(hostile);
        // Control characters are escaped in the log (a key cannot forge a log line).
        foreach (var key in hostile) Assert.Contains($"skipping {key.Replace("\u0001", "\\x01")}", result.Stderr);
        box.AssertMirrors(good);
        Assert.Equal("original", File.ReadAllText(outsideVictim));
        var outside = Directory.EnumerateFileSystemEntries(box.Root, "*", SearchOption.AllDirectories)
            .Where(p => !p.StartsWith(box.Dest + "/") && !p.StartsWith(box.State) && !p.StartsWith(Path.GetDirectoryName(box.Metrics)!))
            .Select(p => Path.GetRelativePath(box.Root, p)).Order().ToList();
        Assert.Equal(["body.txt", "evil1.txt", "www"], outside);
        Assert.False(File.Exists("/abs.txt"));
        Assert.Equal(0, box.MetricValue("content_pull_last_run_success"));
        Assert.Equal(hostile.Length, box.Files("skipped"));
    }

    [Fact]
    public async Task Dry_run_prints_the_plan_and_changes_nothing()
    {
        using var box = await PullSandbox.CreateAsync("dryrun");
        await box.PutAsync(new Dictionary<string, byte[]> { ["new.html"] = "n"u8.ToArray() });
        Directory.CreateDirectory(box.Dest);
        File.WriteAllText(Path.Combine(box.Dest, "old.html"), "old");

        var result = await box.PullAsync("--dry-run");
        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Contains("download new.html (new)", result.Stdout);
        Assert.Contains("delete old.html", result.Stdout);
        Assert.Equal(["old.html"], Directory.GetFiles(box.Dest).Select(Path.GetFileName));
        Assert.False(File.Exists(box.Metrics));
        Assert.False(Directory.Exists(box.State));
    }

    [Fact]
    public async Task Excluded_keys_are_neither_downloaded_nor_deleted()
    {
        using var box = await PullSandbox.CreateAsync("exclude");
        await box.PutAsync(new Dictionary<string, byte[]> { ["index.html"] = "i"u8.ToArray(), ["drafts/wip.html"] = "w"u8.ToArray(), ["x.bak"] = "b"u8.ToArray() });
        Directory.CreateDirectory(Path.Combine(box.Dest, "uploads"));
        File.WriteAllText(Path.Combine(box.Dest, "uploads", "user.jpg"), "local only");

        await box.PullOkAsync("--exclude", "drafts/**", "--exclude", "*.bak", "--exclude", "uploads");
        box.AssertMirrors(new Dictionary<string, byte[]> { ["index.html"] = "i"u8.ToArray(), ["uploads/user.jpg"] = "local only"u8.ToArray() });
    }

    [Fact]
    public async Task Files_are_readable_by_the_web_server_under_a_restrictive_umask_unless_chmod_says_otherwise()
    {
        using var box = await PullSandbox.CreateAsync("modes");
        await box.PutAsync(new Dictionary<string, byte[]> { ["css/site.css"] = "c"u8.ToArray() });
        var pull = $"umask 077; exec {RepoPaths.Tool("content-pull")} {box.Source()} {box.Dest} --state-dir {box.State}";
        var result = await ProcessRunner.RunAsync("sh", ["-c", pull], box.Server.Environment());
        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Equal(Mode644, File.GetUnixFileMode(Path.Combine(box.Dest, "css", "site.css")));
        Assert.Equal(Mode755, File.GetUnixFileMode(Path.Combine(box.Dest, "css")));

        Directory.Delete(box.Dest, recursive: true);
        await box.PullOkAsync("--chmod", "0640:0750");
        Assert.Equal((UnixFileMode)Convert.ToInt32("640", 8), File.GetUnixFileMode(Path.Combine(box.Dest, "css", "site.css")));
        Assert.Equal((UnixFileMode)Convert.ToInt32("750", 8), File.GetUnixFileMode(Path.Combine(box.Dest, "css")));
    }

    [Fact]
    public async Task Folder_markers_become_directories_and_type_changes_converge()
    {
        using var box = await PullSandbox.CreateAsync("types");
        await box.PutAsync(new Dictionary<string, byte[]> { ["docs"] = "a file"u8.ToArray(), ["page/index.html"] = "p"u8.ToArray(), ["empty/"] = [] });
        await box.PullOkAsync();
        Assert.True(Directory.Exists(Path.Combine(box.Dest, "empty")));
        Assert.True(File.Exists(Path.Combine(box.Dest, "docs")));

        // docs turns into a directory, page into a file.
        await box.DeleteAsync("docs", "page/index.html");
        var next = new Dictionary<string, byte[]> { ["docs/index.html"] = "d"u8.ToArray(), ["page"] = "now a file"u8.ToArray() };
        await box.PutAsync(next);
        await box.PullOkAsync();
        box.AssertMirrors(next);
        Assert.True(Directory.Exists(Path.Combine(box.Dest, "empty")));
    }

    [Fact]
    public async Task Symbolic_links_in_DEST_are_never_followed()
    {
        using var box = await PullSandbox.CreateAsync("symlink");
        var outside = Path.Combine(box.Root, "outside");
        Directory.CreateDirectory(outside);
        File.WriteAllText(Path.Combine(outside, "app.js"), "outside content");
        Directory.CreateDirectory(box.Dest);
        File.CreateSymbolicLink(Path.Combine(box.Dest, "assets"), outside);
        await box.PutAsync(new Dictionary<string, byte[]> { ["assets/app.js"] = "from s3"u8.ToArray() });

        var withoutDelete = await ProcessRunner.RunAsync(RepoPaths.Tool("content-pull"), [box.Source(), box.Dest, "--state-dir", box.State], box.Server.Environment());
        Assert.Equal(4, withoutDelete.ExitCode);
        Assert.Contains("symbolic link 'assets' is in the way", withoutDelete.Stderr);
        Assert.Equal("outside content", File.ReadAllText(Path.Combine(outside, "app.js")));

        await box.PullOkAsync();
        Assert.Equal("outside content", File.ReadAllText(Path.Combine(outside, "app.js")));
        Assert.Null(new DirectoryInfo(Path.Combine(box.Dest, "assets")).LinkTarget);
        box.AssertMirrors(new Dictionary<string, byte[]> { ["assets/app.js"] = "from s3"u8.ToArray() });
    }

    [Fact]
    public async Task A_second_pull_into_the_same_destination_is_refused_while_one_runs()
    {
        using var box = await PullSandbox.CreateAsync("lock");
        await box.PutAsync(new Dictionary<string, byte[]> { ["a.html"] = "a"u8.ToArray() });
        Directory.CreateDirectory(box.State);
        var manifest = Manifest.PathFor(box.State, new Uri(box.Server.Endpoint).ToString(), box.Bucket, "", box.Dest);
        using (var held = FileLock.TryAcquire(manifest + ".lock"))
        {
            Assert.NotNull(held);
            var result = await box.PullAsync();
            Assert.Equal(5, result.ExitCode);
            Assert.Contains("another content-pull is already working on", result.Stderr);
        }
        await box.PullOkAsync();
    }

    [Fact]
    public async Task A_terminal_gets_a_progress_line_and_logs_for_machines_do_not()
    {
        using var box = await PullSandbox.CreateAsync("progress");
        await box.PutAsync(PullSandbox.RandomTree(600, 6, seed: 9, maxSize: 64));
        // script(1) gives the pull a pseudo-terminal, as in a manual run.
        var pull = $"{RepoPaths.Tool("content-pull")} {box.Source()} {box.Dest} --state-dir {box.State} --parallel 1";
        var onTerminal = await ProcessRunner.RunAsync("script", ["-qec", pull, "/dev/null"], box.Server.Environment());
        Assert.True(onTerminal.ExitCode == 0, onTerminal.ToString());
        Assert.Matches(@"\d+/600 files, [0-9.]+ (B|KB|MB) downloaded", onTerminal.Stdout);
        Assert.Contains("600 downloaded", onTerminal.Stdout);

        Directory.Delete(box.Dest, recursive: true);
        Directory.Delete(box.State, recursive: true);
        var logged = await box.PullAsync("--parallel", "1");
        Assert.True(logged.ExitCode == 0, logged.ToString());
        Assert.DoesNotMatch(@"\d+/600 files", logged.Output);
        Assert.Single(logged.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries)); // just the summary
    }

    [Fact]
    public async Task Pulls_with_virtual_host_addressing_as_for_AWS_and_Exoscale()
    {
        using var box = await PullSandbox.CreateAsync("vhost");
        var tree = PullSandbox.RandomTree(30, 3, seed: 10);
        await box.PutAsync(tree);
        // A private mount namespace gets its own /etc/hosts, where only bucket.localhost reaches the server:
        // a path-style request (to localhost itself) would fail.
        var hosts = Path.Combine(box.Root, "hosts");
        File.WriteAllText(hosts, $"127.0.0.2 localhost\n127.0.0.1 {box.Bucket}.localhost\n");
        var pull = $"mount --bind {hosts} /etc/hosts && exec {RepoPaths.Tool("content-pull")} {box.Source()} {box.Dest} --delete --state-dir {box.State} --debug";
        var env = box.Server.Environment(("S3_ENDPOINT", $"http://localhost:{new Uri(box.Server.Endpoint).Port}"), ("S3_ADDRESSING", "virtual"));
        var result = await ProcessRunner.RunAsync("unshare", ["--mount", "sh", "-c", pull], env);
        Assert.True(result.ExitCode == 0, result.ToString());
        box.AssertMirrors(tree);
    }

    [Fact]
    public async Task Bad_arguments_are_one_line_and_exit_code_2()
    {
        using var dir = new TempDir();
        foreach (var args in new[] { new[] { "not-an-s3-url", dir.Path }, ["s3://bucket-x/", "/"], ["s3://bucket-x/", dir.Combine("www"), "--state-dir", dir.Combine("www", "state")],
                     ["s3://bucket-x/", dir.Path, "--parallel", "0"], ["s3://bucket-x/", dir.Path, "--chmod", "999"] })
        {
            var result = await ProcessRunner.RunAsync(RepoPaths.Tool("content-pull"), args, S3Server.Shared.Environment());
            Assert.True(result.ExitCode == 2, string.Join(' ', args) + "\n" + result);
            Assert.Single(result.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        }
    }
}
