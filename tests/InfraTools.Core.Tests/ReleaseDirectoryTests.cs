using InfraTools.Cli;
using InfraTools.Files;
using InfraTools.Interop;
using InfraTools.Releases;
using InfraTools.Sync;
using static InfraTools.Tests.ReleaseSites;

namespace InfraTools.Tests;

/// <summary>The release-directory mechanics in-process, on real files (ext4 under /tmp).</summary>
public class ReleaseDirectoryTests
{
    private static ReleaseDirectory Open(string dest, ReleaseOptions? options = null) =>
        ReleaseDirectory.TryOpen(dest, options) ?? throw new InvalidOperationException("DEST is locked");

    [Fact]
    public void A_first_release_is_published_behind_a_relative_current_link_that_survives_moving_DEST()
    {
        using var dir = new TempDir("rel-first");
        var dest = dir.Combine("www");
        Directory.CreateDirectory(dest);
        var site = Versioned(1);
        string id;
        using (var releases = Open(dest))
        {
            Assert.Null(releases.CurrentRoot);
            Assert.True(releases.NeedsRelease(changed: false));
            id = Publish(releases, site).Id;
            Assert.Equal(id, releases.CurrentId);
        }
        Assert.Matches(@"^\d{8}T\d{6}Z-[0-9a-f]{4}$", id);
        Assert.True(Stat(Path.Join(dest, "current")).IsSymbolicLink);
        Assert.Equal($"releases/{id}", LinkTarget(Path.Join(dest, "current")));
        AssertServes(dest, site);
        Assert.Equal((UnixFileMode)0x1ED, Stat(Path.Join(dest, "releases", id)).Permissions);
        Assert.Equal((UnixFileMode)0x1ED, Stat(Path.Join(dest, "releases", id, "dir1")).Permissions);
        Assert.Equal(["current", "releases"], Directory.EnumerateFileSystemEntries(dest).Select(Path.GetFileName).Order(StringComparer.Ordinal));
        Assert.Equal([id], Directory.EnumerateFileSystemEntries(Path.Join(dest, "releases")).Select(Path.GetFileName));

        // The volume mounted elsewhere (nginx sees /srv/www, the pull container /www): the link still works.
        var moved = dir.Combine("elsewhere");
        Directory.Move(dest, moved);
        AssertServes(moved, site);
    }

    [Fact]
    public void Unchanged_files_are_hard_links_of_the_current_release_with_its_mtime_and_changed_files_are_new()
    {
        using var dir = new TempDir("rel-links");
        var dest = dir.Combine("www");
        Directory.CreateDirectory(dest);
        using var releases = Open(dest);
        var v1 = Versioned(1);
        var first = Publish(releases, v1).Id;
        var old = Path.Join(releases.ReleasePath(first), "dir1/page1.html");
        File.SetLastWriteTimeUtc(old, new DateTime(2025, 1, 2, 3, 4, 5, DateTimeKind.Utc));

        var v2 = new Dictionary<string, string>(v1) { ["dir2/page2.html"] = "changed\n", ["new/file.txt"] = "new\n" };
        v2.Remove("page0.html");
        var result = Publish(releases, v2);

        Assert.Equal(v1.Count - 2, result.Linked);
        Assert.Equal(first, result.PreviousId);
        AssertServes(dest, v2);
        var linked = Stat(Path.Join(releases.ReleasePath(result.Id), "dir1/page1.html"));
        Assert.Equal(Stat(old).Inode, linked.Inode);
        Assert.Equal(2u, linked.Links);
        Assert.Equal(new DateTime(2025, 1, 2, 3, 4, 5, DateTimeKind.Utc), linked.LastWriteUtc);
        Assert.NotEqual(Stat(Path.Join(releases.ReleasePath(first), "dir2/page2.html")).Inode, Stat(Path.Join(releases.ReleasePath(result.Id), "dir2/page2.html")).Inode);
        // The old release is untouched: still complete, still the old content.
        Assert.Equal(v1, Read(releases.ReleasePath(first)));
    }

