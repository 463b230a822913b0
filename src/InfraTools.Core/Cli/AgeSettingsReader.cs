using System.Security.Cryptography;
using System.Text;
using InfraTools.Crypto;
using InfraTools.Files;

namespace InfraTools.Cli;

/// <summary>
/// Reads the age keys of the tools the same way everywhere (docs/encryption.md): recipients (public, for a push)
/// from the command line, recipients files and BACKUP_ENCRYPT_TO / BACKUP_ENCRYPT_TO_FILE; identities (secret,
/// for a restore) from --identity-file, else AGE_IDENTITY (the key itself) or AGE_IDENTITY_FILE (a key file).
/// A secret is never taken from the command line, and no message quotes one. Problems are
/// <see cref="ConfigurationException"/>s (exit 3) that name the flag, variable or file and line.
/// </summary>
public static class AgeSettingsReader
{
    public const string RecipientsVariable = "BACKUP_ENCRYPT_TO";
    public const string IdentityVariable = "AGE_IDENTITY";

    /// <summary>The identity variables, each with its _FILE twin: what acme-restore removes from the command's environment.</summary>
    public static readonly string[] IdentityVariables = [IdentityVariable, IdentityVariable + "_FILE"];

    /// <summary>Largest key file read: a key is 74 bytes; age itself reads at most 16 MiB.</summary>
    private const long MaxKeyFileBytes = 1 << 20;

    /// <summary>
    /// The recipients of a push: every --encrypt-to and every line of each --encrypt-to-file, else
    /// BACKUP_ENCRYPT_TO (recipients separated by white space or commas) or BACKUP_ENCRYPT_TO_FILE. None: no encryption.
    /// </summary>
    public static IReadOnlyList<AgeRecipient> ReadRecipients(IReadOnlyList<string> given, IReadOnlyList<string> files, Func<string, string?> environment)
    {
        var recipients = new List<AgeRecipient>();
        try
        {
            foreach (var text in given) recipients.Add(Parse("--encrypt-to", text));
            foreach (var file in files) recipients.AddRange(AgeRecipient.ParseList(ReadKeyFile(file, "--encrypt-to-file", "recipients"), file));
            if (recipients.Count == 0)
            {
                var direct = environment(RecipientsVariable);
                var file = environment(RecipientsVariable + "_FILE");
                if (!string.IsNullOrEmpty(direct) && !string.IsNullOrEmpty(file))
                    throw new ConfigurationException($"both {RecipientsVariable} and {RecipientsVariable}_FILE are set: set only one of them");
                if (!string.IsNullOrEmpty(direct))
                    recipients.AddRange(AgeRecipient.ParseList(string.Join('\n', direct.Split([' ', ',', '\t', '\n'], StringSplitOptions.RemoveEmptyEntries)), RecipientsVariable));
                else if (!string.IsNullOrEmpty(file))
                    recipients.AddRange(AgeRecipient.ParseList(ReadKeyFile(file, RecipientsVariable + "_FILE", "recipients"), file));
            }
        }
        catch (AgeKeyException ex)
        {
            throw new ConfigurationException(ex.Message);
        }
        return recipients.Distinct().ToList();

        static AgeRecipient Parse(string flag, string text)
        {
            try { return AgeRecipient.Parse(text); }
            catch (AgeKeyException ex) { throw new AgeKeyException($"{flag}: {ex.Message}"); }
        }
    }

    /// <summary>
    /// The identities of a restore: the file <paramref name="identityFile"/> (--identity-file), else AGE_IDENTITY
    /// (one or more AGE-SECRET-KEY-1... lines) or AGE_IDENTITY_FILE. None given: an empty list (a restore of
    /// encrypted objects then fails before it writes anything).
    /// </summary>
    public static IReadOnlyList<AgeIdentity> ReadIdentities(string? identityFile, Func<string, string?> environment)
    {
        try
        {
            if (!string.IsNullOrEmpty(identityFile)) return AgeIdentity.ParseList(ReadKeyFile(identityFile, "--identity-file", "identities"), identityFile);
            var direct = environment(IdentityVariable);
            var file = environment(IdentityVariable + "_FILE");
            if (!string.IsNullOrEmpty(direct) && !string.IsNullOrEmpty(file))
                throw new ConfigurationException($"both {IdentityVariable} and {IdentityVariable}_FILE are set: set only one of them");
            if (!string.IsNullOrEmpty(direct)) return AgeIdentity.ParseList(direct, IdentityVariable);
            if (!string.IsNullOrEmpty(file)) return AgeIdentity.ParseList(ReadKeyFile(file, IdentityVariable + "_FILE", "identities"), file);
            return [];
        }
        catch (AgeKeyException ex)
        {
            throw new ConfigurationException(ex.Message);
        }
    }

    /// <summary>The one line that tells how to give an identity, for messages about encrypted objects.</summary>
    public const string IdentityHint = "give the age identity (the secret key file age-keygen wrote) with --identity-file PATH, or AGE_IDENTITY_FILE / AGE_IDENTITY";

    /// <summary>Reads a key file (regular files only: a FIFO nobody writes would block), as UTF-8 text; the bytes are zeroed after decoding.</summary>
    private static string ReadKeyFile(string path, string setting, string kind)
    {
        var bytes = SettingFile.Read(path, MaxKeyFileBytes, $"{setting} {path}", $"the file is larger than {MaxKeyFileBytes >> 20} MiB, so not an age {kind} file",
            $"point it at the age {kind} file");
        try
        {
            return new UTF8Encoding(false, throwOnInvalidBytes: true).GetString(bytes).TrimStart('\uFEFF');
        }
        catch (DecoderFallbackException)
        {
            throw new ConfigurationException($"{setting} {path} is not a text file (not valid UTF-8), so not an age {kind} file");
        }
        finally
        {
            CryptographicOperations.ZeroMemory(bytes);
        }
    }
}
