using InfraTools.Sync;

namespace InfraTools.Tests;

public class KeyPathsTests
{
    [Theory]
    [InlineData("index.html")]
    [InlineData("css/a b+c.css")]
    [InlineData("docs")]
    [InlineData("ünï/çødé.html")]
    [InlineData(".well-known/security.txt")]
    public void Safe_paths_are_accepted(string relative) => Assert.Null(KeyPaths.CheckRelativePath(relative));

    [Theory]
    [InlineData("../evil1.txt", "'..' path segment")]
    [InlineData("a/../../evil2.txt", "'..' path segment")]
    [InlineData("/etc/passwd", "absolute path")]
    [InlineData("a\\..\\b", "backslash")]
    [InlineData("nul\0byte", "NUL")]
    [InlineData("bell\u0007", "control character")]
    [InlineData("line\nbreak", "control character")]
    [InlineData("./x", "'.' path segment")]
    [InlineData("a//b", "empty path segment")]
    [InlineData("dir/", "empty path segment")]
    public void Hostile_paths_are_refused_with_the_reason(string relative, string reason) =>
        Assert.Contains(reason, KeyPaths.CheckRelativePath(relative));

    [Fact]
    public void A_name_like_a_temporary_file_is_an_ordinary_key()
    {
        // Our temporary files carry a tag recorded in the state directory (TempNames): a user's ".x.tmp-1-2" is a file.
        Assert.Null(KeyPaths.CheckRelativePath("a/.index.html.tmp-12-3"));
    }

    [Fact]
    public void Names_longer_than_the_file_system_allows_are_refused()
    {
        Assert.Null(KeyPaths.CheckRelativePath(new string('n', 255)));
        Assert.Contains("longer than 255 bytes", KeyPaths.CheckRelativePath(new string('n', 256)));
        Assert.Contains("longer than 255 bytes", KeyPaths.CheckRelativePath(new string('é', 128))); // 256 bytes in UTF-8
        Assert.Contains("longer than", KeyPaths.CheckRelativePath(string.Join('/', Enumerable.Repeat(new string('d', 200), 20))));
    }
}
