using InfraTools.Interop;
using Microsoft.Win32.SafeHandles;

namespace InfraTools.Files;

/// <summary>
/// Opens files that must be regular files, and only those: a FIFO is opened without blocking (O_NONBLOCK) and
/// refused, so a FIFO, socket or device where a file is expected never hangs a run; symbolic links are not
/// followed unless asked (secrets mounted by Docker and Kubernetes are links, so they are).
/// </summary>
public static class RegularFile
{
    public static FileStream OpenRead(string path, bool followLinks = false)
    {
        var fd = Libc.Open(path, Libc.O_RDONLY | Libc.O_NONBLOCK | (followLinks ? 0 : Libc.O_NOFOLLOW));
        if (fd < 0)
        {
            var errno = Libc.LastError;
            if (errno == Libc.ELOOP && !followLinks) throw new IOException($"'{path}' is a symbolic link: not reading through it");
            throw Libc.Error(errno, $"cannot open '{path}'");
        }
        var handle = new SafeFileHandle(fd, ownsHandle: true);
        try
        {
            var errno = Libc.Stat(fd, out var status);
            if (errno != 0) throw Libc.Error(errno, $"cannot read '{path}'");
            if (!status.IsRegular) throw new IOException($"'{path}' is a {status.TypeName}, not a regular file: not reading it");
            return new FileStream(handle, FileAccess.Read, bufferSize: 0);
        }
        catch
        {
            handle.Dispose();
            throw;
        }
    }

    /// <summary>The whole content; more than <paramref name="maxBytes"/> bytes is an error.</summary>
    public static async Task<byte[]> ReadAllBytesAsync(string path, bool followLinks, long maxBytes, CancellationToken cancellationToken)
    {
        await using var stream = OpenRead(path, followLinks);
        using var buffer = new MemoryStream();
        var chunk = new byte[64 * 1024];
        int read;
        while ((read = await stream.ReadAsync(chunk, cancellationToken).ConfigureAwait(false)) > 0)
        {
            if (buffer.Length + read > maxBytes) throw new IOException($"'{path}' is larger than {maxBytes} bytes");
            buffer.Write(chunk, 0, read);
        }
        return buffer.ToArray();
    }

    public static byte[] ReadAllBytes(string path, bool followLinks, long maxBytes) =>
        ReadAllBytesAsync(path, followLinks, maxBytes, CancellationToken.None).GetAwaiter().GetResult();
}
