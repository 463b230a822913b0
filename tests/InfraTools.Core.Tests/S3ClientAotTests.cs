using System.Net;
using System.Security.Cryptography;
using InfraTools.S3;

namespace InfraTools.Tests;

/// <summary>
/// Every operation of the shared S3 client, run through the Native AOT test driver against the real S3 server
/// (Ceph RGW). These are the operations that broke in Minio under trimming.
/// </summary>
public class S3ClientAotTests
{
    private static readonly S3Server Server = S3Server.Shared;

    private static Task<ProcessResult> Driver(params string[] args) => Driver(Server.Environment(), args);

    private static Task<ProcessResult> Driver(Dictionary<string, string?> env, params string[] args) =>
        ProcessRunner.RunAsync(RepoPaths.TestDriver, args, env);

    private static async Task<ProcessResult> DriverOk(params string[] args)
    {
        var result = await Driver(args);
        Assert.True(result.ExitCode == 0, result.ToString());
        return result;
    }

    private static Dictionary<string, string> Fields(ProcessResult result) =>
        result.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Where(l => l.Contains('='))
            .Select(l => l.Split('=', 2)).ToDictionary(p => p[0], p => p[1]);

    [Fact]
    public async Task Bucket_exists_answers_true_and_false()
    {
        var bucket = await Server.NewBucketAsync("exists");
        Assert.Equal("true", (await DriverOk("exists", bucket)).Stdout.Trim());
        Assert.Equal("false", (await DriverOk("exists", bucket + "-missing")).Stdout.Trim());
    }

    [Fact]
    public async Task Put_stat_get_round_trip_keeps_content_metadata_and_odd_key_names()
    {
        var bucket = await Server.NewBucketAsync("roundtrip");
        using var dir = new TempDir();
        foreach (var key in new[] { "plain.txt", "dir/sp ace+plus%41.txt", "ünï/çødé #1.html" })
        {
            var source = dir.Write("source", $"content of {key}\n");
            var put = Fields(await DriverOk("put", source, $"s3://{bucket}/{key}", "--meta", "origin=test", "--meta", "Mixed-Case=Value"));
            Assert.Equal(Convert.ToHexStringLower(MD5.HashData(File.ReadAllBytes(source))), put["etag"]);

            var stat = Fields(await DriverOk("stat", $"s3://{bucket}/{key}"));
            Assert.Equal(new FileInfo(source).Length.ToString(), stat["size"]);
            Assert.Equal(put["etag"], stat["etag"]);
            Assert.Equal("test", stat["meta.origin"]);
            Assert.Equal("Value", stat["meta.mixed-case"]);
            Assert.InRange(DateTimeOffset.Parse(stat["last-modified"]), DateTimeOffset.UtcNow.AddMinutes(-5), DateTimeOffset.UtcNow.AddMinutes(5));

            var target = dir.Combine("target");
            var get = Fields(await DriverOk("get", $"s3://{bucket}/{key}", target));
            Assert.Equal(File.ReadAllBytes(source), File.ReadAllBytes(target));
            Assert.Equal(put["etag"], get["etag"]);
            Assert.Equal("test", get["meta.origin"]);
        }
    }

    [Fact]
    public async Task Multipart_upload_above_the_part_size_works_and_its_ETag_is_verified()
    {
        var bucket = await Server.NewBucketAsync("multipart");
        using var dir = new TempDir();
        var source = dir.Combine("big.bin");
        var data = new byte[30 * 1024 * 1024 + 12345];
        new Random(42).NextBytes(data);
        await File.WriteAllBytesAsync(source, data);
        var expectedETag = await ObjectChecksum.ComputeETagAsync(source, default);
        Assert.EndsWith("-2", expectedETag);

        var put = Fields(await DriverOk("put", source, $"s3://{bucket}/big.bin"));
        Assert.Equal(expectedETag, put["etag"]);

        var target = dir.Combine("back.bin");
        await DriverOk("get", $"s3://{bucket}/big.bin", target);
        Assert.True(data.AsSpan().SequenceEqual(File.ReadAllBytes(target)), "downloaded multipart object differs");
        var listed = (await DriverOk("ls", $"s3://{bucket}/")).Stdout.Split('\t');
        Assert.Equal(["big.bin", data.Length.ToString(), expectedETag], listed[..3]);
    }

