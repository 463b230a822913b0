using System.Text.RegularExpressions;
using YamlDotNet.RepresentationModel;

namespace InfraTools.Tests;

/// <summary>docker-compose.yaml and .env.example, checked with Debian's docker-compose and by reading the
/// configuration it resolves.</summary>
public partial class ComposeTests
{
    [Fact]
    public async Task Docker_compose_accepts_the_file_with_env_example()
    {
        var result = await Stack.ComposeConfigAsync(Stack.EnvExample);
        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Contains("infra-tools/traefik:local", result.Stdout);
    }

    [Fact]
    public async Task Docker_compose_accepts_the_docker_secrets_variant()
    {
        var result = await Stack.ComposeConfigAsync(Stack.EnvExample, Stack.ComposeFile, Stack.SecretsComposeFile);
        Assert.True(result.ExitCode == 0, result.ToString());
        var config = Yaml.Parse(result.Stdout);
        var secrets = config.Map("secrets");
        foreach (var service in new[] { "traefik", "pull", "backup", "prometheus-restore" })
        {
            var s = config.Map("services").Map(service);
            var env = s.Map("environment");
            Assert.Equal("/run/secrets/s3_access_key", env.Scalar("S3_ACCESS_KEY_FILE"));
            Assert.Equal("/run/secrets/s3_secret_key", env.Scalar("S3_SECRET_KEY_FILE"));
            // Setting both NAME and NAME_FILE is an error for the tools: the variables from .env are blanked.
            Assert.Equal("", env.Scalar("S3_ACCESS_KEY"));
            Assert.Equal("", env.Scalar("S3_SECRET_KEY"));
            var mounted = s.Get("secrets") is YamlSequenceNode seq
                ? seq.Children.Select(c => c is YamlScalarNode n ? n.Value : ((YamlMappingNode)c).Scalar("source")).ToList()
                : [];
            Assert.Contains("s3_access_key", mounted);
            Assert.Contains("s3_secret_key", mounted);
        }
        // The deploy webhook's secret, as a file; the variable from .env blanked.
        var pull = config.Map("services").Map("pull");
        Assert.Equal("", pull.Map("environment").Scalar("CONTENT_PULL_DEPLOY_SECRET"));
        Assert.Equal("/run/secrets/content_pull_deploy_secret", pull.Map("environment").Scalar("CONTENT_PULL_DEPLOY_SECRET_FILE"));
        Assert.Contains("content_pull_deploy_secret", ((YamlSequenceNode)pull.Get("secrets")!).Children.Select(c => c is YamlScalarNode n ? n.Value : ((YamlMappingNode)c).Scalar("source")));
        var grafana = config.Map("services").Map("grafana").Map("environment");
        Assert.Equal("", grafana.Scalar("GF_SECURITY_ADMIN_PASSWORD"));
        Assert.Equal("/run/secrets/grafana_admin_password", grafana.Scalar("GF_SECURITY_ADMIN_PASSWORD__FILE"));
        Assert.Equal(5, secrets.Children.Count);
        Assert.All(secrets.Entries(), s => Assert.EndsWith("/secrets/" + s.Key, ((YamlMappingNode)s.Value).Scalar("file")));
    }

    [Fact]
    public void Every_variable_the_compose_files_use_is_documented_in_env_example()
    {
        var used = new SortedSet<string>(StringComparer.Ordinal);
        foreach (var file in new[] { Stack.ComposeFile, Stack.SecretsComposeFile })
            foreach (Match m in ComposeVariable().Matches(File.ReadAllText(file)))
                used.Add(m.Groups[1].Value);
        var documented = EnvExampleVariables();
        Assert.NotEmpty(used);
        Assert.Empty(used.Except(documented.Keys));
        // ...and .env.example has nothing the stack ignores (COMPOSE_FILE is read by compose itself).
        Assert.Empty(documented.Keys.Except(used).Except(["COMPOSE_FILE"]));
        // Each one is explained by a comment above it (possibly shared with the variables right before it).
        var lines = File.ReadAllLines(Stack.EnvExample);
        foreach (var (name, line) in documented)
        {
            var i = line - 1;
            while (i > 0 && VariableLine().IsMatch(lines[i - 1])) i--;
            Assert.True(i > 0 && lines[i - 1].TrimStart().StartsWith('#') && lines[i - 1].Trim().Length > 2,
                $".env.example: {name} (line {line}) has no comment that explains it");
        }
    }

