namespace InfraTools.Tests;

/// <summary>
/// bench/run.sh --quick as a smoke test: the benchmark runs to the end against its own S3 server, every tool's
/// tree equals the corpus, and the results file is written where it was told (never bench/RESULTS.md).
/// It checks completeness and equality only, never a time.
/// </summary>
public class BenchSmokeTests
{
    [Fact]
    public async Task Quick_benchmark_completes_and_every_tool_produces_the_corpus_byte_for_byte()
    {
        using var dir = new TempDir("bench");
        var results = dir.Combine("results.md");
        var resultsFile = Path.Combine(RepoPaths.Root, "bench", "RESULTS.md");
        var before = File.Exists(resultsFile) ? File.ReadAllText(resultsFile) : null;

        var run = await ProcessRunner.RunAsync(Path.Combine(RepoPaths.Root, "bench", "run.sh"), ["--quick", "--no-publish", "--output", results],
            timeout: TimeSpan.FromMinutes(5), workingDirectory: RepoPaths.Root);

        Assert.True(run.ExitCode == 0, run.ToString());
        Assert.Contains("trees identical: yes", run.Stdout);
        var written = File.ReadAllText(results);
        Assert.Contains("Trees identical to the corpus after every run of every tool: **yes**", written);
        // Every pull scenario was measured for every tool (a missing measurement shows as n/a).
        var pull = written[written.IndexOf("### Pull", StringComparison.Ordinal)..written.IndexOf("### Push", StringComparison.Ordinal)].Split('\n');
        foreach (var scenario in new[] { "initial", "no-change", "1% changed", "1% deleted" })
        {
            var row = Assert.Single(pull, l => l.StartsWith($"| {scenario} |", StringComparison.Ordinal));
            Assert.DoesNotContain("n/a", row);
        }
        Assert.Equal(before, File.Exists(resultsFile) ? File.ReadAllText(resultsFile) : null);
    }
}
