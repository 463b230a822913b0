using System.Text.RegularExpressions;
using YamlDotNet.RepresentationModel;

namespace InfraTools.Tests;

/// <summary>
/// The live stack test runs stand-in images (tests/Stack.Tests/Live/standins, Debian base and glibc binaries)
/// with an override of docker-compose.yaml. Both must stay what they claim: the same images as the real ones
/// but for the base and where the binaries come from, and an override that changes nothing but images.
/// </summary>
public partial class StandInTests
{
    private static string StandIns => Stack.Path("tests", "Stack.Tests", "Live", "standins");
    private static string Override => Stack.Path("tests", "Stack.Tests", "Live", "docker-compose.live.yaml");

    /// <summary>Stand-in → (real Dockerfile, its stage, the real build context relative to the repository).</summary>
    public static readonly IReadOnlyDictionary<string, (string Dockerfile, string? Stage, string Context)> Ours = new Dictionary<string, (string, string?, string)>
    {
        ["pull"] = ("images/tools/Dockerfile", "pull", ""),
        ["backup"] = ("images/tools/Dockerfile", "backup", ""),
        ["traefik"] = ("images/tools/Dockerfile", "traefik", ""),
        ["nginx"] = ("images/nginx/Dockerfile", null, "images/nginx"),
        ["prometheus"] = ("images/prometheus/Dockerfile", null, "images/prometheus"),
    };

    public static TheoryData<string> OurStandIns => new(Ours.Keys);

    [Theory]
    [MemberData(nameof(OurStandIns))]
    public void A_stand_in_has_the_real_images_user_ports_health_check_entrypoint_and_files(string name)
    {
        var (path, stageName, context) = Ours[name];
        var real = new Dockerfile(Stack.Path(path));
        var realStage = stageName is null ? real.Stages[^1] : real.Stage(stageName);
        var realLineage = real.Lineage(realStage).ToList();
        var standIn = new Dockerfile(Path.Combine(StandIns, name, "Dockerfile"));
        Assert.Single(standIn.Stages);
        var stage = standIn.Stages[0];
        Assert.Equal("$BASE", stage.From);

        string? Last(IEnumerable<DockerStage> lineage, string keyword) =>
            lineage.Select(s => s.All(keyword).LastOrDefault()?.Arguments).FirstOrDefault(a => a is not null);
        foreach (var keyword in new[] { "HEALTHCHECK", "STOPSIGNAL", "EXPOSE", "CMD" })
            Assert.True(Last(realLineage, keyword) == Last([stage], keyword), $"{name}: {keyword} differs from {path}");
        // The upstream Prometheus image brings its own user and entrypoint: the stand-in states them.
        if (name != "prometheus")
        {
            Assert.Equal(real.EffectiveUser(realStage), Last([stage], "USER"));
            Assert.Equal(Last(realLineage, "ENTRYPOINT"), Last([stage], "ENTRYPOINT"));
        }

        // The same files in the same places: the build stage's binaries come from artifacts/bin instead.
        static IEnumerable<(string Source, string Destination)> Copies(IEnumerable<DockerStage> lineage, Func<string, string> source) =>
            lineage.SelectMany(s => s.All("COPY")).SelectMany(c =>
            {
                var parts = c.Arguments.Split(' ', StringSplitOptions.RemoveEmptyEntries);
                var fromBuild = parts[0] == "--from=build";
                var args = parts.Where(p => !p.StartsWith("--", StringComparison.Ordinal)).ToList();
                return args.SkipLast(1).Select(a => (fromBuild ? "bin/" + Path.GetFileName(a) : source(a), args[^1]));
            });
        var realCopies = Copies(realLineage, a => Path.Combine(context, a).Replace('\\', '/')).ToHashSet();
        var standInCopies = Copies([stage], a => a).ToHashSet();
        Assert.NotEmpty(realCopies);
        if (name == "traefik") standInCopies.Remove(("tests/Stack.Tests/Live/standins/traefik/traefik", "/usr/local/bin/traefik"));
        Assert.Equal(realCopies.Order(), standInCopies.Order());
    }

    [Fact]
    public void The_live_override_only_swaps_image_sources()
    {
        var services = Yaml.ParseFile(Override).Map("services");
        Assert.Equal(["services"], Yaml.ParseFile(Override).Entries().Select(e => e.Key));
        var compose = Stack.Services.Entries().Select(e => e.Key).ToHashSet();
        Assert.NotEmpty(services.Children);
        foreach (var (name, node) in services.Entries())
        {
            Assert.Contains(name, compose);
            var keys = ((YamlMappingNode)node).Entries().Select(e => e.Key).ToList();
            Assert.True(keys.SequenceEqual(["image"]), $"the override changes more than the image of {name}: {string.Join(", ", keys)}");
            var image = ((YamlMappingNode)node).Scalar("image")!;
            var standIn = StandInImage().Match(image);
            Assert.True(standIn.Success, $"{name}: {image} is not a stand-in");
            Assert.True(standIn.Groups[1].Value == "alpine" || File.Exists(Path.Combine(StandIns, standIn.Groups[1].Value, "Dockerfile")),
                $"{name}: no stand-in Dockerfile for {image}");
        }
        // Every service but the ones the live test leaves out runs a stand-in.
        Assert.Equal(compose.Except(Live.LiveStack.LeftOut.Keys).Order(), services.Entries().Select(e => e.Key).Order());
    }

    [GeneratedRegex("^infratools-standin/([a-z-]+):live$")]
    private static partial Regex StandInImage();
}
