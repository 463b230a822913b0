using InfraTools.ContentPull.Watch;

namespace InfraTools.Tests;

public class PullTriggerTests
{
    [Fact]
    public async Task Requests_while_one_is_pending_coalesce_into_it()
    {
        var trigger = new PullTrigger();
        Assert.Null(await trigger.WaitAsync(TimeSpan.FromMilliseconds(20), CancellationToken.None));
        var accepted = Enumerable.Range(0, 50).AsParallel().Count(i => trigger.Request($"trigger {i}"));
        Assert.Equal(1, accepted);
        Assert.StartsWith("trigger ", await trigger.WaitAsync(TimeSpan.FromSeconds(5), CancellationToken.None));
        // Taken: the next wait sees nothing until a new request.
        Assert.Null(await trigger.WaitAsync(TimeSpan.FromMilliseconds(20), CancellationToken.None));
        Assert.True(trigger.Request("again"));
        Assert.Equal("again", await trigger.WaitAsync(TimeSpan.Zero, CancellationToken.None));
    }
}
