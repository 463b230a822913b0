using InfraTools.S3;
using InfraTools.Files;
using InfraTools.Interop;

namespace InfraTools.Backup.Tsdb;

/// <summary>One file of a local block. <see cref="Path"/> is relative to the block directory ('/'-separated); <see cref="ETag"/> is set once computed.</summary>
public sealed class LocalFile(string path, string fullPath, long size, string? etag = null)
{
    public string Path { get; } = path;
    public string FullPath { get; } = fullPath;
    public long Size { get; } = size;
    public string? ETag { get; set; } = etag;
}

/// <summary>A block directory of a local snapshot: its parsed meta.json and its files (meta.json among them).</summary>
public sealed class LocalBlock(BlockMeta meta, string directory, IReadOnlyList<LocalFile> files)
{
    public BlockMeta Meta { get; } = meta;
    public string Directory { get; } = directory;
    public IReadOnlyList<LocalFile> Files { get; } = files;
    public string Ulid => Meta.Ulid;
    public long Bytes => Files.Sum(f => f.Size);
}

/// <summary>A Prometheus TSDB snapshot on disk (what POST /api/v1/admin/tsdb/snapshot writes): block directories only.</summary>
public sealed class LocalSnapshot(string directory, IReadOnlyList<LocalBlock> blocks)
{
    public string Directory { get; } = directory;
    public IReadOnlyList<LocalBlock> Blocks { get; } = blocks;

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
    public static LocalSnapshot Scan(string directory, bool checksumAll, CancellationToken cancellationToken)
    {
        var root = new DirectoryInfo(directory);
        if (!root.Exists) throw new TsdbFormatException($"the snapshot directory '{directory}' does not exist");
        var blocks = new List<LocalBlock>();
        foreach (var entry in root.EnumerateFileSystemInfos().OrderBy(e => e.Name, StringComparer.Ordinal))
        {
            if (entry is not DirectoryInfo block || entry.LinkTarget is not null || !BlockUlid.IsValid(entry.Name))
                throw new TsdbFormatException($"'{entry.FullName}' is not a TSDB block directory (a ULID-named directory): this is not a Prometheus snapshot; nothing was uploaded");
            blocks.Add(ScanBlock(block, checksumAll, cancellationToken));
        }
        return new LocalSnapshot(root.FullName, blocks);
    }

    private static LocalBlock ScanBlock(DirectoryInfo block, bool checksumAll, CancellationToken cancellationToken)
    {
        var files = new List<LocalFile>();
        Collect(block.FullName, "", files);
        var metaFile = files.Find(f => f.Path == "meta.json")
            ?? throw new TsdbFormatException($"block {block.FullName} has no meta.json: not a complete block; nothing was uploaded");
        if (!files.Exists(f => f.Path == "index")) throw new TsdbFormatException($"block {block.FullName} has no index: not a complete block; nothing was uploaded");
        var meta = BlockMeta.Parse(RegularFile.ReadAllBytes(metaFile.FullPath, followLinks: false, maxBytes: 64L << 20), metaFile.FullPath);
        if (meta.Ulid != block.Name) throw new TsdbFormatException($"{metaFile.FullPath} names block {meta.Ulid}, but its directory is {block.Name}");
        foreach (var file in files)
            if (checksumAll || IsMutable(file.Path)) file.ETag = ComputeETag(file, cancellationToken);
        return new LocalBlock(meta, block.FullName, files);
    }

    private static void Collect(string directory, string relative, List<LocalFile> files)
    {
        foreach (var full in System.IO.Directory.EnumerateFileSystemEntries(directory).Order(StringComparer.Ordinal))
        {
            var name = System.IO.Path.GetFileName(full);
            var path = relative.Length == 0 ? name : relative + "/" + name;
            var errno = Libc.Stat(full, followLinks: false, out var status);
            if (errno != 0) throw Libc.Error(errno, $"cannot read '{full}'");
            if (status.IsDirectory) Collect(full, path, files);
            else if (status.IsRegular) files.Add(new LocalFile(path, full, status.Size));
            else throw new TsdbFormatException($"'{full}' is a {status.TypeName}; a TSDB block holds only regular files and directories: nothing was uploaded");
        }
    }

    /// <summary>The ETag the store would give this file.</summary>
    public static string ComputeETag(LocalFile file, CancellationToken cancellationToken)
    {
        using var etag = new ETagHasher(file.Size);
        using var stream = RegularFile.OpenRead(file.FullPath);
        var buffer = new byte[128 * 1024];
        long total = 0;
        int read;
        while ((read = stream.Read(buffer)) > 0)
        {
            cancellationToken.ThrowIfCancellationRequested();
            etag.Append(buffer.AsSpan(0, read));
            total += read;
        }
        if (total != file.Size) throw new IOException($"'{file.FullPath}' changed while it was read ({total} bytes, expected {file.Size})");
        return etag.Finish();
    }
}