    [Fact]
    public async Task A_missing_required_variable_stops_compose_with_a_line_that_names_it()
    {
        var required = new SortedSet<string>(StringComparer.Ordinal);
        foreach (Match m in RequiredVariable().Matches(File.ReadAllText(Stack.ComposeFile))) required.Add(m.Groups[1].Value);
        Assert.Superset(new SortedSet<string> { "DOMAIN", "GRAFANA_DOMAIN", "ACME_EMAIL", "S3_ENDPOINT", "CONTENT_BUCKET", "BACKUP_BUCKET" }, required);
        using var dir = new TempDir("compose-env");
        foreach (var name in required)
        {
            var env = dir.Write($"{name}.env", Regex.Replace(File.ReadAllText(Stack.EnvExample), $"(?m)^{name}=.*$", $"{name}="));
            var result = await Stack.ComposeConfigAsync(env);
            Assert.True(result.ExitCode != 0, $"{name} empty, yet docker-compose config succeeded");
            Assert.Contains($"set {name} in .env", result.Stderr);
        }
    }

    [Fact]
    public void Every_service_restarts_always_except_one_shot_jobs_others_wait_for()
    {
        var waitedFor = Stack.Services.Entries()
            .SelectMany(s => ((YamlMappingNode)s.Value).MapOrNull("depends_on")?.Entries() ?? [])
            .Where(d => d.Value is YamlMappingNode m && m.Scalar("condition") == "service_completed_successfully")
            .Select(d => d.Key).ToHashSet();
        Assert.Equal(["prometheus-restore", "srv-init"], waitedFor.Order());
        foreach (var (name, node) in Stack.Services.Entries())
        {
            var restart = ((YamlMappingNode)node).Scalar("restart");
            Assert.True(waitedFor.Contains(name) ? restart == "no" : restart == "always", $"{name}: restart is '{restart}'");
        }
    }

    [Fact]
    public void Containers_with_our_tools_run_read_only_unprivileged_and_without_capabilities()
    {
        var toolImages = Stack.ToolServices.Where(s => Stack.Service(s).MapOrNull("build") is not null).Select(s => Stack.Service(s).Scalar("image")).ToHashSet();
        foreach (var name in Stack.ToolServices)
        {
            var service = Stack.Service(name);
            if (service.MapOrNull("build") is { } build) Assert.Equal("images/tools/Dockerfile", build.Scalar("dockerfile"));
            else Assert.Contains(service.Scalar("image"), toolImages); // an image another service builds
            Assert.Equal("true", service.Scalar("read_only"));
            Assert.Equal(["ALL"], service.Strings("cap_drop"));
            Assert.Contains("no-new-privileges:true", service.Strings("security_opt"));
            Assert.Null(service.Scalar("user")); // the image's own non-root user
            Assert.Null(service.Scalar("privileged"));
        }
        // Traefik needs no root: its entry points listen above 1024 and are published as 80 and 443.
        var ports = Stack.Service("traefik").Maps("ports").Select(p => $"{p.Scalar("published")}->{p.Scalar("target")}");
        Assert.Equal(["443->8443", "80->8080"], ports.Order());
        Assert.Null(Stack.Services.Entries().Where(s => s.Key != "traefik").Select(s => ((YamlMappingNode)s.Value).Get("ports")).FirstOrDefault(p => p is not null));
    }

