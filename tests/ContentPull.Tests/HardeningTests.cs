using System.Diagnostics;
using System.Text;

namespace InfraTools.Tests;

/// <summary>
/// The findings of the hardening issue against content-pull's AOT binary: server-side faults through the
/// fault-injecting endpoint in front of the real RGW, file-system ones with real tmpfs mounts, permissions,
/// FIFOs and an unprivileged user. Each fails on the binary before the fixes (INFRATOOLS_TEST_BIN shows it).
/// </summary>
public class HardeningTests
{
    private static readonly TimeSpan Bounded = TimeSpan.FromSeconds(90);

    private static async Task<(PullSandbox Box, Dictionary<string, byte[]> Tree)> PulledAsync(string purpose, int files = 10, int seed = 11)
    {
        var box = await PullSandbox.CreateAsync(purpose);
        var tree = PullSandbox.RandomTree(files, 2, seed);
        await box.PutAsync(tree);
        await box.PullOkAsync();
        return (box, tree);
    }

    private static Task<ProcessResult> PullThroughAsync(PullSandbox box, FaultyS3 s3, params string[] extra) =>
        ProcessRunner.RunAsync(RepoPaths.Tool("content-pull"), [box.Source(), box.Dest, "--delete", "--state-dir", box.State, "--metrics-file", box.Metrics, .. extra],
            s3.Environment(box.Server, ("S3_IO_TIMEOUT", "2s")), timeout: Bounded);

    // 1 ---------------------------------------------------------------------------------------------------------

    [Fact]
    public async Task A_listing_that_says_truncated_without_a_continuation_token_fails_and_deletes_nothing()
    {
        var (box, tree) = await PulledAsync("trunc");
        using var _ = box;
        using var s3 = FaultyS3.InFrontOf(box.Server);
        var rule = s3.When(r => r.IsListing, new Fault.Rewrite((_, response) => response.BodyText = S3Xml.TruncatedListing(response.BodyText, keep: 4, token: null)));

        var result = await PullThroughAsync(box, s3);

        Assert.True(s3.Hits(rule) > 0, "the listing never went through the fault endpoint");
        Assert.True(result.ExitCode == 11, result.ToString());
        Assert.Contains("incomplete: the server said more keys follow but gave no continuation token", result.Stderr);
        box.AssertMirrors(tree);
        Assert.Equal(0, box.MetricValue("content_pull_last_run_success"));
    }

    [Fact]
    public async Task A_listing_that_repeats_its_continuation_token_fails_instead_of_looping()
    {
        var (box, tree) = await PulledAsync("loop");
        using var _ = box;
        using var s3 = FaultyS3.InFrontOf(box.Server);
        s3.When(r => r.IsListing, new Fault.Rewrite((_, response) => response.BodyText = S3Xml.TruncatedListing(response.BodyText, keep: 4, token: "again")));

        var result = await PullThroughAsync(box, s3);

        Assert.True(result.ExitCode == 11, result.ToString());
        Assert.Contains("gave the same continuation token again", result.Stderr);
        box.AssertMirrors(tree);
    }

    // 2 ---------------------------------------------------------------------------------------------------------

    [Fact]
    public async Task A_download_that_stalls_mid_body_times_out_fails_that_file_and_keeps_the_old_one()
    {
        var (box, tree) = await PulledAsync("stall");
        using var _ = box;
        var stalled = tree.Keys.First();
        var changed = tree.Keys.Last();
        var old = tree[stalled];
        tree[stalled] = Enumerable.Repeat((byte)'s', 100_000).ToArray();
        tree[changed] = "changed"u8.ToArray();
        await box.PutAsync(new Dictionary<string, byte[]> { [stalled] = tree[stalled], [changed] = tree[changed] });
        using var s3 = FaultyS3.InFrontOf(box.Server);
        var rule = s3.When(r => r.IsGetObject && r.Key == stalled, new Fault.StallAfter(1000));

        var clock = Stopwatch.StartNew();
        var result = await PullThroughAsync(box, s3);

        Assert.True(s3.Hits(rule) > 0);
        Assert.True(result.ExitCode == 4, result.ToString());
        Assert.Contains($"failed to download {stalled}", result.Stderr);
        Assert.Contains("nothing received or sent for 2s, S3_IO_TIMEOUT", result.Stderr);
        Assert.Equal(old, File.ReadAllBytes(Path.Combine(box.Dest, stalled)));
        Assert.Equal("changed", File.ReadAllText(Path.Combine(box.Dest, changed)));
        Assert.Empty(Directory.EnumerateFiles(box.Dest, ".*", SearchOption.AllDirectories));
        Assert.True(clock.Elapsed < Bounded, "bounded by the test's own timeout");
    }

