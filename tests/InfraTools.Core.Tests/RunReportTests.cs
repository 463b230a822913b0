using System.Runtime.CompilerServices;
using System.Text;
using InfraTools.Cli;

namespace InfraTools.Tests;

public class RunReportTests
{
    private sealed class FinishedRun
    {
        public long Files { get; set; }
        public byte[] Heavy { get; } = new byte[1024 * 1024]; // what a finished run holds: listings, plan, buffers
    }

    /// <summary>A report whose Live gauges read a run object that nothing else references (not inlined: no local of the test keeps the run).</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static (RunReport Report, WeakReference Run) ReportOfARun()
    {
        var run = new FinishedRun { Files = 7 };
        var report = new RunReport("tool", "test run");
        report.Live = () => [new ReportGauge("tool_last_run_files", "Files.", run.Files)];
        return (report, new WeakReference(run));
    }

    [Fact]
    public void A_stopped_report_keeps_its_gauges_but_no_longer_holds_its_run()
    {
        // The watcher keeps its last pull's report to render it every 30 s; through the Live closure it held the
        // whole pull (its release directory and publisher) on the heap of an idle watcher.
        var (report, run) = ReportOfARun();
        GC.Collect();
        Assert.True(run.IsAlive, "before Stop the report's Live closure holds the run");

        report.Stop();
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
        Assert.False(run.IsAlive, "after Stop the report still holds the run");
        Assert.Null(report.Live);
        var text = Encoding.UTF8.GetString(report.Render(null, success: true));
        Assert.Contains("tool_last_run_files 7", text);
        // Stopping twice changes nothing (the gauges are not added again).
        report.Stop();
        Assert.Single(report.Gauges, g => g.Name == "tool_last_run_files");
    }
}