    [Fact]
    public void Only_the_socket_proxy_mounts_the_docker_socket_and_only_read_only()
    {
        var mounts = Stack.Services.Entries()
            .SelectMany(s => ((YamlMappingNode)s.Value).Strings("volumes").Select(v => (Service: s.Key, Volume: v)))
            .Where(m => m.Volume.StartsWith("/var/run/docker.sock", StringComparison.Ordinal)).ToList();
        Assert.Equal(["docker-socket-proxy"], mounts.Select(m => m.Service));
        Assert.EndsWith(":ro", mounts[0].Volume);
        var proxy = Stack.Service("docker-socket-proxy").Map("environment");
        Assert.Equal("0", proxy.Scalar("POST")); // read-only API: no container can be created or changed through it
        Assert.Equal("true", Stack.Compose.Map("networks").Map("docker-api").Scalar("internal"));
        Assert.Contains("--providers.docker.endpoint=tcp://docker-socket-proxy:2375", TraefikCommand());
        // cAdvisor reads Docker's state through /var/run, read-only.
        Assert.Contains("/var/run:/var/run:ro", Stack.Service("cadvisor").Strings("volumes"));
    }

    [Fact]
    public void State_lives_in_bind_mounts_under_srv()
    {
        var hostPaths = Stack.Services.Entries()
            .Where(s => s.Key is not ("node-exporter" or "cadvisor" or "docker-socket-proxy"))
            .SelectMany(s => ((YamlMappingNode)s.Value).Strings("volumes"))
            .Select(v => v.Split(':')[0]).ToHashSet();
        Assert.All(hostPaths, p => Assert.StartsWith("/srv/", p));
        Assert.Superset(new HashSet<string> { "/srv/acme", "/srv/www", "/srv/monitoring", "/srv/prometheus", "/srv/grafana" }, hostPaths);
        // srv-init prepares every one of them for the non-root users before anything writes there.
        var init = string.Join('\n', Stack.Service("srv-init").Strings("command"));
        foreach (var path in hostPaths) Assert.Contains(path, init);
        Assert.Equal(hostPaths.Order(), Stack.Service("srv-init").Strings("volumes").Select(v => v.Split(':')[0]).Order());
        // The monitoring directory is shared by the tools that write textfiles and node-exporter, which reads it.
        Assert.Contains("/srv/monitoring:/monitoring:ro", Stack.Service("node-exporter").Strings("volumes"));
        Assert.Contains("--collector.textfile.directory=/monitoring", Stack.Service("node-exporter").Strings("command"));
        foreach (var writer in new[] { "pull", "backup", "traefik" })
            Assert.Contains("/srv/monitoring:/monitoring:rw", Stack.Service(writer).Strings("volumes"));
        Assert.Contains("/srv/www:/srv/www:ro", Stack.Service("nginx").Strings("volumes"));
        Assert.Contains("/srv/www:/www:rw", Stack.Service("pull").Strings("volumes"));
        Assert.Contains("/srv/acme:/acme:ro", Stack.Service("backup").Strings("volumes"));
        Assert.Contains("/srv/acme:/etc/traefik/acme:rw", Stack.Service("traefik").Strings("volumes"));
    }

