using InfraTools.Cli;
using InfraTools.Crypto;
using InfraTools.Secrets;
using BcX25519 = Org.BouncyCastle.Math.EC.Rfc7748.X25519;

namespace InfraTools.Tests;

/// <summary>X25519 (RFC 7748 vectors), Bech32, and the age recipients and identities parsers.</summary>
public class AgeKeysTests
{
    private static byte[] Hex(string hex) => Convert.FromHexString(hex);

    private static string X25519(string scalar, string u)
    {
        var r = new byte[32];
        BcX25519.ScalarMult(Hex(scalar), 0, Hex(u), 0, r, 0);
        return Convert.ToHexStringLower(r);
    }

    [Theory]
    // RFC 7748 section 5.2, the two single-multiplication vectors (the second u has its top bit set, which X25519 must mask).
    [InlineData("a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4", "e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c",
        "c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552")]
    [InlineData("4b66e9d4d1b4673c5ad22691957d6af5c11b6421e0ea01d42ca4169e7918ba0d", "e5210f12786811d3f4b7959d0538ae2c31dbe7106fc03c3efc4cd549c715a493",
        "95cbde9476e8907d7aade45cb4b873f88b595a68799fa152e6f8f7647aac7957")]
    public void X25519_matches_the_RFC_7748_vectors(string scalar, string u, string expected) => Assert.Equal(expected, X25519(scalar, u));

    [Fact]
    public void X25519_iterated_1000_times_matches_RFC_7748()
    {
        var k = Hex("0900000000000000000000000000000000000000000000000000000000000000");
        var u = (byte[])k.Clone();
        for (var i = 1; i <= 1000; i++)
        {
            var r = new byte[32];
            BcX25519.ScalarMult(k, 0, u, 0, r, 0);
            u = k;
            k = r;
            if (i == 1) Assert.Equal("422c8e7a6227d7bca1350b3e2bb7279f7897b87bb6854b783c60e80311ae3079", Convert.ToHexStringLower(k));
        }
        Assert.Equal("684cf59ba83309552800ef566f2f4d3c1c3887c49360e3875f2eb94d99532c51", Convert.ToHexStringLower(k));
    }

    [Fact]
    public void X25519_Diffie_Hellman_matches_RFC_7748_section_6_1()
    {
        const string alice = "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a";
        const string bob = "5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb";
        var alicePublic = new byte[32];
        BcX25519.ScalarMultBase(Hex(alice), 0, alicePublic, 0);
        Assert.Equal("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a", Convert.ToHexStringLower(alicePublic));
        var bobPublic = new byte[32];
        BcX25519.ScalarMultBase(Hex(bob), 0, bobPublic, 0);
        Assert.Equal("de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f", Convert.ToHexStringLower(bobPublic));
        const string shared = "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742";
        Assert.Equal(shared, X25519(alice, Convert.ToHexStringLower(bobPublic)));
        Assert.Equal(shared, X25519(bob, Convert.ToHexStringLower(alicePublic)));
    }

    [Fact]
    public void The_CCTV_test_identity_has_the_public_key_its_vectors_are_encrypted_to()
    {
        // TestX25519Identity of C2SP/CCTV's testkit; its recipient is X25519(identity, 9) there.
        using var identity = AgeIdentity.Parse("AGE-SECRET-KEY-1EGTZVFFV20835NWYV6270LXYVK2VKNX2MMDKWYKLMGR48UAWX40Q2P2LM0");
        Assert.Equal(identity.Recipient, AgeRecipient.Parse(identity.Recipient.ToString()));
        Assert.Equal("AGE-SECRET-KEY-1EGTZVFFV20835NWYV6270LXYVK2VKNX2MMDKWYKLMGR48UAWX40Q2P2LM0", identity.RevealSecretKey());
        Assert.StartsWith("age1", identity.Recipient.ToString());
        Assert.Equal(62, identity.Recipient.ToString().Length);
    }

    [Fact]
    public void The_spec_examples_parse()
    {
        // The example identity and recipient of C2SP age.md, "The X25519 recipient type".
        using var identity = AgeIdentity.Parse("AGE-SECRET-KEY-1GFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPQ4EGAEX");
        var recipient = AgeRecipient.Parse("age1zvkyg2lqzraa2lnjvqej32nkuu0ues2s82hzrye869xeexvn73equnujwj");
        Assert.Equal("age1zvkyg2lqzraa2lnjvqej32nkuu0ues2s82hzrye869xeexvn73equnujwj", recipient.ToString());
        Assert.Equal(recipient, identity.Recipient);
    }

