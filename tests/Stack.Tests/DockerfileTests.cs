using System.Text.RegularExpressions;

namespace InfraTools.Tests;

/// <summary>What the Dockerfiles promise, read from the files (there is no Docker engine to build them here).</summary>
public partial class DockerfileTests
{
    private static readonly Dockerfile Tools = new(Stack.ToolsDockerfile);

    /// <summary>The final stages of the tools Dockerfile, as docker-compose.yaml builds them.</summary>
    public static TheoryData<string> ToolTargets => new(["pull", "backup", "traefik"]);

    public static TheoryData<string> AllDockerfiles => new(Dockerfile.All().Select(p => Path.GetRelativePath(RepoPaths.Root, p)));

    [Theory]
    [MemberData(nameof(AllDockerfiles))]
    public void Base_images_are_pinned_to_a_version(string relativePath)
    {
        var file = new Dockerfile(Stack.Path(relativePath));
        var stageNames = file.Stages.Select(s => s.Name).OfType<string>().ToHashSet();
        Assert.NotEmpty(file.Stages);
        foreach (var stage in file.Stages.Where(s => !stageNames.Contains(s.From)))
        {
            var m = ImageReference().Match(stage.From);
            Assert.True(m.Success, $"{relativePath}: FROM {stage.From} has no tag; pin a version");
            var tag = m.Groups["tag"].Value;
            Assert.True(tag != "latest" && Regex.IsMatch(tag, "\\d+\\.\\d+"), $"{relativePath}: FROM {stage.From} is not pinned to a version");
        }
    }

    [Theory]
    [MemberData(nameof(AllDockerfiles))]
    public void Images_run_as_a_non_root_user(string relativePath)
    {
        var file = new Dockerfile(Stack.Path(relativePath));
        // Final stages: the ones no other stage is built FROM or copies from (every target compose builds).
        var intermediate = file.Stages.Select(s => s.From)
            .Concat(file.Instructions.Where(i => i.Keyword == "COPY").Select(i => Regex.Match(i.Arguments, "--from=(\\S+)").Groups[1].Value))
            .ToHashSet();
        var finals = file.Stages.Where(s => s.Name is null || !intermediate.Contains(s.Name)).ToList();
        Assert.NotEmpty(finals);
        foreach (var stage in finals)
        {
            if (stage.From.StartsWith("prom/prometheus", StringComparison.Ordinal) || stage.From.StartsWith("grafana/grafana", StringComparison.Ordinal))
                continue; // upstream images that already run as nobody (compose sets 10001) and grafana (472)
            var user = file.EffectiveUser(stage);
            Assert.False(user is null or "root" or "0" || user.StartsWith("0:", StringComparison.Ordinal) || user.StartsWith("root:", StringComparison.Ordinal),
                $"{relativePath}, stage {stage.Name ?? stage.From}: runs as '{user ?? "root (no USER)"}'");
        }
    }

    [Theory]
    [MemberData(nameof(AllDockerfiles))]
    public void Entrypoints_and_commands_use_the_exec_form(string relativePath)
    {
        var file = new Dockerfile(Stack.Path(relativePath));
        foreach (var instruction in file.Instructions.Where(i => i.Keyword is "ENTRYPOINT" or "CMD"))
            Assert.True(instruction.ExecForm is { Length: > 0 }, $"{relativePath}:{instruction.Line}: {instruction.Keyword} {instruction.Arguments} is not a JSON array");
    }

    [Theory]
    [MemberData(nameof(AllDockerfiles))]
    public void No_secret_is_baked_into_a_layer(string relativePath)
    {
        var file = new Dockerfile(Stack.Path(relativePath));
        foreach (var instruction in file.Instructions)
        {
            if (instruction.Keyword is "ENV" or "ARG" or "LABEL")
                Assert.False(SecretName().IsMatch(instruction.Arguments), $"{relativePath}:{instruction.Line}: {instruction.Keyword} {instruction.Arguments} looks like a credential");
            if (instruction.Keyword is "COPY" or "ADD")
                Assert.False(SecretPath().IsMatch(instruction.Arguments), $"{relativePath}:{instruction.Line}: {instruction.Keyword} {instruction.Arguments} copies a secret file");
        }
    }

