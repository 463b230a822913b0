using InfraTools.Secrets;
using InfraTools.Time;
using System.Globalization;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using InfraTools.Cli;
using InfraTools.Cron.Crontab;
using InfraTools.Logging;
using Serilog.Events;
using Serilog.Formatting;

namespace InfraTools.Cron.Logging;

/// <summary>
/// Writes log events the way supercronic does (logrus without a terminal): text lines
/// <c>time="2026-11-24T20:15:02Z" level=info msg=starting iteration=0 job.command="echo hi" job.position=0 job.schedule="* * * * *"</c>,
/// or with -json one object per line with every key sorted, as Go's JSON encoder writes a map. Log-based alerts
/// written for supercronic keep matching.
/// </summary>
public sealed class LogrusFormatter(bool json) : ITextFormatter
{
    /// <summary>The property that holds the message; log with the template "{msg}" so job output is never parsed as a template.</summary>
    public const string MessageProperty = "msg";

    private static readonly JsonWriterOptions JsonOptions = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    public void Format(LogEvent logEvent, TextWriter output)
    {
        var time = GoFormat.Rfc3339(logEvent.Timestamp.ToLocalTime());
        var level = JsonLineFormatter.LevelName(logEvent.Level);
        // Secrets are removed from the raw text, before quoting and escaping change how they look (a secret with
        // a " or \ in it would otherwise pass the redaction of the finished line).
        var message = SecretRedactor.Redact(logEvent.Properties.TryGetValue(MessageProperty, out var m) ? LogText.Plain(m) : LogText.Render(logEvent));
        var fields = new SortedDictionary<string, object>(StringComparer.Ordinal);
        foreach (var (name, value) in logEvent.Properties)
        {
            if (name is MessageProperty or LogText.DebugDetails) continue;
            var field = value is ScalarValue { Value: { } scalar } ? scalar : LogText.Plain(value);
            fields[name] = field is string text ? SecretRedactor.Redact(text) : field;
        }
        if (logEvent.Exception is not null && logEvent.Properties.ContainsKey(LogText.DebugDetails))
            fields["error"] = SecretRedactor.Redact(logEvent.Exception.ToString());

        if (json) WriteJson(output, time, level, message, fields);
        else WriteText(output, time, level, message, fields);
    }

    private static void WriteText(TextWriter output, string time, string level, string message, SortedDictionary<string, object> fields)
    {
        var sb = new StringBuilder(128);
        Append(sb, "time", time);
        sb.Append(' ');
        Append(sb, "level", level);
        sb.Append(' ');
        Append(sb, "msg", message);
        foreach (var (name, value) in fields)
        {
            sb.Append(' ');
            Append(sb, name, TextValue(value));
        }
        sb.Append('\n');
        output.Write(sb.ToString());
    }

    private static void WriteJson(TextWriter output, string time, string level, string message, SortedDictionary<string, object> fields)
    {
        fields["level"] = level;
        fields["msg"] = message;
        fields["time"] = time;
        using var buffer = new MemoryStream();
        using (var writer = new Utf8JsonWriter(buffer, JsonOptions))
        {
            writer.WriteStartObject();
            foreach (var (name, value) in fields)
            {
                switch (value)
                {
                    case int i: writer.WriteNumber(name, i); break;
                    case long l: writer.WriteNumber(name, l); break;
                    case ulong u: writer.WriteNumber(name, u); break;
                    case bool b: writer.WriteBoolean(name, b); break;
                    // Go's JSON encoder writes a time.Duration as integer nanoseconds.
                    case TimeSpan d: writer.WriteNumber(name, d.Ticks * 100); break;
                    // Bytes that are not UTF-8 (RawText) as Go's JSON encoder writes them: U+FFFD.
                    default: writer.WriteString(name, RawText.Display(TextValue(value))); break;
                }
            }
            writer.WriteEndObject();
        }
        output.Write(Encoding.UTF8.GetString(buffer.GetBuffer(), 0, (int)buffer.Length));
        output.Write('\n');
    }

    private static string TextValue(object value) => value switch
    {
        string s => s,
        TimeSpan d => GoDuration.Format(d),
        bool b => b ? "true" : "false",
        IFormattable f => f.ToString(null, CultureInfo.InvariantCulture),
        _ => value.ToString() ?? "",
    };

    private static void Append(StringBuilder sb, string key, string value)
    {
        sb.Append(key).Append('=');
        if (NeedsQuoting(value)) AppendQuoted(sb, value);
        else sb.Append(value);
    }

    /// <summary>logrus quotes every value that has a character outside [A-Za-z0-9-._/@^+].</summary>
    private static bool NeedsQuoting(string value)
    {
        foreach (var c in value)
        {
            if (!(char.IsAsciiLetterOrDigit(c) || c is '-' or '.' or '_' or '/' or '@' or '^' or '+')) return true;
        }
        return false;
    }

    /// <summary>Go's strconv.Quote (what logrus uses): escapes quotes, backslashes and control characters.</summary>
    private static void AppendQuoted(StringBuilder sb, string value)
    {
        sb.Append('"');
        for (var i = 0; i < value.Length; i++)
        {
            var c = value[i];
            // A byte that is not UTF-8 (RawText) as strconv.Quote writes it: \xe9.
            if (RawText.EscapedByte(value, i) is var b and >= 0)
            {
                sb.Append("\\x").Append(b.ToString("x2", CultureInfo.InvariantCulture));
                continue;
            }
            switch (c)
            {
                case '"': sb.Append("\\\""); break;
                case '\\': sb.Append("\\\\"); break;
                case '\a': sb.Append("\\a"); break;
                case '\b': sb.Append("\\b"); break;
                case '\f': sb.Append("\\f"); break;
                case '\n': sb.Append("\\n"); break;
                case '\r': sb.Append("\\r"); break;
                case '\t': sb.Append("\\t"); break;
                case '\v': sb.Append("\\v"); break;
                default:
                    if (c < 0x20 || c == 0x7f) sb.Append("\\x").Append(((int)c).ToString("x2", CultureInfo.InvariantCulture));
                    else sb.Append(c);
                    break;
            }
        }
        sb.Append('"');
    }
}
