using InfraTools.Storage;
using InfraTools.Backup;
using InfraTools.Backup.Tsdb;
using InfraTools.Cli;
using Serilog.Events;
using static InfraTools.Tests.Tsdb.TsdbFixtures;

namespace InfraTools.Tests.Tsdb;

/// <summary>Incremental push, restore and retention in-process against the real S3 server, on real block directories.</summary>
public class TsdbS3Tests
{
    private static readonly UnixFileMode Private = UnixFileMode.UserRead | UnixFileMode.UserWrite;
    private static readonly UnixFileMode PrivateDir = Private | UnixFileMode.UserExecute;

    private static async Task<TsdbPushResult> PushOk(TsdbStore store, string snapshot, string name)
    {
        var (log, lines) = Logger();
        var result = await TsdbBackup.PushAsync(store, snapshot, new TsdbPushOptions { Name = name, Parallel = 4 }, log, CancellationToken.None);
        Assert.True(result.Complete, lines.ToString());
        return result;
    }

    private static Task<TsdbRestoreResult> Restore(TsdbStore store, string destination, string? snapshot = null) =>
        TsdbRestore.RestoreAsync(store, destination, new TsdbRestoreOptions { Snapshot = snapshot }, Logger().Log, CancellationToken.None);

    [Fact]
    public async Task Each_block_is_uploaded_once_and_every_snapshot_restores_byte_for_byte()
    {
        var (store, client, bucket) = await NewStoreAsync("tsdb-push");
        using var _ = client;
        using var dir = new TempDir("tsdb");
        string a = NewUlid(), b = NewUlid(), c = NewUlid(), d = NewUlid(), h1 = NewUlid(), h2 = NewUlid();
        var s1 = dir.Combine("s1");
        WriteBlock(s1, a, 1);
        WriteBlock(s1, b, 2, chunkFiles: 3);
        WriteBlock(s1, c, 3, chunkBytes: 6 * 1024 * 1024 + 11); // a multipart object
        WriteBlock(s1, h1, 4, chunkBytes: 900); // the head cut

        var first = await PushOk(store, s1, "20261201T030000Z");
        var all1 = Keys(s1, a, b, c, h1);
        Assert.Equal([.. all1, "snapshots/20261201T030000Z.json"], store.PutKeys.Order(StringComparer.Ordinal));
        Assert.Equal((4, 0, 4), (first.Blocks, first.BlocksAlreadyUp, first.BlocksNew));
        Assert.Equal(Bytes(s1, a, b, c, h1), first.UploadedBytes);

        // The next day: a, b and c are still there, a new block d was cut, and a new head block.
        var s2 = dir.Combine("s2");
        foreach (var u in new[] { a, b, c }) CopyBlock(s1, s2, u);
        WriteBlock(s2, d, 5);
        WriteBlock(s2, h2, 6, chunkBytes: 800);
        store.Reset();
        var second = await PushOk(store, s2, "20261202T030000Z");
        Assert.Equal([.. Keys(s2, d, h2), "snapshots/20261202T030000Z.json"], store.PutKeys.Order(StringComparer.Ordinal));
        Assert.Equal(Bytes(s2, d, h2), second.UploadedBytes);
        Assert.Equal(Bytes(s2, d, h2) + second.Manifest!.Serialize().Length, store.PutBytes); // the new blocks and the manifest, nothing else
        Assert.Equal((5, 3, 2, 0), (second.Blocks, second.BlocksAlreadyUp, second.BlocksNew, second.BlocksPartial));
        Assert.Equal(3, store.Lists); // snapshots/, blocks/, and blocks/ again before the manifest
        Assert.Equal(0, store.Gets);

        // Series deleted in block a: Prometheus rewrote its meta.json and tombstones under the same ULID.
        var s3 = dir.Combine("s3");
        foreach (var u in new[] { a, b, c, d }) CopyBlock(s2, s3, u);
        DeleteSeries(Path.Combine(s3, a), "job=\"gone\"");
        store.Reset();
        var third = await PushOk(store, s3, "20261203T030000Z");
        var variants = store.PutKeys.Where(k => k.StartsWith("blocks/", StringComparison.Ordinal)).Order(StringComparer.Ordinal).ToList();
        Assert.Equal(2, variants.Count);
        Assert.StartsWith($"blocks/{a}/meta.json.", variants[0]);
        Assert.StartsWith($"blocks/{a}/tombstones.", variants[1]);
        Assert.Equal((1, 0), (third.BlocksPartial, third.BlocksNew));

        // Every snapshot restores exactly as it was pushed, with private modes and Prometheus' layout.
        foreach (var (name, source) in new[] { ("20261201T030000Z", s1), ("20261202T030000Z", s2), ("20261203T030000Z", s3) })
        {
            var restored = dir.Combine("restored-" + name);
            var result = await Restore(store, restored, name);
            Assert.Equal(0, result.Failed);
            AssertSameTree(source, restored);
            Assert.All(Directory.EnumerateFiles(restored, "*", SearchOption.AllDirectories), f => Assert.Equal(Private, File.GetUnixFileMode(f)));
            Assert.All(Directory.EnumerateDirectories(restored, "*", SearchOption.AllDirectories), f => Assert.Equal(PrivateDir, File.GetUnixFileMode(f)));
        }
        var latest = dir.Combine("latest");
        Assert.Equal("20261203T030000Z", (await Restore(store, latest)).Snapshot.Name);
        AssertSameTree(s3, latest);
        Assert.Contains("job=\"gone\"", File.ReadAllText(Path.Combine(latest, a, "tombstones")));
        Assert.DoesNotContain("job=\"gone\"", File.ReadAllText(Path.Combine(dir.Combine("restored-20261202T030000Z"), a, "tombstones")));

        // The layout: blocks once, manifests beside them, nothing else.
        var keys = await client.ListAsync(bucket, "prometheus/").Select(o => o.Key).ToListAsync();
        Assert.All(keys, k => Assert.Matches(@"^prometheus/(blocks/[0-9A-Z]{26}/.+|snapshots/\d{8}T\d{6}Z\.json)$", k));
        Assert.Equal(Keys(s3, a, b, c, d).Count + Keys(s1, h1).Count + Keys(s2, h2).Count + 2 + 3, keys.Count);
    }