    [Fact]
    public void The_shared_build_stage_publishes_every_tool_as_musl_native_aot_on_the_sdk_alpine_aot_image()
    {
        var build = Tools.Stage("build");
        // The -aot variant is the SDK image plus clang, build-base and zlib-dev: nothing to install.
        var sdk = Regex.Match(build.From, "^mcr\\.microsoft\\.com/dotnet/sdk:10\\.0\\.\\d+-alpine(?<alpine>3\\.\\d+)-aot$");
        Assert.True(sdk.Success, build.From);
        Assert.DoesNotContain(build.All("RUN"), r => r.Arguments.Contains("apk add", StringComparison.Ordinal));
        // The binaries are linked against the SDK image's musl: the runtime is the same Alpine release.
        Assert.Equal($"alpine:{sdk.Groups["alpine"].Value}", Tools.Stage("runtime").From);
        var publish = build.All("RUN").Single(r => r.Arguments.Contains("dotnet publish")).Arguments;
        Assert.Contains("-r linux-musl-x64", publish);
        Assert.Contains("-p:PublishAot=true", publish);
        Assert.Contains("-c Release", publish);
        foreach (var tool in Directory.GetDirectories(Stack.Path("tools")).Select(Path.GetFileName))
            Assert.Contains($" {tool}", publish); // the loop's list of tools
        // One build stage only, shared by every target (no copy-pasted publish step).
        Assert.Single(Tools.Instructions, i => i.Keyword == "RUN" && i.Arguments.Contains("dotnet publish"));
        Assert.Equal(1, Dockerfile.All().Count(p => File.ReadAllText(p).Contains("dotnet publish")));
    }

    [Fact]
    public void The_tool_images_are_minimal_alpine_with_only_certificates_and_tzdata()
    {
        var runtime = Tools.Stage("runtime");
        Assert.Matches("^alpine:3\\.\\d+(\\.\\d+)?$", runtime.From);
        var install = runtime.All("RUN").Single().Arguments;
        var packages = Regex.Match(install, "apk add --no-cache ([^&]+)").Groups[1].Value.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(["ca-certificates", "tzdata"], packages.Order());
        foreach (var target in new[] { "pull", "backup" })
        {
            var stage = Tools.Stage(target);
            Assert.Equal("runtime", stage.From);
            // Only binaries from the build stage (and the backup image's crontab) are added.
            Assert.Empty(stage.All("RUN"));
            var copies = stage.All("COPY").ToList();
            Assert.All(copies.Where(c => c.Arguments.StartsWith("--from=build", StringComparison.Ordinal)),
                c => Assert.EndsWith("/usr/local/bin/", c.Arguments));
            if (target == "backup") Assert.Contains(copies, c => c.Arguments == "images/backup/crontab /etc/crontab");
            else Assert.Equal(["--from=build /out/content-pull /usr/local/bin/"], copies.Select(c => c.Arguments));
        }
    }

    [Theory]
    [MemberData(nameof(ToolTargets))]
    public void Each_tool_image_starts_its_program_directly(string target)
    {
        var stage = Tools.Stage(target);
        var entrypoint = stage.All("ENTRYPOINT").Single().ExecForm!;
        var copied = stage.All("COPY").Where(c => c.Arguments.StartsWith("--from=build", StringComparison.Ordinal))
            .SelectMany(c => c.Arguments.Split(' ').Skip(1).SkipLast(1)).Select(Path.GetFileName).ToList();
        Assert.StartsWith("/usr/local/bin/", entrypoint[0]);
        Assert.Contains(Path.GetFileName(entrypoint[0]), copied);
        if (target == "traefik")
        {
            Assert.Matches("^traefik:v3\\.\\d+\\.\\d+$", stage.From);
            Assert.Equal(["acme-restore"], copied);
            Assert.Equal(["/usr/local/bin/acme-restore", "--file", "/etc/traefik/acme/acme.json", "--metrics-file", "/monitoring/acme-restore.prom"], entrypoint);
        }
        else if (target == "pull")
        {
            // The watcher, listening on all addresses of the container (its networks decide who reaches it).
            Assert.Equal(["/usr/local/bin/content-pull", "--watch", "--listen", "0.0.0.0:9746"], entrypoint);
            Assert.Equal(["content-pull"], copied);
            Assert.Contains("http://127.0.0.1:9746/health", stage.All("HEALTHCHECK").Single().Arguments);
        }
        else
        {
            Assert.Equal(["/usr/local/bin/cron", "-prometheus-listen-address", "0.0.0.0:9746", "/etc/crontab"], entrypoint);
            Assert.Contains("backup", copied);
        }
    }

