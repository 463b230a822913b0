using System.Text;

namespace InfraTools.Crypto;

/// <summary>
/// Bech32 as in BIP 173, without its 90-character limit (the age spec lifts it): the encoding of age
/// recipients ("age1...") and identities ("AGE-SECRET-KEY-1..."). A string is all lower or all upper case;
/// the checksum is computed over the lower-case form.
/// </summary>
internal static class Bech32
{
    private const string Charset = "qpzry9x8gf2tvdw0s3jn54khce6mua7l";
    private static readonly uint[] Generator = [0x3b6a57b2, 0x26508e6d, 0x1ea119fa, 0x3d4233dd, 0x2a1462b3];

    /// <summary>Encodes <paramref name="data"/>; an upper-case <paramref name="hrp"/> gives an upper-case string.</summary>
    public static string Encode(string hrp, ReadOnlySpan<byte> data)
    {
        if (hrp.Length == 0 || hrp.Any(c => c < 33 || c > 126)) throw new ArgumentException("invalid bech32 prefix", nameof(hrp));
        var upper = hrp.ToUpperInvariant() == hrp && hrp.ToLowerInvariant() != hrp;
        var lowerHrp = hrp.ToLowerInvariant();
        var values = ConvertBits(data, 8, 5, pad: true)!;
        var text = new StringBuilder(lowerHrp.Length + 1 + values.Count + 6).Append(lowerHrp).Append('1');
        foreach (var v in values) text.Append(Charset[v]);
        foreach (var v in Checksum(lowerHrp, values)) text.Append(Charset[v]);
        var result = text.ToString();
        return upper ? result.ToUpperInvariant() : result;
    }

    /// <summary>
    /// Decodes a bech32 string into its prefix (in the string's case) and data; null with a reason if it is
    /// not valid bech32. The reason never repeats the input (it may be a secret key).
    /// </summary>
    public static (string Hrp, byte[] Data)? Decode(string text, out string? error)
    {
        error = null;
        if (text.Any(c => c < 33 || c > 126)) { error = "it contains a character that bech32 does not use"; return null; }
        if (text.ToLowerInvariant() != text && text.ToUpperInvariant() != text) { error = "it mixes upper and lower case"; return null; }
        var separator = text.LastIndexOf('1');
        if (separator < 1 || separator + 7 > text.Length) { error = "it has no bech32 separator and checksum"; return null; }
        var hrp = text[..separator];
        var lower = text.ToLowerInvariant();
        var values = new List<byte>(text.Length - separator - 1);
        foreach (var c in lower.AsSpan(separator + 1))
        {
            var v = Charset.IndexOf(c);
            if (v < 0) { error = "it contains a character that bech32 does not use"; return null; }
            values.Add((byte)v);
        }
        if (Polymod([.. HrpExpand(hrp.ToLowerInvariant()), .. values]) != 1) { error = "its bech32 checksum is wrong (a typo, or a cut-off line?)"; return null; }
        var data = ConvertBits(values.GetRange(0, values.Count - 6).ToArray(), 5, 8, pad: false);
        if (data is null) { error = "its bech32 padding is invalid"; return null; }
        return (hrp, data.ToArray());
    }

    private static byte[] Checksum(string hrp, List<byte> values)
    {
        var mod = Polymod([.. HrpExpand(hrp), .. values, 0, 0, 0, 0, 0, 0]) ^ 1;
        var result = new byte[6];
        for (var i = 0; i < 6; i++) result[i] = (byte)((mod >> (5 * (5 - i))) & 31);
        return result;
    }

    private static uint Polymod(ReadOnlySpan<byte> values)
    {
        uint chk = 1;
        foreach (var v in values)
        {
            var top = chk >> 25;
            chk = ((chk & 0x1ffffff) << 5) ^ v;
            for (var i = 0; i < 5; i++)
                if (((top >> i) & 1) == 1) chk ^= Generator[i];
        }
        return chk;
    }

    private static byte[] HrpExpand(string hrp)
    {
        var result = new byte[hrp.Length * 2 + 1];
        for (var i = 0; i < hrp.Length; i++)
        {
            result[i] = (byte)(hrp[i] >> 5);
            result[hrp.Length + 1 + i] = (byte)(hrp[i] & 31);
        }
        return result;
    }

    /// <summary>Regroups bits; null when unpadded input has leftover bits that are too many or not zero.</summary>
    private static List<byte>? ConvertBits(ReadOnlySpan<byte> data, int fromBits, int toBits, bool pad)
    {
        var result = new List<byte>(data.Length * fromBits / toBits + 1);
        uint acc = 0;
        var bits = 0;
        var max = (1u << toBits) - 1;
        foreach (var value in data)
        {
            acc = (acc << fromBits) | value;
            bits += fromBits;
            while (bits >= toBits)
            {
                bits -= toBits;
                result.Add((byte)((acc >> bits) & max));
            }
        }
        if (pad)
        {
            if (bits > 0) result.Add((byte)((acc << (toBits - bits)) & max));
        }
        else if (bits >= fromBits || ((acc << (toBits - bits)) & max) != 0)
        {
            return null;
        }
        return result;
    }
}
