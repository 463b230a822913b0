using System.Globalization;
using System.Text;
using System.Text.Json;
using InfraTools.Storage;
using InfraTools.Sync;

namespace InfraTools.Releases;

/// <summary>One file of a source release: its path below the prefix, size and ETag.</summary>
public sealed record ReleaseManifestFile(string Path, long Size, string ETag);

/// <summary>
/// The release manifest of a bucket prefix (issue 14): <c>PREFIX/.release.json</c>, written last by
/// <c>content-pull publish</c>, names the release id, its time and every key of the release with its size and
/// ETag. A pull that finds it builds exactly that set and publishes a release only if every object still has the
/// ETag the manifest names. The publisher also keeps each release's manifest as <c>PREFIX/.releases/ID.json</c>:
/// the history that says which objects the last K releases reference (only objects no one of them references are
/// deleted). <code>{"version":1,"id":"20261201T120000Z-3f2a","created":"2026-12-01T12:00:00Z","files":[{"path":"index.html","size":512,"etag":"…"}]}</code>
/// </summary>
public sealed record ReleaseManifest(string Id, DateTimeOffset Created, IReadOnlyList<ReleaseManifestFile> Files)
{
    /// <summary>The manifest's name below the prefix.</summary>
    public const string Name = ".release.json";

    /// <summary>The folder of the release history below the prefix.</summary>
    public const string HistoryFolder = ".releases/";

    /// <summary>Largest manifest read (about 500,000 files).</summary>
    public const long MaxBytes = 64L << 20;

    /// <summary>Keys of the release protocol itself, as --exclude patterns anchored at the prefix: never files of a site.</summary>
    public static IReadOnlyList<string> ProtocolExclusions { get; } = ["/" + Name, "/" + HistoryFolder.TrimEnd('/')];

    public static bool IsProtocolPath(string relative) => relative == Name || relative.StartsWith(HistoryFolder, StringComparison.Ordinal);

    public long Bytes => Files.Sum(f => f.Size);

    public byte[] ToJson()
    {
        using var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer))
        {
            json.WriteStartObject();
            json.WriteNumber("version", 1);
            json.WriteString("id", Id);
            json.WriteString("created", Created.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture));
            json.WriteStartArray("files");
            foreach (var file in Files.OrderBy(f => f.Path, StringComparer.Ordinal))
            {
                json.WriteStartObject();
                json.WriteString("path", file.Path);
                json.WriteNumber("size", file.Size);
                json.WriteString("etag", file.ETag);
                json.WriteEndObject();
            }
            json.WriteEndArray();
            json.WriteEndObject();
        }
        return buffer.ToArray();
    }

    /// <summary>Parses a manifest; throws <see cref="FormatException"/> with what is wrong (<paramref name="name"/> names it).</summary>
    public static ReleaseManifest Parse(ReadOnlySpan<byte> utf8, string name)
    {
        try
        {
            using var document = JsonDocument.Parse(utf8.ToArray());
            var root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object) throw new FormatException("not a JSON object");
            if (!root.TryGetProperty("version", out var version) || version.ValueKind != JsonValueKind.Number || version.GetInt32() != 1)
                throw new FormatException("\"version\" is not 1 (a newer publisher?)");
            var id = String(root, "id");
            if (!ReleaseIds.IsId(id)) throw new FormatException($"\"id\" '{id}' is not a release id");
            if (!DateTimeOffset.TryParse(String(root, "created"), CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var created))
                throw new FormatException("\"created\" is not a time");
            if (!root.TryGetProperty("files", out var files) || files.ValueKind != JsonValueKind.Array) throw new FormatException("\"files\" is not an array");
            var list = new List<ReleaseManifestFile>();
            var seen = new HashSet<string>(StringComparer.Ordinal);
            foreach (var file in files.EnumerateArray())
            {
                if (file.ValueKind != JsonValueKind.Object) throw new FormatException("an entry of \"files\" is not an object");
                var path = String(file, "path");
                if (KeyPaths.CheckRelativePath(path) is { } problem) throw new FormatException($"path '{path}' {problem}");
                if (IsProtocolPath(path)) throw new FormatException($"path '{path}' is the release protocol's own");
                if (!seen.Add(path)) throw new FormatException($"path '{path}' is listed twice");
                if (!file.TryGetProperty("size", out var size) || size.ValueKind != JsonValueKind.Number || !size.TryGetInt64(out var bytes) || bytes < 0)
                    throw new FormatException($"\"size\" of '{path}' is not a byte count");
                list.Add(new ReleaseManifestFile(path, bytes, String(file, "etag")));
            }
            return new ReleaseManifest(id, created, list);
        }
        catch (Exception ex) when (ex is JsonException or InvalidOperationException or FormatException)
        {
            throw new FormatException($"{name} is not a release manifest: {ex.Message}");
        }
    }

    private static string String(JsonElement element, string property) =>
        element.TryGetProperty(property, out var value) && value.ValueKind == JsonValueKind.String
            ? value.GetString()!
            : throw new FormatException($"\"{property}\" is missing or not a string");

    /// <summary>Reads PREFIX/.release.json (or another manifest key); null when there is none.</summary>
    public static async Task<ReleaseManifest?> ReadAsync(IObjectStore store, string bucket, string key, CancellationToken cancellationToken)
    {
        byte[]? content = null;
        try
        {
            await store.GetAsync(bucket, key, async (body, info, ct) =>
            {
                if (info.Size > MaxBytes) throw new StoreException(StoreErrorKind.IntegrityCheckFailed, $"s3://{bucket}/{key} is {info.Size} bytes, more than a release manifest can be ({MaxBytes})");
                using var buffer = new MemoryStream();
                await body.CopyToAsync(buffer, ct).ConfigureAwait(false);
                content = buffer.ToArray();
            }, cancellationToken: cancellationToken).ConfigureAwait(false);
        }
        catch (StoreException ex) when (ex.Kind == StoreErrorKind.ObjectNotFound)
        {
            return null;
        }
        try
        {
            return Parse(content, $"s3://{bucket}/{key}");
        }
        catch (FormatException ex)
        {
            throw new StoreException(StoreErrorKind.IntegrityCheckFailed, ex.Message);
        }
    }

    /// <summary>
    /// Why the bucket's listing does not hold this release as the manifest names it (an object missing or with
    /// another size or ETag: CI is uploading the next release, or one was overwritten), or null when it does.
    /// </summary>
    public string? Mismatch(IReadOnlyDictionary<string, StoredObject> listing, string prefix)
    {
        var problems = new List<string>();
        var count = 0;
        foreach (var file in Files)
        {
            if (!listing.TryGetValue(prefix + file.Path, out var stored)) problems.Add($"{prefix}{file.Path} is missing");
            else if (stored.ETag != file.ETag || stored.Size != file.Size) problems.Add($"{prefix}{file.Path} was overwritten (ETag {stored.ETag}, the manifest names {file.ETag})");
            else continue;
            if (++count >= 5) break;
        }
        if (problems.Count == 0) return null;
        var sb = new StringBuilder(string.Join("; ", problems));
        if (count >= 5) sb.Append("; …");
        return sb.ToString();
    }
}