    [Fact]
    public void Generated_identities_round_trip_through_their_text_forms()
    {
        using var identity = AgeIdentity.Generate();
        var text = identity.RevealSecretKey();
        Assert.Matches("^AGE-SECRET-KEY-1[QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L]{58}$", text);
        using var again = AgeIdentity.Parse("  " + text + "\n");
        Assert.Equal(identity.Recipient, again.Recipient);
        Assert.Equal(identity.Recipient, AgeRecipient.Parse(identity.Recipient.ToString()));
        using var other = AgeIdentity.Generate();
        Assert.NotEqual(identity.Recipient, other.Recipient);
    }

    [Fact]
    public void An_identity_never_shows_its_secret_when_printed_and_the_redactor_masks_it()
    {
        using var identity = AgeIdentity.Generate();
        var secret = identity.RevealSecretKey();
        Assert.DoesNotContain(secret, identity.ToString());
        Assert.Contains(identity.Recipient.ToString(), identity.ToString());
        Assert.Equal($"key {SecretRedactor.Mask} end", SecretRedactor.Redact($"key {secret} end"));
    }

    [Theory]
    [InlineData("", "empty")]
    [InlineData("AGE-SECRET-KEY-1EGTZVFFV20835NWYV6270LXYVK2VKNX2MMDKWYKLMGR48UAWX40Q2P2LM0", "identity (a secret key), not a recipient")]
    [InlineData("age1pq1x34nzsvr0rxjsgdn8zgyhfe8j7ceq5r9rdelkjuh3y235jzxshfg87pzf5", "post-quantum")]
    [InlineData("age1yubikey1qwt50d05nh5vutpdzmlg5wn80xq5negm4uj9ghv0snvdd3yysf5yw3rhl3t", "plugin")]
    [InlineData("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHsKLqeplhpW+uObz5dvMgjz1OxfM/XXUB+VHtZ6isGN", "SSH")]
    [InlineData("AGE1ZVKYG2LQZRAA2LNJVQEJ32NKUU0UES2S82HZRYE869XEEXVN73EQUNUJWJ", "lower case")]
    [InlineData("age1zvkyg2lqzraa2lnjvqej32nkuu0ues2s82hzrye869xeexvn73equnujwk", "checksum")]
    [InlineData("age1zvkyg2lqzraa2lnjvqej32nkuu0ues2s82hzrye869xeexvn73eqUnujwj", "mixes upper and lower case")]
    [InlineData("hello", "starts with age1")]
    public void Malformed_recipients_are_refused_with_the_reason(string text, string reason)
    {
        var error = Assert.Throws<AgeKeyException>(() => AgeRecipient.Parse(text));
        Assert.Contains(reason, error.Message);
        if (text.StartsWith("AGE-SECRET", StringComparison.Ordinal)) Assert.DoesNotContain(text, error.Message);
    }

    [Fact]
    public void A_low_order_point_is_refused_as_a_recipient()
    {
        // u = 0 (the identity point): every shared secret with it is zero.
        var zero = Bech32.Encode("age", new byte[32]);
        var error = Assert.Throws<AgeKeyException>(() => AgeRecipient.Parse(zero));
        Assert.Contains("low-order", error.Message);
        var short31 = Bech32.Encode("age", new byte[31]);
        Assert.Contains("holds 31 bytes, not a 32-byte X25519 public key", Assert.Throws<AgeKeyException>(() => AgeRecipient.Parse(short31)).Message);
    }

    [Theory]
    [InlineData("", "empty")]
    [InlineData("age1zvkyg2lqzraa2lnjvqej32nkuu0ues2s82hzrye869xeexvn73equnujwj", "recipient (a public key), not an identity")]
    [InlineData("AGE-SECRET-KEY-PQ-1XX76JRALNLXDMEW0CRK45QMCCH4X06SE84UN3VPM33W6HWDX0H3SK3ZQFR", "post-quantum")]
    [InlineData("AGE-SECRET-KEY-1EGTZVFFV20835NWYV6270LXYVK2VKNX2MMDKWYKLMGR48UAWX40Q2P2LM1", "checksum")]
    [InlineData("age-secret-key-1egtzvffv20835nwyv6270lxyvk2vknx2mmdkwyklmgr48uawx40q2p2lm0", "upper case")]
    [InlineData("-----BEGIN OPENSSH PRIVATE KEY-----", "SSH")]
    [InlineData("age-encryption.org/v1", "decrypt it first")]
    public void Malformed_identities_are_refused_without_quoting_them(string text, string reason)
    {
        var error = Assert.Throws<AgeKeyException>(() => AgeIdentity.Parse(text));
        Assert.Contains(reason, error.Message);
        if (text.Length > 0) Assert.DoesNotContain(text, error.Message);
    }

