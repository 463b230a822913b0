using InfraTools.Monitoring;

namespace InfraTools.Tests;

/// <summary>The batch tools' textfile writer (in-process; the AOT binary's output goes through promtool and node_exporter in TextfileMetricsAotTests).</summary>
public class GaugeFamiliesTests
{
    [Fact]
    public void Writes_families_in_the_order_added_with_help_type_and_samples()
    {
        var gauges = new GaugeFamilies();
        gauges.Set("tool_files", "Files.", ["name"], ["a"], 3);
        gauges.Set("tool_last_run_success", "1 if it worked.", [], [], 1);
        gauges.Set("tool_files", "Files.", ["name"], ["b"], 4);
        gauges.Set("tool_files", "Files.", ["name"], ["a"], 5);
        Assert.Equal(
            "# HELP tool_files Files.\n# TYPE tool_files gauge\ntool_files{name=\"a\"} 5\ntool_files{name=\"b\"} 4\n" +
            "# HELP tool_last_run_success 1 if it worked.\n# TYPE tool_last_run_success gauge\ntool_last_run_success 1\n",
            System.Text.Encoding.UTF8.GetString(gauges.ToText()));
    }

    [Theory]
    [InlineData(1700000000.5, "1700000000.5")]
    [InlineData(0.1, "0.1")]
    [InlineData(-3, "-3")]
    [InlineData(1e21, "1E+21")]
    [InlineData(double.PositiveInfinity, "+Inf")]
    [InlineData(double.NegativeInfinity, "-Inf")]
    [InlineData(double.NaN, "NaN")]
    public void Formats_values_as_Prometheus_parses_them(double value, string text) => Assert.Equal(text, GaugeFamilies.Format(value));

    [Fact]
    public void Escapes_label_values_and_help()
    {
        var gauges = new GaugeFamilies();
        gauges.Set("tool_x", "line one\nback\\slash", ["path"], ["a\"b\\c\nd"], 1);
        var lines = System.Text.Encoding.UTF8.GetString(gauges.ToText()).Split('\n');
        Assert.Contains("# HELP tool_x line one\\nback\\\\slash", lines);
        Assert.Contains("tool_x{path=\"a\\\"b\\\\c\\nd\"} 1", lines);
    }

    [Theory]
    [InlineData("1tool", "name")]
    [InlineData("tool-x", "name")]
    [InlineData("", "name")]
    [InlineData("tool_x", "1label")]
    [InlineData("tool_x", "__reserved")]
    [InlineData("tool_x", "la:bel")]
    public void Refuses_names_Prometheus_would_reject(string metric, string label) =>
        Assert.Throws<ArgumentException>(() => new GaugeFamilies().Set(metric, "h", [label], ["v"], 1));

    [Fact]
    public void Refuses_a_family_added_again_with_other_labels_or_a_count_mismatch()
    {
        var gauges = new GaugeFamilies();
        gauges.Set("tool_x", "h", ["a"], ["1"], 1);
        Assert.Throws<InvalidOperationException>(() => gauges.Set("tool_x", "h", ["b"], ["1"], 1));
        Assert.Throws<ArgumentException>(() => gauges.Set("tool_y", "h", ["a", "b"], ["1"], 1));
    }
}