    [Fact]
    public async Task A_failed_upload_writes_no_manifest_prunes_nothing_and_the_next_push_uploads_only_what_is_missing()
    {
        var (store, client, bucket) = await NewStoreAsync("tsdb-fail");
        using var _ = client;
        using var dir = new TempDir("tsdb");
        string a = NewUlid(), d = NewUlid();
        var s1 = dir.Combine("s1");
        WriteBlock(s1, a, 1);
        await PushOk(store, s1, "20261201T030000Z");
        var s2 = dir.Combine("s2");
        CopyBlock(s1, s2, a);
        WriteBlock(s2, d, 2, chunkFiles: 2);
        var before = await client.ListAsync(bucket, "").Select(o => o.Key).ToListAsync();

        store.FailPut = key => key == $"blocks/{d}/index";
        var (log, lines) = Logger();
        var failed = await TsdbBackup.PushAsync(store, s2, new TsdbPushOptions { Name = "20261202T030000Z" }, log, CancellationToken.None);
        Assert.False(failed.Complete);
        Assert.Equal(1, failed.FailedFiles);
        Assert.Null(failed.Manifest);
        Assert.Contains(lines.At(LogEventLevel.Error), l => l.Contains($"blocks/{d}/index", StringComparison.Ordinal));
        Assert.Null(await TsdbBackup.PruneAfterPushAsync(store, new RetentionPolicy(1), failed, log, CancellationToken.None));
        var after = await client.ListAsync(bucket, "").Select(o => o.Key).ToListAsync();
        Assert.DoesNotContain("prometheus/snapshots/20261202T030000Z.json", after);
        Assert.Empty(before.Except(after)); // nothing deleted

        store.FailPut = _ => false;
        store.Reset();
        var retried = await PushOk(store, s2, "20261202T030100Z");
        Assert.Equal([$"blocks/{d}/index", "snapshots/20261202T030100Z.json"], store.PutKeys.Order(StringComparer.Ordinal));
        Assert.Equal((0, 1), (retried.BlocksNew, retried.BlocksPartial));
        var restored = dir.Combine("restored");
        await Restore(store, restored);
        AssertSameTree(s2, restored);
    }

