using InfraTools.Crypto;
using InfraTools.Files;
using InfraTools.Storage;
using InfraTools.Sync;
using Serilog;
using Serilog.Core;

namespace InfraTools.Tests;

/// <summary>
/// The engine with the age transform on its bucket side, in-process against the in-memory store: what changes
/// with encryption (keys, sizes, the manifest as the only judge of "unchanged") and what does not (one planner,
/// one runner). The black-box versions against RGW and Debian's age are in Backup.Tests and AcmeRestore.Tests.
/// </summary>
public class EncryptedSyncTests : IDisposable
{
    private const string Bucket = "b";
    private readonly TempDir _dir = new("enc-engine");
    private readonly InMemoryObjectStore _store = new();
    private static readonly Logger Log = new LoggerConfiguration().CreateLogger();

    public void Dispose() => _dir.Dispose();

    private async Task<SyncStats> PushAsync(string source, AgeObjectTransform transform, bool persistent = true, bool delete = false)
    {
        var filter = new GlobFilter([]);
        using var state = persistent
            ? SyncState.Open(_dir.Combine("state"), "test", "memory://", Bucket, "p/", LocalPaths.Resolve(source), false, false, Log, transform.Variant)
            : SyncState.Ephemeral(Log);
        var session = new SyncSession(new LocalSide(source, FileModes.Private, filter, TempNames.Process), new BucketSide(_store, Bucket, "p/", filter, transform: transform),
            state, new SyncOptions(delete, new SafetyOptions(EmptySourceRule.Allow, false, null), 4), Log);
        var stats = new SyncStats();
        await session.RunAsync(await session.PlanAsync(source, "s3://b/p/", default), stats, default);
        return stats;
    }

    private async Task<SyncStats> RestoreAsync(string destination, AgeObjectTransform transform)
    {
        var filter = new GlobFilter([]);
        var session = new SyncSession(new BucketSide(_store, Bucket, "p/", filter, transform: transform), new LocalSide(destination, FileModes.Private, filter, TempNames.Process),
            SyncState.Ephemeral(Log), new SyncOptions(false, new SafetyOptions(EmptySourceRule.Allow, false, null), 4), Log);
        var stats = new SyncStats();
        await session.RunAsync(await session.PlanAsync("s3://b/p/", destination, default), stats, default);
        return stats;
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(64 * 1024)]
    [InlineData(64 * 1024 + 1)]
    [InlineData(200_000)]
    public void The_listing_size_of_an_object_is_its_plaintext_size_only_for_as_many_recipients(int size)
    {
        using var a = AgeIdentity.Generate();
        using var b = AgeIdentity.Generate();
        var one = new AgeObjectTransform([a.Recipient], [], "hint");
        var two = new AgeObjectTransform([a.Recipient, b.Recipient], [], "hint");
        Assert.Equal(size, one.ContentSize(one.StoredSize(size)));
        Assert.Equal(size, two.ContentSize(two.StoredSize(size)));
        // Written for another number of recipients: another size, so the change detector sees a change.
        Assert.NotEqual(size, two.ContentSize(one.StoredSize(size)));
        Assert.NotEqual(size, one.ContentSize(two.StoredSize(size)));
        // Shorter than any age file with this header: no size.
        Assert.Equal(-1, two.ContentSize(one.StoredSize(0)));
        Assert.NotEqual(one.Variant, two.Variant);
        Assert.Equal(one.Variant, new AgeObjectTransform([a.Recipient], [], "hint").Variant);
    }

    [Fact]
    public async Task Only_the_manifest_keeps_unchanged_files_from_being_uploaded_and_the_restore_decrypts_them()
    {
        using var identity = AgeIdentity.Generate();
        var push = new AgeObjectTransform([identity.Recipient], [], "hint");
        var source = _dir.Combine("src");
        Directory.CreateDirectory(Path.Combine(source, "d"));
        File.WriteAllText(Path.Combine(source, "a.txt"), "alpha");
        File.WriteAllBytes(Path.Combine(source, "d", "big.bin"), new byte[150_000]);
        File.WriteAllBytes(Path.Combine(source, "empty"), []);

        Assert.Equal(3, (await PushAsync(source, push)).Transferred);
        Assert.Equal(["p/a.txt.age", "p/d/big.bin.age", "p/empty.age"], _store.Keys(Bucket).Order(StringComparer.Ordinal));
        Assert.Equal(0, (await PushAsync(source, push)).Transferred);
        // Without the manifest the checksums decide, and a ciphertext never matches: everything again.
        Assert.Equal(3, (await PushAsync(source, push, persistent: false)).Transferred);

        var restored = _dir.Combine("restored");
        var stats = await RestoreAsync(restored, new AgeObjectTransform([], [identity], "hint"));
        Assert.Equal(3, stats.Transferred);
        Assert.Equal("alpha", File.ReadAllText(Path.Combine(restored, "a.txt")));
        Assert.Equal(new byte[150_000], File.ReadAllBytes(Path.Combine(restored, "d", "big.bin")));
        Assert.Empty(File.ReadAllBytes(Path.Combine(restored, "empty")));
    }

    [Fact]
    public async Task Plaintext_objects_are_left_alone_by_an_encrypted_push_even_with_delete_and_a_damaged_object_fails_only_itself()
    {
        using var identity = AgeIdentity.Generate();
        var push = new AgeObjectTransform([identity.Recipient], [], "hint");
        var source = _dir.Combine("src");
        Directory.CreateDirectory(source);
        File.WriteAllText(Path.Combine(source, "a.txt"), "alpha");
        File.WriteAllText(Path.Combine(source, "b.txt"), "beta");
        _store.Put(Bucket, "p/a.txt", "old plaintext"u8.ToArray());

        await PushAsync(source, push, delete: true);
        Assert.Equal("old plaintext"u8.ToArray(), _store.Content(Bucket, "p/a.txt"));
        var ciphertext = _store.Content(Bucket, "p/b.txt.age")!;
        ciphertext[^5] ^= 1;
        _store.Put(Bucket, "p/b.txt.age", ciphertext);
        _store.Remove(Bucket, "p/a.txt");

        var restored = _dir.Combine("restored");
        var stats = await RestoreAsync(restored, new AgeObjectTransform([], [identity], "hint"));
        Assert.Equal(1, stats.Transferred);
        Assert.Equal(1, stats.Failed);
        Assert.Equal(["a.txt"], Directory.GetFileSystemEntries(restored).Select(Path.GetFileName));

        // A wrong identity stops the run instead of failing every file one by one.
        using var wrong = AgeIdentity.Generate();
        await Assert.ThrowsAsync<AgeNoMatchException>(() => RestoreAsync(_dir.Combine("wrong"), new AgeObjectTransform([], [wrong], "hint")));
        Assert.Empty(Directory.Exists(_dir.Combine("wrong")) ? Directory.GetFileSystemEntries(_dir.Combine("wrong"), "*", SearchOption.AllDirectories) : []);
    }
}