    [Fact]
    public async Task A_server_that_answers_nothing_ends_the_run_with_exit_6_instead_of_hanging()
    {
        var (box, tree) = await PulledAsync("silent");
        using var _ = box;
        using var s3 = FaultyS3.InFrontOf(box.Server);
        s3.When(_ => true, new Fault.Silence());

        var result = await PullThroughAsync(box, s3);

        Assert.True(result.ExitCode == 6, result.ToString());
        Assert.Contains("nothing received or sent for 2s, S3_IO_TIMEOUT", result.Stderr);
        box.AssertMirrors(tree);
    }

    // 7 ---------------------------------------------------------------------------------------------------------

    [Fact]
    public async Task An_unreadable_directory_is_never_read_when_excluded_and_fails_only_itself_when_not()
    {
        using var box = await PullSandbox.CreateAsync("lostfound");
        var tree = PullSandbox.RandomTree(6, 2, seed: 12);
        await box.PutAsync(tree);
        using var home = new TempDir("nobody");
        var dest = Path.Combine(home.Path, "www");
        var state = Path.Combine(home.Path, "state");
        Directory.CreateDirectory(Path.Combine(dest, "lost+found"));
        File.WriteAllText(Path.Combine(dest, "lost+found", "#1234"), "fsck");
        await Sh($"chown -R 65534:65534 {home.Path} && chown 0:0 {dest}/lost+found && chmod 0700 {dest}/lost+found");

        ProcessResult AsNobody(params string[] extra) => ProcessRunner.RunAsync("setpriv",
            ["--reuid=65534", "--regid=65534", "--clear-groups", "--", RepoPaths.Tool("content-pull"), box.Source(), dest, "--delete", "--state-dir", state, .. extra],
            box.Server.Environment(), timeout: Bounded).GetAwaiter().GetResult();

        var excluded = AsNobody("--exclude", "lost+found");
        Assert.True(excluded.ExitCode == 0, excluded.ToString());
        foreach (var (path, content) in tree) Assert.Equal(content, File.ReadAllBytes(Path.Combine(dest, path)));

        var notExcluded = AsNobody();
        Assert.True(notExcluded.ExitCode == 4, notExcluded.ToString());
        Assert.Contains("cannot read local directory lost+found (Permission denied)", notExcluded.Stderr);
        Assert.Equal("fsck", File.ReadAllText(Path.Combine(dest, "lost+found", "#1234")));
    }

    // 8 ---------------------------------------------------------------------------------------------------------

    [Fact]
    public async Task Files_named_like_temporary_files_are_the_user_s_and_are_never_removed_as_leftovers()
    {
        var (box, _) = await PulledAsync("usertmp");
        using var __ = box;
        Directory.CreateDirectory(Path.Combine(box.Dest, "drafts"));
        File.WriteAllText(Path.Combine(box.Dest, ".index.html.tmp-1-1"), "mine");
        File.WriteAllText(Path.Combine(box.Dest, "drafts/.notes.tmp-123-4"), "mine too");

        var withoutDelete = await ProcessRunner.RunAsync(RepoPaths.Tool("content-pull"), [box.Source(), box.Dest, "--state-dir", box.State, "--exclude", "drafts"],
            box.Server.Environment(), timeout: Bounded);
        Assert.True(withoutDelete.ExitCode == 0, withoutDelete.ToString());
        Assert.DoesNotContain("temporary file left by an interrupted run", withoutDelete.Stderr);
        Assert.Equal("mine", File.ReadAllText(Path.Combine(box.Dest, ".index.html.tmp-1-1")));
        Assert.Equal("mine too", File.ReadAllText(Path.Combine(box.Dest, "drafts/.notes.tmp-123-4")));

        // With --delete a file that is not in the source goes like any other (not as "ours"); excluded ones stay.
        var withDelete = await box.PullAsync("--exclude", "drafts");
        Assert.True(withDelete.ExitCode == 0, withDelete.ToString());
        Assert.Contains("deleted .index.html.tmp-1-1", withDelete.Stderr);
        Assert.DoesNotContain("temporary file left by an interrupted run", withDelete.Stderr);
        Assert.Equal("mine too", File.ReadAllText(Path.Combine(box.Dest, "drafts/.notes.tmp-123-4")));
    }

