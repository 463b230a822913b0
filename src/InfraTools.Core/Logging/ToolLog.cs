// The tools' logger (ToolLog) and its line formats: text, and JSON with --json (LineFormatters).
using System.Globalization;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using InfraTools.Secrets;
using Serilog;
using Serilog.Core;
using Serilog.Events;
using Serilog.Formatting;
using Serilog.Parsing;

namespace InfraTools.Logging;

/// <summary>How much a tool logs and in which format (the --json, --debug and --quiet flags).</summary>
public sealed record LogOptions(bool Json = false, bool Debug = false, bool Quiet = false)
{
    public LogEventLevel MinimumLevel => Debug ? LogEventLevel.Debug : Quiet ? LogEventLevel.Warning : LogEventLevel.Information;
}

/// <summary>Builds the Serilog logger every tool uses: console sink, stderr, secrets redacted from every line.</summary>
public static class ToolLog
{
    public static Logger Create(string tool, LogOptions options) =>
        Create(options.Json ? new JsonLineFormatter(tool) : new TextLineFormatter(), options.MinimumLevel, LogEventLevel.Verbose);

    /// <summary>A logger with any formatter; events from <paramref name="standardErrorFromLevel"/> up go to stderr, the rest to stdout.</summary>
    public static Logger Create(ITextFormatter formatter, LogEventLevel minimumLevel, LogEventLevel standardErrorFromLevel) =>
        new LoggerConfiguration()
            .MinimumLevel.Is(minimumLevel)
            .WriteTo.Console(new RedactingFormatter(formatter), standardErrorFromLevel: standardErrorFromLevel)
            .CreateLogger();
}

/// <summary>Formats with the inner formatter, then removes every registered secret value from the line.</summary>
public sealed class RedactingFormatter(ITextFormatter inner) : ITextFormatter
{
    public void Format(LogEvent logEvent, TextWriter output)
    {
        var buffer = new StringWriter();
        inner.Format(logEvent, buffer);
        output.Write(SecretRedactor.Redact(buffer.ToString()));
    }
}

/// <summary>Human-readable lines: "2026-11-24T20:15:02Z INF message". Exceptions only at debug level.</summary>
public sealed class TextLineFormatter : ITextFormatter
{
    public void Format(LogEvent logEvent, TextWriter output)
    {
        output.Write(logEvent.Timestamp.UtcDateTime.ToString("yyyy-MM-ddTHH:mm:ssZ", CultureInfo.InvariantCulture));
        output.Write(' ');
        output.Write(LevelCode(logEvent.Level));
        output.Write(' ');
        output.Write(LogText.Render(logEvent, escapeControl: true));
        output.Write('\n');
        if (logEvent.Exception is not null && logEvent.Properties.ContainsKey(LogText.DebugDetails))
        {
            output.Write(logEvent.Exception.ToString());
            output.Write('\n');
        }
    }

    private static string LevelCode(LogEventLevel level) => level switch
    {
        LogEventLevel.Verbose => "VRB",
        LogEventLevel.Debug => "DBG",
        LogEventLevel.Information => "INF",
        LogEventLevel.Warning => "WRN",
        LogEventLevel.Error => "ERR",
        _ => "FTL",
    };
}

