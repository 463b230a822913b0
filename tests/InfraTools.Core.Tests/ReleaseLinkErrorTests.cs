using InfraTools.Cli;
using InfraTools.Files;
using InfraTools.Interop;
using InfraTools.Releases;

namespace InfraTools.Tests;

/// <summary>
/// The file systems that refuse a release's hard links, for real: a directory of the site on another file system
/// (a tmpfs mounted there: the tests run as root, as CI does), a file at the link limit, and a file another user
/// owns under fs.protected_hardlinks (the AOT driver run as nobody). Each ends in one message that says hard links
/// need one file system that has them, and current is left as it was.
/// </summary>
public class ReleaseLinkErrorTests
{
    private static async Task Sh(string script)
    {
        var result = await ProcessRunner.RunAsync("sh", ["-c", script]);
        Assert.True(result.ExitCode == 0, result.ToString());
    }

    [Fact]
    public async Task Files_on_another_file_system_cannot_be_linked_and_the_error_says_releases_need_one_file_system()
    {
        using var dir = new TempDir("rel-exdev");
        var dest = dir.Combine("www");
        dir.Write("www/index.html", "in place");
        var mount = dir.Combine("www/uploads");
        Directory.CreateDirectory(mount);
        await Sh($"mount -t tmpfs tmpfs '{mount}'");
        try
        {
            File.WriteAllText(Path.Join(mount, "photo.jpg"), "on tmpfs");
            Assert.NotEqual((ReleaseSites.Stat(dest).DevMajor, ReleaseSites.Stat(dest).DevMinor), (ReleaseSites.Stat(mount).DevMajor, ReleaseSites.Stat(mount).DevMinor));
            using var releases = ReleaseDirectory.TryOpen(dest)!;
            Assert.True(releases.IsLegacy);

            var ex = Assert.Throws<ReleaseException>(() => releases.BeginStaging(["index.html", "uploads/photo.jpg"]));

            Assert.Equal(ExitCodes.LocalIo, ex.ExitCode);
            Assert.Contains("they are on different file systems", ex.Message);
            Assert.Contains("must be on one file system", ex.Message);
            Assert.Contains("uploads/photo.jpg", ex.Message);
            Assert.False(Directory.Exists(Path.Join(dest, "current")));
            Assert.Empty(Directory.EnumerateFileSystemEntries(Path.Join(dest, "releases"))); // the staging tree was removed

            // The rename every publish step uses refuses to cross file systems; .NET's File.Move would copy.
            var io = Assert.Throws<IOException>(() => AtomicFile.Rename(Path.Join(mount, "photo.jpg"), Path.Join(dest, "photo.jpg")));
            Assert.Contains("different file systems, and a rename cannot cross them", io.Message);
            Assert.False(File.Exists(Path.Join(dest, "photo.jpg")));
            Assert.True(File.Exists(Path.Join(mount, "photo.jpg")));
            File.Move(Path.Join(mount, "photo.jpg"), Path.Join(dest, "photo.jpg"));
            Assert.True(File.Exists(Path.Join(dest, "photo.jpg"))); // copied and deleted: not atomic
        }
        finally
        {
            await Sh($"umount '{mount}'");
        }
    }

    [Fact]
    public void A_file_at_the_link_limit_is_refused_with_a_message_about_the_limit()
    {
        using var dir = new TempDir("rel-emlink");
        var dest = dir.Combine("www");
        Directory.CreateDirectory(dest);
        using var releases = ReleaseDirectory.TryOpen(dest)!;
        ReleaseSites.Publish(releases, new Dictionary<string, string> { ["popular.html"] = "linked a lot" });
        var file = Path.Join(releases.CurrentRoot!, "popular.html");
        var links = Directory.CreateDirectory(dir.Combine("links")).FullName;
        var made = 0;
        for (var i = 0; i < 70_000; i++)
        {
            var errno = Libc.Link(file, Path.Join(links, i.ToString()));
            if (errno == Libc.EMLINK) break;
            Assert.Equal(0, errno);
            made++;
        }
        Assert.InRange(made, 1000, 69_999); // ext4 stops at 65,000 links

        var ex = Assert.Throws<ReleaseException>(() => releases.BeginStaging(["popular.html"]));

        Assert.Equal(ExitCodes.LocalIo, ex.ExitCode);
        Assert.Contains("as many hard links as its file system allows", ex.Message);
        Assert.Equal("linked a lot", File.ReadAllText(Path.Join(dest, "current/popular.html")));
    }

    [Fact]
    public async Task A_file_another_user_owns_cannot_be_linked_under_protected_hardlinks_and_the_error_says_why()
    {
        Assert.Equal("1", File.ReadAllText("/proc/sys/fs/protected_hardlinks").Trim());
        using var dir = new TempDir("rel-eperm");
        var dest = dir.Combine("www");
        Directory.CreateDirectory(dest);
        dir.Write("source/page.html", "same");
        File.SetLastWriteTimeUtc(dir.Combine("source/page.html"), new DateTime(2026, 1, 1, 0, 0, 0, DateTimeKind.Utc));
        dir.Write("source/new.html", "new");
        // A first release made by root (someone ran the pull as root once)...
        var first = await ProcessRunner.RunAsync(RepoPaths.TestDriver, ["release-run", dest, dir.Combine("source")]);
        Assert.True(first.ExitCode == 0, first.ToString());
        File.Delete(dir.Combine("source/new.html"));
        // ...then the pull as its own user, who owns DEST but not the files root wrote.
        await Sh($"chown nobody '{dest}' '{dest}/releases'");

        var result = await ProcessRunner.RunAsync("setpriv",
            ["--reuid=nobody", "--regid=nogroup", "--clear-groups", RepoPaths.TestDriver, "release-run", dest, dir.Combine("source")]);

        Assert.True(result.ExitCode == ExitCodes.LocalIo, result.ToString());
        Assert.Contains("refuses the hard link", result.Stderr);
        Assert.Contains("protected_hardlinks", result.Stderr);
        Assert.Contains("owned by the user content-pull runs as", result.Stderr);
        Assert.Equal("new", File.ReadAllText(Path.Join(dest, "current/new.html"))); // current unchanged
        Assert.Equal(["current", "releases"], Directory.EnumerateFileSystemEntries(dest).Select(Path.GetFileName).Order(StringComparer.Ordinal));
    }
}