    [Fact]
    public async Task Ranged_get_returns_just_the_range()
    {
        var bucket = await Server.NewBucketAsync("range");
        using var dir = new TempDir();
        var source = dir.Write("digits", "0123456789abcdef");
        await DriverOk("put", source, $"s3://{bucket}/digits");
        var target = dir.Combine("part");
        var get = Fields(await DriverOk("get", $"s3://{bucket}/digits", target, "--range", "2-5"));
        Assert.Equal("2345", File.ReadAllText(target));
        Assert.Equal("16", get["size"]);
    }

    [Fact]
    public async Task Listing_pages_through_more_than_1000_keys_in_key_order()
    {
        var bucket = await Server.NewBucketAsync("list");
        var keys = Enumerable.Range(0, 2500).Select(i => $"p{i % 7}/sub{i % 3}/file-{i:D5}.txt").ToList();
        using (var client = Server.Client())
            await Parallel.ForEachAsync(keys, new ParallelOptions { MaxDegreeOfParallelism = 16 }, async (key, ct) =>
                await client.PutAsync(bucket, key, new MemoryStream("x"u8.ToArray()), 1, cancellationToken: ct));

        var result = await DriverOk("ls", $"s3://{bucket}/", "--count-requests");
        var listed = result.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => l.Split('\t')[0]).ToList();
        Assert.Equal(keys.Order(StringComparer.Ordinal), listed);
        Assert.Contains("requests=3", result.Stderr);

