using InfraTools.Sync;

namespace InfraTools.Tests;

public class GlobFilterTests
{
    [Theory]
    [InlineData("*.bak", "a.bak", true)]
    [InlineData("*.bak", "deep/dir/a.bak", true)]
    [InlineData("*.bak", "a.bak.html", false)]
    [InlineData("drafts/*", "drafts/post.html", true)]
    [InlineData("drafts/*", "drafts/2024/post.html", true)] // the directory drafts/2024 matches, so everything below it
    [InlineData("drafts/*.md", "drafts/2024/post.md", false)]
    [InlineData("drafts/**/*.md", "drafts/2024/post.md", true)]
    [InlineData("drafts/**/*.md", "drafts/post.md", true)]
    [InlineData("**/secret", "a/b/secret/key", true)]
    [InlineData("private", "private/x.html", true)]
    [InlineData("private", "public/private.html", false)]
    [InlineData("file?.txt", "file1.txt", true)]
    [InlineData("file?.txt", "file10.txt", false)]
    [InlineData("[ab].txt", "b.txt", true)]
    [InlineData("[!ab].txt", "b.txt", false)]
    public void Matches_like_an_operator_expects(string pattern, string path, bool excluded) =>
        Assert.Equal(excluded, new GlobFilter([pattern]).Excludes(path));

    [Fact]
    public void No_patterns_exclude_nothing() => Assert.False(new GlobFilter([]).Excludes("anything"));
}
