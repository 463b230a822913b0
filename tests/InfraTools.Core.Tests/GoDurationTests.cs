using InfraTools.Cli;
using InfraTools.Time;

namespace InfraTools.Tests;

/// <summary>Go durations, parsed like time.ParseDuration and formatted like time.Duration.String(), as tables.</summary>
public class GoDurationTests
{
    [Theory]
    [InlineData("0", 0L)]
    [InlineData("0s", 0L)]
    [InlineData("+0", 0L)]
    [InlineData("-0", 0L)]
    [InlineData("1ns", 0L)] // below a tick (100 ns): rounds down
    [InlineData("100ns", 1L)]
    [InlineData("1us", 10L)]
    [InlineData("1µs", 10L)]
    [InlineData("1μs", 10L)]
    [InlineData("300ms", 3_000_000L)]
    [InlineData("500ms", 5_000_000L)]
    [InlineData("1s", 10_000_000L)]
    [InlineData("1.5s", 15_000_000L)]
    [InlineData(".5s", 5_000_000L)]
    [InlineData("5.s", 50_000_000L)]
    [InlineData("90s", 900_000_000L)]
    [InlineData("2m", 1_200_000_000L)]
    [InlineData("1m30s", 900_000_000L)]
    [InlineData("1.5h", 54_000_000_000L)]
    [InlineData("2h45m", 99_000_000_000L)]
    [InlineData("1h30m10s500ms", 54_105_000_000L)]
    [InlineData("-1.5h", -54_000_000_000L)]
    [InlineData(" 5m ", 3_000_000_000L)]
    [InlineData("24h", 864_000_000_000L)]
    public void Parses_what_Go_parses(string text, long ticks)
    {
        Assert.True(GoDuration.TryParse(text, out var duration), text);
        Assert.Equal(TimeSpan.FromTicks(ticks), duration);
    }

    [Theory]
    [InlineData("")]
    [InlineData(" ")]
    [InlineData("5")]
    [InlineData("1.5")]
    [InlineData("s")]
    [InlineData(".s")]
    [InlineData("1..5s")]
    [InlineData("5 m")]
    [InlineData("5d")]
    [InlineData("5sec")]
    [InlineData("soon")]
    [InlineData("-")]
    [InlineData("1e3s")]
    [InlineData("99999999999999999999h")]
    public void Rejects_what_Go_rejects(string text)
    {
        Assert.False(GoDuration.TryParse(text, out _), text);
    }

    [Theory]
    [InlineData(0L, "0s")]
    [InlineData(1L, "100ns")]
    [InlineData(10L, "1µs")]
    [InlineData(15L, "1.5µs")]
    [InlineData(5_000_000L, "500ms")]
    [InlineData(10_094_388L, "1.0094388s")]
    [InlineData(10_000_000L, "1s")]
    [InlineData(15_000_000L, "1.5s")]
    [InlineData(1_200_000_000L, "2m0s")]
    [InlineData(900_000_000L, "1m30s")]
    [InlineData(36_000_000_000L, "1h0m0s")]
    [InlineData(54_105_000_000L, "1h30m10.5s")]
    [InlineData(-30_000_000L, "-3s")]
    [InlineData(864_000_000_000L, "24h0m0s")]
    public void Formats_as_Go_does(long ticks, string text)
    {
        Assert.Equal(text, GoDuration.Format(TimeSpan.FromTicks(ticks)));
    }

    [Theory]
    [InlineData(5_000_000L, "500ms")]
    [InlineData(20_000_000L, "2s")]
    [InlineData(15_000_000L, "1.5s")]
    [InlineData(1_200_000_000L, "2m")]
    [InlineData(900_000_000L, "1m30s")]
    public void Formats_short_for_prose(long ticks, string text)
    {
        Assert.Equal(text, GoDuration.FormatShort(TimeSpan.FromTicks(ticks)));
    }

    [Theory]
    [InlineData("60s", 600_000_000L)]
    [InlineData("0", 0L)]
    [InlineData("24h", 864_000_000_000L)]
    public void Parse_for_an_option_accepts_up_to_its_maximum(string text, long ticks)
    {
        Assert.Equal(TimeSpan.FromTicks(ticks), GoDuration.Parse(text, "--timeout", TimeSpan.FromDays(1)));
    }

    [Theory]
    [InlineData("soon", "--timeout 'soon' is not a duration: write a number with a unit, e.g. 60s, 2m, 1m30s or 500ms")]
    [InlineData("-5s", "--timeout '-5s' is not a duration: write a number with a unit, e.g. 60s, 2m, 1m30s or 500ms")]
    [InlineData("25h", "--timeout '25h' is longer than a day: give a duration such as 60s or 5m")]
    public void Parse_for_an_option_names_the_option_in_a_usage_error(string text, string message)
    {
        var error = Assert.Throws<UsageException>(() => GoDuration.Parse(text, "--timeout", TimeSpan.FromDays(1)));
        Assert.Equal(message, error.Message);
        Assert.Equal(ExitCodes.Usage, error.ExitCode);
    }
}
