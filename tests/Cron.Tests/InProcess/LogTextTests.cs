using InfraTools.Secrets;
using System.Text;
using InfraTools.Cli;
using InfraTools.Cron.Crontab;
using InfraTools.Cron.Logging;
using Serilog;
using Serilog.Events;
using Serilog.Parsing;

namespace InfraTools.Tests.InProcess;

/// <summary>Bytes that are not UTF-8 (RawText) and the logrus formatter: what reaches the job and what the log shows.</summary>
public class LogTextTests
{
    [Theory]
    [InlineData(new byte[] { 0x63, 0x61, 0x66, 0xE9 })]                   // Latin-1 "café"
    [InlineData(new byte[] { 0x63, 0x61, 0x66, 0xC3, 0xA9 })]             // UTF-8 "café"
    [InlineData(new byte[] { 0xFF, 0xFE, 0x00, 0x80 })]
    [InlineData(new byte[] { 0xED, 0xB0, 0x80 })]                         // an encoded surrogate: not UTF-8
    [InlineData(new byte[] { 0xF0, 0x9F, 0x98, 0x80, 0xF0, 0x9F })]       // an emoji, then a cut one
    [InlineData(new byte[] { 0xE2, 0x82 })]
    public void Bytes_survive_the_round_trip_through_text(byte[] bytes)
    {
        var text = RawText.Decode(bytes);
        var back = new byte[RawText.ByteCount(text)];
        Assert.Equal(back.Length, RawText.GetBytes(text, back));
        Assert.Equal(bytes, back);
    }

    [Fact]
    public void Valid_UTF8_decodes_as_usual_and_the_display_form_uses_U_FFFD()
    {
        Assert.Equal("café", RawText.Decode("café"u8));
        Assert.False(RawText.HasEscapes("café"));
        var latin1 = RawText.Decode([0x63, 0x61, 0x66, 0xE9]);
        Assert.True(RawText.HasEscapes(latin1));
        Assert.Equal("caf\uFFFD", RawText.Display(latin1));
    }

    private static string Format(bool json, string message, params (string Name, object Value)[] fields)
    {
        var properties = new List<LogEventProperty> { new(LogrusFormatter.MessageProperty, new ScalarValue(message)) };
        properties.AddRange(fields.Select(f => new LogEventProperty(f.Name, new ScalarValue(f.Value))));
        var logEvent = new LogEvent(DateTimeOffset.UnixEpoch, LogEventLevel.Information, null,
            new MessageTemplateParser().Parse("{msg}"), properties);
        var writer = new StringWriter();
        new LogrusFormatter(json).Format(logEvent, writer);
        return writer.ToString();
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Secrets_are_redacted_before_quoting_so_quotes_and_backslashes_do_not_hide_them(bool json)
    {
        // Issue 12, finding 12: with " or \ in it, the secret was escaped first and no longer matched.
        const string secret = "sk\"q\\uote-7e3f1c0a";
        SecretRedactor.Register(secret);
        var line = Format(json, $"token={secret} done", ("job.command", $"use {secret}"));
        Assert.DoesNotContain("7e3f1c0a", line);
        Assert.Equal(2, line.Split(SecretRedactor.Mask).Length - 1);
    }

    [Fact]
    public void A_byte_that_is_not_UTF8_is_written_as_strconv_Quote_writes_it()
    {
        var command = RawText.Decode(Encoding.Latin1.GetBytes("ls dir-caf\u00e9"));
        Assert.Contains("job.command=\"ls dir-caf\\xe9\"", Format(false, "starting", ("job.command", command)));
        Assert.Contains("\"job.command\":\"ls dir-caf\uFFFD\"", Format(true, "starting", ("job.command", command)));
    }
}
