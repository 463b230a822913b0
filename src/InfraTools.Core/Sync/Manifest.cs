using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using InfraTools.Files;

namespace InfraTools.Sync;

/// <summary>What one path was when its two sides were last known equal: the size, the object's ETag and the local file's mtime.</summary>
public readonly record struct ManifestEntry(long Size, string ETag, DateTime LocalLastWriteUtc);

/// <summary>The manifest as the planner sees it.</summary>
public interface IReadOnlyManifest
{
    bool TryGet(string relativePath, out ManifestEntry entry);

    /// <summary>
    /// The manifest's own string for <paramref name="relativePath"/> and its entry, if it has one: the listings of a
    /// run hold that string (and the entry's ETag when the object's is the same) instead of copies of their own,
    /// so that 100,000 paths are held once, not three times.
    /// </summary>
    bool TryShare(ReadOnlySpan<char> relativePath, out string path, out ManifestEntry entry)
    {
        (path, entry) = (null!, default);
        return false;
    }

    /// <summary>Every path it has an entry for, in no order (a copy).</summary>
    string[] Paths() => [];

    /// <summary>How many entries it has: the listings of a run are sized by it (a dictionary grown by doubling from empty is ~40 % empty slots at 100,000 entries, and leaves the smaller ones behind as garbage).</summary>
    int Count => 0;
}

/// <summary>How the sides use a manifest's strings (<see cref="IReadOnlyManifest.TryShare"/>).</summary>
public static class SharedStrings
{
    /// <summary>The manifest's string equal to <paramref name="path"/>, or <paramref name="path"/>.</summary>
    public static string Share(this IReadOnlyManifest? known, string path) =>
        known is not null && known.TryShare(path, out var shared, out _) ? shared : path;
}

/// <summary>
/// The record of the last run, kept in the state directory (outside any synced tree): relative path → size,
/// ETag and local mtime. A pair whose local size and mtime and whose object's size and ETag still match its
/// entry is known to be equal without reading it or asking the server about it (<see cref="ChangeDetector"/>).
/// Owned by <see cref="SyncState"/>, which locks, loads, records, prunes and saves it. Stored as a small TSV file
/// (keys with tabs or newlines are refused as unsafe before they get here), written atomically, and only when a
/// run changed it: on a no-change run nothing is recorded or pruned, and the file that vouched for every pair is
/// left as it is (at 100,000 objects its rewrite, ~10 MB sorted, written and fsynced, was most of such a run's
/// local work; bench/RESULTS.md).
/// </summary>
public sealed class Manifest : IReadOnlyManifest
{
    private const string Header = "# infra-tools mirror manifest v1: relative path, size, etag, local mtime (ticks, UTC)";
    private readonly Dictionary<string, ManifestEntry> _entries;

    /// <summary>True when the entries differ from what was loaded (a new manifest: when it has any entry).</summary>
    private bool _changed;

    /// <summary>Whether <see cref="SaveAsync"/> has anything to write that the file does not already say.</summary>
    internal bool Changed
    {
        get { lock (_entries) return _changed; }
    }

    public Manifest() : this(new Dictionary<string, ManifestEntry>(StringComparer.Ordinal)) { }

    private Manifest(Dictionary<string, ManifestEntry> entries) => _entries = entries;

    public bool TryGet(string relativePath, out ManifestEntry entry)
    {
        lock (_entries) return _entries.TryGetValue(relativePath, out entry);
    }

    public bool TryShare(ReadOnlySpan<char> relativePath, out string path, out ManifestEntry entry)
    {
        lock (_entries)
        {
            if (_entries.GetAlternateLookup<ReadOnlySpan<char>>().TryGetValue(relativePath, out path!, out entry)) return true;
            (path, entry) = (null!, default);
            return false;
        }
    }

    public string[] Paths()
    {
        lock (_entries) return [.. _entries.Keys];
    }

    public int Count
    {
        get { lock (_entries) return _entries.Count; }
    }

    internal void Set(string relativePath, ManifestEntry entry)
    {
        lock (_entries)
        {
            if (_entries.TryGetValue(relativePath, out var known) && known == entry) return;
            _entries[relativePath] = entry;
            _changed = true;
        }
    }

    internal void Remove(string relativePath)
    {
        lock (_entries) _changed |= _entries.Remove(relativePath);
    }

    /// <summary>Keeps only the entries of <paramref name="paths"/>.</summary>
    internal void KeepOnly(IReadOnlySet<string> paths)
    {
        lock (_entries)
            foreach (var path in _entries.Keys.Where(p => !paths.Contains(p)).ToList()) _changed |= _entries.Remove(path);
    }

