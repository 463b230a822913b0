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
}

/// <summary>
/// The record of the last run, kept in the state directory (outside any synced tree): relative path → size,
/// ETag and local mtime. A pair whose local size and mtime and whose object's size and ETag still match its
/// entry is known to be equal without reading it or asking the server about it (<see cref="ChangeDetector"/>).
/// Owned by <see cref="SyncState"/>, which locks, loads, records, prunes and saves it. Stored as a small TSV file
/// (keys with tabs or newlines are refused as unsafe before they get here), written atomically.
/// </summary>
public sealed class Manifest : IReadOnlyManifest
{
    private const string Header = "# infra-tools mirror manifest v1: relative path, size, etag, local mtime (ticks, UTC)";
    private readonly Dictionary<string, ManifestEntry> _entries;

    public Manifest() : this(new Dictionary<string, ManifestEntry>(StringComparer.Ordinal)) { }

    private Manifest(Dictionary<string, ManifestEntry> entries) => _entries = entries;

    public bool TryGet(string relativePath, out ManifestEntry entry)
    {
        lock (_entries) return _entries.TryGetValue(relativePath, out entry);
    }

    internal void Set(string relativePath, ManifestEntry entry)
    {
        lock (_entries) _entries[relativePath] = entry;
    }

    internal void Remove(string relativePath)
    {
        lock (_entries) _entries.Remove(relativePath);
    }

    /// <summary>Keeps only the entries of <paramref name="paths"/>.</summary>
    internal void KeepOnly(IReadOnlySet<string> paths)
    {
        lock (_entries)
            foreach (var path in _entries.Keys.Where(p => !paths.Contains(p)).ToList()) _entries.Remove(path);
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
    internal static Manifest Load(string path)
    {
        var entries = new Dictionary<string, ManifestEntry>(StringComparer.Ordinal);
        string[] lines;
        try
        {
            lines = File.ReadAllLines(path);
        }
        catch (Exception ex) when (ex is FileNotFoundException or DirectoryNotFoundException)
        {
            return new Manifest(entries);
        }
        if (lines.Length == 0 || lines[0] != Header) return new Manifest(entries);
        foreach (var line in lines.AsSpan(1))
        {
            var fields = line.Split('\t');
            if (fields.Length != 4
                || !long.TryParse(fields[1], NumberStyles.None, CultureInfo.InvariantCulture, out var size)
                || !long.TryParse(fields[3], NumberStyles.None, CultureInfo.InvariantCulture, out var ticks))
                continue;
            entries[fields[0]] = new ManifestEntry(size, fields[2], new DateTime(ticks, DateTimeKind.Utc));
        }
        return new Manifest(entries);
    }

    internal async Task SaveAsync(string path, TempNames? names = null, CancellationToken cancellationToken = default)
    {
        var sb = new StringBuilder(Header).Append('\n');
        lock (_entries)
            foreach (var (relative, entry) in _entries.OrderBy(e => e.Key, StringComparer.Ordinal))
                sb.Append(relative).Append('\t').Append(entry.Size.ToString(CultureInfo.InvariantCulture)).Append('\t')
                    .Append(entry.ETag).Append('\t').Append(entry.LocalLastWriteUtc.Ticks.ToString(CultureInfo.InvariantCulture)).Append('\n');
        var content = Encoding.UTF8.GetBytes(sb.ToString());
        await AtomicFile.WriteAsync(path, stream => stream.WriteAsync(content, cancellationToken).AsTask(), AtomicFile.OwnerOnly, null, names, cancellationToken).ConfigureAwait(false);
    }
}
