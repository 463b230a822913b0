using InfraTools.S3;
using InfraTools.Sync;

namespace InfraTools.Tests;

/// <summary>The mirror planner decides from listing, local tree and manifest alone; these are its rules.</summary>
public class MirrorPlannerTests
{
    private static readonly DateTimeOffset Modified = new(2026, 1, 2, 3, 4, 5, TimeSpan.Zero);
    private static readonly DateTime LocalTime = new(2026, 1, 2, 3, 4, 5, DateTimeKind.Utc);

    private static S3Object Obj(string key, long size = 10, string etag = "0123456789abcdef0123456789abcdef") => new(key, size, etag, Modified);

    private static LocalTree Local(params (string Path, long Size)[] files)
    {
        var tree = new LocalTree();
        foreach (var (path, size) in files)
        {
            tree.Files[path] = new LocalFile(size, LocalTime);
            for (var slash = path.LastIndexOf('/'); slash > 0; slash = path.LastIndexOf('/', slash - 1)) tree.Directories.Add(path[..slash]);
        }
        return tree;
    }

    private static MirrorPlan Plan(IEnumerable<S3Object> listing, LocalTree local, Manifest? manifest = null, bool delete = true, string prefix = "", params string[] exclude) =>
        MirrorPlanner.Plan(listing, local, manifest ?? new Manifest(), new MirrorOptions(prefix, delete, new GlobFilter(exclude)));

    [Fact]
    public void New_objects_are_downloaded_into_their_directories()
    {
        var plan = Plan([Obj("site/index.html"), Obj("site/css/a.css"), Obj("site/empty/")], new LocalTree(), prefix: "site/");
        Assert.Equal(["css/a.css", "index.html"], plan.Downloads.Select(d => d.File.RelativePath));
        Assert.All(plan.Downloads, d => Assert.Equal(DownloadReason.New, d.Reason));
        Assert.Equal(["css", "empty"], plan.Directories);
    }

    [Fact]
    public void A_file_matching_the_manifest_is_unchanged_without_any_check()
    {
        var manifest = new Manifest();
        manifest.Set("a.html", new ManifestEntry(10, "0123456789abcdef0123456789abcdef", LocalTime));
        var plan = Plan([Obj("a.html")], Local(("a.html", 10)), manifest);
        Assert.Single(plan.Unchanged);
        Assert.Empty(plan.Downloads);
        Assert.Empty(plan.Verify);
    }

    [Fact]
    public void A_same_size_change_is_seen_through_the_manifest_ETag()
    {
        var manifest = new Manifest();
        manifest.Set("a.html", new ManifestEntry(10, "old-etag-0000000000000000000000", LocalTime));
        var plan = Plan([Obj("a.html")], Local(("a.html", 10)), manifest);
        Assert.Equal(DownloadReason.Changed, Assert.Single(plan.Downloads).Reason);
    }

    [Fact]
    public void Without_a_trustworthy_manifest_a_same_size_file_is_checked_by_checksum_and_a_different_size_is_downloaded()
    {
        var manifest = new Manifest();
        manifest.Set("touched.html", new ManifestEntry(10, "0123456789abcdef0123456789abcdef", LocalTime.AddSeconds(-1)));
        var plan = Plan([Obj("same.html"), Obj("touched.html"), Obj("bigger.html", size: 11)],
            Local(("same.html", 10), ("touched.html", 10), ("bigger.html", 10)), manifest);
        Assert.Equal(["same.html", "touched.html"], plan.Verify.Select(v => v.RelativePath).Order());
        Assert.Equal("bigger.html", Assert.Single(plan.Downloads).File.RelativePath);
    }

    [Fact]
    public void Deletes_only_with_delete_and_never_excluded_paths()
    {
        var local = Local(("keep.html", 10), ("old.html", 1), ("old/dir/x.html", 1), ("drafts/wip.html", 1));
        var plan = Plan([Obj("keep.html")], local, delete: true, exclude: "drafts");
        Assert.Equal(["old.html", "old/dir/x.html"], plan.DeleteFiles);
        Assert.Equal(["old/dir", "old"], plan.DeleteDirectories);
        var noDelete = Plan([Obj("keep.html")], local, delete: false, exclude: "drafts");
        Assert.Empty(noDelete.DeleteFiles);
        Assert.Empty(noDelete.DeleteDirectories);
    }

    [Fact]
    public void Unsafe_keys_and_file_directory_conflicts_are_skipped_with_a_reason()
    {
        var plan = Plan([Obj("../evil.txt"), Obj("a"), Obj("a/b"), Obj("ok.txt")], new LocalTree());
        Assert.Equal(["a/b", "ok.txt"], plan.Downloads.Select(d => d.File.RelativePath).Order());
        Assert.Equal(2, plan.Skipped.Count);
        Assert.Contains(plan.Skipped, s => s.Key == "../evil.txt" && s.Problem.Contains("'..'"));
        Assert.Contains(plan.Skipped, s => s.Key == "a" && s.Problem.Contains("both a file and a directory"));
    }

    [Fact]
    public void A_local_entry_of_another_type_waits_for_the_deletes()
    {
        var local = Local(("docs", 5));
        local.Directories.Add("page.html");
        var plan = Plan([Obj("docs/index.html"), Obj("page.html")], local);
        Assert.All(plan.Downloads, d => Assert.Equal(DownloadReason.AfterDeletes, d.Reason));
        Assert.Equal(["docs"], plan.DeleteFiles);
        Assert.Equal(["page.html"], plan.DeleteDirectories);

        var withoutDelete = Plan([Obj("docs/index.html")], local, delete: false);
        Assert.Contains("run with --delete", Assert.Single(withoutDelete.Skipped).Problem);
    }

    [Fact]
    public void A_symbolic_link_on_the_way_is_never_written_through()
    {
        var local = new LocalTree();
        local.Others.Add("assets", "symbolic link");
        var plan = Plan([Obj("assets/app.js")], local);
        Assert.Equal(DownloadReason.AfterDeletes, Assert.Single(plan.Downloads).Reason);
        Assert.Equal(["assets"], plan.DeleteFiles);
    }

    [Fact]
    public void Excluded_keys_are_neither_downloaded_nor_counted_as_source()
    {
        var plan = Plan([Obj("a.html"), Obj("tmp/x.bak")], new LocalTree(), exclude: "*.bak");
        Assert.Equal("a.html", Assert.Single(plan.Downloads).File.RelativePath);
        Assert.Equal(1, plan.SourceEntries);
    }
}
