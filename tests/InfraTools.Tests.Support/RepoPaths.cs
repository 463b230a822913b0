namespace InfraTools.Tests;

/// <summary>Where things are in the repository, found from the test assembly's location.</summary>
public static class RepoPaths
{
    public static string Root { get; } = FindRoot();

    public static string Scripts => Path.Combine(Root, "scripts");

    /// <summary>
    /// The AOT binary of a tool, published by scripts/publish.sh into artifacts/bin. INFRATOOLS_TEST_BIN names
    /// another directory of binaries, e.g. those of an older commit, to show that a test fails on them.
    /// </summary>
    public static string Tool(string name) =>
        RequireBinary(Path.Combine(Environment.GetEnvironmentVariable("INFRATOOLS_TEST_BIN") is { Length: > 0 } bin ? bin : Path.Combine(Root, "artifacts", "bin"), name));

    /// <summary>The AOT test driver, published by scripts/publish.sh --test-driver.</summary>
    public static string TestDriver => RequireBinary(Path.Combine(Root, "artifacts", "test-bin", "s3-driver"));

    private static string RequireBinary(string path) =>
        File.Exists(path)
            ? path
            : throw new InvalidOperationException($"{path} is missing: run scripts/publish.sh --test-driver (scripts/test.sh does) before the tests");

    private static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "Tools.sln"))) return dir.FullName;
        throw new InvalidOperationException("cannot find the repository root (Tools.sln) above " + AppContext.BaseDirectory);
    }
}