    [Fact]
    public void Paths_that_are_not_regular_files_in_the_current_release_are_reported_missing_for_the_engine_to_download()
    {
        using var dir = new TempDir("rel-missing");
        var dest = dir.Combine("www");
        Directory.CreateDirectory(dest);
        using var releases = Open(dest);
        Publish(releases, new Dictionary<string, string> { ["a.html"] = "a", ["d/b.html"] = "b" });
        File.CreateSymbolicLink(Path.Join(releases.CurrentRoot!, "link.html"), "/etc/passwd");

        using var staging = releases.BeginStaging(["a.html", "gone.html", "link.html", "d/b.html/x", "d"]);

        Assert.Equal(1, staging.Linked);
        Assert.Equal(["gone.html", "link.html", "d/b.html/x", "d"], staging.Missing);
        Assert.Equal(["a.html"], Directory.EnumerateFileSystemEntries(staging.Root).Select(Path.GetFileName));
        Assert.Throws<ArgumentException>(() => staging.LinkFromCurrent(["../escape"]));
        Assert.Throws<ArgumentException>(() => staging.LinkFromCurrent(["/etc/passwd"]));
    }

    [Fact]
    public void A_run_with_nothing_changed_needs_no_release_and_an_abandoned_staging_leaves_nothing()
    {
        using var dir = new TempDir("rel-nochange");
        var dest = dir.Combine("www");
        Directory.CreateDirectory(dest);
        using var releases = Open(dest);
        var id = Publish(releases, Versioned(1)).Id;

        Assert.False(releases.NeedsRelease(changed: false));
        Assert.True(releases.NeedsRelease(changed: true));
        var staging = releases.BeginStaging(Read(releases.CurrentRoot!).Keys);
        Assert.True(Directory.Exists(staging.Root));
        staging.Dispose();

        Assert.False(Directory.Exists(staging.Root));
        Assert.Equal([id], Directory.EnumerateFileSystemEntries(releases.ReleasesPath).Select(Path.GetFileName));
        Assert.Equal(id, releases.CurrentId);
    }

    [Fact]
    public void Ids_sort_in_publish_order_even_within_one_second_or_when_the_clock_steps_back()
    {
        var now = new DateTime(2026, 12, 1, 12, 0, 0, DateTimeKind.Utc);
        var first = ReleaseIds.New(now, null);
        Assert.StartsWith("20261201T120000Z-", first);
        var sameSecond = ReleaseIds.New(now.AddMilliseconds(300), first);
        Assert.StartsWith("20261201T120001Z-", sameSecond);
        var clockBack = ReleaseIds.New(now.AddHours(-1), sameSecond);
        Assert.StartsWith("20261201T120002Z-", clockBack);
        Assert.True(string.CompareOrdinal(first, sameSecond) < 0 && string.CompareOrdinal(sameSecond, clockBack) < 0);
        Assert.StartsWith("20261201T130000Z-", ReleaseIds.New(now.AddHours(1), clockBack));
        Assert.False(ReleaseIds.IsId("20261301T120000Z-3f2a"));
        Assert.False(ReleaseIds.IsId("20261201T120000Z-3F2A"));
        Assert.False(ReleaseIds.IsId(".staging-20261201T120000Z-3f2a"));

        using var dir = new TempDir("rel-ids");
        var dest = dir.Combine("www");
        Directory.CreateDirectory(dest);
        var clock = ManualClock.StartingNow();
        using var releases = Open(dest, new ReleaseOptions { Time = clock });
        var ids = Enumerable.Range(1, 4).Select(v => Publish(releases, Versioned(v, 3)).Id).ToList();
        Assert.Equal(ids.Order(StringComparer.Ordinal), ids);
        Assert.Equal(4, ids.Distinct().Count());
    }

    [Fact]
    public void A_second_run_on_the_same_DEST_is_refused_however_it_is_spelled()
    {
        using var dir = new TempDir("rel-lock");
        var dest = dir.Combine("www");
        Directory.CreateDirectory(dest);
        File.CreateSymbolicLink(dir.Combine("alias"), dest);
        using (var first = Open(dest))
        {
            Assert.Null(ReleaseDirectory.TryOpen(dir.Combine("alias")));
            Assert.Null(ReleaseDirectory.TryOpen(dest + "/."));
        }
        using var again = Open(dir.Combine("alias"));
        Assert.Equal(dest, again.Dest);

        // A caller that holds the lock itself (the engine's SyncState) opens without locking twice.
        again.Dispose();
        Assert.Throws<InvalidOperationException>(() => ReleaseDirectory.OpenLocked(dest));
        using var held = FileLock.TryAcquireDirectory(dest)!;
        using var underLock = ReleaseDirectory.OpenLocked(dest);
        Assert.Null(underLock.CurrentId);
    }

