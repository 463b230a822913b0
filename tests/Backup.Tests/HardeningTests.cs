using System.Text;

namespace InfraTools.Tests;

/// <summary>
/// The findings of the hardening issue against backup's and acme-restore's AOT binaries (real RGW, the
/// fault-injecting endpoint, real FIFOs, symbolic links and umasks). Each fails on the binaries before the fixes.
/// </summary>
public class BackupHardeningTests
{
    private static readonly S3Server Server = S3Server.Shared;
    private static readonly TimeSpan Bounded = TimeSpan.FromSeconds(90);

    private static Task<ProcessResult> Backup(Dictionary<string, string?> env, params string[] args) =>
        ProcessRunner.RunAsync(RepoPaths.Tool("backup"), args, env, timeout: Bounded);

    private static Task<ProcessResult> Backup(params string[] args) => Backup(Server.Environment(), args);

    private static async Task<List<(string Key, string ETag)>> ObjectsAsync(string bucket, string prefix = "")
    {
        using var client = Server.Client();
        return await client.ListAsync(bucket, prefix).Select(o => (o.Key, o.ETag)).ToListAsync();
    }

    private static async Task PutAsync(string bucket, string key, string content)
    {
        using var client = Server.Client();
        var bytes = Encoding.UTF8.GetBytes(content);
        await client.PutAsync(bucket, key, new MemoryStream(bytes), bytes.Length);
    }

    // 3 ---------------------------------------------------------------------------------------------------------

    [Fact]
    public async Task A_snapshot_of_an_empty_SRC_is_refused_and_the_real_snapshots_stay()
    {
        var bucket = await Server.NewBucketAsync("emptysnap");
        using var dir = new TempDir("backup");
        var source = dir.Combine("source");
        Directory.CreateDirectory(source);
        File.WriteAllText(Path.Combine(source, "data.txt"), "real");
        var first = await Backup("push", source, $"s3://{bucket}/snap/", "--snapshot", "--keep-last", "1");
        Assert.True(first.ExitCode == 0, first.ToString());
        var before = await ObjectsAsync(bucket);
        File.Delete(Path.Combine(source, "data.txt"));
        await Task.Delay(1100); // a new snapshot name

        var empty = await Backup("push", source, $"s3://{bucket}/snap/", "--snapshot", "--keep-last", "1");

        Assert.True(empty.ExitCode == 5, empty.ToString());
        Assert.Contains("refusing to write an empty snapshot", empty.Stderr);
        Assert.Equal(before, await ObjectsAsync(bucket));
    }

    // 4 ---------------------------------------------------------------------------------------------------------

    [Fact]
    public async Task A_snapshot_named_in_the_future_neither_stays_newest_nor_prunes_new_ones()
    {
        var bucket = await Server.NewBucketAsync("futuresnap");
        using var dir = new TempDir("backup");
        // Pushed once from a host whose clock was far ahead.
        await PutAsync(bucket, "snap/20991231T235959Z/data.txt", "stale");
        await PutAsync(bucket, "snap/20991231T235959Z/.backup-complete", "{}");
        await Task.Delay(1100); // the server's clock must see the new push later
        var source = dir.Combine("source");
        Directory.CreateDirectory(source);
        File.WriteAllText(Path.Combine(source, "data.txt"), "fresh");

        var push = await Backup("push", source, $"s3://{bucket}/snap/", "--snapshot", "--keep-last", "1");

        Assert.True(push.ExitCode == 0, push.ToString());
        Assert.Contains("named after this host's time", push.Stderr);
        var names = (await ObjectsAsync(bucket, "snap/")).Select(o => o.Key.Split('/')[1]).Distinct().ToList();
        Assert.Single(names);
        Assert.NotEqual("20991231T235959Z", names[0]);
        var restored = dir.Combine("restored");
        var restore = await Backup("restore", $"s3://{bucket}/snap/", restored);
        Assert.True(restore.ExitCode == 0, restore.ToString());
        Assert.Equal("fresh", File.ReadAllText(Path.Combine(restored, "data.txt")));
    }

    // 10 --------------------------------------------------------------------------------------------------------

