using System.Text;
using InfraTools.Files;
using InfraTools.Logging;
using InfraTools.S3;
using InfraTools.Storage;
using InfraTools.Sync;

namespace InfraTools.Tests;

/// <summary>The local side in-process: the tree walker, temporary names, regular-file opens, log escaping.</summary>
public class LocalFilesTests
{
    private static async Task Sh(string script)
    {
        var result = await ProcessRunner.RunAsync("sh", ["-c", script]);
        Assert.True(result.ExitCode == 0, result.ToString());
    }

    [Fact]
    public async Task The_walker_lists_files_directories_and_other_types_and_never_enters_excluded_directories()
    {
        using var dir = new TempDir("walk");
        dir.Write("a/b/page.html", "12345");
        dir.Write("skip/inner.html", "x");
        await Sh($"cd {dir.Path} && mkfifo a/pipe && ln -s /etc/passwd a/link && ln -s a dirlink && chmod 000 skip");
        File.SetLastWriteTimeUtc(dir.Combine("a/b/page.html"), new DateTime(2026, 3, 4, 5, 6, 7, 890, DateTimeKind.Utc).AddTicks(1234));

        var tree = LocalTree.Scan(dir.Path, new GlobFilter(["skip"]));

        Assert.Equal(["a/b/page.html"], tree.Files.Keys);
        Assert.Equal(5, tree.Files["a/b/page.html"].Size);
        Assert.Equal(File.GetLastWriteTimeUtc(dir.Combine("a/b/page.html")), tree.Files["a/b/page.html"].LastWriteUtc);
        Assert.Equal(["a", "a/b"], tree.Directories.Order(StringComparer.Ordinal));
        Assert.Equal("FIFO", tree.Others["a/pipe"]);
        Assert.Equal("symbolic link", tree.Others["a/link"]);
        Assert.Equal("symbolic link", tree.Others["dirlink"]);
        Assert.Empty(tree.Unreadable); // "skip" is excluded, so never opened
    }

    [Fact]
    public async Task Names_that_are_not_UTF8_are_kept_by_their_bytes_and_not_descended()
    {
        using var dir = new TempDir("walk");
        await Sh($"cd {dir.Path} && touch \"$(printf 'caf\\351')\" && mkdir \"$(printf 'd\\377')\" && touch \"$(printf 'd\\377')/x\" && touch ok");

        var tree = LocalTree.Scan(dir.Path);

        Assert.Equal(["ok"], tree.Files.Keys);
        Assert.Equal(["caf\\xe9", "d\\xff"], tree.Undecodable.Select(u => u.Display).Order(StringComparer.Ordinal));
        Assert.True(tree.Undecodable.Single(u => u.Display == "d\\xff").IsDirectory);
        Assert.Equal([(byte)'c', (byte)'a', (byte)'f', (byte)0xE9], tree.Undecodable.Single(u => !u.IsDirectory).RawRelativePath);
    }

    [Fact]
    public void A_missing_root_is_an_empty_tree_and_a_file_root_is_an_error()
    {
        using var dir = new TempDir("walk");
        Assert.Empty(LocalTree.Scan(dir.Combine("missing")).Files);
        var file = dir.Write("file", "x");
        Assert.Contains("is not a directory", Assert.Throws<IOException>(() => LocalTree.Scan(file)).Message);
    }

    [Fact]
    public void Temporary_names_fit_NAME_MAX_and_only_their_own_tag_recognises_them()
    {
        var names = TempNames.Random();
        var other = TempNames.Random();
        foreach (var name in new[] { "index.html", new string('é', 127), new string('n', 255), "😀" + new string('x', 250) })
        {
            var temp = Path.GetFileName(names.PathFor("/srv/www/" + name));
            Assert.True(Encoding.UTF8.GetByteCount(temp) <= 255, $"{temp} is {Encoding.UTF8.GetByteCount(temp)} bytes");
            Assert.True(names.IsOurs(temp), temp);
            Assert.False(other.IsOurs(temp), temp);
            Assert.DoesNotContain('\uFFFD', temp); // never cut inside a character
        }
        Assert.False(names.IsOurs(".index.html.tmp-1-1"));
        Assert.False(names.IsOurs($"index.html.tmp-{names.Tag}-1")); // not hidden: not ours
        Assert.False(names.IsOurs($".index.html.tmp-{names.Tag}-")); // no counter
    }

