using System.Collections.Concurrent;

namespace InfraTools.Secrets;

/// <summary>
/// Remembers the secret values a tool has read and removes them from any text it prints: every log line,
/// error message and exception text goes through <see cref="Redact"/>. This is the second line of defence;
/// the first is that secrets are only held in <see cref="Secret"/>, whose ToString() never shows the value.
/// </summary>
public static class SecretRedactor
{
    public const string Mask = "[REDACTED]";
    // Short values would mask ordinary words; real keys are far longer than this.
    private const int MinimumLength = 4;
    private static readonly ConcurrentDictionary<string, byte> Secrets = new(StringComparer.Ordinal);

    public static void Register(string? value)
    {
        if (!string.IsNullOrEmpty(value) && value.Length >= MinimumLength) Secrets.TryAdd(value, 0);
    }

    public static string Redact(string text)
    {
        if (Secrets.IsEmpty || string.IsNullOrEmpty(text)) return text;
        foreach (var secret in Secrets.Keys)
        {
            if (text.Contains(secret, StringComparison.Ordinal)) text = text.Replace(secret, Mask, StringComparison.Ordinal);
            var escaped = Uri.EscapeDataString(secret);
            if (escaped != secret && text.Contains(escaped, StringComparison.Ordinal)) text = text.Replace(escaped, Mask, StringComparison.Ordinal);
        }
        return text;
    }
}

/// <summary>A secret string that never shows its value when printed, logged or formatted.</summary>
public sealed class Secret
{
    private readonly string _value;

    public Secret(string value)
    {
        _value = value;
        SecretRedactor.Register(value);
    }

    /// <summary>The value, for the one place that needs it (signing requests).</summary>
    public string Reveal() => _value;

    public override string ToString() => SecretRedactor.Mask;
}