    [Fact]
    public async Task A_FIFO_in_SRC_is_skipped_without_being_opened_and_a_FIFO_SRC_is_refused()
    {
        var bucket = await Server.NewBucketAsync("fifopush");
        using var dir = new TempDir("backup");
        var source = dir.Combine("source");
        Directory.CreateDirectory(source);
        File.WriteAllText(Path.Combine(source, "data.txt"), "data");
        var fifo = Path.Combine(source, "pipe");
        var mkfifo = await ProcessRunner.RunAsync("mkfifo", [fifo]);
        Assert.True(mkfifo.ExitCode == 0, mkfifo.ToString());

        var tree = await Backup("push", source, $"s3://{bucket}/tree/");
        Assert.True(tree.ExitCode == 4, tree.ToString());
        Assert.Contains("skipping pipe: it is a FIFO; only regular files are uploaded", tree.Stderr);
        Assert.Equal(["tree/data.txt"], (await ObjectsAsync(bucket)).Select(o => o.Key));

        var single = await Backup("push", fifo, $"s3://{bucket}/single/pipe");
        Assert.True(single.ExitCode == 12, single.ToString());
        Assert.Contains("is a FIFO, not a regular file", single.Stderr);
        var json = await Backup("push", "--require-json", fifo, $"s3://{bucket}/single/acme.json");
        Assert.True(json.ExitCode == 12, json.ToString());
        Assert.DoesNotContain(await ObjectsAsync(bucket), o => o.Key.StartsWith("single/", StringComparison.Ordinal));
    }

    // 2, 17, 21 (restore) ---------------------------------------------------------------------------------------

    [Fact]
    public async Task A_restore_whose_download_stalls_ends_with_that_file_failed_instead_of_hanging()
    {
        var bucket = await Server.NewBucketAsync("stallrestore");
        await PutAsync(bucket, "tree/a.txt", "a");
        await PutAsync(bucket, "tree/b.txt", "b");
        using var dir = new TempDir("backup");
        using var s3 = FaultyS3.InFrontOf(Server);
        var rule = s3.When(r => r.IsGetObject && r.Key == "tree/b.txt", new Fault.StallAfter(0));

        var restore = await Backup(s3.Environment(Server, ("S3_IO_TIMEOUT", "2s")), "restore", $"s3://{bucket}/tree/", dir.Combine("dest"));

        Assert.True(s3.Hits(rule) > 0);
        Assert.True(restore.ExitCode == 4, restore.ToString());
        Assert.Equal("a", File.ReadAllText(dir.Combine("dest", "a.txt")));
        Assert.Equal(["a.txt"], Directory.GetFiles(dir.Combine("dest")).Select(Path.GetFileName));
    }

    [Fact]
    public async Task A_restore_creates_DEST_and_its_parents_0700_whatever_the_umask()
    {
        var bucket = await Server.NewBucketAsync("umaskrestore");
        await PutAsync(bucket, "tree/sub/a.txt", "a");
        using var dir = new TempDir("backup");
        var dest = dir.Combine("new", "parent", "dest");

        var restore = await ProcessRunner.RunAsync("sh", ["-c", $"umask 000; exec {RepoPaths.Tool("backup")} restore s3://{bucket}/tree/ {dest}"], Server.Environment(), timeout: Bounded);

        Assert.True(restore.ExitCode == 0, restore.ToString());
        foreach (var path in new[] { "new", "new/parent", "new/parent/dest", "new/parent/dest/sub" })
            Assert.True(File.GetUnixFileMode(dir.Combine(path)) == (UnixFileMode)0x1C0, $"{path} is {File.GetUnixFileMode(dir.Combine(path))}");
        Assert.Equal((UnixFileMode)0x180, File.GetUnixFileMode(Path.Combine(dest, "sub", "a.txt")));
    }

    [Fact]
    public async Task Empty_arguments_are_usage_errors_and_an_empty_state_directory_variable_means_the_default()
    {
        var bucket = await Server.NewBucketAsync("emptyargs");
        await PutAsync(bucket, "tree/a.txt", "a");
        using var dir = new TempDir("backup");

        var restore = await Backup("restore", $"s3://{bucket}/tree/", "");
        Assert.True(restore.ExitCode == 2, restore.ToString());
        Assert.Contains("DEST is empty", restore.Stderr);
        var push = await Backup("push", "", $"s3://{bucket}/tree/");
        Assert.True(push.ExitCode == 2, push.ToString());
        Assert.Contains("SRC is empty", push.Stderr);

        var source = dir.Combine("source");
        Directory.CreateDirectory(source);
        File.WriteAllText(Path.Combine(source, "a.txt"), "a");
        var state = await Backup(Server.Environment(("BACKUP_STATE_DIR", "")), "push", source, $"s3://{bucket}/pushed/");
        Assert.True(state.ExitCode == 0, state.ToString());
    }
}
