using InfraTools.Sync;

namespace InfraTools.Tests;

public class KeyPathsTests
{
    [Theory]
    [InlineData("site/index.html", "site/", KeyKind.File, "index.html")]
    [InlineData("site/css/a b+c.css", "site/", KeyKind.File, "css/a b+c.css")]
    [InlineData("site/docs/", "site/", KeyKind.Folder, "docs")]
    [InlineData("site/", "site/", KeyKind.Root, "")]
    [InlineData("ünï/çødé.html", "", KeyKind.File, "ünï/çødé.html")]
    [InlineData(".well-known/security.txt", "", KeyKind.File, ".well-known/security.txt")]
    public void Safe_keys_map_below_the_destination(string key, string prefix, KeyKind kind, string relative)
    {
        var mapped = KeyPaths.Map(key, prefix);
        Assert.Equal(kind, mapped.Kind);
        Assert.Equal(relative, mapped.RelativePath);
        Assert.Null(mapped.Problem);
    }

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
    public void Hostile_keys_are_refused_with_the_reason(string key, string reason)
    {
        var mapped = KeyPaths.Map(key, "");
        Assert.Equal(KeyKind.Unsafe, mapped.Kind);
        Assert.Contains(reason, mapped.Problem);
    }

    [Fact]
    public void A_name_like_a_temporary_file_is_an_ordinary_key()
    {
        // Our temporary files carry a tag recorded in the state directory (TempNames): a user's ".x.tmp-1-2" is a file.
        Assert.Equal(KeyKind.File, KeyPaths.Map("a/.index.html.tmp-12-3", "").Kind);
    }

    [Fact]
    public void Names_longer_than_the_file_system_allows_are_refused()
    {
        Assert.Equal(KeyKind.File, KeyPaths.Map(new string('n', 255), "").Kind);
        Assert.Contains("longer than 255 bytes", KeyPaths.Map(new string('n', 256), "").Problem);
        Assert.Contains("longer than 255 bytes", KeyPaths.Map(new string('é', 128), "").Problem); // 256 bytes in UTF-8
        Assert.Contains("longer than", KeyPaths.Map(string.Join('/', Enumerable.Repeat(new string('d', 200), 20)), "").Problem);
    }
}
