using InfraTools.Files;
using InfraTools.Sync;

namespace InfraTools.Tests;

/// <summary>The one planner decides from the two listings and the manifest alone; these are its rules, for both directions.</summary>
public class SyncPlannerTests
{
    private static readonly DateTimeOffset Modified = new(2026, 1, 2, 3, 4, 5, TimeSpan.Zero);
    private static readonly DateTime LocalTime = new(2026, 1, 2, 3, 4, 5, DateTimeKind.Utc);
    private const string ETag = "0123456789abcdef0123456789abcdef";

    private static readonly BucketSide Bucket = new(new InMemoryObjectStore(), "b", "", new GlobFilter([]));
    private static readonly LocalSide LocalTarget = new("/nonexistent", FileModes.WebReadable, new GlobFilter([]), TempNames.Random());

    private static SideListing Remote(params (string Key, long Size, string ETag)[] objects)
    {
        var listing = new SideListing();
        foreach (var (key, size, etag) in objects)
        {
            if (key.EndsWith('/')) listing.Directories.Add(key[..^1]);
            else listing.Files[key] = new SyncFile(key, size, etag, null, Modified, key);
        }
        return listing;
    }

    private static SideListing Remote(params string[] keys) => Remote(keys.Select(k => (k, 10L, ETag)).ToArray());

    private static SideListing Local(params (string Path, long Size)[] files)
    {
        var listing = new SideListing();
        foreach (var (path, size) in files)
        {
            listing.Files[path] = new SyncFile(path, size, null, LocalTime, new DateTimeOffset(LocalTime));
            for (var slash = path.LastIndexOf('/'); slash > 0; slash = path.LastIndexOf('/', slash - 1)) listing.Directories.Add(path[..slash]);
        }
        return listing;
    }

    private sealed class TestManifest(params (string Path, ManifestEntry Entry)[] entries) : IReadOnlyManifest
    {
        private readonly Dictionary<string, ManifestEntry> _entries = entries.ToDictionary(e => e.Path, e => e.Entry);
        public bool TryGet(string relativePath, out ManifestEntry entry) => _entries.TryGetValue(relativePath, out entry);
    }

    private static SyncPlan Pull(SideListing remote, SideListing local, IReadOnlyManifest? manifest = null, bool delete = true) =>
        SyncPlanner.Plan(Bucket, remote, LocalTarget, local, manifest ?? new TestManifest(), delete);

    private static SyncPlan Push(SideListing local, SideListing remote, IReadOnlyManifest? manifest = null, bool delete = true) =>
        SyncPlanner.Plan(LocalTarget, local, Bucket, remote, manifest ?? new TestManifest(), delete);

    [Fact]
    public void New_objects_are_downloaded_into_their_directories()
    {
        var plan = Pull(Remote("index.html", "css/a.css", "empty/"), new SideListing());
        Assert.Equal(["css/a.css", "index.html"], plan.Transfers.Select(t => t.Source.Path));
        Assert.All(plan.Transfers, t => Assert.Equal(TransferReason.New, t.Reason));
        Assert.Equal(["css", "empty"], plan.Directories);
        Assert.Equal(3, plan.SourceEntries);
    }

    [Fact]
    public void A_pair_matching_the_manifest_is_unchanged_without_any_check_in_both_directions()
    {
        var manifest = new TestManifest(("a.html", new ManifestEntry(10, ETag, LocalTime)));
        var pull = Pull(Remote("a.html"), Local(("a.html", 10)), manifest);
        Assert.Single(pull.Unchanged);
        Assert.Empty(pull.Transfers);
        Assert.Empty(pull.Checks);
        var push = Push(Local(("a.html", 10)), Remote("a.html"), manifest);
        Assert.Single(push.Unchanged);
        Assert.Empty(push.Transfers);
        Assert.Empty(push.Checks);
    }

    [Fact]
    public void A_same_size_change_of_the_object_is_seen_through_the_manifest_and_downloaded_without_a_check()
    {
        var manifest = new TestManifest(("a.html", new ManifestEntry(10, "old-etag-0000000000000000000000", LocalTime)));
        Assert.Equal(TransferReason.Changed, Assert.Single(Pull(Remote("a.html"), Local(("a.html", 10)), manifest).Transfers).Reason);
        // Pushing, the object moved on but the local file is as recorded: the checksums decide (someone else may have written the same bytes).
        Assert.Single(Push(Local(("a.html", 10)), Remote("a.html"), manifest).Checks);
    }

