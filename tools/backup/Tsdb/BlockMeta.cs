using System.Text.Json;

namespace InfraTools.Backup.Tsdb;

/// <summary>A TSDB block's identity: a ULID as Prometheus writes it (26 upper-case Crockford base32 characters).</summary>
public static class BlockUlid
{
    private const string Alphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

    /// <summary>True for a name Prometheus gives a block directory (oklog/ulid String(): upper case; the first character 0-7, or the 128-bit value overflows).</summary>
    public static bool IsValid(string? text) =>
        text is { Length: 26 } && text[0] is >= '0' and <= '7' && text.All(c => Alphabet.Contains(c));
}

/// <summary>A block directory's or the manifest's malformed content: refused (exit 5), nothing uploaded or restored.</summary>
public sealed class TsdbFormatException(string message) : InfraTools.Cli.ToolException(InfraTools.Cli.ExitCodes.Refused, message);

/// <summary>
/// What the backup needs from a block's meta.json (tsdb/block.go BlockMeta, version 1): the ULID, the time range
/// [MinTime, MaxTime) in milliseconds, the compaction level and the direct parents (blocks compacted into this one).
/// </summary>
public sealed class BlockMeta(string ulid, long minTime, long maxTime, int level, IReadOnlyList<string> parents)
{
    public string Ulid { get; } = ulid;
    public long MinTime { get; } = minTime;
    public long MaxTime { get; } = maxTime;
    public int Level { get; } = level;
    public IReadOnlyList<string> Parents { get; } = parents;

    public const int SupportedVersion = 1;

    /// <summary>Parses meta.json; <paramref name="where"/> names the file in error messages.</summary>
    public static BlockMeta Parse(ReadOnlySpan<byte> json, string where)
    {
        string? ulid = null;
        long? minTime = null, maxTime = null;
        int? version = null;
        var level = 0;
        var parents = new List<string>();
        try
        {
            var reader = new Utf8JsonReader(json, new JsonReaderOptions { CommentHandling = JsonCommentHandling.Disallow });
            if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject) throw new TsdbFormatException($"{where} is not a JSON object");
            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                var name = reader.GetString();
                reader.Read();
                switch (name)
                {
                    case "ulid": ulid = reader.TokenType == JsonTokenType.String ? reader.GetString() : null; break;
                    case "minTime": minTime = reader.TokenType == JsonTokenType.Number ? reader.GetInt64() : null; break;
                    case "maxTime": maxTime = reader.TokenType == JsonTokenType.Number ? reader.GetInt64() : null; break;
                    case "version": version = reader.TokenType == JsonTokenType.Number ? reader.GetInt32() : null; break;
                    case "compaction" when reader.TokenType == JsonTokenType.StartObject:
                        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
                        {
                            var field = reader.GetString();
                            reader.Read();
                            if (field == "level" && reader.TokenType == JsonTokenType.Number) level = reader.GetInt32();
                            else if (field == "parents" && reader.TokenType == JsonTokenType.StartArray) ReadParents(ref reader, parents);
                            else reader.Skip();
                        }
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
        if (version != SupportedVersion)
            throw new TsdbFormatException($"{where} has meta version {version?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "(none)"}; only version {SupportedVersion} blocks are known");
        if (!BlockUlid.IsValid(ulid)) throw new TsdbFormatException($"{where} has no valid ulid");
        if (minTime is null || maxTime is null || maxTime < minTime) throw new TsdbFormatException($"{where} has no valid minTime/maxTime");
        return new BlockMeta(ulid!, minTime.Value, maxTime.Value, level, parents);
    }

    private static void ReadParents(ref Utf8JsonReader reader, List<string> parents)
    {
        while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
        {
            if (reader.TokenType != JsonTokenType.StartObject) { reader.Skip(); continue; }
            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                var field = reader.GetString();
                reader.Read();
                if (field == "ulid" && reader.TokenType == JsonTokenType.String && reader.GetString() is { } parent && BlockUlid.IsValid(parent)) parents.Add(parent);
                else reader.Skip();
            }
        }
    }
}