    // 9 ---------------------------------------------------------------------------------------------------------

    [Fact]
    public async Task One_DEST_reached_through_a_symlink_with_another_endpoint_spelling_and_state_dir_is_not_pulled_twice_at_once()
    {
        var (box, tree) = await PulledAsync("lock");
        using var _ = box;
        var slow = tree.Keys.First();
        await box.PutAsync(new Dictionary<string, byte[]> { [slow] = "new content"u8.ToArray() });
        using var s3 = FaultyS3.InFrontOf(box.Server);
        s3.When(r => r.IsGetObject && r.Key == slow, new Fault.StallAfter(3));

        var first = Process.Start(ProcessRunner.StartInfo(RepoPaths.Tool("content-pull"),
            [box.Source(), box.Dest, "--delete", "--state-dir", box.State], s3.Environment(box.Server, ("S3_IO_TIMEOUT", "15s"))))!;
        try
        {
            await WaitUntilAsync(() => s3.Requests.Any(r => r.IsGetObject && r.Key == slow), "the first pull to start its download");
            var link = Path.Combine(box.Root, "www-link");
            File.CreateSymbolicLink(link, box.Dest);
            var env = box.Server.Environment();
            env["S3_ENDPOINT"] = box.Server.Endpoint.Replace("127.0.0.1", "localhost");
            var second = await ProcessRunner.RunAsync(RepoPaths.Tool("content-pull"), [box.Source(), link + "/", "--delete", "--state-dir", Path.Combine(box.Root, "other-state")],
                env, timeout: Bounded);

            Assert.True(second.ExitCode == 5, second.ToString());
            Assert.Contains("another run is already writing", second.Stderr);
        }
        finally
        {
            if (!first.HasExited) first.Kill();
            await first.WaitForExitAsync();
            first.Dispose();
        }
    }

    // 10 --------------------------------------------------------------------------------------------------------

    [Fact]
    public async Task A_FIFO_in_DEST_is_never_opened_and_a_FIFO_secret_file_is_refused()
    {
        using var box = await PullSandbox.CreateAsync("fifo");
        var tree = new Dictionary<string, byte[]> { ["empty.txt"] = [], ["page.html"] = "page"u8.ToArray() };
        await box.PutAsync(tree);
        Directory.CreateDirectory(box.Dest);
        await Sh($"mkfifo {box.Dest}/empty.txt {box.Dest}/stray.fifo");

        var result = await ProcessRunner.RunAsync(RepoPaths.Tool("content-pull"), [box.Source(), box.Dest, "--delete", "--state-dir", box.State],
            box.Server.Environment(), timeout: TimeSpan.FromSeconds(30));
        Assert.True(result.ExitCode == 0, result.ToString());
        box.AssertMirrors(tree);
        Assert.False(File.Exists(Path.Combine(box.Dest, "stray.fifo")));

        var fifo = Path.Combine(box.Root, "secret.fifo");
        await Sh($"mkfifo {fifo}");
        var env = box.Server.Environment(("S3_SECRET_KEY", null), ("S3_SECRET_KEY_FILE", fifo));
        var secret = await ProcessRunner.RunAsync(RepoPaths.Tool("content-pull"), [box.Source(), box.Dest, "--state-dir", box.State], env, timeout: TimeSpan.FromSeconds(30));
        Assert.True(secret.ExitCode == 3, secret.ToString());
        Assert.Contains($"S3_SECRET_KEY_FILE={fifo}: it is not a regular file", secret.Stderr);
    }

    // 11 --------------------------------------------------------------------------------------------------------