    [Fact]
    public void Traefik_uses_v3_configuration_with_https_redirect_hsts_and_lets_encrypt()
    {
        var command = TraefikCommand();
        // acme-restore's options, then "--", then Traefik and its static configuration.
        var separator = command.IndexOf("--");
        Assert.True(separator > 0, string.Join(' ', command));
        Assert.Equal("--source=s3://example-backups/acme/acme.json", command[0]);
        Assert.Equal("traefik", command[separator + 1]);
        var traefik = command.Skip(separator + 2).ToList();
        Assert.Contains("--entryPoints.web.http.redirections.entryPoint.to=:443", traefik);
        Assert.Contains("--entryPoints.web.http.redirections.entryPoint.scheme=https", traefik);
        Assert.Contains("--certificatesResolvers.letsencrypt.acme.storage=/etc/traefik/acme/acme.json", traefik);
        Assert.Contains("--certificatesResolvers.letsencrypt.acme.tlsChallenge=true", traefik);
        Assert.Contains("--metrics.prometheus.entryPoint=metrics", traefik);
        Assert.Contains("--entryPoints.metrics.address=:8082", traefik);
        Assert.Contains("--providers.docker.exposedByDefault=false", traefik);
        Assert.DoesNotContain(traefik, a => a.StartsWith("--api", StringComparison.Ordinal)); // no dashboard
        // The docker network Traefik routes on exists under that exact name.
        var network = traefik.Single(a => a.StartsWith("--providers.docker.network=", StringComparison.Ordinal)).Split('=')[1];
        Assert.Equal(network, Stack.Compose.Map("networks").Map("frontend").Scalar("name"));

        var routed = Stack.Services.Entries().Where(s => ((YamlMappingNode)s.Value).MapOrNull("labels")?.Scalar("traefik.enable") == "true").ToList();
        Assert.Equal(["grafana", "nginx"], routed.Select(s => s.Key).Order());
        // Shared middlewares are defined identically by every routed service (see the test below).
        var allLabels = routed.SelectMany(s => ((YamlMappingNode)s.Value).Map("labels").Entries()).Where(e => e.Key != "traefik.enable")
            .GroupBy(e => e.Key).ToDictionary(g => g.Key, g => ((YamlScalarNode)g.First().Value).Value);
        // Traefik v1 labels (traefik.frontend.*, traefik.port) are silently ignored by v3.
        Assert.DoesNotContain(allLabels.Keys, k => k.StartsWith("traefik.frontend", StringComparison.Ordinal) || k.StartsWith("traefik.backend", StringComparison.Ordinal) || k == "traefik.port");
        foreach (var (router, host) in new[] { ("site", "www.example.org"), ("grafana", "grafana.example.org") })
        {
            Assert.Equal($"Host(`{host}`)", allLabels[$"traefik.http.routers.{router}.rule"]);
            Assert.Equal("websecure", allLabels[$"traefik.http.routers.{router}.entrypoints"]);
            Assert.Equal("letsencrypt", allLabels[$"traefik.http.routers.{router}.tls.certresolver"]);
            Assert.Equal("security-headers@docker", allLabels[$"traefik.http.routers.{router}.middlewares"]);
        }
        Assert.Equal("31536000", allLabels["traefik.http.middlewares.security-headers.headers.stsSeconds"]);
        Assert.Equal("8080", allLabels["traefik.http.services.site.loadbalancer.server.port"]);
    }

    [Fact]
    public void Every_long_running_service_has_a_healthcheck_in_compose_or_its_image()
    {
        var inImage = new Dictionary<string, DockerStage>
        {
            ["traefik"] = new Dockerfile(Stack.ToolsDockerfile).Stage("traefik"),
            ["pull"] = new Dockerfile(Stack.ToolsDockerfile).Stage("pull"),
            ["backup"] = new Dockerfile(Stack.ToolsDockerfile).Stage("backup"),
            ["prometheus"] = new Dockerfile(Stack.Path("images", "prometheus", "Dockerfile")).Stages[^1],
        };
        foreach (var (service, stage) in inImage)
        {
            Assert.Single(stage.All("HEALTHCHECK"));
            Assert.Contains("CMD [", stage.All("HEALTHCHECK").Single().Arguments);
            Assert.Null(Stack.Service(service).MapOrNull("healthcheck"));
        }
        foreach (var service in new[] { "nginx", "grafana", "node-exporter" })
            Assert.Equal("CMD", Stack.Service(service).Map("healthcheck").Strings("test")[0]);
        // One place per check: nginx's and Grafana's are in compose, not (also) in their images.
        foreach (var image in new[] { "nginx", "grafana" })
        {
            Assert.Empty(new Dockerfile(Stack.Path("images", image, "Dockerfile")).All("HEALTHCHECK"));
            Assert.Equal($"images/{image}", Path.GetRelativePath(RepoPaths.Root, Stack.Service(image).Map("build").Scalar("context")!));
        }
        var covered = inImage.Keys.Concat(["nginx", "grafana", "node-exporter"]).ToHashSet();
        var oneShot = Stack.Services.Entries().Where(s => ((YamlMappingNode)s.Value).Scalar("restart") == "no").Select(s => s.Key).ToHashSet();
        // What is left is upstream images that bring their own or have nothing to probe with.
        Assert.Equal(["cadvisor", "docker-socket-proxy", "nginx-exporter"], Stack.Services.Entries().Select(e => e.Key).Except(covered).Except(oneShot).Order());
    }

