using System.Security.Cryptography;
using InfraTools.S3;

namespace InfraTools.Tests;

public class ObjectChecksumTests
{
    [Fact]
    public async Task Small_objects_get_the_MD5_of_their_content()
    {
        var data = "hello\n"u8.ToArray();
        Assert.Equal("b1946ac92492d2347c6235b4d2611184", await ObjectChecksum.ComputeETagAsync(new MemoryStream(data), data.Length, default));
    }

    [Fact]
    public async Task Multipart_objects_get_the_MD5_of_the_part_MD5s_and_the_part_count()
    {
        var size = ObjectChecksum.PartSize(20L * 1024 * 1024) + 1234;
        var data = new byte[size];
        new Random(7).NextBytes(data);
        var partSize = (int)ObjectChecksum.PartSize(size);
        var first = MD5.HashData(data.AsSpan(0, partSize));
        var second = MD5.HashData(data.AsSpan(partSize));
        var expected = Convert.ToHexStringLower(MD5.HashData([.. first, .. second])) + "-2";

        Assert.Equal(expected, await ObjectChecksum.ComputeETagAsync(new MemoryStream(data), size, default));
        Assert.True(ObjectChecksum.IsMultipartETag(expected));
    }

    [Fact]
    public void Feeding_in_odd_chunks_gives_the_same_ETag()
    {
        var size = 18L * 1024 * 1024;
        var data = new byte[size];
        new Random(3).NextBytes(data);
        using var whole = new ETagHasher(size);
        whole.Append(data);
        using var chunked = new ETagHasher(size);
        for (var offset = 0; offset < data.Length;)
        {
            var take = Math.Min(777_777, data.Length - offset);
            chunked.Append(data.AsSpan(offset, take));
            offset += take;
        }
        Assert.Equal(whole.Finish(), chunked.Finish());
    }

    [Theory]
    [InlineData("\"ABCDEF\"", "abcdef")]
    [InlineData(" abc-2 ", "abc-2")]
    [InlineData(null, "")]
    public void Normalizes_quoted_and_upper_case_ETags(string? raw, string expected) => Assert.Equal(expected, ObjectChecksum.Normalize(raw));
}
