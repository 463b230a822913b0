using System.Text.Json.Nodes;
using System.Text.RegularExpressions;

namespace InfraTools.Tests;

/// <summary>The metric names a PromQL expression reads, found without a full parser: strings, label matchers,
/// ranges and grouping label lists are removed first; what remains is function names (followed by "("),
/// keywords, numbers and durations, and metric names.</summary>
public static partial class PromQl
{
    private static readonly HashSet<string> Keywords =
        ["and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right", "bool", "offset", "inf", "nan", "atan2"];

    public static ISet<string> MetricNames(string expr)
    {
        var names = new SortedSet<string>(StringComparer.Ordinal);
        foreach (Match m in NameMatcher().Matches(expr)) names.Add(m.Groups[1].Value);
        var text = StringLiteral().Replace(expr, "\"\"");
        text = GrafanaVariable().Replace(text, "5m");
        text = LabelMatchers().Replace(text, " ");
        text = RangeSelector().Replace(text, " ");
        text = GroupingClause().Replace(text, " ");
        foreach (Match m in Identifier().Matches(text))
        {
            var word = m.Value;
            var after = text[(m.Index + m.Length)..].TrimStart();
            if (after.StartsWith('(')) continue; // a function or an aggregation
            if (Keywords.Contains(word.ToLowerInvariant())) continue;
            names.Add(word);
        }
        return names;
    }

    /// <summary>An expression with Grafana's interval variables replaced, so promtool can parse it.</summary>
    public static string WithoutGrafanaVariables(string expr) => GrafanaVariable().Replace(expr, "5m");

    /// <summary>Every "expr" of a Grafana dashboard JSON (panels, rows' nested panels), with its panel title.</summary>
    public static IEnumerable<(string Panel, string Expr)> DashboardExpressions(JsonNode dashboard)
    {
        foreach (var panel in Panels(dashboard["panels"]?.AsArray()))
            foreach (var target in panel["targets"]?.AsArray() ?? [])
                if (target?["expr"]?.GetValue<string>() is { Length: > 0 } expr)
                    yield return (panel["title"]?.GetValue<string>() ?? "?", expr);
    }

    public static IEnumerable<JsonNode> Panels(JsonArray? panels)
    {
        foreach (var panel in panels ?? [])
        {
            if (panel is null) continue;
            yield return panel;
            foreach (var nested in Panels(panel["panels"]?.AsArray())) yield return nested;
        }
    }

    [GeneratedRegex("__name__\\s*=~?\\s*\"([a-zA-Z_:][a-zA-Z0-9_:]*)\"")]
    private static partial Regex NameMatcher();

    [GeneratedRegex("\"(?:[^\"\\\\]|\\\\.)*\"|'(?:[^'\\\\]|\\\\.)*'|`[^`]*`")]
    private static partial Regex StringLiteral();

    [GeneratedRegex("\\$\\{?\\w+\\}?")]
    private static partial Regex GrafanaVariable();

    [GeneratedRegex("\\{[^}]*\\}")]
    private static partial Regex LabelMatchers();

    [GeneratedRegex("\\[[^\\]]*\\]")]
    private static partial Regex RangeSelector();

    [GeneratedRegex("\\b(by|without|on|ignoring|group_left|group_right)\\s*\\([^)]*\\)", RegexOptions.IgnoreCase)]
    private static partial Regex GroupingClause();

    [GeneratedRegex("(?<![\\w.])[a-zA-Z_:][a-zA-Z0-9_:]*")]
    private static partial Regex Identifier();
}

/// <summary>images/prometheus/metric-names.txt: the metric names we may query, by the program that emits them.</summary>
public static class KnownMetrics
{
    private static readonly Lazy<IReadOnlyDictionary<string, IReadOnlyList<string>>> Sections = new(Load);

    public static IReadOnlyDictionary<string, IReadOnlyList<string>> BySource => Sections.Value;

    public static IReadOnlySet<string> All => BySource.Values.SelectMany(v => v).ToHashSet(StringComparer.Ordinal);

    private static IReadOnlyDictionary<string, IReadOnlyList<string>> Load()
    {
        var sections = new Dictionary<string, List<string>>();
        List<string>? current = null;
        foreach (var raw in File.ReadAllLines(Stack.MetricNamesFile))
        {
            var line = raw.Trim();
            if (line.Length == 0 || line.StartsWith('#')) continue;
            if (line.StartsWith('[') && line.EndsWith(']'))
            {
                current = [];
                sections.Add(line[1..^1], current);
                continue;
            }
            if (current is null) throw new InvalidDataException($"{Stack.MetricNamesFile}: '{line}' is not under a [source] heading");
            current.Add(line);
        }
        return sections.ToDictionary(s => s.Key, s => (IReadOnlyList<string>)s.Value);
    }
}