    [Fact]
    public async Task An_object_deleted_behind_the_push_is_uploaded_again_before_the_manifest_is_written()
    {
        var (store, client, bucket) = await NewStoreAsync("tsdb-vanish");
        using var _ = client;
        using var dir = new TempDir("tsdb");
        string a = NewUlid(), b = NewUlid();
        var s1 = dir.Combine("s1");
        WriteBlock(s1, a, 1);
        await PushOk(store, s1, "20261201T030000Z");
        var s2 = dir.Combine("s2");
        CopyBlock(s1, s2, a);
        WriteBlock(s2, b, 2);

        // Another host prunes a's index right after this push listed blocks/ and decided to reuse it.
        var lists = 0;
        store.AfterList = async prefix =>
        {
            if (prefix == "blocks/" && ++lists == 1) await client.DeleteManyAsync(bucket, [$"prometheus/blocks/{a}/index"]);
        };
        store.Reset();
        var (log, lines) = Logger();
        var result = await TsdbBackup.PushAsync(store, s2, new TsdbPushOptions { Name = "20261202T030000Z" }, log, CancellationToken.None);
        Assert.True(result.Complete, lines.ToString());
        Assert.Contains($"blocks/{a}/index", store.PutKeys);
        Assert.Contains(lines.At(LogEventLevel.Warning), l => l.Contains("vanished or changed", StringComparison.Ordinal));
        store.AfterList = null;
        var restored = dir.Combine("restored");
        await Restore(store, restored);
        AssertSameTree(s2, restored);
    }

    [Fact]
    public async Task Restore_takes_the_newest_by_server_time_and_refuses_what_it_cannot_restore_whole()
    {
        var (store, client, bucket) = await NewStoreAsync("tsdb-restore");
        using var _ = client;
        using var dir = new TempDir("tsdb");
        string a = NewUlid(), b = NewUlid();
        var s1 = dir.Combine("s1");
        WriteBlock(s1, a, 1);
        await PushOk(store, s1, "20991231T000000Z"); // pushed from a host whose clock was far ahead
        await Task.Delay(1100);
        var s2 = dir.Combine("s2");
        CopyBlock(s1, s2, a);
        WriteBlock(s2, b, 2);
        await PushOk(store, s2, "20261202T030000Z");

        var latest = dir.Combine("latest");
        Assert.Equal("20261202T030000Z", (await Restore(store, latest)).Snapshot.Name);
        AssertSameTree(s2, latest);

        var refused = await Assert.ThrowsAsync<ToolException>(() => Restore(store, latest));
        Assert.Equal(ExitCodes.Refused, refused.ExitCode);
        Assert.Contains("is not empty", refused.Message);
        Assert.Equal(StoreErrorKind.ObjectNotFound, (await Assert.ThrowsAsync<StoreException>(() => Restore(store, dir.Combine("x"), "20200101T000000Z"))).Kind);
        Assert.Equal(ExitCodes.Usage, (await Assert.ThrowsAsync<UsageException>(() => Restore(store, dir.Combine("x"), "yesterday"))).ExitCode);

        // A block object only the newest snapshot needs is lost: latest falls back to the one before, by name it is refused.
        await client.DeleteManyAsync(bucket, [$"prometheus/blocks/{b}/chunks/000001"]);
        var (log, lines) = Logger();
        var fallback = dir.Combine("fallback");
        var result = await TsdbRestore.RestoreAsync(store, fallback, new TsdbRestoreOptions(), log, CancellationToken.None);
        Assert.Equal("20991231T000000Z", result.Snapshot.Name);
        AssertSameTree(s1, fallback);
        Assert.Contains(lines.At(LogEventLevel.Warning), l => l.Contains("cannot be restored", StringComparison.Ordinal) && l.Contains(b, StringComparison.Ordinal));
        var damaged = dir.Combine("damaged");
        var ex = await Assert.ThrowsAsync<ToolException>(() => Restore(store, damaged, "20261202T030000Z"));
        Assert.Equal(ExitCodes.Refused, ex.ExitCode);
        Assert.Contains($"blocks/{b}/chunks/000001 is missing", ex.Message);
        Assert.False(Directory.Exists(damaged) && Directory.EnumerateFileSystemEntries(damaged).Any());
    }

