using System.Globalization;
using System.Text;
using System.Text.Json;

namespace InfraTools.Backup.Tsdb;

/// <summary>
/// Where things are under the backup prefix. Incremental snapshots:
/// <c>blocks/ULID/PATH</c> (a block's files, uploaded once and shared by every snapshot that holds the block),
/// <c>blocks/ULID/PATH.ETAG</c> (a later version of a file Prometheus rewrote under the same ULID: meta.json and
/// tombstones after a series deletion; the first version keeps its key for the snapshots that hold it), and
/// <c>snapshots/NAME.json</c> (the manifest: which files make up snapshot NAME; written last, so a snapshot
/// exists only once all its blocks are up). Full-copy snapshots of earlier versions stay at
/// <c>NAME/...</c> with their <c>NAME/.backup-complete</c> marker.
/// </summary>
public static class BucketLayout
{
    public const string BlocksPrefix = "blocks/";
    public const string SnapshotsPrefix = "snapshots/";
    public const string ManifestSuffix = ".json";

    public static string ManifestKey(string name) => SnapshotsPrefix + name + ManifestSuffix;

    public static string BlockPrefix(string ulid) => $"{BlocksPrefix}{ulid}/";

    public static string FileKey(string ulid, string path) => $"{BlocksPrefix}{ulid}/{path}";

    public static string VariantKey(string ulid, string path, string etag) => $"{BlocksPrefix}{ulid}/{path}.{etag}";

    /// <summary>The snapshot name of a manifest key ("snapshots/NAME.json"), or null.</summary>
    public static string? ManifestName(string key)
    {
        if (!key.StartsWith(SnapshotsPrefix, StringComparison.Ordinal) || !key.EndsWith(ManifestSuffix, StringComparison.Ordinal)) return null;
        var name = key[SnapshotsPrefix.Length..^ManifestSuffix.Length];
        return Snapshots.IsName(name) ? name : null;
    }

    /// <summary>Null if <paramref name="relative"/> is a safe '/'-separated path below a directory, else the reason.</summary>
    public static string? PathProblem(string relative)
    {
        if (relative.Length == 0) return "is empty";
        if (relative.StartsWith('/')) return "is an absolute path";
        if (relative.Contains('\\')) return "contains a backslash";
        if (relative.Any(char.IsControl)) return "contains a control character";
        if (Encoding.UTF8.GetByteCount(relative) > 3800) return "is too long";
        foreach (var segment in relative.Split('/'))
        {
            if (segment.Length == 0) return "has an empty path segment";
            if (segment is "." or "..") return $"has a '{segment}' path segment";
            if (Encoding.UTF8.GetByteCount(segment) > 255) return "has a name longer than 255 bytes";
        }
        return null;
    }
}

/// <summary>One file of a block in a manifest: its path in the block directory, the object that holds it, and that object's size and ETag.</summary>
public sealed class ManifestFile(string path, string key, long size, string etag)
{
    public string Path { get; } = path;
    public string Key { get; } = key;
    public long Size { get; } = size;
    public string ETag { get; } = etag;
}

/// <summary>One block of a snapshot.</summary>
public sealed class ManifestBlock(string ulid, long minTime, long maxTime, int level, IReadOnlyList<ManifestFile> files)
{
    public string Ulid { get; } = ulid;
    public long MinTime { get; } = minTime;
    public long MaxTime { get; } = maxTime;
    public int Level { get; } = level;
    public IReadOnlyList<ManifestFile> Files { get; } = files;

    public long Bytes => Files.Sum(f => f.Size);
}

/// <summary>
/// The manifest of one incremental snapshot, <c>snapshots/NAME.json</c>: the snapshot's name, when the pushing host
/// made it, Prometheus' name for it, and exactly the blocks it consists of, each with every file's object key,
/// size and ETag. Format version 1; a reader refuses a higher version instead of guessing.
/// </summary>
public sealed class SnapshotManifest(string name, DateTimeOffset created, string? source, IReadOnlyList<ManifestBlock> blocks)
{
    public string Name { get; } = name;
    public DateTimeOffset Created { get; } = created;
    public string? Source { get; } = source;
    public IReadOnlyList<ManifestBlock> Blocks { get; } = blocks;

    public const string Format = "infratools-tsdb-snapshot";
    public const int Version = 1;
    public const long MaxBytes = 16L << 20;

    public long Bytes => Blocks.Sum(b => b.Bytes);
    public int FileCount => Blocks.Sum(b => b.Files.Count);

    /// <summary>Every object key the snapshot needs.</summary>
    public IEnumerable<string> Keys => Blocks.SelectMany(b => b.Files).Select(f => f.Key);