    [Fact]
    public void Leftovers_of_a_killed_run_are_removed_and_nothing_else()
    {
        using var dir = new TempDir("rel-leftovers");
        var dest = dir.Combine("www");
        Directory.CreateDirectory(dest);
        string id;
        using (var releases = Open(dest)) id = Publish(releases, Versioned(1)).Id;
        var staging = Path.Join(dest, "releases", ".staging-0123456789abcdef");
        dir.Write("www/releases/.staging-0123456789abcdef/deep/er/file.html", "half");
        File.CreateSymbolicLink(Path.Join(staging, "outside"), dir.Path); // never followed by the delete
        dir.Write("www/releases/.staging-0123456789abcdef.carried", "1\tx\n");
        dir.Write("www/releases/20200101T000000Z-abcd.carried", "1\tx\n"); // its release is gone
        File.CreateSymbolicLink(Path.Join(dest, ".current-0123456789abcdef"), "releases/" + id);
        dir.Write("www/.current-notatag", "a user's file");

        using (var releases = Open(dest))
        {
            var result = releases.RemoveLeftovers();
            Assert.Equal((2, 1, 1), (result.StagingDirectories, result.TemporaryLinks, result.OrphanFiles));
        }

        Assert.Equal([".current-notatag", "current", "releases"], Directory.EnumerateFileSystemEntries(dest).Select(Path.GetFileName).Order(StringComparer.Ordinal));
        Assert.Equal([id], Directory.EnumerateFileSystemEntries(Path.Join(dest, "releases")).Select(Path.GetFileName));
        Assert.True(File.Exists(Path.Join(dest, "current", "page0.html")));
        Assert.True(Directory.Exists(dir.Path)); // the link inside the staging tree was removed, not followed
    }

    [Theory]
    [InlineData("dir", "is a directory, not the link to the current release")]
    [InlineData("file", "is a regular file, not the link to the current release")]
    [InlineData("foreign-link", "points to '/srv/other', not to a release")]
    [InlineData("site-releases", "which is not a release: it is a directory of the site mirrored in place")]
    [InlineData("releases-file", "releases' is a regular file; release mode keeps its releases there")]
    public void A_DEST_whose_current_or_releases_is_not_ours_is_refused_and_left_alone(string kind, string message)
    {
        using var dir = new TempDir("rel-refuse");
        var dest = dir.Combine("www");
        dir.Write("www/index.html", "site");
        switch (kind)
        {
            case "dir": dir.Write("www/current/index.html", "a site directory named current"); break;
            case "file": dir.Write("www/current", "a page named current"); break;
            case "foreign-link": File.CreateSymbolicLink(Path.Join(dest, "current"), "/srv/other"); break;
            case "site-releases": dir.Write("www/releases/v1.0.html", "release notes"); break;
            case "releases-file": dir.Write("www/releases", "a page named releases"); break;
        }
        var before = Read(dest);

        var ex = Assert.Throws<ReleaseException>(() => ReleaseDirectory.TryOpen(dest));

        Assert.Equal(ExitCodes.Refused, ex.ExitCode);
        Assert.Contains(message, ex.Message);
        Assert.Contains("nothing was changed", ex.Message);
        Assert.Equal(before, Read(dest));
        // The lock was released with the refusal.
        using var fileLock = FileLock.TryAcquireDirectory(dest);
        Assert.NotNull(fileLock);
    }

