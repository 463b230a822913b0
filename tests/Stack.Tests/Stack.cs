using YamlDotNet.RepresentationModel;

namespace InfraTools.Tests;

/// <summary>Where the stack's files are, and the resolved compose configuration.</summary>
public static class Stack
{
    public static string Path(params string[] parts) => System.IO.Path.Combine([RepoPaths.Root, .. parts]);

    public static string ComposeFile => Path("docker-compose.yaml");
    public static string SecretsComposeFile => Path("docker-compose.secrets.yaml");
    public static string EnvExample => Path(".env.example");
    public static string ToolsDockerfile => Path("images", "tools", "Dockerfile");
    public static string PrometheusDir => Path("images", "prometheus");
    public static string MetricNamesFile => Path("images", "prometheus", "metric-names.txt");

    /// <summary>Services whose image is built from images/tools/Dockerfile (our tools inside).</summary>
    public static readonly string[] ToolServices = ["traefik", "pull", "backup", "prometheus-restore"];

    /// <summary>Runs Debian's docker-compose (1.29) the way the README tells users to check their .env.</summary>
    public static Task<ProcessResult> ComposeConfigAsync(string envFile, params string[] composeFiles)
    {
        var args = new List<string> { "--env-file", envFile };
        foreach (var file in composeFiles.Length == 0 ? [ComposeFile] : composeFiles) args.AddRange(["-f", file]);
        args.Add("config");
        // COMPOSE_FILE from the caller's environment would change which files are read.
        return ProcessRunner.RunAsync("docker-compose", args, new Dictionary<string, string?> { ["COMPOSE_FILE"] = null },
            workingDirectory: RepoPaths.Root, timeout: TimeSpan.FromMinutes(2));
    }

    private static readonly Lazy<YamlMappingNode> ResolvedCompose = new(() =>
    {
        var result = ComposeConfigAsync(EnvExample).GetAwaiter().GetResult();
        if (result.ExitCode != 0) throw new InvalidOperationException("docker-compose config failed: " + result);
        return Yaml.Parse(result.Stdout);
    });

    /// <summary>docker-compose.yaml with .env.example, as `docker-compose config` resolves it (anchors merged, variables set).</summary>
    public static YamlMappingNode Compose => ResolvedCompose.Value;

    public static YamlMappingNode Services => Compose.Map("services");

    public static YamlMappingNode Service(string name) => Services.Map(name);
}

/// <summary>Small helpers over YamlDotNet's representation model.</summary>
public static class Yaml
{
    public static YamlMappingNode Parse(string text)
    {
        var stream = new YamlStream();
        stream.Load(new StringReader(text));
        return (YamlMappingNode)stream.Documents[0].RootNode;
    }

    public static YamlMappingNode ParseFile(string path) => Parse(File.ReadAllText(path));

    public static YamlNode? Get(this YamlMappingNode node, string key) =>
        node.Children.TryGetValue(new YamlScalarNode(key), out var value) ? value : null;

    public static YamlMappingNode Map(this YamlMappingNode node, string key) =>
        node.Get(key) as YamlMappingNode ?? throw new KeyNotFoundException($"no mapping '{key}' in {node.Start}");

    public static YamlMappingNode? MapOrNull(this YamlMappingNode node, string key) => node.Get(key) as YamlMappingNode;

    public static string? Scalar(this YamlMappingNode node, string key) => (node.Get(key) as YamlScalarNode)?.Value;

    public static IReadOnlyList<string> Strings(this YamlMappingNode node, string key) => node.Get(key) switch
    {
        YamlSequenceNode seq => seq.Children.Select(c => ((YamlScalarNode)c).Value ?? "").ToList(),
        YamlScalarNode scalar => [scalar.Value ?? ""],
        _ => [],
    };

    public static IEnumerable<(string Key, YamlNode Value)> Entries(this YamlMappingNode node) =>
        node.Children.Select(c => (((YamlScalarNode)c.Key).Value ?? "", c.Value));

    public static IEnumerable<YamlMappingNode> Maps(this YamlMappingNode node, string key) =>
        (node.Get(key) as YamlSequenceNode)?.Children.OfType<YamlMappingNode>() ?? [];
}
