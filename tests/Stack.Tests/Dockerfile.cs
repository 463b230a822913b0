using System.Text.Json;
using System.Text.Json.Nodes;

namespace InfraTools.Tests;

/// <summary>One instruction of a Dockerfile, continuation lines joined.</summary>
public sealed record DockerInstruction(string Keyword, string Arguments, int Line)
{
    /// <summary>The arguments of an exec-form instruction (a JSON array), or null for the shell form.</summary>
    public string[]? ExecForm
    {
        get
        {
            var text = Arguments.Trim();
            if (!text.StartsWith('[')) return null;
            try { return JsonNode.Parse(text)?.AsArray().Select(n => n?.GetValue<string>() ?? "").ToArray(); }
            catch (Exception e) when (e is JsonException or InvalidOperationException) { return null; }
        }
    }
}

/// <summary>A build stage: FROM image [AS name] and its instructions.</summary>
public sealed record DockerStage(string From, string? Name, IReadOnlyList<DockerInstruction> Instructions)
{
    public IEnumerable<DockerInstruction> All(string keyword) => Instructions.Where(i => i.Keyword == keyword);
}

/// <summary>Just enough of the Dockerfile syntax to check what the images promise.</summary>
public sealed class Dockerfile
{
    public string Path { get; }
    public IReadOnlyList<DockerInstruction> Instructions { get; }
    public IReadOnlyList<DockerStage> Stages { get; }

    public Dockerfile(string path)
    {
        Path = path;
        var instructions = new List<DockerInstruction>();
        var lines = File.ReadAllLines(path);
        for (var i = 0; i < lines.Length; i++)
        {
            var line = lines[i].Trim();
            if (line.Length == 0 || line.StartsWith('#')) continue;
            var start = i + 1;
            var text = line;
            while (text.EndsWith('\\') && i + 1 < lines.Length)
            {
                i++;
                var next = lines[i].Trim();
                if (next.StartsWith('#')) continue;
                text = text[..^1] + " " + next;
            }
            var space = text.IndexOf(' ');
            instructions.Add(space < 0
                ? new DockerInstruction(text.ToUpperInvariant(), "", start)
                : new DockerInstruction(text[..space].ToUpperInvariant(), text[(space + 1)..].Trim(), start));
        }
        Instructions = instructions;

        var stages = new List<DockerStage>();
        foreach (var instruction in instructions)
        {
            if (instruction.Keyword == "FROM")
            {
                var parts = instruction.Arguments.Split(' ', StringSplitOptions.RemoveEmptyEntries).Where(p => !p.StartsWith("--")).ToArray();
                var name = parts.Length >= 3 && parts[1].Equals("AS", StringComparison.OrdinalIgnoreCase) ? parts[2] : null;
                stages.Add(new DockerStage(parts[0], name, []));
            }
            else if (stages.Count > 0)
            {
                var last = stages[^1];
                stages[^1] = last with { Instructions = [.. last.Instructions, instruction] };
            }
        }
        Stages = stages;
    }

    public DockerStage Stage(string name) =>
        Stages.SingleOrDefault(s => s.Name == name) ?? throw new KeyNotFoundException($"{Path} has no stage '{name}'");

    /// <summary>The chain of stages a stage is built on, the stage itself first (FROM other-stage).</summary>
    public IEnumerable<DockerStage> Lineage(DockerStage stage)
    {
        for (DockerStage? current = stage; current is not null; current = Stages.SingleOrDefault(s => s.Name == current.From))
            yield return current;
    }

    /// <summary>The user a stage's container runs as: the last USER in it or in the stages it is built on.</summary>
    public string? EffectiveUser(DockerStage stage) =>
        Lineage(stage).Select(s => s.All("USER").LastOrDefault()?.Arguments).FirstOrDefault(u => u is not null);

    public static IEnumerable<string> All() =>
        Directory.GetFiles(Stack.Path("images"), "Dockerfile", SearchOption.AllDirectories).Order();
}