    [Fact]
    public void Rollback_goes_to_the_previous_release_or_a_named_one_in_one_rename_and_says_when_it_cannot()
    {
        using var dir = new TempDir("rel-rollback");
        var dest = dir.Combine("www");
        Directory.CreateDirectory(dest);
        using var releases = Open(dest);
        var ex = Assert.Throws<ReleaseException>(() => releases.Rollback());
        Assert.Contains("has no current release yet", ex.Message);
        var ids = Enumerable.Range(1, 3).Select(v => Publish(releases, Versioned(v)).Id).ToList();

        var back = releases.Rollback();
        Assert.Equal((ids[2], ids[1]), (back.From, back.To));
        AssertServes(dest, Versioned(2));
        Assert.Equal($"releases/{ids[1]}", LinkTarget(Path.Join(dest, "current")));
        Assert.Equal(ids[0], releases.Rollback().To);
        AssertServes(dest, Versioned(1));

        ex = Assert.Throws<ReleaseException>(() => releases.Rollback());
        Assert.Contains($"no release older than the current one ({ids[0]})", ex.Message);
        Assert.Equal(ExitCodes.Refused, ex.ExitCode);
        ex = Assert.Throws<ReleaseException>(() => releases.Rollback("20200101T000000Z-abcd"));
        Assert.Contains("there is no release '20200101T000000Z-abcd'", ex.Message);
        Assert.Contains(ids[2], ex.Message);
        Assert.Equal(ExitCodes.Usage, Assert.Throws<UsageException>(() => releases.Rollback("latest")).ExitCode);

        Assert.Equal(ids[2], releases.Rollback(ids[2]).To);
        AssertServes(dest, Versioned(3));
        Assert.False(releases.Rollback(ids[2]).Changed);
        Assert.Empty(Directory.EnumerateFileSystemEntries(dest, ".current-*"));
    }

    [Fact]
    public void List_shows_every_release_newest_first_with_files_bytes_and_which_is_current()
    {
        using var dir = new TempDir("rel-list");
        var dest = dir.Combine("www");
        Directory.CreateDirectory(dest);
        using var releases = Open(dest);
        var a = Publish(releases, new Dictionary<string, string> { ["a"] = "1", ["b/c"] = "22" }).Id;
        var b = Publish(releases, new Dictionary<string, string> { ["a"] = "1", ["b/c"] = "333", ["d"] = "4444" }).Id;
        releases.Rollback();

        var list = releases.List();

        Assert.Equal([b, a], list.Select(r => r.Id));
        Assert.Equal([(3L, 8L, false), (2L, 3L, true)], list.Select(r => (r.Files!.Value, r.Bytes!.Value, r.IsCurrent)));
        Assert.True(ReleaseIds.TryParseTime(a, out var created));
        Assert.Equal(created, list[1].CreatedUtc);
        Assert.InRange(list[1].CreatedUtc, DateTime.UtcNow.AddMinutes(-1), DateTime.UtcNow.AddSeconds(5));
    }

    [Fact]
    public void Cleanup_keeps_the_newest_N_the_current_the_previous_and_every_release_within_the_grace_period()
    {
        using var dir = new TempDir("rel-cleanup");
        var dest = dir.Combine("www");
        Directory.CreateDirectory(dest);
        var clock = ManualClock.StartingNow();
        using var releases = Open(dest, new ReleaseOptions { Time = clock, KeepReleases = 1, Grace = TimeSpan.FromMinutes(5) });
        var ids = new List<string>();
        for (var v = 1; v <= 5; v++)
        {
            ids.Add(Publish(releases, Versioned(v)).Id);
            clock.Advance(TimeSpan.FromMinutes(1));
        }
        // ids[0] stopped being current 4 minutes ago, the others later: within the grace period, none may go.
        Assert.Empty(releases.Cleanup().Deleted);

        clock.Advance(TimeSpan.FromMinutes(2)); // retired 6, 5, 4 and 3 minutes ago
        var result = releases.Cleanup();
        Assert.Equal([ids[0], ids[1]], result.Deleted);
        Assert.Equal(ids[2..], releases.ReleaseIdList());
        Assert.True(result.Entries > Versioned(1).Count);

        clock.Advance(TimeSpan.FromHours(1));
        result = releases.Cleanup();
        Assert.Equal([ids[2]], result.Deleted); // ids[3] is the previous release, ids[4] the current (and newest) one
        Assert.Equal([ids[3], ids[4]], result.Kept);
        Assert.Equal(ids[3..], releases.ReleaseIdList());
        AssertServes(dest, Versioned(5));

        // --keep-releases 3 with no grace period: the newest 3 stay.
        using var three = new TempDir("rel-cleanup-3");
        Directory.CreateDirectory(three.Combine("www"));
        using var more = Open(three.Combine("www"), new ReleaseOptions { Time = clock, Grace = TimeSpan.Zero });
        var moreIds = Enumerable.Range(1, 6).Select(v => Publish(more, Versioned(v)).Id).ToList();
        Assert.Equal(moreIds[..3], more.Cleanup().Deleted);
        Assert.Equal(moreIds[3..], more.ReleaseIdList());
    }

