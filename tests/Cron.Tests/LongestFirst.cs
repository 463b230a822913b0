using Xunit.Abstractions;

[assembly: TestCollectionOrderer("InfraTools.Tests.LongestFirst", "Cron.Tests")]

namespace InfraTools.Tests;

/// <summary>
/// Starts the test classes that run the AOT binary in real time longest first. xunit runs the tests of one class
/// one after the other and at most <c>maxParallelThreads</c> (xunit.runner.json) classes at once, in an order of
/// its own; the 30-second PID-namespace run (issue 5 asks for at least 30 s) is then the project's length only
/// when it starts first, and the other long classes fit beside it. A class missing from the list runs after them.
/// </summary>
public sealed class LongestFirst : ITestCollectionOrderer
{
    /// <summary>The long classes, longest first (their tests' total time, as the trx of a run shows it).</summary>
    private static readonly Type[] Classes =
    [
        typeof(ReaperTests), typeof(OverlapAndOptionsTests), typeof(SupercronicParityTests), typeof(ReloadTests),
        typeof(StopTests), typeof(LoggingTests), typeof(MetricsTests), typeof(ReaperTests.WithoutReaping),
    ];

    public IEnumerable<ITestCollection> OrderTestCollections(IEnumerable<ITestCollection> testCollections) =>
        testCollections.OrderBy(Rank).ThenBy(c => c.DisplayName, StringComparer.Ordinal);

    /// <summary>A class's own collection is named "Test collection for " and its full name (nested: Outer+Inner).</summary>
    private static int Rank(ITestCollection collection)
    {
        var rank = Array.FindIndex(Classes, c => collection.DisplayName == $"Test collection for {c.FullName}");
        return rank < 0 ? Classes.Length : rank;
    }
}
