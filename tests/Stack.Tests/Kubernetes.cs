using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using k8s;
using k8s.Models;
using YamlDotNet.RepresentationModel;

namespace InfraTools.Tests;

/// <summary>
/// deploy/kubernetes, checked offline: rendered with `kubectl kustomize`, every object loaded strictly into the
/// Kubernetes API types (KubernetesClient: an unknown or misspelt field, or a value of the wrong type, fails the
/// load), validated against the API schema (npm kubernetes-models: required fields, enums, formats), then held
/// to the stack's own rules and to docker-compose.yaml (images, arguments, environment).
/// </summary>
public static partial class KubernetesManifests
{
    public static string Root => Stack.Path("deploy", "kubernetes");

    public static string ExampleOverlay(string root) => System.IO.Path.Combine(root, "overlays", "example");

    private static string SchemaDir => Stack.Path("tests", "Stack.Tests", "kubernetes");

    /// <summary>`kubectl kustomize DIR`: the objects an `apply -k` would send.</summary>
    public static async Task<string> RenderAsync(string overlay)
    {
        ProcessResult result;
        try
        {
            result = await ProcessRunner.RunAsync("kubectl", ["kustomize", overlay], timeout: TimeSpan.FromMinutes(1));
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            throw new InvalidOperationException($"kubectl could not be started ({e.Message}): the Kubernetes checks need kubectl 1.27 or newer on PATH");
        }
        if (result.ExitCode != 0) throw new InvalidOperationException($"kubectl kustomize {overlay} failed: {result.Stderr.Trim()}");
        return result.Stdout;
    }

    /// <summary>Renders the overlay under <paramref name="root"/> and returns every problem found, one line each.</summary>
    public static async Task<IReadOnlyList<string>> CheckAsync(string root)
    {
        var yaml = await RenderAsync(ExampleOverlay(root));
        List<object> objects;
        try
        {
            objects = KubernetesYaml.LoadAllFromString(yaml, strict: true).ToList();
        }
        catch (Exception e)
        {
            // YamlDotNet names the property it has no member for ("Property 'readinesProbe' not found on type
            // 'k8s.Models.V1Container'"); the rest of the checks need typed objects.
            var yamlError = e as YamlDotNet.Core.YamlException ?? e.InnerException as YamlDotNet.Core.YamlException;
            var at = "";
            if (yamlError is not null && yamlError.Start.Line > 0)
            {
                var line = yaml.Split('\n').ElementAtOrDefault((int)yamlError.Start.Line - 1)?.Trim();
                at = $" (line {yamlError.Start.Line} of the rendered overlay: '{line}')";
            }
            var message = Innermost(e).Message;
            if (message != e.Message && !e.Message.Contains(message, StringComparison.Ordinal)) message = e.Message + ": " + message;
            return [$"not a valid Kubernetes object (strict load): {message}{at}"];
        }
        var problems = new List<string>();
        problems.AddRange(await SchemaProblemsAsync(objects));
        problems.AddRange(new Rules(objects).Check());
        return problems;
    }

    private static Exception Innermost(Exception e) => e.InnerException is { } inner ? Innermost(inner) : e;

    /// <summary>Runs tests/Stack.Tests/kubernetes/validate.mjs over the objects (as JSON).</summary>
    public static async Task<IReadOnlyList<string>> SchemaProblemsAsync(IReadOnlyList<object> objects)
    {
        if (!Directory.Exists(System.IO.Path.Combine(SchemaDir, "node_modules", "kubernetes-models")))
            throw new InvalidOperationException("the npm packages of tests/Stack.Tests/kubernetes are not installed: run scripts/install-deps.sh kubernetes");
        using var dir = new TempDir("k8s-schema");
        var json = "[" + string.Join(",\n", objects.Select(o => KubernetesJson.Serialize(o))) + "]";
        var file = dir.Write("objects.json", json);
        var result = await ProcessRunner.RunAsync("node", [System.IO.Path.Combine(SchemaDir, "validate.mjs"), file],
            workingDirectory: SchemaDir, timeout: TimeSpan.FromMinutes(1));
        var lines = result.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        if (result.ExitCode == 0) return [];
        if (result.ExitCode != 1) throw new InvalidOperationException("validate.mjs failed: " + result);
        return lines.Where(l => !l.StartsWith("validated ", StringComparison.Ordinal)).Select(l => "schema: " + l).ToList();
    }