    [Fact]
    public void The_pull_service_watches_the_bucket_in_release_mode_with_its_listener_on_the_backend_network_only()
    {
        var pull = Stack.Service("pull");
        // The image's entrypoint is `content-pull --watch --listen 0.0.0.0:9746`; compose gives the rest.
        Assert.Null(pull.Get("entrypoint"));
        Assert.Equal(["--releases", "--delete", "--poll", "5s", "--resync", "10m", "--metrics-file", "/monitoring/content-pull.prom", "s3://example-site/", "/www"],
            pull.Strings("command"));
        Assert.Contains("/srv/www:/www:rw", pull.Strings("volumes"));
        Assert.Contains("/srv/content-pull:/var/lib/content-pull:rw", pull.Strings("volumes"));
        // The webhook's secret comes from .env (empty there: /deploy is off); the poll interval too.
        Assert.Equal("", pull.Map("environment").Scalar("CONTENT_PULL_DEPLOY_SECRET"));
        Assert.Matches("(?m)^CONTENT_PULL_DEPLOY_SECRET=$", File.ReadAllText(Stack.EnvExample));
        Assert.Matches("(?m)^CONTENT_PULL_POLL=5s$", File.ReadAllText(Stack.EnvExample));
        // The listener is reachable from the backend network only: not published, not routed by Traefik, not
        // on the frontend network Traefik routes on (docs/deploy.md gives the route to add for the webhook).
        Assert.Equal(["backend"], pull.Map("networks").Entries().Select(e => e.Key));
        Assert.Null(pull.Get("ports"));
        Assert.Null(pull.MapOrNull("labels")?.Scalar("traefik.enable"));
        // Docker's SIGKILL comes after the watcher's own --stop-grace (10 s by default) for a running pull.
        Assert.DoesNotContain("--stop-grace", pull.Strings("command"));
        Assert.True(InfraTools.Time.GoDuration.Parse(pull.Scalar("stop_grace_period")!, "stop_grace_period", TimeSpan.FromHours(1)) > TimeSpan.FromSeconds(10),
            $"stop_grace_period {pull.Scalar("stop_grace_period")}");
        // Its health check (in the image) asks the watcher's /health, served by the same listener.
        Assert.Contains("http://127.0.0.1:9746/health", new Dockerfile(Stack.ToolsDockerfile).Stage("pull").All("HEALTHCHECK").Single().Arguments);
    }