    [Fact]
    public void Cleanup_after_a_rollback_keeps_the_release_current_pointed_to_before_and_never_the_current_one()
    {
        using var dir = new TempDir("rel-cleanup-rb");
        var dest = dir.Combine("www");
        Directory.CreateDirectory(dest);
        var clock = ManualClock.StartingNow();
        var options = new ReleaseOptions { Time = clock, KeepReleases = 1, Grace = TimeSpan.Zero };
        List<string> ids;
        using (var releases = Open(dest, options))
        {
            ids = Enumerable.Range(1, 4).Select(v => Publish(releases, Versioned(v))).Select(r => r.Id).ToList();
            clock.Advance(TimeSpan.FromMinutes(1));
            releases.Rollback(ids[0]);
        }
        clock.Advance(TimeSpan.FromMinutes(1));
        // A later run: it did not swap itself, so "previous" is the release that stopped being current last.
        using (var releases = Open(dest, options))
        {
            var result = releases.Cleanup();
            Assert.Equal([ids[1], ids[2]], result.Deleted);
            Assert.Equal([ids[0], ids[3]], releases.ReleaseIdList()); // current (old) and the one rolled back from (newest)
        }
        AssertServes(dest, Versioned(1));
    }

    [Fact]
    public void A_deletion_a_killed_run_began_is_finished_by_the_next_cleanup_and_never_listed()
    {
        using var dir = new TempDir("rel-deleting");
        var dest = dir.Combine("www");
        Directory.CreateDirectory(dest);
        using var releases = Open(dest);
        Publish(releases, Versioned(1));
        dir.Write("www/releases/.deleting-20200101T000000Z-abcd/a/b.html", "half deleted");

        Assert.DoesNotContain(releases.List(), r => r.Id.Contains("2020"));
        Assert.Equal(0, releases.RemoveLeftovers().Entries); // left to the cleanup, off the critical path
        Assert.True(Directory.Exists(Path.Join(dest, "releases/.deleting-20200101T000000Z-abcd")));
        var result = releases.Cleanup();
        Assert.Equal(3, result.Entries);
        Assert.False(Directory.Exists(Path.Join(dest, "releases/.deleting-20200101T000000Z-abcd")));
    }

    [Fact]
    public void Skew_protection_carries_matching_files_of_earlier_releases_as_links_for_the_duration_only()
    {
        using var dir = new TempDir("rel-skew");
        var dest = dir.Combine("www");
        Directory.CreateDirectory(dest);
        var clock = ManualClock.StartingNow();
        using var releases = Open(dest, new ReleaseOptions
        {
            Time = clock, KeepAssets = ["assets/**", "*.chunk.js"], KeepAssetsFor = TimeSpan.FromMinutes(30), KeepReleases = 10,
        });
        var r1 = Publish(releases, new Dictionary<string, string>
        {
            ["index.html"] = "v1 <script src=assets/app.1111.js>", ["assets/app.1111.js"] = "js v1", ["assets/shared.css"] = "css v1",
            ["deep/x.chunk.js"] = "chunk v1", ["old-page.html"] = "not an asset",
        });
        clock.Advance(TimeSpan.FromMinutes(10));
        var r2 = Publish(releases, new Dictionary<string, string>
        {
            ["index.html"] = "v2 <script src=assets/app.2222.js>", ["assets/app.2222.js"] = "js v2", ["assets/shared.css"] = "css v2",
        });

        Assert.Equal(2, r2.Carried);
        var served = Read(Path.Join(dest, "current"));
        Assert.Equal("js v1", served["assets/app.1111.js"]); // a tab still on v1 loads its chunk
        Assert.Equal("chunk v1", served["deep/x.chunk.js"]);
        Assert.Equal("css v2", served["assets/shared.css"]); // the new release has that path: not replaced
        Assert.False(served.ContainsKey("old-page.html"));
        Assert.Equal(Stat(Path.Join(releases.ReleasePath(r1.Id), "assets/app.1111.js")).Inode, Stat(Path.Join(dest, "current/assets/app.1111.js")).Inode);
        Assert.Equal(["assets/app.1111.js", "deep/x.chunk.js"], releases.CarriedIntoCurrent().Order(StringComparer.Ordinal));
        Assert.Equal(2, releases.List().First().CarriedFiles);

        // 15 minutes after r1 stopped being current, a third release still carries its files (from r2, where they were carried)...
        clock.Advance(TimeSpan.FromMinutes(15));
        var r3 = Publish(releases, new Dictionary<string, string> { ["index.html"] = "v3", ["assets/app.3333.js"] = "js v3" });
        served = Read(Path.Join(dest, "current"));
        Assert.Equal("js v1", served["assets/app.1111.js"]);
        Assert.Equal("js v2", served["assets/app.2222.js"]);
        Assert.Equal(4, r3.Carried); // app.1111, x.chunk (from r1), app.2222, shared.css (from r2)

        // ...but not 31 minutes after: carrying does not make a file immortal. r2's files (retired 16 min ago) stay.
        clock.Advance(TimeSpan.FromMinutes(16));
        Publish(releases, new Dictionary<string, string> { ["index.html"] = "v4", ["assets/app.3333.js"] = "js v3" });
        served = Read(Path.Join(dest, "current"));
        Assert.False(served.ContainsKey("assets/app.1111.js"));
        Assert.False(served.ContainsKey("deep/x.chunk.js"));
        Assert.Equal("js v2", served["assets/app.2222.js"]);
        Assert.Equal("css v2", served["assets/shared.css"]);
    }

