using System.Globalization;
using System.Text;
using InfraTools.S3;
using InfraTools.Storage;

namespace InfraTools.Tests;

/// <summary>
/// The one walk of a listing page (<see cref="ListingPage"/>, which every listing of S3Store reads its pages with):
/// what it reads from a page, and the pages it refuses because a listing that may not be whole must not decide what
/// to delete (HardeningTests and S3ClientAotTests show those refusals through the tools).
/// </summary>
public class ListingPageTests
{
    private const string Head = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Name>b</Name>";

    private static ListingPage Read(string xml, string? asked = null, string? contentType = "application/xml") =>
        ListingPage.Read(new MemoryStream(Encoding.UTF8.GetBytes(xml)), contentType, asked, "s3://b/site/", "http://127.0.0.1:9");

    [Fact]
    public void A_page_gives_its_objects_in_order_with_keys_decoded_and_ETags_normalized()
    {
        var page = Read(Head + "<EncodingType>url</EncodingType><IsTruncated>true</IsTruncated>"
            + "<Contents><Key>site/a%20b</Key><LastModified>2026-12-02T17:08:02.123Z</LastModified><ETag>&quot;ABC&quot;</ETag><Size>12</Size>"
            + "<Owner><ID>x</ID><Key>not the key</Key></Owner><StorageClass>STANDARD</StorageClass></Contents>"
            + "<Contents/>"
            + "<Contents><Size> 7 </Size><Key>site/%E2%82%AC+plus</Key></Contents>"
            + "<NextContinuationToken>t2</NextContinuationToken></ListBucketResult>");

        Assert.Equal(3, page.Objects.Count);
        Assert.Equal(new StoredObject("site/a b", 12, "abc", new DateTimeOffset(2026, 12, 2, 17, 8, 2, 123, TimeSpan.Zero)), page.Objects[0]);
        Assert.Equal(new StoredObject("", 0, "", DateTimeOffset.UnixEpoch), page.Objects[1]);
        Assert.Equal(new StoredObject("site/€ plus", 7, "", DateTimeOffset.UnixEpoch), page.Objects[2]);
        Assert.Equal("t2", page.NextToken);
    }

    [Fact]
    public void The_last_page_has_no_token()
    {
        const string xml = Head + "<IsTruncated>false</IsTruncated><NextContinuationToken>stale</NextContinuationToken><Contents><Key>k</Key></Contents></ListBucketResult>";
        Assert.Null(Read(xml).NextToken);
        Assert.Single(Read(xml).Objects);
    }

    private const string One = "<Contents><Key>site/a</Key><Size>1</Size></Contents>";

    [Theory]
    [InlineData("<IsTruncated>false</IsTruncated>" + One, null)]
    [InlineData("<IsTruncated>true</IsTruncated><NextContinuationToken>t1</NextContinuationToken>" + One, "t1")]
    [InlineData(One + "<NextContinuationToken>t1</NextContinuationToken><IsTruncated>true</IsTruncated>", "t1")]
    [InlineData("<IsTruncated>true</IsTruncated><Contents><Key>site/x</Key><NextContinuationToken>nested, not ours</NextContinuationToken></Contents><NextContinuationToken>t1</NextContinuationToken>", "t1")]
    public void Whole_pages_pass_whatever_the_order_of_their_elements(string rest, string? token)
    {
        var page = Read(Head + rest + "</ListBucketResult>");
        Assert.Equal(token, page.NextToken);
        Assert.Single(page.Objects);
    }

    [Theory]
    [InlineData(Head + "<IsTruncated>true</IsTruncated><Contents><Key>k</Key></Contents></ListBucketResult>", null, "the listing of s3://b/site/ from http://127.0.0.1:9 is incomplete: the server said more keys follow but gave no continuation token for the rest")]
    [InlineData(Head + "<IsTruncated>true</IsTruncated><NextContinuationToken></NextContinuationToken><Contents><Key>k</Key></Contents></ListBucketResult>", null, "the listing of s3://b/site/ from http://127.0.0.1:9 is incomplete: the server said more keys follow but gave no continuation token for the rest")]
    [InlineData(Head + "<IsTruncated>true</IsTruncated><NextContinuationToken>same</NextContinuationToken></ListBucketResult>", "same", "but gave the same continuation token again")]
    [InlineData("<html><body>hello</body></html>", null, "answered a bucket listing with something that is not an S3 listing (application/xml)")]
    [InlineData("<!DOCTYPE html><html><body>hello</body></html>", null, "not an S3 listing (application/xml)")]
    [InlineData("not xml at all", null, "not an S3 listing")]
    [InlineData(Head + "<IsTruncated>false</IsTruncated><Contents><Key>k</Key></Contents", null, "the listing of s3://b/site/ from http://127.0.0.1:9 is not valid XML")]
    public void Pages_that_are_not_whole_listings_are_refused(string xml, string? asked, string message)
    {
        var ex = Assert.Throws<StoreException>(() => Read(xml, asked));
        Assert.Equal(StoreErrorKind.UnexpectedAnswer, ex.Kind);
        Assert.Contains(message, ex.Message);
    }

    [Fact]
    public void A_web_page_answered_with_200_is_named_by_its_content_type()
    {
        var ex = Assert.Throws<StoreException>(() => Read("<html><body>hello</body></html>", contentType: "text/html"));
        Assert.Equal(StoreErrorKind.UnexpectedAnswer, ex.Kind);
        Assert.Contains("not an S3 listing (text/html)", ex.Message);
    }

    [Theory]
    [InlineData("2026-12-02T17:08:02.123Z")]
    [InlineData("2026-12-02T17:08:02Z")]
    [InlineData("2026-12-02T17:08:02.1234567Z")]
    [InlineData("2026-12-02T17:08:02.5Z")]
    [InlineData("2024-02-29T23:59:59.999Z")]
    [InlineData("2026-12-02T17:08:02.123+01:00")]
    [InlineData("2026-12-02T17:08:02.12345678Z")]
    [InlineData("Wed, 02 Dec 2026 17:08:02 GMT")]
    [InlineData("2026-02-30T17:08:02Z")]
    [InlineData("2026-12-02T24:08:02Z")]
    [InlineData("2026-12-02T17:08:02.Z")]
    [InlineData("")]
    [InlineData(null)]
    public void The_fast_timestamp_reads_what_the_general_parser_reads(string? text)
    {
        var general = DateTimeOffset.TryParse(text, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal, out var value)
            ? value
            : DateTimeOffset.UnixEpoch;
        var fast = ListingPage.Timestamp(text);
        Assert.Equal(general, fast);
        Assert.Equal(general.Offset, fast.Offset);
    }
}