    [Fact]
    public async Task The_deploy_webhook_route_of_the_manual_merges_and_sends_only_its_path_to_the_watcher()
    {
        // docs/deploy.md gives the override that routes https://DOMAIN/_deploy to the watcher's POST /deploy.
        var manual = File.ReadAllText(Stack.Path("docs", "deploy.md"));
        var example = Regex.Match(manual, "```yaml\n(# docker-compose.deploy-webhook.yaml:.*?)```", RegexOptions.Singleline).Groups[1].Value;
        Assert.NotEmpty(example);
        using var dir = new TempDir("webhook");
        var result = await Stack.ComposeConfigAsync(Stack.EnvExample, Stack.ComposeFile, dir.Write("docker-compose.deploy-webhook.yaml", example));
        Assert.True(result.ExitCode == 0, result.ToString());
        var pull = Yaml.Parse(result.Stdout).Map("services").Map("pull");
        var labels = pull.Map("labels").Entries().ToDictionary(e => e.Key, e => ((YamlScalarNode)e.Value).Value);
        Assert.Equal("true", labels["traefik.enable"]);
        Assert.Equal("Host(`www.example.org`) && Path(`/_deploy`)", labels["traefik.http.routers.deploy.rule"]);
        Assert.Equal("websecure", labels["traefik.http.routers.deploy.entrypoints"]);
        Assert.Equal("letsencrypt", labels["traefik.http.routers.deploy.tls.certresolver"]);
        // Only POST /deploy is reachable: the path is replaced, /health and /metrics stay internal.
        Assert.Equal("/deploy", labels["traefik.http.middlewares.deploy-path.replacepath.path"]);
        Assert.Equal("deploy-path@docker", labels["traefik.http.routers.deploy.middlewares"]);
        Assert.Equal("9746", labels["traefik.http.services.deploy.loadbalancer.server.port"]);
        // Traefik reaches it on the frontend network (--providers.docker.network).
        Assert.Equal(["backend", "frontend"], pull.Map("networks").Entries().Select(e => e.Key).Order());
    }

    [Fact]
    public void Prometheus_restore_does_not_inherit_the_cron_health_check_of_the_backup_image()
    {
        // The backup image's HEALTHCHECK asks cron's /health; prometheus-restore runs a script instead.
        Assert.Single(new Dockerfile(Stack.ToolsDockerfile).Stage("backup").All("HEALTHCHECK"));
        Assert.Equal(Stack.Service("backup").Scalar("image"), Stack.Service("prometheus-restore").Scalar("image"));
        Assert.Equal(["NONE"], Stack.Service("prometheus-restore").Map("healthcheck").Strings("test"));
    }

    [Fact]
    public void Routed_services_are_probed_every_5_seconds_so_a_restart_is_routed_again_within_seconds()
    {
        // Traefik ignores a container whose health is "starting", and Docker's first probe comes one interval
        // after the start: the interval is how long a restart or deploy keeps a router without its container.
        var routed = Stack.Services.Entries().Where(s => ((YamlMappingNode)s.Value).MapOrNull("labels")?.Scalar("traefik.enable") == "true").ToList();
        Assert.Equal(["grafana", "nginx"], routed.Select(r => r.Key).Order());
        foreach (var (name, node) in routed)
        {
            var healthcheck = ((YamlMappingNode)node).Map("healthcheck");
            Assert.True(healthcheck.Scalar("interval") == "5s", $"{name}: interval {healthcheck.Scalar("interval")}");
            Assert.NotNull(healthcheck.Scalar("start_period"));
            Assert.Null(healthcheck.Scalar("start_interval")); // Compose 1.x and Engine < 25 do not know it
        }
    }