    [Fact]
    public async Task A_read_only_or_full_state_directory_is_a_warning_and_the_pull_succeeds()
    {
        using var box = await PullSandbox.CreateAsync("rostate");
        var tree = PullSandbox.RandomTree(8, 2, seed: 13);
        await box.PutAsync(tree);
        var readOnly = Path.Combine(box.Root, "ro-state");
        var full = Path.Combine(box.Root, "full-state");
        Directory.CreateDirectory(readOnly);
        Directory.CreateDirectory(full);
        await Sh($"mount -t tmpfs -o ro,size=1m tmpfs {readOnly} && mount -t tmpfs -o size=64k tmpfs {full}");
        try
        {
            var ro = await ProcessRunner.RunAsync(RepoPaths.Tool("content-pull"), [box.Source(), box.Dest, "--delete", "--state-dir", readOnly, "--metrics-file", box.Metrics],
                box.Server.Environment(), timeout: Bounded);
            Assert.True(ro.ExitCode == 0, ro.ToString());
            Assert.Contains("cannot be written", ro.Stderr);
            box.AssertMirrors(tree);

            // Fill the tmpfs, then pull everything again into a fresh DEST: the manifest cannot be saved.
            await Sh($"dd if=/dev/zero of={full}/filler bs=1k count=64 2>/dev/null || true");
            Directory.Delete(box.Dest, recursive: true);
            var fullRun = await ProcessRunner.RunAsync(RepoPaths.Tool("content-pull"), [box.Source(), box.Dest, "--delete", "--state-dir", full, "--metrics-file", box.Metrics],
                box.Server.Environment(), timeout: Bounded);
            Assert.True(fullRun.ExitCode == 0, fullRun.ToString());
            Assert.Equal(1, box.MetricValue("content_pull_last_run_success"));
            box.AssertMirrors(tree);
        }
        finally
        {
            await Sh($"umount {readOnly}; umount {full}");
        }
    }

    [Fact]
    public async Task A_state_directory_that_is_a_symlink_into_DEST_is_refused()
    {
        var (box, tree) = await PulledAsync("statelink");
        using var _ = box;
        Directory.CreateDirectory(Path.Combine(box.Dest, "inside"));
        var link = Path.Combine(box.Root, "state-link");
        File.CreateSymbolicLink(link, Path.Combine(box.Dest, "inside"));

        var result = await ProcessRunner.RunAsync(RepoPaths.Tool("content-pull"), [box.Source(), box.Dest, "--delete", "--state-dir", link], box.Server.Environment(), timeout: Bounded);

        Assert.True(result.ExitCode == 2, result.ToString());
        Assert.Contains("is inside DEST", result.Stderr);
        Assert.True(Directory.Exists(Path.Combine(box.Dest, "inside")));
    }

    // 13, 14 ----------------------------------------------------------------------------------------------------