    /// <summary>
    /// Kubernetes' expansion of command and args: $(NAME) becomes the variable's value when the container
    /// defines NAME, $$ becomes $, anything else stays as it is.
    /// </summary>
    public static string Expand(string text, IReadOnlyDictionary<string, string> env) =>
        Reference().Replace(text, m => m.Value == "$$" ? "$" : env.TryGetValue(m.Groups[1].Value, out var v) ? v : m.Value);

    public static IEnumerable<string> References(string text) =>
        Reference().Matches(text).Where(m => m.Value != "$$").Select(m => m.Groups[1].Value);

    [GeneratedRegex(@"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)")]
    private static partial Regex Reference();

    private static readonly Lazy<YamlMappingNode> SecretsCompose = new(() =>
    {
        var result = Stack.ComposeConfigAsync(Stack.EnvExample, Stack.ComposeFile, Stack.SecretsComposeFile).GetAwaiter().GetResult();
        if (result.ExitCode != 0) throw new InvalidOperationException("docker-compose config failed: " + result);
        return Yaml.Parse(result.Stdout);
    });

    /// <summary>docker-compose.yaml with docker-compose.secrets.yaml and .env.example: the variant Kubernetes follows.</summary>
    public static YamlMappingNode ComposeWithSecrets => SecretsCompose.Value;

