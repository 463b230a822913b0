using System.Globalization;
using System.Text;

namespace InfraTools.Monitoring;

/// <summary>
/// Gauges in the Prometheus text format 0.0.4, for the textfile of a batch run: families in the order they were
/// first added, each with HELP and TYPE lines, then its samples in the order set (setting a series again replaces its
/// value). This is all a batch run's textfile needs; the batch tools write it themselves instead of through
/// prometheus-net's registry, whose default-metrics adapters (event counters, meters, process statistics) the
/// Native AOT binaries would otherwise carry (docs/development.md "Binary size"). cron's /metrics server keeps
/// prometheus-net.
/// </summary>
public sealed class GaugeFamilies
{
    private readonly List<Family> _families = [];

    /// <summary>Sets the series NAME{labelNames=labelValues} to <paramref name="value"/>.</summary>
    public void Set(string name, string help, IReadOnlyList<string> labelNames, IReadOnlyList<string> labelValues, double value)
    {
        if (labelNames.Count != labelValues.Count)
            throw new ArgumentException($"metric {name}: {labelNames.Count} label names but {labelValues.Count} values");
        var family = _families.Find(f => f.Name == name);
        if (family is null)
        {
            CheckName(name, "metric", allowColon: true);
            foreach (var label in labelNames) CheckName(label, $"metric {name}: label", allowColon: false);
            _families.Add(family = new Family(name, help, [.. labelNames]));
        }
        else if (!family.LabelNames.SequenceEqual(labelNames))
            throw new InvalidOperationException($"metric {name} was added with the labels ({string.Join(',', family.LabelNames)}), not ({string.Join(',', labelNames)})");
        var index = family.Samples.FindIndex(s => s.LabelValues.SequenceEqual(labelValues));
        if (index >= 0) family.Samples[index] = (family.Samples[index].LabelValues, value);
        else family.Samples.Add(([.. labelValues], value));
    }

    /// <summary>The exposition text, UTF-8.</summary>
    public byte[] ToText()
    {
        var text = new StringBuilder();
        foreach (var family in _families)
        {
            text.Append("# HELP ").Append(family.Name).Append(' ').Append(EscapeHelp(family.Help)).Append('\n');
            text.Append("# TYPE ").Append(family.Name).Append(" gauge\n");
            foreach (var (values, value) in family.Samples)
            {
                text.Append(family.Name);
                if (values.Length > 0)
                {
                    text.Append('{');
                    for (var i = 0; i < values.Length; i++)
                        text.Append(i == 0 ? "" : ",").Append(family.LabelNames[i]).Append("=\"").Append(EscapeLabelValue(values[i])).Append('"');
                    text.Append('}');
                }
                text.Append(' ').Append(Format(value)).Append('\n');
            }
        }
        return Encoding.UTF8.GetBytes(text.ToString());
    }

    /// <summary>A sample value as Prometheus parses it: shortest round-trip digits, +Inf, -Inf, NaN.</summary>
    public static string Format(double value) => value switch
    {
        double.PositiveInfinity => "+Inf",
        double.NegativeInfinity => "-Inf",
        _ when double.IsNaN(value) => "NaN",
        _ => value.ToString("R", CultureInfo.InvariantCulture),
    };

    private static string EscapeHelp(string help) => help.Replace("\\", "\\\\").Replace("\n", "\\n");

    private static string EscapeLabelValue(string value) => value.Replace("\\", "\\\\").Replace("\"", "\\\"").Replace("\n", "\\n");

    private static void CheckName(string name, string what, bool allowColon)
    {
        static bool Letter(char c) => c is (>= 'a' and <= 'z') or (>= 'A' and <= 'Z') or '_';
        var valid = name.Length > 0 && (Letter(name[0]) || (allowColon && name[0] == ':'))
            && name.All(c => Letter(c) || char.IsAsciiDigit(c) || (allowColon && c == ':'))
            && !(!allowColon && name.StartsWith("__", StringComparison.Ordinal));
        if (!valid) throw new ArgumentException($"{what} name '{name}' is not a valid Prometheus name ([a-zA-Z_{(allowColon ? ":" : "")}][a-zA-Z0-9_{(allowColon ? ":" : "")}]*)");
    }

    private sealed record Family(string Name, string Help, string[] LabelNames)
    {
        public List<(string[] LabelValues, double Value)> Samples { get; } = [];
    }
}
