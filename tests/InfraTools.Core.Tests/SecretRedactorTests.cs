using InfraTools.Secrets;

namespace InfraTools.Tests;

public class SecretRedactorTests
{
    [Fact]
    public void Registered_secrets_are_masked_also_when_url_encoded()
    {
        var secret = new Secret("s3cr3t/with+chars-" + Guid.NewGuid());
        var value = secret.Reveal();
        var text = $"failed: key={value} url=https://x/?sig={Uri.EscapeDataString(value)}";
        var redacted = SecretRedactor.Redact(text);
        Assert.DoesNotContain(value, redacted);
        Assert.DoesNotContain(Uri.EscapeDataString(value), redacted);
        Assert.Contains("[REDACTED]", redacted);
    }

    [Fact]
    public void Text_without_secrets_is_unchanged() => Assert.Equal("nothing to hide here", SecretRedactor.Redact("nothing to hide here"));
}
