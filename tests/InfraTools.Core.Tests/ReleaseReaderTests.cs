using System.Diagnostics;
using InfraTools.Files;
using InfraTools.Releases;
using Xunit.Abstractions;

namespace InfraTools.Tests;

/// <summary>
/// The reader's view of a release swap: one reader opens files by path through DEST/current again and again (as
/// nginx does for every request) while releases are published. Each file says which release it belongs to; the
/// releases a reader sees must never go backwards (a page of release n+1 followed by an asset of release n is a
/// mix), so reading A, B, then A again gives the same release three times unless a swap came in between.
/// </summary>
public sealed class ReleaseReaderTests(ITestOutputHelper output)
{
    private const int FilesPerRelease = 40;

    /// <summary>The reads of one sequential reader: counts a mix whenever a file is from an older release than one read before.</summary>
    public sealed class MixCheck
    {
        private int _newest = -1;
        public int Reads { get; private set; }
        public int Mixes { get; private set; }
        public HashSet<int> Seen { get; } = [];
        public string? FirstMix { get; private set; }

        public void Observe(int release, string path)
        {
            Reads++;
            Seen.Add(release);
            if (release < _newest)
            {
                Mixes++;
                FirstMix ??= $"read {path} of release {release} after a file of release {_newest}";
            }
            _newest = Math.Max(_newest, release);
        }
    }

    internal static string FileName(int i) => $"{(i % 2 == 0 ? "pages" : "assets")}/f{i}.txt";

    internal static string Content(int release, int i) => $"{release}\n" + new string((char)('a' + i % 26), 2000 + i);

    private static int ReleaseOf(byte[] content)
    {
        var newline = Array.IndexOf(content, (byte)'\n');
        Assert.True(newline > 0, "a file without its release number: a partial file was read");
        return int.Parse(System.Text.Encoding.ASCII.GetString(content, 0, newline));
    }

    /// <summary>Reads random pairs (A, B, A) through <paramref name="root"/> until <paramref name="stop"/>.</summary>
    private static MixCheck Read(string root, CancellationToken stop)
    {
        var check = new MixCheck();
        var random = new Random(7);
        while (!stop.IsCancellationRequested && check.Reads < 10_000_000)
        {
            var a = random.Next(FilesPerRelease);
            var b = random.Next(FilesPerRelease);
            foreach (var i in new[] { a, b, a })
            {
                var path = Path.Join(root, FileName(i));
                check.Observe(ReleaseOf(File.ReadAllBytes(path)), FileName(i));
            }
        }
        return check;
    }

    [Fact]
    public async Task A_reader_through_current_never_sees_two_releases_mixed_while_releases_are_published()
    {
        using var dir = new TempDir("rel-reader");
        var dest = dir.Combine("www");
        Directory.CreateDirectory(dest);
        using var releases = ReleaseDirectory.TryOpen(dest, new ReleaseOptions { Grace = TimeSpan.Zero, KeepReleases = 2 })!;
        ReleaseSites.Publish(releases, Enumerable.Range(0, FilesPerRelease).ToDictionary(FileName, i => Content(0, i)));

        using var stop = new CancellationTokenSource();
        var reader = Task.Run(() => Read(Path.Join(dest, "current"), stop.Token));
        var published = 0;
        var watch = Stopwatch.StartNew();
        for (var release = 1; release <= 40; release++)
        {
            ReleaseSites.Publish(releases, Enumerable.Range(0, FilesPerRelease).ToDictionary(FileName, i => Content(release, i)));
            releases.Cleanup(); // deleting old releases while the reader runs is part of it
            published++;
            // At once: the next read after the publish sees the new release.
            Assert.Equal(release, ReleaseOf(File.ReadAllBytes(Path.Join(dest, "current", FileName(release % FilesPerRelease)))));
            await Task.Delay(5);
        }
        stop.Cancel();
        var check = await reader;

        output.WriteLine($"{published} releases in {watch.Elapsed.TotalSeconds:F1} s; {check.Reads} reads saw {check.Seen.Count} releases; {check.Mixes} mixes");
        Assert.True(check.Mixes == 0, check.FirstMix);
        Assert.True(check.Seen.Count >= 10, $"the reader saw only {check.Seen.Count} releases: the swaps did not happen while it read");
        Assert.True(check.Reads >= 1000, $"only {check.Reads} reads");
    }

    [Fact]
    public async Task The_same_reader_sees_a_mix_when_the_files_are_replaced_one_by_one_in_place()
    {
        // In-place mode (each file replaced atomically, but one after the other): the check above must catch it.
        using var dir = new TempDir("rel-reader-inplace");
        var root = dir.Combine("www");
        foreach (var i in Enumerable.Range(0, FilesPerRelease)) dir.Write("www/" + FileName(i), Content(0, i));

        using var stop = new CancellationTokenSource();
        var reader = Task.Run(() => Read(root, stop.Token));
        var random = new Random(3);
        for (var release = 1; release <= 20; release++)
        {
            foreach (var i in Enumerable.Range(0, FilesPerRelease).OrderBy(_ => random.Next()))
            {
                await AtomicFile.WriteAsync(Path.Join(root, FileName(i)), System.Text.Encoding.UTF8.GetBytes(Content(release, i)), AtomicFile.ReadableByAll);
                await Task.Delay(1);
            }
        }
        stop.Cancel();
        var check = await reader;

        output.WriteLine($"{check.Reads} reads saw {check.Seen.Count} releases; {check.Mixes} mixes; first: {check.FirstMix}");
        Assert.True(check.Mixes > 0, "in-place replacement was not detected as a mix: the check cannot fail");
    }
}
