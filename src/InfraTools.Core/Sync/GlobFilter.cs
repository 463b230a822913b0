using System.Text;
using System.Text.RegularExpressions;

namespace InfraTools.Sync;

/// <summary>
/// --exclude patterns, matched against '/'-separated relative paths: '*' matches within one path segment, '**'
/// across segments, '?' one character, [abc] a set. A pattern without '/' matches the last segment (the file
/// name) anywhere in the tree, so "*.bak" excludes every .bak file; a pattern with '/' matches the whole path
/// ("drafts/**"). A directory matched by a pattern excludes everything below it.
/// </summary>
public sealed class GlobFilter
{
    /// <summary>Each pattern as a regex, or as the literal it is when it has no wildcard (compared, not matched: every path of a run meets the protocol's two).</summary>
    private readonly List<(Regex? Pattern, string? Literal, bool NameOnly)> _patterns = [];

    public GlobFilter(IEnumerable<string> patterns)
    {
        foreach (var pattern in patterns)
        {
            var trimmed = pattern.Trim().TrimEnd('/');
            if (trimmed.Length == 0) continue;
            var nameOnly = !trimmed.Contains('/');
            var glob = trimmed.TrimStart('/');
            _patterns.Add(glob.AsSpan().IndexOfAny("*?[") < 0
                ? (null, glob, nameOnly)
                : (new Regex(ToRegex(glob), RegexOptions.CultureInvariant), null, nameOnly));
        }
    }

    /// <summary>True if the path itself matches a pattern (for a walk that never enters an excluded directory).</summary>
    public bool ExcludesEntry(string relativePath) => ExcludesEntry(relativePath.AsSpan());

    private bool ExcludesEntry(ReadOnlySpan<char> relativePath)
    {
        if (_patterns.Count == 0) return false;
        var name = relativePath[(relativePath.LastIndexOf('/') + 1)..];
        foreach (var (pattern, literal, nameOnly) in _patterns)
        {
            var subject = nameOnly ? name : relativePath;
            if (literal is not null ? subject.SequenceEqual(literal) : pattern!.IsMatch(subject)) return true;
        }
        return false;
    }

    /// <summary>True if the path or any of its parent directories matches a pattern.</summary>
    public bool Excludes(string relativePath)
    {
        if (_patterns.Count == 0) return false;
        for (var end = relativePath.Length; end > 0; end = relativePath.LastIndexOf('/', end - 1))
            if (ExcludesEntry(relativePath.AsSpan(0, end))) return true;
        return false;
    }

    private static string ToRegex(string glob)
    {
        var sb = new StringBuilder("^");
        for (var i = 0; i < glob.Length; i++)
        {
            var c = glob[i];
            switch (c)
            {
                case '*' when i + 2 < glob.Length && glob[i + 1] == '*' && glob[i + 2] == '/':
                    sb.Append("(?:.*/)?");
                    i += 2;
                    break;
                case '*' when i + 1 < glob.Length && glob[i + 1] == '*':
                    sb.Append(".*");
                    i++;
                    break;
                case '*': sb.Append("[^/]*"); break;
                case '?': sb.Append("[^/]"); break;
                case '[':
                    var close = glob.IndexOf(']', i + 1);
                    if (close < 0) { sb.Append(@"\["); break; }
                    var set = glob[(i + 1)..close];
                    sb.Append('[').Append(set.StartsWith('!') ? "^" + Regex.Escape(set[1..]) : Regex.Escape(set)).Append(']');
                    i = close;
                    break;
                default: sb.Append(Regex.Escape(c.ToString())); break;
            }
        }
        return sb.Append('$').ToString();
    }
}
