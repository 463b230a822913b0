using System.Globalization;
using System.Net;
using System.Xml;
using InfraTools.Storage;

namespace InfraTools.S3;

/// <summary>
/// One ListObjectsV2 page, read in one walk of its XML: whether it is a whole S3 listing (a web server or proxy
/// at the endpoint URL answers with 200 and a page; a page that says it is truncated but gives no continuation
/// token, or the token it was asked with, would end the listing early or never), and its objects. Every listing
/// of <see cref="S3Store"/>, chained or in ranges, reads its pages with it, once.
/// </summary>
internal sealed class ListingPage
{
    private static readonly XmlReaderSettings ReaderSettings = new()
    {
        DtdProcessing = DtdProcessing.Prohibit, IgnoreComments = true, IgnoreProcessingInstructions = true, IgnoreWhitespace = true,
    };

    public List<StoredObject> Objects { get; } = [];

    /// <summary>The continuation token of a truncated page; null on the last page.</summary>
    public string? NextToken { get; private set; }

    /// <summary>
    /// Reads <paramref name="body"/>, or throws the <see cref="StoreException"/> (UnexpectedAnswer) that says why
    /// it is not a whole listing. <paramref name="askedToken"/> is the continuation token the page was asked
    /// with.
    /// </summary>
    public static ListingPage Read(Stream body, string? contentType, string? askedToken, string where, string endpoint)
    {
        var page = new ListingPage();
        var (isListing, truncated, urlEncoded) = (false, false, false);
        try
        {
            using var reader = XmlReader.Create(body, ReaderSettings);
            if (reader.MoveToContent() == XmlNodeType.Element && reader.LocalName == "ListBucketResult")
            {
                isListing = true;
                reader.Read();
                while (!reader.EOF)
                {
                    // ReadElementContentAsString and Skip move to the next node themselves: read on only when nothing was consumed.
                    if (reader.NodeType != XmlNodeType.Element || reader.Depth != 1)
                    {
                        reader.Read();
                        continue;
                    }
                    switch (reader.LocalName)
                    {
                        case "IsTruncated": truncated = reader.ReadElementContentAsString().Trim() == "true"; break;
                        case "NextContinuationToken": page.NextToken = reader.ReadElementContentAsString(); break;
                        case "EncodingType": urlEncoded = reader.ReadElementContentAsString().Trim() == "url"; break;
                        case "Contents": page.Objects.Add(ReadContents(reader)); break;
                        default: reader.Skip(); break;
                    }
                }
            }
        }
        catch (XmlException ex)
        {
            // Not XML at all, before the root: reported below as not a listing. A listing broken later is not valid XML.
            if (isListing)
                throw new StoreException(StoreErrorKind.UnexpectedAnswer,
                    $"the listing of {where} from {endpoint} is not valid XML ({ex.Message}); an incomplete listing is never used (nothing was deleted)", ex);
        }
        if (!isListing)
            throw new StoreException(StoreErrorKind.UnexpectedAnswer,
                $"the server at {endpoint} answered a bucket listing with something that is not an S3 listing ({contentType ?? "no content type"}): check that S3_ENDPOINT is the S3 service's URL, not a web site or proxy");
        if (!truncated)
        {
            page.NextToken = null;
        }
        else if (string.IsNullOrEmpty(page.NextToken) || page.NextToken == askedToken)
        {
            var problem = string.IsNullOrEmpty(page.NextToken) ? "but gave no continuation token for the rest" : "but gave the same continuation token again";
            throw new StoreException(StoreErrorKind.UnexpectedAnswer,
                $"the listing of {where} from {endpoint} is incomplete: the server said more keys follow {problem}; an incomplete listing is never used (nothing was deleted)");
        }
        if (urlEncoded)
            for (var i = 0; i < page.Objects.Count; i++) page.Objects[i] = page.Objects[i] with { Key = WebUtility.UrlDecode(page.Objects[i].Key) };
        return page;
    }

    /// <summary>One &lt;Contents&gt; element, read in place (no subtree reader: a page holds up to 1,000 of them).</summary>
    private static StoredObject ReadContents(XmlReader reader)
    {
        var (key, size, etag, modified) = ("", 0L, "", (string?)null);
        if (reader.IsEmptyElement)
        {
            reader.Read();
            return new StoredObject(key, size, etag, DateTimeOffset.UnixEpoch);
        }
        reader.Read();
        while (!reader.EOF && !(reader.NodeType == XmlNodeType.EndElement && reader.Depth == 1))
        {
            if (reader.NodeType != XmlNodeType.Element)
            {
                reader.Read();
                continue;
            }
            switch (reader.LocalName)
            {
                case "Key": key = reader.ReadElementContentAsString(); break;
                case "Size": size = long.Parse(reader.ReadElementContentAsString().AsSpan().Trim(), CultureInfo.InvariantCulture); break;
                case "ETag": etag = ObjectChecksum.Normalize(reader.ReadElementContentAsString()); break;
                case "LastModified": modified = reader.ReadElementContentAsString(); break;
                default: reader.Skip(); break;
            }
        }
        reader.Read(); // past </Contents>
        return new StoredObject(key, size, etag, Timestamp(modified));
    }

    /// <summary>S3's LastModified: "2026-12-02T17:08:02.123Z" read directly, anything else by the general parser; the epoch if unreadable.</summary>
    internal static DateTimeOffset Timestamp(string? text)
    {
        if (text is { Length: >= 20 } t && t[^1] == 'Z' && t[4] == '-' && t[7] == '-' && t[10] == 'T' && t[13] == ':' && t[16] == ':'
            && Digits(t, 0, 4, out var year) && Digits(t, 5, 2, out var month) && Digits(t, 8, 2, out var day)
            && Digits(t, 11, 2, out var hour) && Digits(t, 14, 2, out var minute) && Digits(t, 17, 2, out var second)
            && Fraction(t, out var ticks)
            && year >= 1 && month is >= 1 and <= 12 && day >= 1 && day <= DateTime.DaysInMonth(year, month) && hour < 24 && minute < 60 && second < 60)
            return new DateTimeOffset(new DateTime(year, month, day, hour, minute, second, DateTimeKind.Utc).AddTicks(ticks));
        return DateTimeOffset.TryParse(text, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal, out var value)
            ? value
            : DateTimeOffset.UnixEpoch;
    }

    private static bool Digits(string text, int start, int count, out int value)
    {
        value = 0;
        for (var i = start; i < start + count; i++)
        {
            if (text[i] is < '0' or > '9') return false;
            value = value * 10 + (text[i] - '0');
        }
        return true;
    }

    /// <summary>Nothing, or "." and 1-7 digits, between the seconds and the Z.</summary>
    private static bool Fraction(string text, out long ticks)
    {
        ticks = 0;
        var digits = text.Length - 20; // "yyyy-MM-ddTHH:mm:ss" is 19, the Z one more
        if (digits == 0) return true;
        if (text[19] != '.' || digits - 1 is < 1 or > 7) return false;
        if (!Digits(text, 20, digits - 1, out var fraction)) return false;
        ticks = fraction;
        for (var i = digits - 1; i < 7; i++) ticks *= 10;
        return true;
    }
}
