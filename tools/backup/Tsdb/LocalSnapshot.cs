using InfraTools.Files;
using InfraTools.Interop;

namespace InfraTools.Backup.Tsdb;

/// <summary>One file of a local block. <see cref="Path"/> is relative to the block directory ('/'-separated); <see cref="ETag"/> is known when it was computed.</summary>
public sealed record LocalFile(string Path, string FullPath, long Size, string? ETag);

/// <summary>A block directory of a local snapshot: its parsed meta.json and its files (meta.json among them).</summary>
public sealed record LocalBlock(BlockMeta Meta, string Directory, IReadOnlyList<LocalFile> Files)
{
    public string Ulid => Meta.Ulid;
    public long Bytes => Files.Sum(f => f.Size);
}

/// <summary>A Prometheus TSDB snapshot on disk (what POST /api/v1/admin/tsdb/snapshot writes): block directories only.</summary>
public sealed record LocalSnapshot(string Directory, IReadOnlyList<LocalBlock> Blocks)
{
    /// <summary>
    /// The files of a block that Prometheus rewrites in place under the same ULID: deleting series
    /// (POST /api/v1/admin/tsdb/delete_series) writes a new tombstones file and meta.json (its stats). Everything
    /// else (index, chunks/*) is written once when the block is made and never changes under that ULID.
    /// </summary>
    public static bool IsMutable(string path) => path is "meta.json" or "tombstones";

    /// <summary>
    /// Reads the snapshot directory: every entry must be a block directory named by its ULID that holds a valid
    /// meta.json (for that ULID) and an index; only regular files and directories are accepted. The ETags of the
    /// mutable files are computed (they are small), and of every file with <paramref name="checksumAll"/>.
    /// Anything unexpected is refused with one line (exit 5) rather than backed up half.
    /// </summary>
    public static async Task<LocalSnapshot> ScanAsync(string directory, Func<long, IETagHasher> hasher, bool checksumAll, CancellationToken cancellationToken)
    {
        var root = new DirectoryInfo(directory);
        if (!root.Exists) throw new TsdbFormatException($"the snapshot directory '{directory}' does not exist");
        var blocks = new List<LocalBlock>();
        foreach (var entry in root.EnumerateFileSystemInfos().OrderBy(e => e.Name, StringComparer.Ordinal))
        {
            if (entry is not DirectoryInfo block || entry.LinkTarget is not null || !BlockUlid.IsValid(entry.Name))
                throw new TsdbFormatException($"'{entry.FullName}' is not a TSDB block directory (a ULID-named directory): this is not a Prometheus snapshot; nothing was uploaded");
            blocks.Add(await ScanBlockAsync(block, hasher, checksumAll, cancellationToken).ConfigureAwait(false));
        }
        return new LocalSnapshot(root.FullName, blocks);
    }

    private static async Task<LocalBlock> ScanBlockAsync(DirectoryInfo block, Func<long, IETagHasher> hasher, bool checksumAll, CancellationToken cancellationToken)
    {
        var files = new List<LocalFile>();
        Collect(block, "", files);
        var metaFile = files.FirstOrDefault(f => f.Path == "meta.json")
            ?? throw new TsdbFormatException($"block {block.FullName} has no meta.json: not a complete block; nothing was uploaded");
        if (!files.Any(f => f.Path == "index")) throw new TsdbFormatException($"block {block.FullName} has no index: not a complete block; nothing was uploaded");
        var meta = BlockMeta.Parse(RegularFile.ReadAllBytes(metaFile.FullPath, followLinks: false, maxBytes: 64L << 20), metaFile.FullPath);
        if (meta.Ulid != block.Name) throw new TsdbFormatException($"{metaFile.FullPath} names block {meta.Ulid}, but its directory is {block.Name}");
        for (var i = 0; i < files.Count; i++)
            if (checksumAll || IsMutable(files[i].Path))
                files[i] = files[i] with { ETag = await ComputeETagAsync(files[i].FullPath, files[i].Size, hasher, cancellationToken).ConfigureAwait(false) };
        return new LocalBlock(meta, block.FullName, files);
    }

    private static void Collect(DirectoryInfo directory, string relative, List<LocalFile> files)
    {
        foreach (var entry in directory.EnumerateFileSystemInfos().OrderBy(e => e.Name, StringComparer.Ordinal))
        {
            var path = relative.Length == 0 ? entry.Name : relative + "/" + entry.Name;
            var errno = Libc.Stat(entry.FullName, followLinks: false, out var status);
            if (errno != 0) throw Libc.Error(errno, $"cannot read '{entry.FullName}'");
            if (status.IsDirectory) Collect(new DirectoryInfo(entry.FullName), path, files);
            else if (status.IsRegular) files.Add(new LocalFile(path, entry.FullName, status.Size, null));
            else throw new TsdbFormatException($"'{entry.FullName}' is a {status.TypeName}; a TSDB block holds only regular files and directories: nothing was uploaded");
        }
    }

    /// <summary>The ETag the store would give this file.</summary>
    public static async Task<string> ComputeETagAsync(string path, long size, Func<long, IETagHasher> hasher, CancellationToken cancellationToken)
    {
        using var etag = hasher(size);
        await using var stream = RegularFile.OpenRead(path);
        var buffer = new byte[128 * 1024];
        long total = 0;
        int read;
        while ((read = await stream.ReadAsync(buffer, cancellationToken).ConfigureAwait(false)) > 0)
        {
            etag.Append(buffer.AsSpan(0, read));
            total += read;
        }
        if (total != size) throw new IOException($"'{path}' changed while it was read ({total} bytes, expected {size})");
        return etag.Finish();
    }
}