        var sub = await DriverOk("ls", $"s3://{bucket}/p3/");
        Assert.Equal(keys.Count(k => k.StartsWith("p3/")), sub.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Length);
    }

    [Fact]
    public async Task A_listing_in_ranges_between_known_keys_is_the_chained_listing()
    {
        var bucket = await Server.NewBucketAsync("ranges-aot");
        var keys = Enumerable.Range(0, 30).Select(i => $"r/{i % 4}/file {i:D2}+\u00e9").Append("r/\U0001F600").Append("r/\uE000").ToList();
        using (var client = Server.Client())
            await Parallel.ForEachAsync(keys, new ParallelOptions { MaxDegreeOfParallelism = 16 }, async (key, ct) =>
                await client.PutAsync(bucket, key, new MemoryStream("x"u8.ToArray()), 1, cancellationToken: ct));
        using var dir = new TempDir();
        var known = dir.Write("known", string.Join('\n', keys.Where((_, i) => i % 5 != 0).Select(k => k["r/".Length..])) + "\n");

        var chained = await DriverOk("ls", $"s3://{bucket}/r/");
        var ranged = await DriverOk("ls", $"s3://{bucket}/r/", "--known", known, "--range-keys", "4", "--count-requests");
        Assert.Equal(keys.Count, chained.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Length);
        Assert.Equal(chained.Stdout, ranged.Stdout);
        var requests = int.Parse(ranged.Stderr.Split("requests=")[1].Trim(), System.Globalization.CultureInfo.InvariantCulture);
        Assert.InRange(requests, 6, 20); // 25 known keys: 6 ranges of 4 known keys and the rest, each one page or two
    }

    [Fact]
    public async Task The_listing_fetches_the_next_page_while_the_caller_works_on_one_and_never_more_than_one_ahead()
    {
        var bucket = await Server.NewBucketAsync("ahead");
        var keys = Enumerable.Range(0, 2500).Select(i => $"k/{i:D5}").ToList();
        using var client = Server.Client();
        await Parallel.ForEachAsync(keys, new ParallelOptions { MaxDegreeOfParallelism = 16 }, async (key, ct) =>
            await client.PutAsync(bucket, key, new MemoryStream([1]), 1, cancellationToken: ct));
        var before = client.RequestsSent;

        var listed = new List<string>();
        long duringFirstPage = 0;
        await foreach (var item in client.ListAsync(bucket, ""))
        {
            listed.Add(item.Key);
            if (listed.Count != 1) continue;
            // Holding the first object: the second page is requested meanwhile, but not the third.
            for (var i = 0; i < 100 && client.RequestsSent - before < 2; i++) await Task.Delay(50);
            await Task.Delay(300);
            duringFirstPage = client.RequestsSent - before;
        }
        Assert.Equal(2, duringFirstPage);
        Assert.Equal(keys, listed);
        Assert.Equal(3, client.RequestsSent - before);

        // A caller that stops early: at most the page ahead was asked for.
        before = client.RequestsSent;
        Assert.Equal("k/00000", (await client.ListAsync(bucket, "").FirstAsync()).Key);
        Assert.InRange(client.RequestsSent - before, 1, 2);
    }

    [Fact]
    public async Task Delete_and_batch_delete_remove_objects_across_batches()
    {
        var bucket = await Server.NewBucketAsync("delete");
        var keys = Enumerable.Range(0, 1500).Select(i => $"k/{i:D4}").ToList();
        using (var client = Server.Client())
            await Parallel.ForEachAsync(keys.Append("single"), new ParallelOptions { MaxDegreeOfParallelism = 16 }, async (key, ct) =>
                await client.PutAsync(bucket, key, new MemoryStream([1]), 1, cancellationToken: ct));

        await DriverOk("rm", $"s3://{bucket}/single");
        var batch = await Driver(Server.Environment(), "rm-many", bucket);
        Assert.Equal(0, batch.ExitCode);
        var many = await ProcessRunner.RunAsync(RepoPaths.TestDriver, ["rm-many", bucket], Server.Environment(), stdin: string.Join('\n', keys.Take(1200)));
        Assert.True(many.ExitCode == 0, many.ToString());
        Assert.Contains("deleted=1200", many.Stdout);

        var left = (await DriverOk("ls", $"s3://{bucket}/")).Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => l.Split('\t')[0]).ToList();
        Assert.Equal(keys.Skip(1200), left);
    }

    [Fact]
    public async Task A_get_is_one_request_and_a_stat_does_not_repeat_the_bucket_check()
    {
        var bucket = await Server.NewBucketAsync("requests");
        using var dir = new TempDir();
        await DriverOk("put", dir.Write("f", "x"), $"s3://{bucket}/f");
        Assert.Contains("requests=1", (await DriverOk("get", $"s3://{bucket}/f", dir.Combine("out"), "--count-requests")).Stderr);
        // Minio sends a bucket-exists HEAD before the stat HEAD; that is two requests the first time.
        Assert.Contains("requests=2", (await DriverOk("stat", $"s3://{bucket}/f", "--count-requests")).Stderr);
    }

    public static TheoryData<string, int, string> Failures => new()
    {
        { "wrong secret", 7, "rejected the credentials" },
        { "unreachable endpoint", 6, "cannot reach the S3 endpoint" },
        { "missing bucket", 8, "does not exist" },
        { "missing object", 9, "does not exist" },
    };

    [Fact]
    public async Task A_web_site_at_the_endpoint_is_an_error_not_an_empty_bucket()
    {
        // A real HTTP server that answers every request with 200 and a page, as a web site or a proxy's
        // landing page would when S3_ENDPOINT points at the wrong URL.
        using var site = new HttpListener();
        var port = Net.FreePort();
        site.Prefixes.Add($"http://127.0.0.1:{port}/");
        site.Start();
        var serving = Task.Run(async () =>
        {
            while (true)
            {
                HttpListenerContext context;
                try { context = await site.GetContextAsync(); }
                catch (Exception ex) when (ex is HttpListenerException or ObjectDisposedException) { return; }
                context.Response.ContentType = "text/html";
                await context.Response.OutputStream.WriteAsync("<!DOCTYPE html><html><body>Welcome</body></html>"u8.ToArray());
                context.Response.Close();
            }
        });
        var env = Server.Environment();
        env["S3_ENDPOINT"] = $"http://127.0.0.1:{port}";

        var result = await Driver(env, "ls", "s3://site/");
        site.Stop();
        await serving;

        Assert.True(result.ExitCode == 11, result.ToString());
        var line = Assert.Single(result.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.Contains("not an S3 listing (text/html)", line);
        Assert.DoesNotContain("   at ", result.Output);
    }

    [Theory]
    [MemberData(nameof(Failures))]
    public async Task Each_failure_is_one_clear_line_with_its_own_exit_code_and_no_secret(string failure, int exitCode, string message)
    {
        var bucket = await Server.NewBucketAsync("failures");
        const string wrongSecret = "wrong-secret-value-do-not-print";
        var env = Server.Environment();
        var location = $"s3://{bucket}/missing.txt";
        switch (failure)
        {
            case "wrong secret": env["S3_SECRET_KEY"] = wrongSecret; break;
            case "unreachable endpoint": env["S3_ENDPOINT"] = "http://127.0.0.1:9"; break;
            case "missing bucket": location = $"s3://{bucket}-gone/x"; break;
        }
        using var dir = new TempDir();
        foreach (var args in new[] { new[] { "get", location, dir.Combine("out") }, ["ls", location] })
        {
            if (failure == "missing object" && args[0] == "ls") continue;
            var result = await Driver(env, args);
            Assert.True(result.ExitCode == exitCode, $"{failure} / {args[0]}: {result}");
            var lines = result.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries);
            Assert.Single(lines);
            Assert.Contains(message, lines[0]);
            Assert.DoesNotContain(wrongSecret, result.Output);
            Assert.DoesNotContain(Server.SecretKey, result.Output);
            Assert.DoesNotContain("   at ", result.Output);
        }
    }

    [Fact]
    public async Task Virtual_host_addressing_works_end_to_end()
    {
        // A private mount namespace gets its own /etc/hosts, where only bucket.localhost reaches the server:
        // a path-style request (to localhost itself) would fail.
        var bucket = await Server.NewBucketAsync("vhost");
        using var dir = new TempDir();
        var hosts = dir.Write("hosts", $"127.0.0.2 localhost\n127.0.0.1 {bucket}.localhost\n");
        var known = dir.Write("known", "big.bin\nsp ace.bin\n");
        var port = new Uri(Server.Endpoint).Port;
        var source = dir.Combine("big.bin");
        var data = new byte[6 * 1024 * 1024];
        new Random(1).NextBytes(data);
        File.WriteAllBytes(source, data);
        var driver = RepoPaths.TestDriver;
        var script = $"""
            set -e
            mount --bind {hosts} /etc/hosts
            {driver} put {source} s3://{bucket}/dir/big.bin
            {driver} put {source} 's3://{bucket}/dir/sp ace.bin'
            {driver} ls s3://{bucket}/dir/
            echo ranged:
            {driver} ls s3://{bucket}/dir/ --known {known} --range-keys 1
            {driver} stat s3://{bucket}/dir/big.bin
            {driver} get 's3://{bucket}/dir/sp ace.bin' {dir.Combine("back.bin")}
            {driver} rm-many {bucket} dir/big.bin
            {driver} exists {bucket}
            """;
        var env = Server.Environment(("S3_ENDPOINT", $"http://localhost:{port}"), ("S3_ADDRESSING", "virtual"));
        var result = await ProcessRunner.RunAsync("unshare", ["--mount", "sh", "-c", script], env);
        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Contains("dir/big.bin\t6291456", result.Stdout);
        // The ranged listing (presigned here, then moved to the bucket's host name and signed again) lists both.
        var ranged = result.Stdout[result.Stdout.IndexOf("ranged:", StringComparison.Ordinal)..];
        Assert.Contains("dir/big.bin\t6291456", ranged);
        Assert.Contains("dir/sp ace.bin\t6291456", ranged);
        Assert.Equal(data, File.ReadAllBytes(dir.Combine("back.bin")));
        Assert.Contains("deleted=1", result.Stdout);
        Assert.EndsWith("true\n", result.Stdout);
    }
}
