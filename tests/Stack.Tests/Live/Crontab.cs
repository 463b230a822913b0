using System.Text.RegularExpressions;

namespace InfraTools.Tests.Live;

/// <summary>The jobs of one of the stack's crontabs (five schedule fields, then the command).</summary>
public static partial class Crontab
{
    public sealed record Entry(string Name, string Schedule, string Command);

    public static IReadOnlyList<Entry> Jobs(string path)
    {
        var lines = File.ReadAllLines(path);
        var jobs = new List<Entry>();
        for (var i = 0; i < lines.Length; i++)
        {
            var line = lines[i].Trim();
            if (line.Length == 0 || line.StartsWith('#')) continue;
            var name = i > 0 ? JobName().Match(lines[i - 1]) : Match.Empty;
            var fields = line.Split(' ', 6, StringSplitOptions.RemoveEmptyEntries);
            Assert.True(name.Success && fields.Length == 6, $"{path}:{i + 1}: not a named five-field job");
            jobs.Add(new Entry(name.Groups[1].Value, string.Join(' ', fields[..5]), fields[5]));
        }
        Assert.NotEmpty(jobs);
        return jobs;
    }

    public static Entry Job(string path, string name) =>
        Jobs(path).SingleOrDefault(j => j.Name == name) ?? throw new KeyNotFoundException($"{path} has no job named {name}");

    [GeneratedRegex("^# cron: .*\\bname=([a-z0-9-]+)")]
    private static partial Regex JobName();
}