    [Fact]
    public async Task A_download_that_does_not_match_its_ETag_is_not_written_and_its_block_gets_no_meta_json()
    {
        var (store, client, _) = await NewStoreAsync("tsdb-tamper");
        using var __ = client;
        using var dir = new TempDir("tsdb");
        string a = NewUlid(), b = NewUlid(), c = NewUlid();
        var s1 = dir.Combine("s1");
        WriteBlock(s1, a, 1);
        WriteBlock(s1, b, 2);
        WriteBlock(s1, c, 3, chunkBytes: 6 * 1024 * 1024); // multipart: checked with the store's multipart ETag
        await PushOk(store, s1, "20261201T030000Z");

        foreach (var victim in new[] { $"blocks/{b}/chunks/000001", $"blocks/{c}/chunks/000001" })
        {
            store.TamperGet = (key, stream) => key == victim ? new FlipFirstByte(stream) : stream;
            var restored = dir.Combine("restored-" + victim.Split('/')[1]);
            var (log, lines) = Logger();
            var result = await TsdbRestore.RestoreAsync(store, restored, new TsdbRestoreOptions(), log, CancellationToken.None);
            var block = victim.Split('/')[1];

            Assert.Equal(2, result.Failed); // the chunk, and the meta.json held back
            Assert.Contains(lines.At(LogEventLevel.Error), l => l.Contains("does not match its ETag", StringComparison.Ordinal));
            Assert.False(File.Exists(Path.Combine(restored, block, "chunks", "000001")));
            Assert.False(File.Exists(Path.Combine(restored, block, "meta.json")));
            Assert.Empty(Directory.EnumerateFiles(Path.Combine(restored, block), ".*", SearchOption.AllDirectories)); // no temporary file left
            Assert.True(File.Exists(Path.Combine(restored, a, "meta.json")));
            Assert.Equal(File.ReadAllBytes(Path.Combine(s1, a, "chunks", "000001")), File.ReadAllBytes(Path.Combine(restored, a, "chunks", "000001")));
        }
    }