    [Fact]
    public void Every_router_uses_only_middlewares_its_own_container_defines()
    {
        // Traefik drops every label of a starting or unhealthy container, middlewares included: a router that
        // uses a middleware defined on another container breaks whenever that container restarts.
        var labels = Stack.Services.Entries()
            .Select(s => (Service: s.Key, Labels: ((YamlMappingNode)s.Value).MapOrNull("labels")?.Entries().ToDictionary(e => e.Key, e => ((YamlScalarNode)e.Value).Value ?? "")))
            .Where(s => s.Labels is not null && s.Labels.GetValueOrDefault("traefik.enable") == "true").ToList();
        Assert.NotEmpty(labels);
        var definitions = new Dictionary<string, Dictionary<string, string>>();
        foreach (var (service, own) in labels)
        {
            var routers = own!.Where(l => MiddlewaresLabel().IsMatch(l.Key)).ToList();
            Assert.NotEmpty(routers);
            foreach (var middleware in routers.SelectMany(r => r.Value.Split(',')).Select(m => m.Trim()))
            {
                Assert.EndsWith("@docker", middleware);
                var name = middleware[..^"@docker".Length];
                var definition = own!.Where(l => l.Key.StartsWith($"traefik.http.middlewares.{name}.", StringComparison.Ordinal)).ToDictionary(l => l.Key, l => l.Value);
                Assert.True(definition.Count > 0, $"{service}: its router uses {middleware}, which {service} does not define");
                // Defined several times, the definitions must be identical, or Traefik drops the middleware.
                if (definitions.TryGetValue(name, out var other)) Assert.Equal(other.OrderBy(d => d.Key), definition.OrderBy(d => d.Key));
                else definitions[name] = definition;
            }
        }
        Assert.Contains("security-headers", definitions.Keys);
    }

    [Fact]
    public void Each_image_is_built_by_one_service()
    {
        var built = Stack.Services.Entries().Where(s => ((YamlMappingNode)s.Value).MapOrNull("build") is not null)
            .GroupBy(s => ((YamlMappingNode)s.Value).Scalar("image")).ToList();
        Assert.NotEmpty(built);
        Assert.All(built, g => Assert.True(g.Count() == 1, $"{g.Key} is built by {string.Join(" and ", g.Select(s => s.Key))}"));
    }

    [Fact]
    public void Node_exporter_sees_the_host_through_an_rslave_bind_and_the_manual_explains_dockers_refusal()
    {
        Assert.Contains("/:/host:ro,rslave", Stack.Service("node-exporter").Strings("volumes"));
        // The message Docker gives where / is a private mount (the live test shows Docker prints exactly this),
        // and the fix, are in the compose file's comment and the manual.
        const string refusal = "path / is mounted on / but it is not a shared or slave mount";
        var deploy = File.ReadAllText(Stack.Path("docs", "deploy.md"));
        Assert.Contains(refusal, deploy);
        Assert.Contains("mount --make-rshared /", deploy);
        Assert.Contains(refusal, File.ReadAllText(Stack.ComposeFile));
    }

    [Fact]
    public void The_docker_socket_proxy_is_a_maintained_release()
    {
        // 0.3 is HAProxy 2.2 (end of life); 0.4 is HAProxy 3.
        var m = Regex.Match(Stack.Service("docker-socket-proxy").Scalar("image")!, "^tecnativa/docker-socket-proxy:(\\d+)\\.(\\d+)\\.\\d+$");
        Assert.True(m.Success);
        Assert.True((int.Parse(m.Groups[1].Value), int.Parse(m.Groups[2].Value)).CompareTo((0, 4)) >= 0, m.Value);
    }

    [Fact]
    public void Prometheus_runs_as_the_backup_user_with_the_admin_api_for_snapshots()
    {
        var prometheus = Stack.Service("prometheus");
        Assert.Equal("10001:10001", prometheus.Scalar("user"));
        Assert.Equal("10001:10001", new Dockerfile(Stack.ToolsDockerfile).EffectiveUser(new Dockerfile(Stack.ToolsDockerfile).Stage("backup")));
        Assert.Contains("--web.enable-admin-api", prometheus.Strings("command"));
        Assert.Contains("--storage.tsdb.retention.time=90d", prometheus.Strings("command"));
        Assert.Contains("/srv/prometheus:/prometheus:rw", Stack.Service("backup").Strings("volumes"));
        // Prometheus and the admin API are on the backend network only: nothing routes to them.
        Assert.Equal(["backend"], prometheus.Map("networks").Entries().Select(e => e.Key));
    }