    [Fact]
    public void Compose_builds_exactly_the_targets_the_tools_dockerfile_defines()
    {
        var building = Stack.ToolServices.Where(s => Stack.Service(s).MapOrNull("build") is not null).ToList();
        var targets = building.Select(s => Stack.Service(s).Map("build").Scalar("target")!).ToHashSet();
        Assert.Equal(["backup", "pull", "traefik"], targets.Order());
        Assert.All(targets, t => Tools.Stage(t));
        Assert.All(building, s => Assert.Equal(RepoPaths.Root, Stack.Service(s).Map("build").Scalar("context")));
    }

    [Theory]
    [MemberData(nameof(AllDockerfiles))]
    public void No_Dockerfile_names_a_frontend_image(string relativePath)
    {
        // `# syntax=docker/dockerfile:1` makes every build pull that frontend from Docker Hub; Engine 23 and
        // later build RUN --mount and everything else here with the frontend they ship.
        var directives = File.ReadLines(Stack.Path(relativePath)).TakeWhile(l => l.StartsWith('#')).Where(l => Regex.IsMatch(l, "^#\\s*syntax\\s*=", RegexOptions.IgnoreCase));
        Assert.Empty(directives);
    }

    [Fact]
    public void Dockerignore_sends_only_sources_and_crontabs_to_the_builder()
    {
        var patterns = File.ReadAllLines(Stack.Path(".dockerignore")).Select(l => l.Trim()).Where(l => l.Length > 0 && !l.StartsWith('#')).ToList();
        Assert.Equal("*", patterns[0]); // everything is excluded first: .env, secrets/, .git, artifacts/
        var included = patterns.Where(p => p.StartsWith('!')).Select(p => p[1..].TrimEnd('/')).ToList();
        Assert.DoesNotContain(included, p => SecretPath().IsMatch(p) || p.StartsWith("artifacts", StringComparison.Ordinal) || p.StartsWith("tests", StringComparison.Ordinal));
        Assert.Contains("**/bin/", patterns);
        Assert.Contains("**/obj/", patterns);
        // Every file the tools Dockerfile copies from the context is let through.
        foreach (var copy in Tools.Instructions.Where(i => i.Keyword == "COPY" && !i.Arguments.StartsWith("--", StringComparison.Ordinal)))
            foreach (var source in copy.Arguments.Split(' ', StringSplitOptions.RemoveEmptyEntries).SkipLast(1))
            {
                Assert.True(File.Exists(Stack.Path(source)) || Directory.Exists(Stack.Path(source)), $"COPY {source}: no such file");
                Assert.True(included.Any(p => source.TrimEnd('/') == p || source.StartsWith(p + "/", StringComparison.Ordinal)), $"COPY {source} is excluded by .dockerignore");
            }
    }

    [Theory]
    [InlineData("nginx")]
    [InlineData("prometheus")]
    [InlineData("grafana")]
    public void Config_images_copy_files_that_exist(string image)
    {
        var file = new Dockerfile(Stack.Path("images", image, "Dockerfile"));
        var copies = file.All("COPY").ToList();
        Assert.NotEmpty(copies);
        foreach (var source in copies.SelectMany(c => c.Arguments.Split(' ', StringSplitOptions.RemoveEmptyEntries).SkipLast(1)))
            Assert.True(File.Exists(Stack.Path("images", image, source)) || Directory.Exists(Stack.Path("images", image, source)), $"images/{image}: COPY {source}: no such file");
    }

    [GeneratedRegex("^(?<name>[^:@]+(:\\d+/[^:@]+)?):(?<tag>[^@]+)(@sha256:[0-9a-f]{64})?$")]
    private static partial Regex ImageReference();

    [GeneratedRegex("(KEY|SECRET|PASSWORD|TOKEN|CREDENTIAL)", RegexOptions.IgnoreCase)]
    private static partial Regex SecretName();

    [GeneratedRegex("(^|[ /])(\\.env|secrets)([ /]|$)")]
    private static partial Regex SecretPath();
}

public static class DockerfileExtensions
{
    public static IEnumerable<DockerInstruction> All(this Dockerfile file, string keyword) => file.Instructions.Where(i => i.Keyword == keyword);
}