    [Fact]
    public void A_touched_local_file_is_checked_by_checksum_in_both_directions_and_a_size_change_is_transferred()
    {
        var manifest = new TestManifest(("touched.html", new ManifestEntry(10, ETag, LocalTime.AddSeconds(-1))));
        var pull = Pull(Remote(("same.html", 10, ETag), ("touched.html", 10, ETag), ("bigger.html", 11, ETag)),
            Local(("same.html", 10), ("touched.html", 10), ("bigger.html", 10)), manifest);
        Assert.Equal(["same.html", "touched.html"], pull.Checks.Select(c => c.Source.Path).Order());
        Assert.Equal("bigger.html", Assert.Single(pull.Transfers).Source.Path);

        var push = Push(Local(("same.html", 10), ("touched.html", 10), ("bigger.html", 11)),
            Remote(("same.html", 10, ETag), ("touched.html", 10, ETag), ("bigger.html", 10, ETag)), manifest);
        Assert.Equal(["same.html", "touched.html"], push.Checks.Select(c => c.Source.Path).Order());
        Assert.Equal("bigger.html", Assert.Single(push.Transfers).Source.Path);
    }

    [Fact]
    public void Deletes_only_with_delete()
    {
        var local = Local(("keep.html", 10), ("old.html", 1), ("old/dir/x.html", 1));
        var plan = Pull(Remote("keep.html"), local);
        Assert.Equal(["old.html", "old/dir/x.html"], plan.DeleteFiles);
        Assert.Equal(["old/dir", "old"], plan.DeleteDirectories);
        var noDelete = Pull(Remote("keep.html"), local, delete: false);
        Assert.Empty(noDelete.DeleteFiles);
        Assert.Empty(noDelete.DeleteDirectories);

        var push = Push(Local(("keep.html", 10)), Remote("keep.html", "gone.html", "marker/"));
        Assert.Equal(["gone.html"], push.DeleteFiles);
        Assert.Equal(["marker"], push.DeleteDirectories);
    }

    [Fact]
    public void Unsafe_keys_and_file_directory_conflicts_are_skipped_with_a_reason()
    {
        var plan = Pull(Remote("../evil.txt", "a", "a/b", "ok.txt"), new SideListing());
        Assert.Equal(["a/b", "ok.txt"], plan.Transfers.Select(t => t.Source.Path).Order());
        Assert.Equal(2, plan.Skipped.Count);
        Assert.Contains(plan.Skipped, s => s.Key == "../evil.txt" && s.Problem.Contains("unsafe key: it has a '..'"));
        Assert.Contains(plan.Skipped, s => s.Key == "a" && s.Problem.Contains("both a file and a directory"));
        // Pushing, a local name a restore could not write back is skipped, and no conflict rule applies to a bucket.
        var push = Push(Local(("back\\slash", 1), ("fine", 1)), new SideListing());
        Assert.Contains("so it could not be restored", Assert.Single(push.Skipped).Problem);
    }

    [Fact]
    public void A_local_entry_of_another_type_waits_for_the_deletes()
    {
        var local = Local(("docs", 5));
        local.Directories.Add("page.html");
        var plan = Pull(Remote("docs/index.html", "page.html"), local);
        Assert.All(plan.Transfers, t => Assert.Equal(TransferReason.AfterDeletes, t.Reason));
        Assert.Equal(["docs"], plan.DeleteFiles);
        Assert.Equal(["page.html"], plan.DeleteDirectories);

        var withoutDelete = Pull(Remote("docs/index.html"), local, delete: false);
        Assert.Contains("run with --delete", Assert.Single(withoutDelete.Skipped).Problem);
    }

    [Fact]
    public void A_symbolic_link_on_the_way_is_never_written_through()
    {
        var local = new SideListing();
        local.Others.Add("assets", "symbolic link");
        var plan = Pull(Remote("assets/app.js"), local);
        Assert.Equal(TransferReason.AfterDeletes, Assert.Single(plan.Transfers).Reason);
        Assert.Equal(["assets"], plan.DeleteFiles);
    }

    [Fact]
    public void Nothing_is_deleted_below_a_directory_whose_content_is_unknown()
    {
        var local = Local(("a.html", 1), ("lost/x", 1));
        local.Unreadable.Add(("secret", "Permission denied"));
        local.Directories.Add("secret");
        var plan = Pull(Remote("secret/page.html", "b.html"), local);
        Assert.DoesNotContain("secret", plan.DeleteDirectories);
        Assert.Contains("cannot be read", Assert.Single(plan.Skipped).Problem);

        var source = Local(("kept.html", 1));
        source.Unreadable.Add(("private", "Permission denied"));
        var push = Push(source, Remote("kept.html", "private/a", "gone"));
        Assert.Equal(["gone"], push.DeleteFiles);
        Assert.Contains(push.Skipped, s => s.Key == "private" && s.Problem.Contains("cannot be read"));
    }

    [Fact]
    public void Local_entries_that_are_not_files_are_skipped_when_pushing_and_deleted_when_pulling()
    {
        var local = Local(("a", 1));
        local.Others.Add("pipe", "FIFO");
        Assert.Contains("it is a FIFO; only regular files are uploaded", Assert.Single(Push(local, new SideListing()).Skipped).Problem);
        Assert.Equal(["pipe"], Pull(Remote("a"), local).DeleteFiles);
    }