    /// <summary>The largest peak RSS (MiB) bench/RESULTS.md shows for content-pull and backup, and cron's busy RSS.</summary>
    public static (double ToolMiB, double CronMiB) BenchRss()
    {
        var text = File.ReadAllText(Stack.Path("bench", "RESULTS.md"));
        var tool = PeakRssRow().Matches(text).Select(m => double.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture)).DefaultIfEmpty(0).Max();
        var cron = CronBusyRow().Matches(text).Select(m => double.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture) / 1024).DefaultIfEmpty(0).Max();
        if (tool == 0 || cron == 0) throw new InvalidOperationException("bench/RESULTS.md has no peak RSS rows any more: update KubernetesManifests.BenchRss");
        return (tool, cron);
    }

    [GeneratedRegex(@"^\| peak RSS, initial \(MiB\) \| ([0-9.]+) \|", RegexOptions.Multiline)]
    private static partial Regex PeakRssRow();

    [GeneratedRegex(@"^\| cron_busy_rss_kb_10_every_second_jobs \| ([0-9]+) \|", RegexOptions.Multiline)]
    private static partial Regex CronBusyRow();

    /// <summary>
    /// The directory nginx serves (the first `root` of images/nginx/nginx.conf); a root that is a variable
    /// (`root $site_root;`, release mode's fallback) is the first value `set` gives it: the directory that holds
    /// the releases and `current`, which the web-root volume must cover.
    /// </summary>
    public static string NginxRoot()
    {
        var conf = File.ReadAllText(Stack.Path("images", "nginx", "nginx.conf"));
        var m = NginxRootLine().Match(conf);
        if (!m.Success) throw new InvalidOperationException("images/nginx/nginx.conf has no root directive");
        var root = m.Groups[1].Value;
        if (root.StartsWith('$'))
        {
            var set = Regex.Match(conf, @"^\s*set\s+" + Regex.Escape(root) + @"\s+([^;\s]+)\s*;", RegexOptions.Multiline);
            if (!set.Success) throw new InvalidOperationException($"images/nginx/nginx.conf: root {root} is never set");
            root = set.Groups[1].Value;
        }
        return root.TrimEnd('/');
    }

    [GeneratedRegex(@"^\s*root\s+([^;\s]+)\s*;", RegexOptions.Multiline)]
    private static partial Regex NginxRootLine();

    /// <summary>(options comment, job line) of every job of a crontab text.</summary>
    public static List<(string Options, string Job)> CrontabJobs(string text)
    {
        var lines = text.Split('\n').Select(l => l.Trim()).ToArray();
        var jobs = new List<(string, string)>();
        for (var i = 0; i < lines.Length; i++)
            if (lines[i].Length > 0 && !lines[i].StartsWith('#')) jobs.Add((i > 0 ? lines[i - 1] : "", lines[i]));
        return jobs;
    }

    /// <summary>A container with where it is (for messages) and the pod it runs in.</summary>
    public sealed record PodContainer(string Where, V1Container Container, ContainerKind Kind, V1PodSpec Pod, string Owner, string? Namespace);

    public enum ContainerKind { Main, Sidecar, Init }

    /// <summary>The stack's own rules, and agreement with docker-compose.yaml.</summary>
    private sealed class Rules(IReadOnlyList<object> objects)
    {
        private readonly List<string> _problems = [];

        private static readonly string[] CredentialVariables =
            ["S3_ACCESS_KEY", "S3_SECRET_KEY", "S3_SESSION_TOKEN", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "CONTENT_PULL_DEPLOY_SECRET"];

        /// <summary>Seconds each main container may take to stop before the sidecars are stopped: Traefik's
        /// entry points wait 10 s (lifeCycle.graceTimeOut's default) and nginx gets the same.</summary>
        private const int MainStopSeconds = 10;

        /// <summary>cron: -grace-period's default (docs/cron.md, Stopping), then SIGTERM and SIGKILL 3 s later.</summary>
        private const int CronDefaultGraceSeconds = 5, CronKillDelaySeconds = 3;

        /// <summary>content-pull --watch: --stop-grace's default (docs/content-pull.md, Watch mode) for a running pull.</summary>
        private const int WatchDefaultGraceSeconds = 10;

        private void Problem(string text) => _problems.Add(text);

        private IEnumerable<(string Owner, string? Namespace, V1PodSpec Pod, V1Deployment? Deployment)> Pods()
        {
            foreach (var o in objects)
                switch (o)
                {
                    case V1Deployment d: yield return ($"Deployment/{d.Metadata.Name}", d.Metadata.NamespaceProperty, d.Spec.Template.Spec, d); break;
                    case V1StatefulSet s: yield return ($"StatefulSet/{s.Metadata.Name}", s.Metadata.NamespaceProperty, s.Spec.Template.Spec, null); break;
                    case V1DaemonSet s: yield return ($"DaemonSet/{s.Metadata.Name}", s.Metadata.NamespaceProperty, s.Spec.Template.Spec, null); break;
                    case V1Job j: yield return ($"Job/{j.Metadata.Name}", j.Metadata.NamespaceProperty, j.Spec.Template.Spec, null); break;
                    case V1CronJob c: yield return ($"CronJob/{c.Metadata.Name}", c.Metadata.NamespaceProperty, c.Spec.JobTemplate.Spec.Template.Spec, null); break;
                    case V1Pod p: yield return ($"Pod/{p.Metadata.Name}", p.Metadata.NamespaceProperty, p.Spec, null); break;
                }
        }

        private IEnumerable<PodContainer> Containers()
        {
            foreach (var (owner, ns, pod, _) in Pods())
            {
                foreach (var c in pod.InitContainers ?? [])
                {
                    var kind = c.RestartPolicy == "Always" ? ContainerKind.Sidecar : ContainerKind.Init;
                    yield return new PodContainer($"{owner} {(kind == ContainerKind.Sidecar ? "sidecar" : "init container")} {c.Name}", c, kind, pod, owner, ns);
                }
                foreach (var c in pod.Containers ?? []) yield return new PodContainer($"{owner} container {c.Name}", c, ContainerKind.Main, pod, owner, ns);
            }
        }

        private V1ConfigMap? ConfigMap(string name) => objects.OfType<V1ConfigMap>().FirstOrDefault(c => c.Metadata.Name == name);

        /// <summary>The container's environment as Kubernetes sets it (literal values, ConfigMap keys, the namespace).</summary>
        private Dictionary<string, string> Environment(PodContainer pc)
        {
            var env = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (var e in pc.Container.Env ?? [])
            {
                if (e.Value is not null) env[e.Name] = e.Value;
                else if (e.ValueFrom?.ConfigMapKeyRef is { } key)
                {
                    if (ConfigMap(key.Name)?.Data?.TryGetValue(key.Key, out var value) == true) env[e.Name] = value;
                    else Problem($"{pc.Where}: {e.Name} comes from ConfigMap {key.Name} key {key.Key}, which the manifests do not define");
                }
                else if (e.ValueFrom?.FieldRef?.FieldPath == "metadata.namespace") env[e.Name] = pc.Namespace ?? "default";
                else if (e.ValueFrom?.FieldRef is { } field) env[e.Name] = $"<{field.FieldPath}>";
                else if (e.ValueFrom?.SecretKeyRef is not null) env[e.Name] = "<secret>";
                else env[e.Name] = "";
            }
            return env;
        }

        public IReadOnlyList<string> Check()
        {
            var containers = Containers().ToList();
            if (containers.Count == 0) Problem("the manifests have no pods at all");
            foreach (var pc in containers)
            {
                Probes(pc);
                Security(pc);
                Resources(pc);
                Secrets(pc);
                Compose(pc);
            }
            foreach (var (owner, _, pod, deployment) in Pods())
            {
                WebRoot(owner, pod);
                Grace(owner, pod);
                if (deployment is not null) SingleWriter(owner, pod, deployment);
            }
            BackupCrontabs(containers);
            Ingress();
            return _problems;
        }

        private void Probes(PodContainer pc)
        {
            var c = pc.Container;
            switch (pc.Kind)
            {
                case ContainerKind.Main:
                    if (c.ReadinessProbe is null) Problem($"{pc.Where}: no readinessProbe");
                    if (c.LivenessProbe is null) Problem($"{pc.Where}: no livenessProbe");
                    break;
                case ContainerKind.Sidecar:
                    // The startupProbe is what holds the main containers back until the sidecar is ready.
                    if (c.StartupProbe is null) Problem($"{pc.Where}: no startupProbe (a native sidecar's startupProbe gates the main containers)");
                    if (c.LivenessProbe is null) Problem($"{pc.Where}: no livenessProbe");
                    break;
            }
        }

        private void Security(PodContainer pc)
        {
            var c = pc.Container.SecurityContext;
            var pod = pc.Pod.SecurityContext;
            var user = c?.RunAsUser ?? pod?.RunAsUser;
            var nonRoot = c?.RunAsNonRoot ?? pod?.RunAsNonRoot;
            if (user is null) Problem($"{pc.Where}: runs as the image's user (no runAsUser): say which non-root user");
            else if (user == 0) Problem($"{pc.Where}: runs as root (runAsUser 0)");
            if ((c?.RunAsGroup ?? pod?.RunAsGroup) == 0) Problem($"{pc.Where}: runs with group root (runAsGroup 0)");
            if (nonRoot != true) Problem($"{pc.Where}: runAsNonRoot is not true");
            if (c?.ReadOnlyRootFilesystem != true) Problem($"{pc.Where}: the root file system is writable (readOnlyRootFilesystem is not true)");
            if (c?.AllowPrivilegeEscalation != false) Problem($"{pc.Where}: allowPrivilegeEscalation is not false");
            if (c?.Privileged == true) Problem($"{pc.Where}: privileged");
            if (c?.Capabilities?.Drop?.Contains("ALL") != true) Problem($"{pc.Where}: capabilities are not dropped (drop: [ALL])");
            if (c?.Capabilities?.Add is { Count: > 0 } add) Problem($"{pc.Where}: adds capabilities {string.Join(",", add)}");
            if ((c?.SeccompProfile ?? pod?.SeccompProfile)?.Type is not ("RuntimeDefault" or "Localhost")) Problem($"{pc.Where}: no seccomp profile (RuntimeDefault)");
            if (pc.Pod.HostNetwork == true || pc.Pod.HostPID == true || pc.Pod.HostIPC == true) Problem($"{pc.Owner}: shares a host namespace");
        }

        private void Resources(PodContainer pc)
        {
            var r = pc.Container.Resources;
            if (r?.Requests is null || !r.Requests.ContainsKey("cpu") || !r.Requests.ContainsKey("memory"))
                Problem($"{pc.Where}: no cpu and memory requests");
            if (r?.Limits is null || !r.Limits.ContainsKey("memory")) Problem($"{pc.Where}: no memory limit");
            if (r?.Requests is null || !r.Requests.TryGetValue("memory", out var memory)) return;
            // Our tools' containers: at least what bench/RESULTS.md measured (the tool's peak, plus cron's RSS
            // where cron runs it).
            var image = ImageName(pc.Container.Image);
            if (image is not ("infra-tools/pull" or "infra-tools/backup")) return;
            var (tool, cron) = BenchRss();
            var cronRuns = RunsCron(pc.Container);
            var needed = tool + (cronRuns ? cron : 0);
            var mib = memory.ToDecimal() / (1024m * 1024m);
            if ((double)mib < needed)
                Problem($"{pc.Where}: requests {memory} of memory, less than the {needed:0.#} MiB bench/RESULTS.md measured");
            if (r.Limits?.TryGetValue("memory", out var limit) == true && limit.ToDecimal() < memory.ToDecimal())
                Problem($"{pc.Where}: memory limit {limit} is below its request {memory}");
        }

        private void Secrets(PodContainer pc)
        {
            // A Secret volume, or a projected volume made of Secrets only.
            static bool FromSecrets(V1Volume? v) => v?.Secret is not null || v?.Projected?.Sources is { Count: > 0 } sources && sources.All(p => p.Secret is not null);
            var secretMounts = (pc.Container.VolumeMounts ?? [])
                .Where(m => FromSecrets(pc.Pod.Volumes?.FirstOrDefault(v => v.Name == m.Name)))
                .Select(m => m.MountPath.TrimEnd('/') + "/").ToList();
            foreach (var e in pc.Container.Env ?? [])
            {
                if (CredentialVariables.Contains(e.Name))
                    Problem($"{pc.Where}: {e.Name} is set in the environment; credentials come from a Secret through {e.Name}_FILE");
                if (e.Name.EndsWith("_FILE", StringComparison.Ordinal) && CredentialVariables.Contains(e.Name[..^5])
                    && (e.Value is null || !secretMounts.Any(p => e.Value.StartsWith(p, StringComparison.Ordinal))))
                    Problem($"{pc.Where}: {e.Name}={e.Value} is not a file of a mounted Secret");
            }
            foreach (var cm in objects.OfType<V1ConfigMap>())
                foreach (var key in cm.Data?.Keys ?? [])
                    if (CredentialVariables.Contains(key)) Problem($"ConfigMap/{cm.Metadata.Name}: holds {key}, which belongs in a Secret");
        }

        /// <summary>The web root volume is mounted whole: a subPath mount never sees a replaced entry
        /// (kubernetes#50345), and the `current` link of release mode must be followed, not mounted.</summary>
        private void WebRoot(string owner, V1PodSpec pod)
        {
            var root = NginxRoot();
            var nginx = (pod.Containers ?? []).FirstOrDefault(c => c.Name == "nginx");
            if (nginx is null) return;
            var volumes = (nginx.VolumeMounts ?? [])
                .Where(m => root == m.MountPath.TrimEnd('/') || root.StartsWith(m.MountPath.TrimEnd('/') + "/", StringComparison.Ordinal))
                .Select(m => m.Name).ToHashSet();
            if (volumes.Count == 0) Problem($"{owner}: nginx has no volume at its web root {root}");
            foreach (var c in (pod.InitContainers ?? []).Concat(pod.Containers ?? []))
                foreach (var m in c.VolumeMounts ?? [])
                {
                    if (!volumes.Contains(m.Name)) continue;
                    if (!string.IsNullOrEmpty(m.SubPath) || !string.IsNullOrEmpty(m.SubPathExpr))
                        Problem($"{owner} {c.Name}: the web root volume {m.Name} is mounted with subPath {m.SubPath ?? m.SubPathExpr} at {m.MountPath}; "
                            + "mount the whole directory (a subPath mount never sees a replaced entry, kubernetes#50345)");
                    if (m.MountPath.TrimEnd('/').EndsWith("/current", StringComparison.Ordinal))
                        Problem($"{owner} {c.Name}: the web root volume {m.Name} is mounted at {m.MountPath}: mount the directory that holds the current link, not the link");
                }
        }

        private void Grace(string owner, V1PodSpec pod)
        {
            var all = (pod.InitContainers ?? []).Concat(pod.Containers ?? []).ToList();
            var crons = all.Where(RunsCron).ToList();
            var watchers = all.Where(c => ImageName(c.Image) == "infra-tools/pull").ToList();
            var actual = pod.TerminationGracePeriodSeconds ?? 30;
            if (crons.Count > 0)
            {
                var cronSeconds = crons.Max(c => CronGraceSeconds(c)) + CronKillDelaySeconds;
                if (actual < MainStopSeconds + cronSeconds)
                    Problem($"{owner}: terminationGracePeriodSeconds {actual} is shorter than the main containers' {MainStopSeconds} s plus cron's stop "
                        + $"({cronSeconds} s: -grace-period, then SIGTERM and SIGKILL {CronKillDelaySeconds} s later)");
            }
            if (watchers.Count > 0)
            {
                var watchSeconds = watchers.Max(c => GraceOption(c, "stop-grace", WatchDefaultGraceSeconds));
                if (actual < MainStopSeconds + watchSeconds)
                    Problem($"{owner}: terminationGracePeriodSeconds {actual} is shorter than the main containers' {MainStopSeconds} s plus content-pull --watch's "
                        + $"--stop-grace ({watchSeconds} s for a running pull)");
            }
        }

        /// <summary>cron runs in the backup image (its entrypoint) or where the command names it; the pull image
        /// runs content-pull --watch.</summary>
        private static bool RunsCron(V1Container c) =>
            c.Command is { } command ? command.Any(a => a.EndsWith("/cron", StringComparison.Ordinal) || a == "cron")
                : ImageName(c.Image) is "infra-tools/backup";

        private static int CronGraceSeconds(V1Container c) => GraceOption(c, "grace-period", CronDefaultGraceSeconds);

        /// <summary>Seconds of a duration option (-NAME D, --NAME D or =D) of a container's command line, or the default.</summary>
        private static int GraceOption(V1Container c, string name, int defaultSeconds)
        {
            var words = (c.Command ?? []).Concat(c.Args ?? []).ToList();
            for (var i = 0; i < words.Count; i++)
            {
                var w = words[i].TrimStart('-');
                if (w == name && i + 1 < words.Count) return Seconds(words[i + 1]);
                if (w.StartsWith(name + "=", StringComparison.Ordinal)) return Seconds(w[(name.Length + 1)..]);
            }
            return defaultSeconds;

            int Seconds(string text) =>
                (int)Math.Ceiling(InfraTools.Time.GoDuration.Parse(text, name, TimeSpan.FromDays(1)).TotalSeconds);
        }

        /// <summary>A pod that writes a ReadWriteOnce volume runs once: one replica, replaced by Recreate.</summary>
        private void SingleWriter(string owner, V1PodSpec pod, V1Deployment deployment)
        {
            var claims = (pod.Volumes ?? []).Where(v => v.PersistentVolumeClaim is not null).Select(v => v.PersistentVolumeClaim.ClaimName).ToList();
            var rwo = objects.OfType<V1PersistentVolumeClaim>()
                .Where(p => claims.Contains(p.Metadata.Name) && p.Spec.AccessModes.Any(m => m is "ReadWriteOnce" or "ReadWriteOncePod")).ToList();
            if (rwo.Count == 0) return;
            if ((deployment.Spec.Replicas ?? 1) != 1) Problem($"{owner}: {deployment.Spec.Replicas} replicas on the ReadWriteOnce volume {rwo[0].Metadata.Name}");
            if (deployment.Spec.Strategy?.Type != "Recreate")
                Problem($"{owner}: strategy is not Recreate, so a new pod would wait for the old one's ReadWriteOnce volume {rwo[0].Metadata.Name}");
        }

        // ---- docker-compose.yaml agreement ----

        /// <summary>The repository and path of an image without its tag (and without a registry prefix).</summary>
        private static string ImageName(string image)
        {
            var name = StripRegistry(image);
            var colon = name.LastIndexOf(':');
            return colon < 0 ? name : name[..colon];
        }

        private static string StripRegistry(string image)
        {
            var slash = image.IndexOf('/');
            if (slash < 0) return image;
            var first = image[..slash];
            return first.Contains('.') || first.Contains(':') || first == "localhost" ? image[(slash + 1)..] : image;
        }

        /// <summary>`docker-compose config` writes a literal $ as $$, as the compose file has it.</summary>
        private static string Unescape(string composeValue) => composeValue.Replace("$$", "$", StringComparison.Ordinal);

        private void Compose(PodContainer pc)
        {
            var c = pc.Container;
            var service = ComposeWithSecrets.Map("services").MapOrNull(c.Name);
            if (service is null)
            {
                Problem($"{pc.Where}: no docker-compose.yaml service of that name (a container is named after the service whose image and arguments it runs)");
                return;
            }
            var composeImage = service.Scalar("image") ?? "";
            if (StripRegistry(c.Image) != composeImage)
                Problem($"{pc.Where}: image {c.Image} is not docker-compose.yaml's {c.Name} image {composeImage} "
                    + "(a registry in front is allowed, another name or tag is not)");

            var env = Environment(pc);
            var referenced = (c.Command ?? []).Concat(c.Args ?? []).SelectMany(References).ToHashSet();
            var composeEnv = (service.MapOrNull("environment")?.Entries() ?? [])
                .ToDictionary(e => e.Key, e => Unescape(((YamlScalarNode)e.Value).Value ?? ""));
            foreach (var (name, value) in composeEnv)
            {
                // docker-compose.secrets.yaml blanks the variables whose *_FILE it sets: they stay unset here.
                if (value == "" && composeEnv.ContainsKey(name + "_FILE")) continue;
                if (!env.TryGetValue(name, out var mine)) Problem($"{pc.Where}: {name} is not set (docker-compose.yaml sets it for {c.Name})");
                else if (mine != value) Problem($"{pc.Where}: {name} is '{mine}', docker-compose.yaml with .env.example says '{value}'");
            }
            foreach (var name in env.Keys.Where(n => !composeEnv.ContainsKey(n) && !referenced.Contains(n)))
                Problem($"{pc.Where}: {name} is set, but neither docker-compose.yaml's {c.Name} nor a $({name}) in the arguments uses it");

            var command = (c.Command ?? []).Select(a => Expand(a, env)).ToList();
            var args = (c.Args ?? []).Select(a => Expand(a, env)).ToList();
            var composeEntrypoint = service.Strings("entrypoint").Select(Unescape).ToList();
            var composeCommand = service.Strings("command").Select(Unescape).ToList();
            if (c.Name == "backup")
            {
                // The backup image's entrypoint, with this pod's part of the crontab instead of the baked one.
                var entrypoint = new Dockerfile(Stack.ToolsDockerfile).Stages.First(s => s.Name == "backup").All("ENTRYPOINT").Last().ExecForm ?? [];
                if (command.Count != entrypoint.Length || !command.Take(entrypoint.Length - 1).SequenceEqual(entrypoint.Take(entrypoint.Length - 1)))
                    Problem($"{pc.Where}: command [{string.Join(" ", command)}] is not the backup image's entrypoint [{string.Join(" ", entrypoint)}] with another crontab");
            }
            else if (!command.SequenceEqual(composeEntrypoint))
                Problem($"{pc.Where}: command [{string.Join(" ", command)}] differs from docker-compose.yaml's entrypoint [{string.Join(" ", composeEntrypoint)}]");
            // Traefik finds its routes through Kubernetes Ingress objects and a file instead of Docker labels.
            static bool Provider(string a, string name) => a.StartsWith($"--providers.{name}", StringComparison.OrdinalIgnoreCase);
            var mineArgs = args.Where(a => !Provider(a, "kubernetesIngress") && !Provider(a, "file")).ToList();
            var theirArgs = composeCommand.Where(a => !Provider(a, "docker")).ToList();
            if (!mineArgs.SequenceEqual(theirArgs))
            {
                var first = Enumerable.Range(0, Math.Max(mineArgs.Count, theirArgs.Count))
                    .First(i => i >= mineArgs.Count || i >= theirArgs.Count || mineArgs[i] != theirArgs[i]);
                var mine = first < mineArgs.Count ? mineArgs[first] : "(none)";
                var theirs = first < theirArgs.Count ? theirArgs[first] : "(none)";
                Problem($"{pc.Where}: args differ from docker-compose.yaml's command at {first}: '{mine}' here, '{theirs}' there");
            }
        }

        /// <summary>The backup sidecars' crontabs are images/backup/crontab split by where the data is.</summary>
        private void BackupCrontabs(List<PodContainer> containers)
        {
            var jobs = new List<(string Options, string Job)>();
            foreach (var pc in containers.Where(p => p.Container.Name == "backup"))
            {
                var path = pc.Container.Command?.LastOrDefault() ?? "";
                var mount = (pc.Container.VolumeMounts ?? []).FirstOrDefault(m => path.StartsWith(m.MountPath.TrimEnd('/') + "/", StringComparison.Ordinal));
                var map = mount is null ? null : pc.Pod.Volumes?.FirstOrDefault(v => v.Name == mount.Name)?.ConfigMap;
                var key = mount is null ? "" : path[(mount.MountPath.TrimEnd('/').Length + 1)..];
                if (map is null || ConfigMap(map.Name)?.Data?.TryGetValue(key, out var text) != true || text is null)
                {
                    Problem($"{pc.Where}: its crontab {path} is not a key of a mounted ConfigMap");
                    continue;
                }
                jobs.AddRange(CrontabJobs(text));
            }
            var image = CrontabJobs(File.ReadAllText(Stack.Path("images", "backup", "crontab")));
            foreach (var job in image.Where(j => jobs.Count(k => k == j) != 1))
                Problem($"images/backup/crontab's job '{job.Job}' (with '{job.Options}' above it) is in {jobs.Count(k => k == job)} "
                    + "of the backup sidecars' crontabs, not exactly one");
            foreach (var job in jobs.Where(j => !image.Contains(j)))
                Problem($"a backup sidecar runs '{job.Job}' (with '{job.Options}' above it), which images/backup/crontab does not have");
        }

        /// <summary>The site's route is the one the nginx labels of docker-compose.yaml give Traefik.</summary>
        private void Ingress()
        {
            var labels = Stack.Service("nginx").Map("labels").Entries().ToDictionary(e => e.Key, e => ((YamlScalarNode)e.Value).Value ?? "");
            var ingress = objects.OfType<V1Ingress>().FirstOrDefault(i => i.Metadata.Name == "site");
            if (ingress is null) { Problem("no Ingress site"); return; }
            var a = ingress.Metadata.Annotations ?? new Dictionary<string, string>();
            string Annotation(string key) => a.TryGetValue("traefik.ingress.kubernetes.io/" + key, out var v) ? v : "(none)";
            if ($"Host(`{ingress.Spec.Rules.First().Host}`)" != labels["traefik.http.routers.site.rule"])
                Problem($"Ingress/site: host {ingress.Spec.Rules.First().Host} is not the rule {labels["traefik.http.routers.site.rule"]} of docker-compose.yaml");
            if (Annotation("router.entrypoints") != labels["traefik.http.routers.site.entrypoints"])
                Problem($"Ingress/site: entry points {Annotation("router.entrypoints")}, docker-compose.yaml says {labels["traefik.http.routers.site.entrypoints"]}");
            if (Annotation("router.tls.certresolver") != labels["traefik.http.routers.site.tls.certresolver"])
                Problem($"Ingress/site: certificate resolver {Annotation("router.tls.certresolver")}, docker-compose.yaml says {labels["traefik.http.routers.site.tls.certresolver"]}");
            if (Annotation("router.middlewares") != labels["traefik.http.routers.site.middlewares"].Replace("@docker", "@file"))
                Problem($"Ingress/site: middlewares {Annotation("router.middlewares")}, docker-compose.yaml says {labels["traefik.http.routers.site.middlewares"]}");
            // The middleware itself, from the file provider's ConfigMap.
            var file = objects.OfType<V1ConfigMap>().SelectMany(c => c.Data ?? new Dictionary<string, string>())
                .FirstOrDefault(kv => kv.Value.Contains("security-headers:", StringComparison.Ordinal));
            if (file.Value is null) { Problem("no ConfigMap holds the security-headers middleware"); return; }
            var headers = Yaml.Parse(file.Value).Map("http").Map("middlewares").Map("security-headers").Map("headers")
                .Entries().ToDictionary(e => e.Key.ToLowerInvariant(), e => ((YamlScalarNode)e.Value).Value ?? "");
            const string prefix = "traefik.http.middlewares.security-headers.headers.";
            var composeHeaders = labels.Where(l => l.Key.StartsWith(prefix, StringComparison.Ordinal))
                .ToDictionary(l => l.Key[prefix.Length..].ToLowerInvariant(), l => l.Value);
            foreach (var (key, value) in composeHeaders)
                if (!headers.TryGetValue(key, out var mine) || mine != value)
                    Problem($"security-headers middleware: {key} is '{mine ?? "(none)"}', docker-compose.yaml says '{value}'");
            foreach (var key in headers.Keys.Except(composeHeaders.Keys))
                Problem($"security-headers middleware: {key} is not in docker-compose.yaml");
        }
    }
}
