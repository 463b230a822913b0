using System.Net.Http.Headers;
using InfraTools.S3;

namespace InfraTools.Tests;

/// <summary>The re-signing used for virtual-host addressing, checked against AWS's published S3 SigV4 examples.</summary>
public class SigV4Tests
{
    private const string SecretKey = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
    private const string EmptyHash = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    [Fact]
    public void Header_signature_matches_the_AWS_GetObject_example()
    {
        // https://docs.aws.amazon.com/AmazonS3/latest/API/sig-v4-header-based-auth.html, "GET Object".
        var request = new HttpRequestMessage(HttpMethod.Get, "https://examplebucket.s3.amazonaws.com/test.txt");
        request.Headers.Range = new RangeHeaderValue(0, 9);
        request.Headers.TryAddWithoutValidation("x-amz-content-sha256", EmptyHash);
        request.Headers.TryAddWithoutValidation("x-amz-date", "20130524T000000Z");
        request.Headers.TryAddWithoutValidation("Authorization",
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, Signature=0000");

        SigV4.Resign(request, SecretKey);

        Assert.Equal("AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41",
            request.Headers.NonValidated["Authorization"].ToString());
    }

    [Fact]
    public void Query_signature_matches_the_AWS_presigned_URL_example()
    {
        // https://docs.aws.amazon.com/AmazonS3/latest/API/sigv4-query-string-auth.html
        var request = new HttpRequestMessage(HttpMethod.Get,
            "https://examplebucket.s3.amazonaws.com/test.txt?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host&X-Amz-Signature=0000");

        SigV4.Resign(request, SecretKey);

        Assert.EndsWith("X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404", request.RequestUri!.Query);
    }

    [Fact]
    public void Canonical_query_sorts_and_encodes_names_and_values()
    {
        Assert.Equal("delimiter=&list-type=2&prefix=a%20b%2Fc%2B", SigV4.CanonicalQuery("?prefix=a%20b%2Fc%2B&list-type=2&delimiter", skip: null));
    }
}