    [Theory]
    [InlineData(0, 3, EmptySourceRule.RefuseIfTargetHasFiles, false, true)]
    [InlineData(0, 3, EmptySourceRule.RefuseIfTargetHasFiles, true, false)]
    [InlineData(0, 0, EmptySourceRule.RefuseIfTargetHasFiles, false, false)]
    [InlineData(0, 0, EmptySourceRule.Refuse, false, true)]
    [InlineData(0, 3, EmptySourceRule.Allow, false, false)]
    [InlineData(2, 3, EmptySourceRule.Refuse, false, false)]
    public void An_empty_source_is_refused_per_rule(int sourceFiles, int targetFiles, EmptySourceRule rule, bool force, bool refused)
    {
        var remote = Remote(Enumerable.Range(0, sourceFiles).Select(i => $"s{i}").ToArray());
        var local = Local(Enumerable.Range(0, targetFiles).Select(i => ($"t{i}", 1L)).ToArray());
        var plan = Pull(remote, local, delete: false);
        var check = () => SafetyPolicy.Check(plan, new SafetyOptions(rule, force, null), LocalTarget, "s3://b/", "/srv/www");
        if (refused) Assert.Throws<RefusedException>(check);
        else check();
    }

    [Fact]
    public void More_deletes_than_max_delete_refuse_the_run()
    {
        var plan = Pull(Remote("a"), Local(("a", 10), ("b", 1), ("c", 1)));
        Assert.Contains("2 file(s) would be deleted, more than --max-delete 1",
            Assert.Throws<RefusedException>(() => SafetyPolicy.Check(plan, new SafetyOptions(EmptySourceRule.Allow, false, 1), LocalTarget, "s", "t")).Message);
        SafetyPolicy.Check(plan, new SafetyOptions(EmptySourceRule.Allow, false, 2), LocalTarget, "s", "t");
    }

    [Fact]
    public void Transfers_unchanged_files_and_deletes_come_in_ordinal_path_order_whatever_order_the_listings_had()
    {
        // U+E000 sorts before U+1F600 in UTF-8 (a bucket's key order) but after it in UTF-16 (ordinal: the
        // surrogate D83D); the other keys are given out of order.
        string[] keys = ["z.html", "a/\U0001F600.html", "a/\uE000.html", "m.html", "a/b.html"];
        var unchanged = keys.Select(k => (k, 10L, ETag)).ToArray();
        var remote = Remote([.. unchanged, ("new/2.html", 10L, ETag), ("new/1.html", 10L, ETag)]);
        var local = Local([.. keys.Select(k => (k, 10L)), ("old/y.html", 1L), ("old/x.html", 1L), ("b.html", 1L)]);
        var manifest = new TestManifest(keys.Select(k => (k, new ManifestEntry(10, ETag, LocalTime))).ToArray());

        var plan = Pull(remote, local, manifest);

        string[] ordinal = [.. keys.Order(StringComparer.Ordinal)];
        Assert.Equal(["a/b.html", "a/\U0001F600.html", "a/\uE000.html", "m.html", "z.html"], ordinal);
        Assert.Equal(ordinal, plan.Unchanged.Select(f => f.Path));
        Assert.Equal(["new/1.html", "new/2.html"], plan.Transfers.Select(t => t.Source.Path));
        Assert.Equal(["b.html", "old/x.html", "old/y.html"], plan.DeleteFiles);
    }

    [Fact]
    public void A_file_entry_keeps_its_times_and_costs_at_most_72_bytes()
    {
        var local = new SyncFile("a.html", 10, null, LocalTime, new DateTimeOffset(LocalTime));
        Assert.Equal(LocalTime, local.LocalLastWriteUtc);
        Assert.Equal(DateTimeKind.Utc, local.LocalLastWriteUtc!.Value.Kind);
        Assert.True(local.IsLocal);
        var inParis = new DateTimeOffset(2026, 1, 2, 4, 4, 5, TimeSpan.FromHours(1));
        var remote = new SyncFile("a.html", 10, ETag, null, inParis, "a.html");
        Assert.Equal(inParis, remote.Modified); // the same instant
        Assert.Equal(LocalTime, remote.Modified.UtcDateTime);
        Assert.Null(remote.LocalLastWriteUtc);
        Assert.False(remote.IsLocal);
        Assert.False((remote with { LocalLastWriteUtc = LocalTime }).LocalLastWriteUtc is null);
        Assert.Equal(local, new SyncFile("a.html", 10, null, LocalTime, new DateTimeOffset(LocalTime)));
        Assert.NotEqual(local, local with { Modified = inParis.AddSeconds(1) });

        // A run holds one per file and side: 100,000 files, 200,000 of them.
        var files = new SyncFile[1000];
        var before = GC.GetAllocatedBytesForCurrentThread();
        for (var i = 0; i < files.Length; i++) files[i] = new SyncFile("a.html", i, ETag, null, Modified, null);
        var perFile = (GC.GetAllocatedBytesForCurrentThread() - before) / (double)files.Length;
        Assert.InRange(perFile, 1, 72);
    }
}