    [Fact]
    public void An_age_keygen_file_with_comments_and_CRLF_gives_its_identities()
    {
        using var a = AgeIdentity.Generate();
        using var b = AgeIdentity.Generate();
        var text = $"# created: 2026-01-01T00:00:00Z\r\n# public key: {a.Recipient}\r\n{a.RevealSecretKey()}\r\n\r\n   \n# second\n{b.RevealSecretKey()}";
        var parsed = AgeIdentity.ParseList(text, "key.txt");
        Assert.Equal([a.Recipient, b.Recipient], parsed.Select(i => i.Recipient));
    }

    [Fact]
    public void A_bad_identity_line_is_named_by_file_and_number_and_not_quoted()
    {
        using var good = AgeIdentity.Generate();
        var secret = good.RevealSecretKey();
        var broken = secret[..^1] + (secret[^1] == 'Q' ? 'P' : 'Q');
        var error = Assert.Throws<AgeKeyException>(() => AgeIdentity.ParseList($"# key\n{secret}\n{broken}\n", "/etc/backup/key.txt"));
        Assert.StartsWith("/etc/backup/key.txt line 3: not a valid age identity: ", error.Message);
        Assert.DoesNotContain(broken, error.Message);
        Assert.DoesNotContain(broken[16..40], error.Message);
    }

    [Fact]
    public void An_identities_list_without_identities_is_refused()
    {
        var error = Assert.Throws<AgeKeyException>(() => AgeIdentity.ParseList("# only comments\n\n", "AGE_IDENTITY"));
        Assert.Contains("AGE_IDENTITY holds no identity", error.Message);
    }

    [Fact]
    public void A_recipients_file_gives_its_recipients_in_order_and_names_a_bad_line()
    {
        using var a = AgeIdentity.Generate();
        using var b = AgeIdentity.Generate();
        var parsed = AgeRecipient.ParseList($"# backup keys\n{a.Recipient}\n\n  {b.Recipient}  \r\n", "recipients.txt");
        Assert.Equal([a.Recipient, b.Recipient], parsed);

        var error = Assert.Throws<AgeKeyException>(() => AgeRecipient.ParseList($"{a.Recipient}\n{a.RevealSecretKey()}\n", "recipients.txt"));
        Assert.StartsWith("recipients.txt line 2: not a valid age recipient: this is an identity", error.Message);
        Assert.DoesNotContain(a.RevealSecretKey(), error.Message);
        Assert.Contains("holds no recipient", Assert.Throws<AgeKeyException>(() => AgeRecipient.ParseList("# none\n", "recipients.txt")).Message);
    }

    [Fact]
    public void Key_files_that_are_missing_or_not_text_are_reported_by_path()
    {
        using var dir = new TempDir("age-keys");
        var missing = dir.Combine("missing.txt");
        Assert.Contains($"{missing} does not exist", Assert.Throws<AgeKeyException>(() => AgeIdentity.ParseFile(missing)).Message);
        var binary = dir.Combine("binary");
        File.WriteAllBytes(binary, [0xff, 0xfe, 0x00, 0x80]);
        Assert.Contains("not valid UTF-8", Assert.Throws<AgeKeyException>(() => AgeRecipient.ParseFile(binary)).Message);
        using var identity = AgeIdentity.Generate();
        var keyFile = dir.Write("key.txt", $"# public key: {identity.Recipient}\n{identity.RevealSecretKey()}\n");
        Assert.Equal(identity.Recipient, Assert.Single(AgeIdentity.ParseFile(keyFile)).Recipient);
    }

    [Fact]
    public void Bech32_round_trips_and_keeps_the_case_of_its_prefix()
    {
        byte[] data = [0, 1, 2, 250, 251, 252, 253, 254, 255];
        var lower = Bech32.Encode("test", data);
        var upper = Bech32.Encode("TEST", data);
        Assert.Equal(lower.ToUpperInvariant(), upper);
        var (hrp, decoded) = Bech32.Decode(lower, out _)!.Value;
        Assert.Equal("test", hrp);
        Assert.Equal(data, decoded);
        (hrp, decoded) = Bech32.Decode(upper, out _)!.Value;
        Assert.Equal("TEST", hrp);
        Assert.Equal(data, decoded);
        // BIP 173's valid test string, beyond the 90-character limit age lifts.
        Assert.NotNull(Bech32.Decode("abcdef1qpzry9x8gf2tvdw0s3jn54khce6mua7lmqqqxw", out _));
        Assert.Null(Bech32.Decode("abcdef1qpzry9x8gf2tvdw0s3jn54khce6mua7lmqqqxx", out var error));
        Assert.Contains("checksum", error);
    }
}