    [Fact]
    public async Task Only_regular_files_are_opened_and_a_FIFO_does_not_block()
    {
        using var dir = new TempDir("open");
        var file = dir.Write("file", "content");
        var fifo = dir.Combine("fifo");
        await Sh($"mkfifo {fifo} && ln -s {file} {dir.Combine("link")}");

        await using (var stream = RegularFile.OpenRead(file)) Assert.Equal(7, stream.Length);
        Assert.Contains("is a FIFO, not a regular file", Assert.Throws<IOException>(() => RegularFile.OpenRead(fifo)).Message);
        Assert.Contains("is a symbolic link", Assert.Throws<IOException>(() => RegularFile.OpenRead(dir.Combine("link"))).Message);
        await using (var linked = RegularFile.OpenRead(dir.Combine("link"), followLinks: true)) Assert.Equal(7, linked.Length);
        Assert.Throws<FileNotFoundException>(() => RegularFile.OpenRead(dir.Combine("missing")));
        Assert.Contains("larger than 3 bytes", Assert.Throws<IOException>(() => RegularFile.ReadAllBytes(file, false, 3)).Message);
    }

    [Fact]
    public async Task Resolved_paths_see_through_symbolic_links_also_for_paths_not_created_yet()
    {
        using var dir = new TempDir("resolve");
        Directory.CreateDirectory(dir.Combine("real"));
        await Sh($"ln -s {dir.Combine("real")} {dir.Combine("link")}");

        Assert.Equal(dir.Combine("real"), LocalPaths.Resolve(dir.Combine("link")));
        Assert.Equal(dir.Combine("real", "not", "yet"), LocalPaths.Resolve(dir.Combine("link", "not", "yet") + "/"));
        Assert.True(LocalPaths.IsSameOrInside(dir.Combine("real", "x"), dir.Combine("real")));
        Assert.False(LocalPaths.IsSameOrInside(dir.Combine("realx"), dir.Combine("real")));
    }

    [Theory]
    [InlineData("plain text", "plain text")]
    [InlineData("line\nbreak", "line\\nbreak")]
    [InlineData("cr\rtab\t", "cr\\rtab\\t")]
    [InlineData("bell\u0007del\u007f", "bell\\x07del\\x7f")]
    [InlineData("nel\u0085sep\u2028", "nel\\x85sep\\u2028")]
    [InlineData("ünïcødé ☕", "ünïcødé ☕")]
    public void Log_values_escape_control_characters(string value, string expected) => Assert.Equal(expected, LogText.Escape(value));

    [Theory]
    [InlineData("<Error><Code>NoSuchKey</Code><Message>gone</Message></Error>", "NoSuchKey", "gone")]
    [InlineData("<?xml version=\"1.0\"?><Error><Code>InternalError</Code><Message></Message></Error>", "InternalError", "")]
    [InlineData("<!DOCTYPE html><html><body>404</body></html>", null, null)]
    [InlineData("<Error><Message>no code</Message></Error>", null, "no code")]
    [InlineData("", null, null)]
    [InlineData("not xml at all", null, null)]
    public void S3_error_bodies_are_read_and_anything_else_is_not_taken_for_one(string body, string? code, string? message)
    {
        var (parsedCode, parsedMessage) = S3Errors.ParseError(Encoding.UTF8.GetBytes(body));
        Assert.Equal(code, parsedCode);
        if (code is not null) Assert.Equal(message, parsedMessage);
    }
}

/// <summary>S3HttpHandler turns error answers into StoreExceptions in S3 terms, in-process with a canned inner handler.</summary>
public class ErrorAnswerTests
{
    private sealed class Canned(string body, int status = 200, string contentType = "application/xml") : HttpMessageHandler
    {
        protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken) =>
            Task.FromResult(new HttpResponseMessage((System.Net.HttpStatusCode)status)
            {
                RequestMessage = request,
                Content = new StringContent(body, Encoding.UTF8, contentType),
            });
    }

    private static async Task<HttpResponseMessage> ListAsync(string body, string query = "list-type=2&prefix=site%2F", int status = 200, string contentType = "application/xml")
    {
        var settings = new S3Settings(new Uri("http://127.0.0.1:9/"), new Secrets.Secret("access"), new Secrets.Secret("secret-key"), null, "us-east-1", S3Addressing.Path);
        using var handler = new S3HttpHandler(settings, new Canned(body, status, contentType));
        using var client = new HttpClient(handler);
        return await client.GetAsync($"http://127.0.0.1:9/bucket?{query}");
    }

    [Theory]
    [InlineData(404, "<html><body>Not Found</body></html>", "text/html", "answered HTTP 404 Not Found with text/html, not an S3 error")]
    [InlineData(403, "", "text/plain", "answered HTTP 403 Forbidden with an empty body")]
    [InlineData(500, "<Error><Code>InternalError</Code><Message></Message></Error>", "application/xml", "the server answered InternalError (HTTP 500)")]
    [InlineData(404, "<Error><Code>NoSuchBucket</Code><Message>x</Message></Error>", "application/xml", "bucket 'bucket' does not exist")]
    public async Task Error_answers_to_a_listing_are_errors_in_S3_terms(int status, string body, string contentType, string message)
    {
        var ex = await Assert.ThrowsAsync<StoreException>(() => ListAsync(body, status: status, contentType: contentType));
        Assert.Contains(message, ex.Message);
    }
}
