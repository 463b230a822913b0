namespace InfraTools.Storage;

/// <summary>
/// The order S3 lists keys in: the binary order of their UTF-8 bytes. .NET's ordinal order compares UTF-16 code
/// units, which agrees except where a character above U+FFFF (a surrogate pair, U+D800-U+DFFF as code units) meets
/// one in U+E000-U+FFFF: in UTF-8 the first is the greater. Comparing code points is comparing UTF-8 bytes.
/// </summary>
public sealed class KeyOrder : IComparer<string>
{
    public static readonly KeyOrder Instance = new();

    private KeyOrder() { }

    public int Compare(string? x, string? y)
    {
        if (ReferenceEquals(x, y)) return 0;
        if (x is null) return -1;
        if (y is null) return 1;
        var length = Math.Min(x.Length, y.Length);
        var differ = x.AsSpan(0, length).CommonPrefixLength(y.AsSpan(0, length));
        if (differ == length) return x.Length.CompareTo(y.Length);
        char a = x[differ], b = y[differ];
        var (surrogateA, surrogateB) = (char.IsSurrogate(a), char.IsSurrogate(b));
        if (surrogateA != surrogateB) return surrogateA ? 1 : -1;
        return a.CompareTo(b);
    }
}