    private sealed class FlipFirstByte(Stream inner) : Stream
    {
        private bool _flipped;
        public override int Read(byte[] buffer, int offset, int count) => Flip(buffer.AsSpan(offset), inner.Read(buffer, offset, count));
        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            var read = await inner.ReadAsync(buffer, cancellationToken);
            return Flip(buffer.Span, read);
        }
        private int Flip(Span<byte> buffer, int read)
        {
            if (read > 0 && !_flipped) { buffer[0] ^= 0xFF; _flipped = true; }
            return read;
        }
        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
        public override void Flush() { }
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }

    [Fact]
    public async Task Retention_deletes_the_blocks_no_kept_snapshot_names_and_never_one_a_kept_snapshot_names()
    {
        var (store, client, bucket) = await NewStoreAsync("tsdb-retain");
        using var _ = client;
        using var dir = new TempDir("tsdb");
        // Five daily snapshots, blocks evolving as in Prometheus: new 2 h blocks, a compaction, head cuts.
        string a = NewUlid(), b = NewUlid(), c = NewUlid(), ab = NewUlid(), d = NewUlid();
        var heads = Enumerable.Range(0, 5).Select(_ => NewUlid()).ToArray();
        var layouts = new[] { new[] { a }, [a, b], [a, b, c], [ab, c], [ab, c, d] };
        var snapshots = new List<(string Name, string Dir)>();
        var written = new HashSet<string>();
        for (var day = 0; day < layouts.Length; day++)
        {
            var snapshot = dir.Combine($"s{day}");
            foreach (var u in layouts[day])
            {
                if (written.Add(u)) WriteBlock(dir.Combine("blocks"), u, u.GetHashCode(), level: u == ab ? 2 : 1);
                CopyBlock(dir.Combine("blocks"), snapshot, u);
            }
            WriteBlock(snapshot, heads[day], day, chunkBytes: 500);
            var name = $"2026120{day + 1}T030000Z";
            await PushOk(store, snapshot, name);
            snapshots.Add((name, snapshot));
        }
        // An interrupted push left block x without a manifest.
        var leftover = dir.Combine("leftover");
        var x = NewUlid();
        WriteBlock(leftover, x, 99);
        foreach (var file in Directory.EnumerateFiles(Path.Combine(leftover, x), "*", SearchOption.AllDirectories))
            await store.Tsdb.PutFileAsync($"blocks/{x}/{Path.GetRelativePath(Path.Combine(leftover, x), file)}", file, new FileInfo(file).Length, CancellationToken.None);
        await Task.Delay(1100); // the next manifest is written in a later second than x
        var last = dir.Combine("s5");
        foreach (var u in new[] { ab, c, d }) CopyBlock(dir.Combine("blocks"), last, u);
        var head5 = NewUlid();
        WriteBlock(last, head5, 5, chunkBytes: 500);
        await PushOk(store, last, "20261206T030000Z");
        snapshots.Add(("20261206T030000Z", last));
        // Another push is under way: it has uploaded block y, its manifest is not written yet.
        var y = NewUlid();
        WriteBlock(leftover, y, 98);
        foreach (var file in Directory.EnumerateFiles(Path.Combine(leftover, y), "*", SearchOption.AllDirectories))
            await store.Tsdb.PutFileAsync($"blocks/{y}/{Path.GetRelativePath(Path.Combine(leftover, y), file)}", file, new FileInfo(file).Length, CancellationToken.None);

        async Task<HashSet<string>> Stored() => (await client.ListAsync(bucket, "prometheus/").Select(o => o.Key["prometheus/".Length..]).ToListAsync()).ToHashSet();
        var (log, lines) = Logger();

        // Default grace (24 h): the four oldest snapshots go, but every block object here was written minutes ago, so none is deleted yet.
        var pruned = await TsdbBackup.PruneAsync(store, new RetentionPolicy(2), "20261206T030000Z", log, CancellationToken.None);
        Assert.Equal(["20261201T030000Z", "20261202T030000Z", "20261203T030000Z", "20261204T030000Z"], pruned.Pruned.Select(s => s.Name));
        Assert.Equal(["snapshots/20261205T030000Z.json", "snapshots/20261206T030000Z.json"], (await Stored()).Where(k => k.StartsWith("snapshots/", StringComparison.Ordinal)).Order());
        var kept = snapshots.TakeLast(2).ToList();
        var needed = kept.SelectMany(s => Keys(s.Dir, Directory.GetDirectories(s.Dir).Select(Path.GetFileName).ToArray()!)).ToHashSet();
        var onlyPruned = snapshots.Take(4).SelectMany(s => Keys(s.Dir, Directory.GetDirectories(s.Dir).Select(Path.GetFileName).ToArray()!)).Except(needed).ToList();
        Assert.NotEmpty(needed);
        Assert.NotEmpty(onlyPruned); // a, b, the first four head cuts
        Assert.Equal(0, pruned.BlockObjectsDeleted);
        Assert.Equal(onlyPruned.Count + Keys(leftover, x, y).Count, pruned.BlockObjectsTooYoung);
        Assert.Subset(await Stored(), needed.Concat(onlyPruned).ToHashSet());

        // Grace 0: what only the pruned snapshots named goes, and x (written before the newest manifest, named by none);
        // y (written after it: a push in progress) stays, and so does everything a kept snapshot names.
        var again = await TsdbBackup.PruneAsync(store, new RetentionPolicy(2, BlockGrace: TimeSpan.Zero), null, log, CancellationToken.None);
        Assert.Empty(again.Pruned);
        var stored = await Stored();
        Assert.Subset(stored, needed);
        Assert.Empty(onlyPruned.Intersect(stored));
        Assert.DoesNotContain(stored, k => k.StartsWith($"blocks/{x}/", StringComparison.Ordinal));
        Assert.Contains(stored, k => k.StartsWith($"blocks/{y}/", StringComparison.Ordinal));
        Assert.Equal(onlyPruned.Count + Keys(leftover, x).Count, again.BlockObjectsDeleted);

        // A manifest that cannot be read stops block deletion altogether, and is not deleted either.
        await store.PutBytesAsync("snapshots/20261130T030000Z.json", "{\"format\":\"infratools-tsdb-snapshot\",\"version\":9}"u8.ToArray(), "application/json", CancellationToken.None);
        await Task.Delay(1100);
        var blocked = await TsdbBackup.PruneAsync(store, new RetentionPolicy(1, BlockGrace: TimeSpan.Zero), null, log, CancellationToken.None);
        Assert.Equal(["20261205T030000Z"], blocked.Pruned.Select(s => s.Name));
        Assert.NotNull(blocked.BlocksSkippedBecause);
        Assert.Equal(0, blocked.BlockObjectsDeleted);
        Assert.Contains("snapshots/20261130T030000Z.json", await Stored());
        Assert.Contains(lines.At(LogEventLevel.Warning), l => l.Contains("newer backup", StringComparison.Ordinal));

        // What is kept still restores whole.
        var restored = dir.Combine("restored");
        await Restore(store, restored, "20261206T030000Z");
        AssertSameTree(last, restored);
    }
}
