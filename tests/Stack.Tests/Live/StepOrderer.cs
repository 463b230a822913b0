using Xunit.Abstractions;
using Xunit.Sdk;

namespace InfraTools.Tests.Live;

/// <summary>The step of a scenario test: the live stack's tests run in this order, one server's life.</summary>
[AttributeUsage(AttributeTargets.Method)]
public sealed class StepAttribute(int number) : Attribute
{
    public int Number { get; } = number;
}

/// <summary>Orders test cases by their <see cref="StepAttribute"/> (xunit's default order is unspecified).</summary>
public sealed class StepOrderer : ITestCaseOrderer
{
    public const string TypeName = "InfraTools.Tests.Live.StepOrderer";
    public const string AssemblyName = "Stack.Tests";

    public IEnumerable<TTestCase> OrderTestCases<TTestCase>(IEnumerable<TTestCase> testCases) where TTestCase : ITestCase =>
        testCases.OrderBy(t => t.TestMethod.Method.GetCustomAttributes(typeof(StepAttribute).AssemblyQualifiedName!)
            .Select(a => (int)a.GetConstructorArguments().First()).DefaultIfEmpty(int.MaxValue).First());
}
