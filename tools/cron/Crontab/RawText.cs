using System.Buffers;
using System.Text;

namespace InfraTools.Cron.Crontab;

/// <summary>
/// Text that keeps the bytes it was read from, as Go's strings do (supercronic hands a crontab's bytes to the
/// shell unchanged): valid UTF-8 decodes as usual, and each byte of an invalid sequence becomes the lone
/// surrogate U+DC80 + byte (Python's "surrogateescape"), which <see cref="GetBytes"/> turns back into that
/// byte. A Latin-1 "café" in a command reaches the job as the bytes 63 61 66 E9, not as U+FFFD.
/// </summary>
public static class RawText
{
    private const char EscapeBase = '\uDC00';

    public static string Read(string path)
    {
        var bytes = File.ReadAllBytes(path);
        var span = bytes.AsSpan();
        // As File.ReadAllText did: a UTF-8 byte order mark is not part of the first line.
        if (span.StartsWith("\uFEFF"u8)) span = span[3..];
        return Decode(span);
    }

    public static string Decode(ReadOnlySpan<byte> bytes)
    {
        if (System.Text.Unicode.Utf8.IsValid(bytes)) return Encoding.UTF8.GetString(bytes);
        var sb = new StringBuilder(bytes.Length);
        Span<char> chars = stackalloc char[2];
        while (!bytes.IsEmpty)
        {
            if (Rune.DecodeFromUtf8(bytes, out var rune, out var consumed) == OperationStatus.Done)
            {
                sb.Append(chars[..rune.EncodeToUtf16(chars)]);
                bytes = bytes[consumed..];
            }
            else
            {
                sb.Append((char)(EscapeBase + bytes[0]));
                bytes = bytes[1..];
            }
        }
        return sb.ToString();
    }

    /// <summary>The escaped byte a char stands for, or -1 (a lone surrogate U+DC80..U+DCFF stands for byte 0x80..0xFF).</summary>
    public static int EscapedByte(string text, int index)
    {
        var c = text[index];
        if (c is < '\uDC80' or > '\uDCFF') return -1;
        return index > 0 && char.IsHighSurrogate(text[index - 1]) ? -1 : c - EscapeBase;
    }

    /// <summary>How many bytes <see cref="GetBytes"/> writes for <paramref name="text"/>.</summary>
    public static int ByteCount(string text)
    {
        var count = 0;
        for (var i = 0; i < text.Length; i++)
        {
            var c = text[i];
            if (c < 0x80) count++;
            else if (c < 0x800) count += 2;
            else if (char.IsHighSurrogate(c) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1]))
            {
                count += 4;
                i++;
            }
            else if (EscapedByte(text, i) >= 0) count++;
            else count += 3; // other characters; an unpaired surrogate becomes U+FFFD (3 bytes)
        }
        return count;
    }

    /// <summary>The bytes the text was read from (UTF-8 for everything else); <paramref name="destination"/> holds at least <see cref="ByteCount"/> bytes.</summary>
    public static int GetBytes(string text, Span<byte> destination)
    {
        var w = 0;
        for (var i = 0; i < text.Length; i++)
        {
            var c = text[i];
            if (c < 0x80)
            {
                destination[w++] = (byte)c;
                continue;
            }
            if (EscapedByte(text, i) is var b and >= 0)
            {
                destination[w++] = (byte)b;
                continue;
            }
            Rune rune;
            if (char.IsHighSurrogate(c) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1])) rune = new Rune(c, text[++i]);
            else if (char.IsSurrogate(c)) rune = Rune.ReplacementChar;
            else rune = new Rune(c);
            w += rune.EncodeToUtf8(destination[w..]);
        }
        return w;
    }

    /// <summary>The text with every escaped byte shown as U+FFFD, as Go's JSON encoder writes invalid UTF-8.</summary>
    public static string Display(string text)
    {
        if (!HasEscapes(text)) return text;
        var chars = text.ToCharArray();
        for (var i = 0; i < chars.Length; i++)
            if (EscapedByte(text, i) >= 0) chars[i] = '\uFFFD';
        return new string(chars);
    }

    public static bool HasEscapes(string text)
    {
        for (var i = 0; i < text.Length; i++)
            if (text[i] is >= '\uDC80' and <= '\uDCFF' && EscapedByte(text, i) >= 0) return true;
        return false;
    }
}