    [Fact]
    public void Carried_files_come_back_after_a_rollback_from_the_release_rolled_back_from()
    {
        using var dir = new TempDir("rel-skew-rb");
        var dest = dir.Combine("www");
        Directory.CreateDirectory(dest);
        var clock = ManualClock.StartingNow();
        using var releases = Open(dest, new ReleaseOptions { Time = clock, KeepAssets = ["assets/**"], KeepAssetsFor = TimeSpan.FromHours(1) });
        Publish(releases, new Dictionary<string, string> { ["index.html"] = "v1", ["assets/a.1.js"] = "a1" });
        clock.Advance(TimeSpan.FromMinutes(1));
        Publish(releases, new Dictionary<string, string> { ["index.html"] = "v2", ["assets/a.2.js"] = "a2" });
        clock.Advance(TimeSpan.FromMinutes(1));
        releases.Rollback(); // current is v1 again; v2's tabs still need a.2.js
        clock.Advance(TimeSpan.FromMinutes(1));
        Publish(releases, new Dictionary<string, string> { ["index.html"] = "v3", ["assets/a.3.js"] = "a3" });
        var served = Read(Path.Join(dest, "current"));
        Assert.Equal(["a1", "a2", "a3"], new[] { "assets/a.1.js", "assets/a.2.js", "assets/a.3.js" }.Select(p => served[p]));
    }

    [Fact]
    public void Glob_prefixes_limit_the_walk_of_earlier_releases_to_the_directories_that_can_match()
    {
        Assert.Equal(["assets"], ReleaseStaging.LiteralPrefixes(["assets/**", "assets/js/*.js"]));
        Assert.Equal([""], ReleaseStaging.LiteralPrefixes(["*.js", "assets/**"]));
        Assert.Equal(["static/v1", "img"], ReleaseStaging.LiteralPrefixes(["/static/v1/*.js", "img/x.png", "img/**/a"]));
        Assert.Equal([""], ReleaseStaging.LiteralPrefixes(["**/*.????????.js"]));
    }

