using System.Text.Json;

namespace InfraTools.Files;

/// <summary>
/// Checks that a file's content is exactly one JSON object (acme.json is one). Reads tokens with
/// <see cref="Utf8JsonReader"/> instead of building a JsonDocument: same validation, and the binaries do not
/// carry the document and serializer code (bench/RESULTS.md, binary size).
/// </summary>
public static class JsonObjectCheck
{
    /// <summary>Null when <paramref name="content"/> is one JSON object; otherwise what is wrong, to follow the file's
    /// name: "is empty", "is a JSON array, not an object", "is not valid JSON (reason)".</summary>
    public static string? Problem(ReadOnlySpan<byte> content)
    {
        if (content.Trim(" \t\r\n"u8).IsEmpty) return "is empty";
        var reader = new Utf8JsonReader(content);
        try
        {
            reader.Read();
            var kind = reader.TokenType;
            reader.Skip();
            while (reader.Read()) { }
            return kind == JsonTokenType.StartObject ? null : $"is a JSON {KindName(kind)}, not an object";
        }
        catch (JsonException ex)
        {
            return $"is not valid JSON ({ex.Message.Split(". ")[0].TrimEnd('.')})";
        }
    }

    /// <summary>The string at <c>outer.inner</c> of a JSON object (e.g. <c>data.name</c>), or null if absent or not JSON.</summary>
    public static string? NestedString(ReadOnlySpan<byte> content, string outer, string inner)
    {
        var reader = new Utf8JsonReader(content);
        try
        {
            if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject) return null;
            string? outerName = null;
            while (reader.Read())
            {
                if (reader.TokenType != JsonTokenType.PropertyName) continue;
                var depth = reader.CurrentDepth;
                var name = reader.GetString();
                reader.Read();
                if (depth == 1) outerName = name;
                if (depth == 2 && outerName == outer && name == inner)
                    return reader.TokenType == JsonTokenType.String ? reader.GetString() : null;
                if (depth > 1 || name != outer) reader.Skip();
            }
        }
        catch (JsonException) { }
        catch (InvalidOperationException) { }
        return null;
    }

    private static string KindName(JsonTokenType kind) => kind switch
    {
        JsonTokenType.StartArray => "array",
        JsonTokenType.String => "string",
        JsonTokenType.Number => "number",
        JsonTokenType.True or JsonTokenType.False => "boolean",
        _ => "null",
    };
}