    [Fact]
    public async Task A_key_with_a_newline_cannot_forge_a_log_line()
    {
        using var box = await PullSandbox.CreateAsync("forge");
        var env = box.Server.Environment(("AWS_ACCESS_KEY_ID", box.Server.AccessKey), ("AWS_SECRET_ACCESS_KEY", box.Server.SecretKey), ("AWS_DEFAULT_REGION", "us-east-1"));
        var body = Path.Combine(box.Root, "body.txt");
        File.WriteAllText(body, "x");
        var key = "a\n2026-01-01T00:00:00Z INF forged line";
        var put = await ProcessRunner.RunAsync("/usr/bin/aws", ["--endpoint-url", box.Server.Endpoint, "s3api", "put-object", "--bucket", box.Bucket, "--key", key, "--body", body], env);
        Assert.True(put.ExitCode == 0, put.ToString());

        var result = await box.PullAsync();

        Assert.True(result.ExitCode == 4, result.ToString());
        Assert.Contains("skipping a\\n2026-01-01T00:00:00Z INF forged line", result.Stderr);
        Assert.DoesNotContain(result.Stderr.Split('\n'), line => line.StartsWith("2026-01-01T00:00:00Z INF forged", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_password_in_the_endpoint_URL_is_never_echoed()
    {
        using var box = await PullSandbox.CreateAsync("userinfo");
        var env = box.Server.Environment(("S3_ENDPOINT", "http://admin:hunter2secret@127.0.0.1:9/"));

        var result = await ProcessRunner.RunAsync(RepoPaths.Tool("content-pull"), [box.Source(), box.Dest, "--state-dir", box.State], env, timeout: Bounded);

        Assert.True(result.ExitCode == 3, result.ToString());
        Assert.Contains("must not have a path, query or user name", result.Stderr);
        Assert.DoesNotContain("hunter2secret", result.Output);
        Assert.DoesNotContain("admin", result.Output);
    }

    // 15, 16, 17 ------------------------------------------------------------------------------------------------

    [Fact]
    public async Task Keys_with_names_of_240_to_255_bytes_are_mirrored()
    {
        using var box = await PullSandbox.CreateAsync("longnames");
        var tree = new Dictionary<string, byte[]>
        {
            [new string('é', 120) + ".html"] = "245 bytes"u8.ToArray(),
            [new string('n', 255)] = "255 bytes"u8.ToArray(),
            ["d/" + new string('x', 250)] = "250 bytes"u8.ToArray(),
        };
        Assert.All(tree.Keys, k => Assert.InRange(Encoding.UTF8.GetByteCount(k.Split('/')[^1]), 240, 255));
        await box.PutAsync(tree);

        await box.PullOkAsync();
        box.AssertMirrors(tree);
        await box.PullOkAsync();
        Assert.Equal(tree.Count, box.Files("unchanged"));
    }

    [Fact]
    public async Task Local_names_that_are_not_UTF8_are_deleted_with_delete_and_kept_without()
    {
        var (box, tree) = await PulledAsync("latin1");
        using var _ = box;
        await Sh($"cd {box.Dest} && touch \"$(printf 'caf\\351.html')\" && mkdir \"$(printf 'd\\377')\" && touch \"$(printf 'd\\377')/inner.html\"");
        Assert.Equal(2, Directory.EnumerateFileSystemEntries(box.Dest).Count(e => Path.GetFileName(e).Contains('\uFFFD')));

        var keep = await ProcessRunner.RunAsync(RepoPaths.Tool("content-pull"), [box.Source(), box.Dest, "--state-dir", box.State], box.Server.Environment(), timeout: Bounded);
        Assert.True(keep.ExitCode == 0, keep.ToString());
        Assert.Equal(2, Directory.EnumerateFileSystemEntries(box.Dest).Count(e => Path.GetFileName(e).Contains('\uFFFD')));

        var result = await box.PullOkAsync();
        Assert.Contains("deleted caf\\xe9.html (its name is not UTF-8", result.Stderr);
        Assert.Contains("deleted d\\xff (its name is not UTF-8", result.Stderr);
        Assert.Equal(2, box.Files("deleted"));
        box.AssertMirrors(tree);
        Assert.DoesNotContain(Directory.EnumerateFileSystemEntries(box.Dest), e => Path.GetFileName(e).Contains('\uFFFD'));
    }

    [Fact]
    public async Task DEST_and_its_missing_parents_get_0755_whatever_the_umask()
    {
        using var box = await PullSandbox.CreateAsync("umask");
        var tree = new Dictionary<string, byte[]> { ["a/b/page.html"] = "page"u8.ToArray() };
        await box.PutAsync(tree);
        var dest = Path.Combine(box.Root, "new-parent", "deeper", "www");

        var result = await ProcessRunner.RunAsync("sh", ["-c", $"umask 077; exec {RepoPaths.Tool("content-pull")} {box.Source()} {dest} --state-dir {box.State}"],
            box.Server.Environment(), timeout: Bounded);

        Assert.True(result.ExitCode == 0, result.ToString());
        const UnixFileMode mode755 = (UnixFileMode)0x1ED;
        foreach (var dir in new[] { "new-parent", "new-parent/deeper", "new-parent/deeper/www", "new-parent/deeper/www/a", "new-parent/deeper/www/a/b" })
            Assert.True(File.GetUnixFileMode(Path.Combine(box.Root, dir)) == mode755, $"{dir} is {File.GetUnixFileMode(Path.Combine(box.Root, dir))}");
        Assert.Equal((UnixFileMode)0x1A4, File.GetUnixFileMode(Path.Combine(dest, "a/b/page.html")));
    }

    // 19, 20 ----------------------------------------------------------------------------------------------------

    [Fact]
    public async Task Objects_served_chunked_or_without_a_length_are_mirrored_and_checked()
    {
        using var box = await PullSandbox.CreateAsync("chunked");
        var tree = PullSandbox.RandomTree(6, 2, seed: 14, maxSize: 20_000);
        await box.PutAsync(tree);
        using var s3 = FaultyS3.InFrontOf(box.Server);
        var keys = tree.Keys.ToList();
        var chunked = s3.When(r => r.IsGetObject && keys.IndexOf(r.Key) % 2 == 0, new Fault.Chunked());
        var noLength = s3.When(r => r.IsGetObject, new Fault.NoLengthThenClose());

        var result = await PullThroughAsync(box, s3);

        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.True(s3.Hits(chunked) > 0 && s3.Hits(noLength) > 0);
        box.AssertMirrors(tree);
    }

    [Fact]
    public async Task A_truncated_chunked_download_is_an_integrity_failure_not_a_short_file()
    {
        var (box, tree) = await PulledAsync("shortchunk");
        using var _ = box;
        var key = tree.Keys.First();
        var old = tree[key];
        await box.PutAsync(new Dictionary<string, byte[]> { [key] = Enumerable.Repeat((byte)'z', 50_000).ToArray() });
        using var s3 = FaultyS3.InFrontOf(box.Server);
        // The body without its last bytes and without a length: only the listing's size and the ETag can tell.
        s3.When(r => r.IsGetObject && r.Key == key, new Fault.Rewrite((_, response) => response.Body = response.Body[..^10], Then: new Fault.NoLengthThenClose()));

        var result = await PullThroughAsync(box, s3);

        Assert.True(result.ExitCode == 4, result.ToString());
        Assert.Equal(old, File.ReadAllBytes(Path.Combine(box.Dest, key)));
    }

    [Theory]
    [InlineData("rgw-empty-message")]
    [InlineData("html")]
    public async Task Server_errors_are_reported_in_S3_terms(string kind)
    {
        var (box, _) = await PulledAsync("errors" + kind.Length);
        using var __ = box;
        using var s3 = FaultyS3.InFrontOf(box.Server);
        s3.When(r => r.IsListing, new Fault.Answer(_ => kind == "html"
            ? FaultResponse.Make(500, "<!DOCTYPE html><html><body>Internal error</body></html>", "text/html")
            : FaultResponse.Make(500, S3Xml.Error("InternalError", ""))));

        var result = await PullThroughAsync(box, s3);

        Assert.True(result.ExitCode == 11, result.ToString());
        Assert.Contains(kind == "html"
            ? "answered HTTP 500 Internal Server Error with text/html, not an S3 error"
            : "the server answered InternalError (HTTP 500)", result.Stderr);
        Assert.DoesNotContain("Value cannot be null", result.Stderr);
        Assert.DoesNotContain("DTD", result.Stderr);
    }

    // 21 --------------------------------------------------------------------------------------------------------

    [Theory]
    [InlineData("--max-delete", "-1", "--max-delete -1 is negative")]
    [InlineData("DEST", "", "DEST is empty")]
    public async Task Bad_arguments_are_usage_errors(string what, string value, string message)
    {
        using var box = await PullSandbox.CreateAsync("usage");
        string[] args = what == "DEST" ? [box.Source(), value] : [box.Source(), box.Dest, what, value, "--state-dir", box.State];

        var result = await ProcessRunner.RunAsync(RepoPaths.Tool("content-pull"), args, box.Server.Environment(), timeout: Bounded);

        Assert.True(result.ExitCode == 2, result.ToString());
        Assert.Contains(message, result.Stderr);
        Assert.False(Directory.Exists(box.Dest));
    }

    private static async Task Sh(string script)
    {
        var result = await ProcessRunner.RunAsync("sh", ["-c", script]);
        Assert.True(result.ExitCode == 0, result.ToString());
    }

    private static async Task WaitUntilAsync(Func<bool> condition, string what)
    {
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (!condition())
        {
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"waited 30 s for {what}");
            await Task.Delay(20);
        }
    }
}