/// <summary>One flat JSON object a line, for log shippers: time, level, tool, msg and the event's properties.</summary>
public sealed class JsonLineFormatter(string tool) : ITextFormatter
{
    private static readonly JsonWriterOptions Options = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    public void Format(LogEvent logEvent, TextWriter output)
    {
        using var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer, Options))
        {
            json.WriteStartObject();
            json.WriteString("time", logEvent.Timestamp.UtcDateTime.ToString("yyyy-MM-ddTHH:mm:ss.fffZ", CultureInfo.InvariantCulture));
            json.WriteString("level", LevelName(logEvent.Level));
            json.WriteString("tool", tool);
            json.WriteString("msg", LogText.Render(logEvent));
            foreach (var (name, value) in logEvent.Properties)
            {
                if (name == LogText.DebugDetails) continue;
                LogText.WriteJsonValue(json, name, value);
            }
            if (logEvent.Exception is not null && logEvent.Properties.ContainsKey(LogText.DebugDetails))
                json.WriteString("exception", logEvent.Exception.ToString());
            json.WriteEndObject();
        }
        output.Write(Encoding.UTF8.GetString(buffer.GetBuffer(), 0, (int)buffer.Length));
        output.Write('\n');
    }

    public static string LevelName(LogEventLevel level) => level switch
    {
        LogEventLevel.Verbose => "trace",
        LogEventLevel.Debug => "debug",
        LogEventLevel.Information => "info",
        LogEventLevel.Warning => "warning",
        LogEventLevel.Error => "error",
        _ => "fatal",
    };
}

/// <summary>Rendering helpers shared by the formatters.</summary>
public static class LogText
{
    /// <summary>A property that asks the formatters to print the exception's stack trace (set under --debug).</summary>
    public const string DebugDetails = "DebugDetails";

    /// <summary>
    /// The message with its properties filled in, strings unquoted. With <paramref name="escapeControl"/> (text
    /// logs) control characters in the values are escaped (<see cref="Escape"/>), so a key or file name with a
    /// newline cannot forge a log line.
    /// </summary>
    public static string Render(LogEvent logEvent, bool escapeControl = false)
    {
        var sb = new StringBuilder();
        foreach (var token in logEvent.MessageTemplate.Tokens)
        {
            if (token is TextToken text) sb.Append(text.Text);
            else if (token is PropertyToken property)
            {
                if (logEvent.Properties.TryGetValue(property.PropertyName, out var value))
                {
                    var plain = Plain(value);
                    sb.Append(escapeControl ? Escape(plain) : plain);
                }
                else sb.Append(property.ToString());
            }
        }
        return sb.ToString();
    }

    /// <summary>Control characters (and the Unicode line separators) as \n, \r, \t or \xNN / \uNNNN; everything else as it is.</summary>
    public static string Escape(string text)
    {
        var i = 0;
        while (i < text.Length && !NeedsEscape(text[i])) i++;
        if (i == text.Length) return text;
        var sb = new StringBuilder(text.Length + 8).Append(text, 0, i);
        for (; i < text.Length; i++)
        {
            var c = text[i];
            if (!NeedsEscape(c)) sb.Append(c);
            else if (c == '\n') sb.Append("\\n");
            else if (c == '\r') sb.Append("\\r");
            else if (c == '\t') sb.Append("\\t");
            else if (c < 0x100) sb.Append("\\x").Append(((int)c).ToString("x2", CultureInfo.InvariantCulture));
            else sb.Append("\\u").Append(((int)c).ToString("x4", CultureInfo.InvariantCulture));
        }
        return sb.ToString();
    }

    private static bool NeedsEscape(char c) => char.IsControl(c) || c is '\u2028' or '\u2029';

    public static string Plain(LogEventPropertyValue value) => value switch
    {
        ScalarValue { Value: null } => "null",
        ScalarValue { Value: string s } => s,
        ScalarValue { Value: IFormattable f } => f.ToString(null, CultureInfo.InvariantCulture),
        ScalarValue scalar => scalar.Value.ToString() ?? "",
        _ => value.ToString(),
    };

    public static void WriteJsonValue(Utf8JsonWriter json, string name, LogEventPropertyValue value)
    {
        switch (value)
        {
            case ScalarValue { Value: null }: json.WriteNull(name); break;
            case ScalarValue { Value: bool b }: json.WriteBoolean(name, b); break;
            case ScalarValue { Value: int i }: json.WriteNumber(name, i); break;
            case ScalarValue { Value: long l }: json.WriteNumber(name, l); break;
            case ScalarValue { Value: double d } when double.IsFinite(d): json.WriteNumber(name, d); break;
            default: json.WriteString(name, Plain(value)); break;
        }
    }
}