    public byte[] Serialize()
    {
        using var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer, new JsonWriterOptions { Indented = true }))
        {
            json.WriteStartObject();
            json.WriteString("format", Format);
            json.WriteNumber("version", Version);
            json.WriteString("name", Name);
            json.WriteString("created", Created.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture));
            if (Source is not null) json.WriteString("source", Source);
            json.WriteNumber("files", FileCount);
            json.WriteNumber("bytes", Bytes);
            json.WriteStartArray("blocks");
            foreach (var block in Blocks)
            {
                json.WriteStartObject();
                json.WriteString("ulid", block.Ulid);
                json.WriteNumber("minTime", block.MinTime);
                json.WriteNumber("maxTime", block.MaxTime);
                json.WriteNumber("level", block.Level);
                json.WriteStartArray("files");
                foreach (var file in block.Files)
                {
                    json.WriteStartObject();
                    json.WriteString("path", file.Path);
                    json.WriteString("key", file.Key);
                    json.WriteNumber("size", file.Size);
                    json.WriteString("etag", file.ETag);
                    json.WriteEndObject();
                }
                json.WriteEndArray();
                json.WriteEndObject();
            }
            json.WriteEndArray();
            json.WriteEndObject();
        }
        buffer.WriteByte((byte)'\n');
        return buffer.ToArray();
    }

    /// <summary>Parses and checks a manifest that must be snapshot <paramref name="expectedName"/>; a damaged, foreign or newer one throws <see cref="TsdbFormatException"/>.</summary>
    public static SnapshotManifest Parse(ReadOnlySpan<byte> content, string expectedName)
    {
        var where = $"the manifest {BucketLayout.ManifestKey(expectedName)}";
        string? format = null, name = null, source = null, created = null;
        int? version = null;
        var blocks = new List<ManifestBlock>();
        try
        {
            var reader = new Utf8JsonReader(content);
            if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject) throw new TsdbFormatException($"{where} is not a JSON object");
            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                var property = reader.GetString();
                reader.Read();
                switch (property)
                {
                    case "format": format = String(ref reader); break;
                    case "version": version = reader.TokenType == JsonTokenType.Number ? reader.GetInt32() : null; break;
                    case "name": name = String(ref reader); break;
                    case "created": created = String(ref reader); break;
                    case "source": source = String(ref reader); break;
                    case "blocks" when reader.TokenType == JsonTokenType.StartArray:
                        while (reader.Read() && reader.TokenType == JsonTokenType.StartObject) blocks.Add(ReadBlock(ref reader, where));
                        break;
                    default: reader.Skip(); break;
                }
            }
            if (reader.TokenType != JsonTokenType.EndObject) throw new TsdbFormatException($"{where} is not a JSON object");
        }
        catch (Exception ex) when (ex is JsonException or InvalidOperationException or FormatException)
        {
            throw new TsdbFormatException($"{where} is not valid JSON ({ex.Message})");
        }
        if (format != Format) throw new TsdbFormatException($"{where} is not an incremental TSDB snapshot manifest (format '{format}')");
        if (version is null) throw new TsdbFormatException($"{where} has no format version");
        if (version > Version) throw new TsdbFormatException($"{where} has format version {version}, written by a newer backup; this one reads version {Version}: upgrade backup");
        if (version < 1) throw new TsdbFormatException($"{where} has an invalid format version {version}");
        if (name != expectedName) throw new TsdbFormatException($"{where} names snapshot '{name}'");
        if (!DateTimeOffset.TryParse(created, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal, out var createdTime))
            throw new TsdbFormatException($"{where} has no valid 'created' time");
        var ulids = new HashSet<string>(StringComparer.Ordinal);
        foreach (var block in blocks)
        {
            if (!ulids.Add(block.Ulid)) throw new TsdbFormatException($"{where} lists block {block.Ulid} twice");
            var paths = new HashSet<string>(StringComparer.Ordinal);
            foreach (var file in block.Files)
            {
                if (BucketLayout.PathProblem(file.Path) is { } problem) throw new TsdbFormatException($"{where}: block {block.Ulid} has a file path that {problem}");
                if (!paths.Add(file.Path)) throw new TsdbFormatException($"{where}: block {block.Ulid} lists {file.Path} twice");
                if (!file.Key.StartsWith(BucketLayout.BlockPrefix(block.Ulid), StringComparison.Ordinal) || BucketLayout.PathProblem(file.Key) is not null)
                    throw new TsdbFormatException($"{where}: block {block.Ulid} names an object outside its block: '{file.Key}'");
                if (file.Size < 0 || file.ETag.Length == 0) throw new TsdbFormatException($"{where}: {file.Key} has no valid size and ETag");
            }
            if (!paths.Contains("meta.json")) throw new TsdbFormatException($"{where}: block {block.Ulid} has no meta.json");
        }
        return new SnapshotManifest(name, createdTime, source, blocks);
    }

    private static ManifestBlock ReadBlock(ref Utf8JsonReader reader, string where)
    {
        string? ulid = null;
        long minTime = 0, maxTime = 0;
        var level = 0;
        var files = new List<ManifestFile>();
        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            var property = reader.GetString();
            reader.Read();
            switch (property)
            {
                case "ulid": ulid = String(ref reader); break;
                case "minTime": minTime = reader.GetInt64(); break;
                case "maxTime": maxTime = reader.GetInt64(); break;
                case "level": level = reader.GetInt32(); break;
                case "files" when reader.TokenType == JsonTokenType.StartArray:
                    while (reader.Read() && reader.TokenType == JsonTokenType.StartObject)
                    {
                        string? path = null, key = null, etag = null;
                        long size = -1;
                        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
                        {
                            var field = reader.GetString();
                            reader.Read();
                            switch (field)
                            {
                                case "path": path = String(ref reader); break;
                                case "key": key = String(ref reader); break;
                                case "etag": etag = String(ref reader); break;
                                case "size": size = reader.GetInt64(); break;
                                default: reader.Skip(); break;
                            }
                        }
                        if (path is null || key is null || etag is null) throw new TsdbFormatException($"{where}: a file of block {ulid} lacks its path, key or etag");
                        files.Add(new ManifestFile(path, key, size, etag));
                    }
                    break;
                default: reader.Skip(); break;
            }
        }
        if (!BlockUlid.IsValid(ulid)) throw new TsdbFormatException($"{where} has a block without a valid ulid");
        return new ManifestBlock(ulid!, minTime, maxTime, level, files);
    }

    private static string? String(ref Utf8JsonReader reader) => reader.TokenType == JsonTokenType.String ? reader.GetString() : null;
}