    /// <summary>The manifest file for one (endpoint, bucket, prefix, destination) inside the state directory; <paramref name="destination"/> is resolved (<see cref="LocalPaths.Resolve"/>).</summary>
    /// <remarks><paramref name="variant"/> is what else decides the objects' bytes (the encryption recipients): another variant, another manifest.</remarks>
    public static string PathFor(string stateDirectory, string endpoint, string bucket, string prefix, string destination, string variant = "")
    {
        var identity = $"{endpoint}\n{bucket}\n{prefix}\n{destination}" + (variant.Length > 0 ? $"\n{variant}" : "");
        var hash = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(identity)))[..16];
        var readable = new string(bucket.Select(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '.' ? c : '_').ToArray());
        return Path.Combine(stateDirectory, $"mirror-{readable}-{hash}.tsv");
    }

    /// <summary>Loads a manifest; a missing or unreadable one is empty (every file is then checked by content).</summary>
    /// <remarks>
    /// Read line by line, each line cut into its fields without splitting it: only the path and the ETag become
    /// strings. (All lines at once, each split in four, held ~300 bytes per entry more at the peak of a run.)
    /// </remarks>
    internal static Manifest Load(string path)
    {
        FileStream file;
        try
        {
            file = new FileStream(path, new FileStreamOptions { BufferSize = 0 });
        }
        catch (Exception ex) when (ex is FileNotFoundException or DirectoryNotFoundException)
        {
            return new Manifest();
        }
        using var reader = new StreamReader(file, Encoding.UTF8, detectEncodingFromByteOrderMarks: true, 64 * 1024);
        // Sized by a count of its lines first: one pass over bytes that are then in the page cache anyway.
        var lines = CountLines(file);
        if (reader.ReadLine() != Header) return new Manifest();
        var entries = new Dictionary<string, ManifestEntry>(lines, StringComparer.Ordinal);
        while (reader.ReadLine() is { } line)
        {
            var rest = line.AsSpan();
            if (!NextField(ref rest, out var relative) || !NextField(ref rest, out var sizeText) || !NextField(ref rest, out var etag)
                || rest.Contains('\t')
                || !long.TryParse(sizeText, NumberStyles.None, CultureInfo.InvariantCulture, out var size)
                || !long.TryParse(rest, NumberStyles.None, CultureInfo.InvariantCulture, out var ticks))
                continue;
            entries[relative.ToString()] = new ManifestEntry(size, etag.ToString(), new DateTime(ticks, DateTimeKind.Utc));
        }
        return new Manifest(entries);
    }

    /// <summary>The number of line ends in <paramref name="file"/>, which is left at its start.</summary>
    private static int CountLines(FileStream file)
    {
        var buffer = System.Buffers.ArrayPool<byte>.Shared.Rent(64 * 1024);
        try
        {
            var lines = 0;
            for (int read; (read = file.Read(buffer, 0, buffer.Length)) > 0;) lines += buffer.AsSpan(0, read).Count((byte)'\n');
            file.Position = 0;
            return lines;
        }
        finally
        {
            System.Buffers.ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary>The text up to the next tab, and <paramref name="rest"/> after it; false when there is no tab.</summary>
    private static bool NextField(ref ReadOnlySpan<char> rest, out ReadOnlySpan<char> field)
    {
        var tab = rest.IndexOf('\t');
        if (tab < 0)
        {
            field = default;
            return false;
        }
        field = rest[..tab];
        rest = rest[(tab + 1)..];
        return true;
    }

    internal async Task SaveAsync(string path, TempNames? names = null, CancellationToken cancellationToken = default)
    {
        KeyValuePair<string, ManifestEntry>[] sorted;
        lock (_entries) sorted = _entries.OrderBy(e => e.Key, StringComparer.Ordinal).ToArray();
        // Written as it is formatted (not built whole first: ~30 MB at 100,000 entries).
        await AtomicFile.WriteAsync(path, async stream =>
        {
            await using var writer = new StreamWriter(stream, new UTF8Encoding(encoderShouldEmitUTF8Identifier: false), 64 * 1024, leaveOpen: true);
            writer.NewLine = "\n";
            writer.WriteLine(Header);
            foreach (var (relative, entry) in sorted)
            {
                writer.Write(relative);
                writer.Write('\t');
                writer.Write(entry.Size.ToString(CultureInfo.InvariantCulture));
                writer.Write('\t');
                writer.Write(entry.ETag);
                writer.Write('\t');
                writer.WriteLine(entry.LocalLastWriteUtc.Ticks.ToString(CultureInfo.InvariantCulture));
            }
            await writer.FlushAsync(cancellationToken).ConfigureAwait(false);
        }, AtomicFile.OwnerOnly, null, names, cancellationToken).ConfigureAwait(false);
        lock (_entries) _changed = false;
    }
}
