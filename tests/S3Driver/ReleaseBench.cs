using System.Diagnostics;
using System.Globalization;
using InfraTools.Files;
using InfraTools.Interop;
using InfraTools.Releases;
using InfraTools.Sync;

namespace InfraTools.S3Driver;

/// <summary>
/// The measurements of bench/RESULTS.md (Releases), in the AOT binary: a release of N small files built by hard links with
/// M files changed, against the same release written in full (every file copied, as a full re-download writes
/// it, without the network), the syncfs and swap of each, the cleanup of an old release whose files later
/// releases share and of one holding the last links of its files, and the other operations of a run.
/// Prints "name TAB value TAB unit" lines.
/// </summary>
internal static class ReleaseBench
{
    public static void Run(string work, int fileCount, int changedCount)
    {
        if (Directory.Exists(work) && Directory.EnumerateFileSystemEntries(work).Any()) throw new IOException($"{work} is not empty");
        var dest = Path.Join(work, "www");
        Directory.CreateDirectory(dest);
        var paths = Enumerable.Range(0, fileCount).Select(i => $"d{i / 100:D4}/f{i % 100:D2}.html").ToList();
        var random = new Random(1);
        var changed = paths.OrderBy(_ => random.Next()).Take(changedCount).ToHashSet(StringComparer.Ordinal);
        var names = TempNames.Random();
        Report("files", fileCount, "");
        Report("changed", changedCount, "");

        string r1, r2, r3;
        using (var directory = Open(dest, keep: 10))
        {
            var watch = Stopwatch.StartNew();
            using (var staging = directory.BeginStaging())
            {
                foreach (var (path, i) in paths.Select((p, i) => (p, i))) Write(staging, names, path, Content(i, 1));
                Report("initial.write", watch.Elapsed.TotalSeconds, "s");
                var published = staging.Publish();
                Report("initial.syncfs", published.SyncDuration.TotalSeconds, "s");
                r1 = published.Id;
            }

            watch.Restart();
            var tree = directory.ScanCurrent();
            Report("scan-current", watch.Elapsed.TotalSeconds, "s");
            if (tree.Files.Count != fileCount) throw new InvalidOperationException($"scan found {tree.Files.Count} files");

            // A 1 % change by hard links.
            watch.Restart();
            using (var staging = directory.BeginStaging(paths.Where(p => !changed.Contains(p))))
            {
                Report("links.link", watch.Elapsed.TotalSeconds, "s");
                watch.Restart();
                foreach (var (path, i) in paths.Select((p, i) => (p, i)).Where(x => changed.Contains(x.p))) Write(staging, names, path, Content(i, 2));
                Report("links.write-changed", watch.Elapsed.TotalSeconds, "s");
                var published = staging.Publish();
                Report("links.syncfs", published.SyncDuration.TotalSeconds, "s");
                Report("links.swap", published.SwapDuration.TotalSeconds, "s");
                r2 = published.Id;
            }
            var (inodes, bytes) = NewInodes(directory.ReleasePath(r1), directory.ReleasePath(r2));
            Report("links.new-inodes", inodes, "");
            Report("links.new-file-bytes", bytes, "B");

            // The same release written in full.
            watch.Restart();
            using (var staging = directory.BeginStaging())
            {
                foreach (var path in paths) Copy(staging, names, Path.Join(directory.CurrentRoot!, path), path);
                Report("copy.write-all", watch.Elapsed.TotalSeconds, "s");
                var published = staging.Publish();
                Report("copy.syncfs", published.SyncDuration.TotalSeconds, "s");
                Report("copy.swap", published.SwapDuration.TotalSeconds, "s");
                r3 = published.Id;
            }
            (inodes, bytes) = NewInodes(directory.ReleasePath(r2), directory.ReleasePath(r3));
            Report("copy.new-inodes", inodes, "");
            Report("copy.new-file-bytes", bytes, "B");

            // A staging tree of links abandoned (what removing a killed run's staging costs), then one more release.
            watch.Restart();
            var all = directory.BeginStaging(paths);
            Report("abandon-staging.link", watch.Elapsed.TotalSeconds, "s");
            watch.Restart();
            all.Dispose();
            Report("abandon-staging.delete", watch.Elapsed.TotalSeconds, "s");
            using (var staging = directory.BeginStaging(paths.Skip(1)))
            {
                Write(staging, names, paths[0], Content(0, 4));
                staging.Publish();
            }

            watch.Restart();
            var list = directory.List();
            Report("list-with-sizes", watch.Elapsed.TotalSeconds, "s");
            Report("releases", list.Count, "");
            watch.Restart();
            directory.Rollback();
            Report("rollback", watch.Elapsed.TotalSeconds, "s");
            directory.Rollback(list[0].Id);
        }

        // r1's files are shared with r2 (all but the changed ones): deleting it removes names, not data.
        using (var directory = Open(dest, keep: 3))
        {
            var result = directory.Cleanup();
            if (result.Deleted.Count != 1 || result.Deleted[0] != r1) throw new InvalidOperationException($"deleted {string.Join(',', result.Deleted)}");
            Report("cleanup.shared-release", result.Duration.TotalSeconds, "s");
        }
        // r2 now holds the last links of its files (r3 is a copy): deleting it frees every inode.
        using (var directory = Open(dest, keep: 2))
        {
            var result = directory.Cleanup();
            if (result.Deleted.Count != 1 || result.Deleted[0] != r2) throw new InvalidOperationException($"deleted {string.Join(',', result.Deleted)}");
            Report("cleanup.last-links-release", result.Duration.TotalSeconds, "s");
        }
        _ = r3;
        DirectoryTree.Delete(work);
    }