    [Fact]
    public void Upstream_images_are_pinned_to_a_version_and_ours_are_built_locally()
    {
        var builtHere = Stack.Services.Entries().Where(s => ((YamlMappingNode)s.Value).Get("build") is not null)
            .Select(s => ((YamlMappingNode)s.Value).Scalar("image")).ToHashSet();
        foreach (var (name, node) in Stack.Services.Entries())
        {
            var service = (YamlMappingNode)node;
            var image = service.Scalar("image")!;
            if (service.Get("build") is not null || builtHere.Contains(image))
            {
                Assert.Matches("^infra-tools/[a-z-]+:local$", image);
                continue;
            }
            var tag = image.Contains(':') ? image[(image.LastIndexOf(':') + 1)..] : "";
            Assert.True(Regex.IsMatch(tag, "^v?\\d+\\.\\d+"), $"{name}: image {image} is not pinned to a version");
        }
    }

    [Fact]
    public void Env_example_holds_placeholders_not_credentials()
    {
        var values = EnvExampleVariables().Keys.ToDictionary(k => k, k => Regex.Match(File.ReadAllText(Stack.EnvExample), $"(?m)^#?{k}=(.*)$").Groups[1].Value);
        foreach (var name in new[] { "S3_ACCESS_KEY", "S3_SECRET_KEY", "GRAFANA_ADMIN_PASSWORD", "GRAFANA_OAUTH_CLIENT_ID", "GRAFANA_OAUTH_CLIENT_SECRET" })
            Assert.Matches("(?i)example|change-me", values[name]);
        Assert.All(new[] { "DOMAIN", "GRAFANA_DOMAIN", "ACME_EMAIL" }, n => Assert.Contains("example.org", values[n]));
        Assert.Equal("false", values["GRAFANA_OAUTH_ALLOW_SIGN_UP"]);
    }

    [Fact]
    public void The_acme_restore_manual_shows_the_paths_the_stack_uses()
    {
        // Its compose example once named a metrics file (/textfile/acme_restore.prom) the stack does not write.
        var manual = File.ReadAllText(Stack.Path("docs", "acme-restore.md"));
        var example = Regex.Match(manual, "```yaml\n(traefik:.*?)```", RegexOptions.Singleline).Groups[1].Value;
        Assert.NotEmpty(example);
        var entrypoint = new Dockerfile(Stack.ToolsDockerfile).Stage("traefik").All("ENTRYPOINT").Single().ExecForm!;
        foreach (var option in new[] { "--file", "--metrics-file" })
            Assert.Contains($"\"{option}\", \"{entrypoint[Array.IndexOf(entrypoint, option) + 1]}\"", example);
        var source = TraefikCommand()[0]; // --source=s3://BUCKET/acme/acme.json
        Assert.Contains("s3://backups/" + source[(source.IndexOf("s3://", StringComparison.Ordinal) + 5)..].Split('/', 2)[1], example);
    }

    private static List<string> TraefikCommand() => Stack.Service("traefik").Strings("command").ToList();

    /// <summary>NAME=value lines of .env.example, commented ones included, with their 1-based line numbers.</summary>
    private static Dictionary<string, int> EnvExampleVariables()
    {
        var result = new Dictionary<string, int>();
        var lines = File.ReadAllLines(Stack.EnvExample);
        for (var i = 0; i < lines.Length; i++)
        {
            var m = VariableLine().Match(lines[i]);
            if (m.Success) result[m.Groups[1].Value] = i + 1;
        }
        return result;
    }

    [GeneratedRegex("^traefik\\.http\\.routers\\.[^.]+\\.middlewares$")]
    private static partial Regex MiddlewaresLabel();

    [GeneratedRegex("\\$\\{([A-Z][A-Z0-9_]*)")]
    private static partial Regex ComposeVariable();

    [GeneratedRegex("\\$\\{([A-Z][A-Z0-9_]*):\\?")]
    private static partial Regex RequiredVariable();

    [GeneratedRegex("^#?([A-Z][A-Z0-9_]*)=")]
    private static partial Regex VariableLine();
}
