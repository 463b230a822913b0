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
        var first = await trigger.WaitAsync(TimeSpan.FromSeconds(5), CancellationToken.None);
        Assert.StartsWith("trigger ", first!.Reason);
        Assert.True(first.Pull);
        // Taken: the next wait sees nothing until a new request.
        Assert.Null(await trigger.WaitAsync(TimeSpan.FromMilliseconds(20), CancellationToken.None));
        Assert.True(trigger.Request("again"));
        Assert.Equal(new Wake("again", true), await trigger.WaitAsync(TimeSpan.Zero, CancellationToken.None));
    }

    [Fact]
    public async Task A_poll_hint_adds_nothing_to_a_pending_pull_and_a_pull_upgrades_a_pending_hint()
    {
        var trigger = new PullTrigger();
        Assert.True(trigger.Request("deploy"));
        Assert.False(trigger.Hint("notification"));
        Assert.Equal(new Wake("deploy", true), await trigger.WaitAsync(TimeSpan.Zero, CancellationToken.None));

        Assert.True(trigger.Hint("notification"));
        Assert.Equal(0, Enumerable.Range(0, 50).AsParallel().Count(_ => trigger.Hint("notification")));
        Assert.True(trigger.Request("deploy"));
        Assert.False(trigger.Request("deploy"));
        Assert.Equal(new Wake("deploy", true), await trigger.WaitAsync(TimeSpan.Zero, CancellationToken.None));
        Assert.Null(await trigger.WaitAsync(TimeSpan.FromMilliseconds(20), CancellationToken.None));

        Assert.True(trigger.Hint("notification"));
        Assert.Equal(new Wake("notification", false), await trigger.WaitAsync(TimeSpan.Zero, CancellationToken.None));
    }

    [Fact]
    public async Task A_wait_shorter_than_a_millisecond_still_waits_instead_of_returning_at_once()
    {
        // The watch loop waits until the next poll is due; in the last fraction of a millisecond before it, a wait
        // that returned at once made the loop spin (about 100 turns a second, seen in a debug build's counters).
        var trigger = new PullTrigger();
        foreach (var ticks in new long[] { 1, 4_000, 9_999 })
        {
            var wait = trigger.WaitAsync(TimeSpan.FromTicks(ticks), CancellationToken.None);
            Assert.False(wait.IsCompleted, $"a wait of {ticks} ticks returned at once");
            Assert.Null(await wait);
        }
        Assert.Null(await trigger.WaitAsync(TimeSpan.FromTicks(-5), CancellationToken.None));
        Assert.True(trigger.WaitAsync(TimeSpan.Zero, CancellationToken.None).IsCompleted, "a wait of zero is a look, not a wait");
    }
}