    [Fact]
    public void Migration_builds_the_first_release_from_the_tree_mirrored_in_place_by_links_and_leaves_that_tree_until_removed()
    {
        using var dir = new TempDir("rel-migrate");
        var dest = dir.Combine("www");
        var site = Versioned(1);
        foreach (var (path, content) in site) dir.Write("www/" + path, content);
        dir.Write("www/lost+found/x", "fsck's");
        var legacyInode = Stat(Path.Join(dest, "dir1/page1.html")).Inode;

        using var releases = Open(dest);
        Assert.True(releases.IsLegacy);
        Assert.Equal(dest, releases.CurrentRoot);
        Assert.True(releases.NeedsRelease(changed: false)); // migrating needs a release even with nothing changed
        Assert.Equal(site.Keys.Order(StringComparer.Ordinal), releases.ScanCurrent(["lost+found"]).Files.Keys.Order(StringComparer.Ordinal));

        var v2 = new Dictionary<string, string>(site) { ["page0.html"] = "changed while migrating\n" };
        var result = Publish(releases, v2);

        Assert.Equal(site.Count - 1, result.Linked);
        Assert.Null(result.PreviousId);
        Assert.False(releases.IsLegacy);
        AssertServes(dest, v2);
        Assert.Equal(legacyInode, Stat(Path.Join(dest, "current/dir1/page1.html")).Inode);
        // The tree nginx served before is still there, complete and unchanged, for an nginx whose root is still DEST.
        Assert.Equal(site, Read(dest, legacy: true).Where(f => !f.Key.StartsWith("lost+found")).ToDictionary());
        Assert.Equal(site.Keys.Select(k => k.Split('/')[0]).Distinct().Count(), releases.LegacyEntries.Count);

        // The next publish scans the release, not DEST.
        Assert.Equal(v2.Keys.Order(StringComparer.Ordinal), releases.ScanCurrent().Files.Keys.Order(StringComparer.Ordinal));

        var removed = releases.RemoveLegacyTree();
        Assert.Equal(site.Count + 2, removed); // files and dir1, dir2
        Assert.Equal(["current", "lost+found", "releases"], Directory.EnumerateFileSystemEntries(dest).Select(Path.GetFileName).Order(StringComparer.Ordinal));
        AssertServes(dest, v2);
    }

    [Fact]
    public void Removing_the_legacy_tree_is_refused_before_the_first_release()
    {
        using var dir = new TempDir("rel-legacy-early");
        dir.Write("www/index.html", "in place");
        using var releases = Open(dir.Combine("www"));
        var ex = Assert.Throws<ReleaseException>(() => releases.RemoveLegacyTree());
        Assert.Contains("still the one served", ex.Message);
        Assert.True(File.Exists(dir.Combine("www/index.html")));
    }

    [Fact]
    public void A_crashed_first_migration_is_begun_again_and_a_complete_unpublished_release_does_not_confuse_it()
    {
        using var dir = new TempDir("rel-migrate-crash");
        var dest = dir.Combine("www");
        var site = Versioned(1);
        foreach (var (path, content) in site) dir.Write("www/" + path, content);
        dir.Write("www/releases/.staging-0123456789abcdef/page0.html", "half");
        dir.Write("www/releases/20200101T000000Z-abcd/page0.html", "renamed but never swapped"); // killed between the renames

        using var releases = Open(dest);
        Assert.True(releases.IsLegacy);
        releases.RemoveLeftovers();
        var result = Publish(releases, site);
        Assert.Null(result.PreviousId);
        AssertServes(dest, site);
    }

    [Fact]
    public void The_tree_delete_removes_names_that_are_not_UTF8_and_never_follows_links()
    {
        using var dir = new TempDir("rel-delete");
        dir.Write("outside/keep.txt", "keep");
        dir.Write("tree/a/b/c.txt", "x");
        File.CreateSymbolicLink(dir.Combine("tree/a/link"), dir.Combine("outside"));
        var raw = Libc.Bytes([.. System.Text.Encoding.UTF8.GetBytes(dir.Combine("tree/a/")), 0xff, 0xfe]);
        var fd = Libc.Open(raw, Libc.O_WRONLY | Libc.O_CREAT, 0x1A4);
        Assert.True(fd >= 0);
        Libc.Close(fd);

        Assert.Equal(6, DirectoryTree.Delete(dir.Combine("tree")));
        Assert.False(Directory.Exists(dir.Combine("tree")));
        Assert.Equal("keep", File.ReadAllText(dir.Combine("outside/keep.txt")));
        Assert.Equal(0, DirectoryTree.Delete(dir.Combine("tree")));
    }

    [Fact]
    public void The_module_never_moves_or_copies_with_NET_calls_that_fall_back_to_copy_and_delete()
    {
        var sources = Directory.GetFiles(Path.Join(RepoPaths.Root, "src", "InfraTools.Core", "Releases"), "*.cs");
        Assert.NotEmpty(sources);
        foreach (var source in sources)
        {
            var text = File.ReadAllText(source);
            foreach (var call in new[] { "File.Move(", "Directory.Move(", "File.Copy(", ".MoveTo(", ".CopyTo(" })
                Assert.False(text.Contains(call), $"{Path.GetFileName(source)} calls {call}: use AtomicFile.Rename (rename(2)) or Libc.Link");
        }
    }
}
