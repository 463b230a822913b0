namespace InfraTools.Tests;

/// <summary>deploy/kubernetes: the example overlay passes every check offline, and a broken copy of it fails
/// with a message that says what is wrong (one case per kind of check).</summary>
public class KubernetesTests
{
    [Fact]
    public async Task The_example_overlay_renders_and_passes_every_check()
    {
        var problems = await KubernetesManifests.CheckAsync(KubernetesManifests.Root);
        Assert.True(problems.Count == 0, "deploy/kubernetes:\n" + string.Join("\n", problems));
    }

    [Fact]
    public async Task The_rendered_overlay_has_what_the_issue_asks_for()
    {
        // The checks above hold the objects to rules; this says the objects are there at all, so an overlay that
        // rendered nothing (or lost the site) cannot pass them vacuously.
        var yaml = await KubernetesManifests.RenderAsync(KubernetesManifests.ExampleOverlay(KubernetesManifests.Root));
        var objects = k8s.KubernetesYaml.LoadAllFromString(yaml, strict: true);
        var deployments = objects.OfType<k8s.Models.V1Deployment>().ToDictionary(d => d.Metadata.Name);
        Assert.Equal(["prometheus", "site", "traefik"], deployments.Keys.Order());
        var site = deployments["site"].Spec.Template.Spec;
        var pull = Assert.Single(site.InitContainers);
        Assert.Equal(("pull", "Always"), (pull.Name, pull.RestartPolicy));
        Assert.Equal("nginx", Assert.Single(site.Containers).Name);
        var traefik = deployments["traefik"];
        Assert.Equal((1, "Recreate"), (traefik.Spec.Replicas, traefik.Spec.Strategy.Type));
        Assert.Equal(["backup"], traefik.Spec.Template.Spec.InitContainers.Select(c => c.Name));
        Assert.Equal(["prometheus-restore", "backup"], deployments["prometheus"].Spec.Template.Spec.InitContainers.Select(c => c.Name));
        Assert.All(objects.OfType<k8s.Models.IMetadata<k8s.Models.V1ObjectMeta>>().Where(o => o is not k8s.Models.V1Namespace and not k8s.Models.V1ClusterRole and not k8s.Models.V1ClusterRoleBinding and not k8s.Models.V1IngressClass),
            o => Assert.Equal("infra-tools", o.Metadata.NamespaceProperty));
    }

    /// <summary>(file under deploy/kubernetes, text to find (exactly once), replacement, part of the expected message).</summary>
    public static TheoryData<string, string, string, string> Breakages => new()
    {
        // A misspelt field: Kubernetes would drop it silently (or refuse it with --validate=strict).
        { "base/site.yaml", "          readinessProbe:\n", "          readinesProbe:\n", "Property 'readinesProbe' not found" },
        // An enum value in the wrong case: the schema's enum.
        { "base/traefik.yaml", "    type: Recreate\n", "    type: recreate\n", "schema: Deployment/traefik: spec/strategy/type must be equal to one of the allowed values" },
        // subPath on the web root: nginx would never see a replaced entry (kubernetes#50345).
        { "base/site.yaml", "            - name: www\n              mountPath: /srv/www\n", "            - name: www\n              mountPath: /srv/www\n              subPath: site\n", "nginx: the web root volume www is mounted with subPath site" },
        // A missing probe: nginx would start before the first pull.
        { "base/site.yaml", "          startupProbe:\n            httpGet:\n", "          readinessProbe:\n            httpGet:\n", "sidecar pull: no startupProbe" },
        // A grace period shorter than nginx's stop plus content-pull --watch's --stop-grace.
        { "base/site.yaml", "      terminationGracePeriodSeconds: 25\n", "      terminationGracePeriodSeconds: 15\n", "Deployment/site: terminationGracePeriodSeconds 15 is shorter than the main containers' 10 s plus content-pull --watch's --stop-grace (10 s" },
        // The deploy secret in the environment instead of a file of a Secret.
        { "base/site.yaml", "            - name: CONTENT_PULL_DEPLOY_SECRET_FILE\n              value: /run/secrets/content_pull_deploy_secret\n", "            - name: CONTENT_PULL_DEPLOY_SECRET\n              value: example\n", "CONTENT_PULL_DEPLOY_SECRET is set in the environment" },
        // A container running as root.
        { "base/site.yaml", "            runAsUser: 101\n", "            runAsUser: 0\n", "Deployment/site container nginx: runs as root (runAsUser 0)" },
        // An image tag that is not the compose file's.
        { "base/site.yaml", "          image: infra-tools/nginx:local\n", "          image: infra-tools/nginx:1.28\n", "image registry.example.org/infra-tools/nginx:1.28 is not docker-compose.yaml's nginx image infra-tools/nginx:local" },
        // An argument that is not the compose file's.
        { "base/traefik.yaml", "            - --log.level=INFO\n", "            - --log.level=DEBUG\n", "args differ from docker-compose.yaml's command at 5: '--log.level=DEBUG' here, '--log.level=INFO' there" },
        // A grace period shorter than cron's stop.
        { "base/traefik.yaml", "      terminationGracePeriodSeconds: 20\n", "      terminationGracePeriodSeconds: 5\n", "Deployment/traefik: terminationGracePeriodSeconds 5 is shorter than" },
    };

    [Theory]
    [MemberData(nameof(Breakages))]
    public async Task A_broken_copy_of_the_manifests_fails_the_check(string file, string find, string replace, string expected)
    {
        using var dir = new TempDir("k8s-broken");
        CopyTree(KubernetesManifests.Root, dir.Path);
        var path = Path.Combine(dir.Path, file);
        var text = await File.ReadAllTextAsync(path);
        // The breakage must apply, or this test would pass on an unbroken copy.
        Assert.True(Occurrences(text, find) == 1, $"deploy/kubernetes/{file} no longer has exactly one '{find.Trim()}': update this case");
        await File.WriteAllTextAsync(path, text.Replace(find, replace, StringComparison.Ordinal));

        var problems = await KubernetesManifests.CheckAsync(dir.Path);
        Assert.True(problems.Any(p => p.Contains(expected, StringComparison.Ordinal)),
            $"expected a problem containing '{expected}', got:\n{string.Join("\n", problems)}");
    }

    private static int Occurrences(string text, string find)
    {
        var count = 0;
        for (var i = text.IndexOf(find, StringComparison.Ordinal); i >= 0; i = text.IndexOf(find, i + 1, StringComparison.Ordinal)) count++;
        return count;
    }

    private static void CopyTree(string from, string to)
    {
        foreach (var d in Directory.EnumerateDirectories(from, "*", SearchOption.AllDirectories))
            Directory.CreateDirectory(Path.Combine(to, Path.GetRelativePath(from, d)));
        foreach (var f in Directory.EnumerateFiles(from, "*", SearchOption.AllDirectories))
            File.Copy(f, Path.Combine(to, Path.GetRelativePath(from, f)));
    }
}
