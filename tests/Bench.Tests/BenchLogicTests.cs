namespace InfraTools.Tests;

/// <summary>
/// The bench script's own logic, fast and without an S3 server: bench/test_bench.py (the delay proxy's round trip,
/// its byte-for-byte forwarding under its bound, the request count from radosgw's log, the slopes per 1,000
/// objects and the scale report's met / no / not measured targets). It measures no tool.
/// </summary>
public class BenchLogicTests
{
    [Fact]
    public async Task Bench_script_logic_tests_pass()
    {
        var run = await ProcessRunner.RunAsync("python3", [Path.Combine(RepoPaths.Root, "bench", "test_bench.py"), "-v"],
            timeout: TimeSpan.FromMinutes(2), workingDirectory: RepoPaths.Root);

        Assert.True(run.ExitCode == 0, run.ToString());
        Assert.Matches(@"Ran [1-9][0-9]* tests", run.Stderr);
        Assert.Contains("OK", run.Stderr);
    }
}