    private static ReleaseDirectory Open(string dest, int keep) =>
        ReleaseDirectory.TryOpen(dest, new ReleaseOptions { KeepReleases = keep, Grace = TimeSpan.Zero }) ?? throw new IOException($"{dest} is locked");

    private static byte[] Content(int i, int version)
    {
        var bytes = new byte[200 + i * 7919 % 3800];
        new Random(i * 31 + version).NextBytes(bytes);
        return bytes;
    }

    private static void Write(ReleaseStaging staging, TempNames names, string path, byte[] content)
    {
        staging.CreateDirectory(path[..path.LastIndexOf('/')]);
        var target = staging.PathOf(path);
        var temp = names.PathFor(target);
        File.WriteAllBytes(temp, content);
        File.SetUnixFileMode(temp, AtomicFile.ReadableByAll);
        AtomicFile.Rename(temp, target);
    }

    private static void Copy(ReleaseStaging staging, TempNames names, string from, string path)
    {
        staging.CreateDirectory(path[..path.LastIndexOf('/')]);
        var target = staging.PathOf(path);
        var temp = names.PathFor(target);
        File.Copy(from, temp);
        File.SetUnixFileMode(temp, AtomicFile.ReadableByAll);
        AtomicFile.Rename(temp, target);
    }

    /// <summary>Inodes a release adds to the one before: its directories and the files it does not share with it.</summary>
    private static (long Inodes, long Bytes) NewInodes(string before, string after)
    {
        var tree = LocalTree.Scan(after);
        long inodes = tree.Directories.Count + 1, bytes = 0;
        foreach (var (path, file) in tree.Files)
        {
            Libc.Stat(Path.Join(after, path), false, out var a);
            if (Libc.Stat(Path.Join(before, path), false, out var b) == 0 && a.Inode == b.Inode) continue;
            inodes++;
            bytes += file.Size;
        }
        return (inodes, bytes);
    }

    private static void Report(string name, double value, string unit) =>
        Console.WriteLine($"{name}\t{value.ToString(unit == "s" ? "F3" : "F0", CultureInfo.InvariantCulture)}\t{unit}");
}
