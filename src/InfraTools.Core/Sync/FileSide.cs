using InfraTools.Files;
using InfraTools.S3;

namespace InfraTools.Sync;

/// <summary>
/// One local file as the source of a push, under the name <paramref name="path"/> its object gets (a key may
/// name it otherwise than the file is called). <paramref name="content"/>, when given, is the file's content
/// already read and checked (acme.json read until it parses); its size and mtime are the file's before that read,
/// so a file that changes meanwhile is compared again on the next run. A source only: it is never written to.
/// </summary>
public sealed class FileSide(string file, string path, byte[]? content = null, DateTime? modifiedBeforeRead = null) : ISyncSide
{
    public bool IsTree => false;
    public string ReceiveVerb => "read";

    public string Describe(string p) => file;
    public string NameOf(string p) => file;
    public string ExplainUnsafe(string problem) => $"its name {problem}";

    public Task<SideListing> ListAsync(CancellationToken cancellationToken)
    {
        // Followed if a link (the SRC named on the command line), and it must end at a regular file, never a FIFO.
        using var stream = RegularFile.OpenRead(file, followLinks: true);
        var modified = content is not null && modifiedBeforeRead is { } before ? before : File.GetLastWriteTimeUtc(file);
        var listing = new SideListing();
        listing.Files[path] = new SyncFile(path, content?.LongLength ?? stream.Length, null, modified, new DateTimeOffset(modified));
        return Task.FromResult(listing);
    }

    public async Task ReadAsync(SyncFile entry, Func<Stream, SourceInfo, CancellationToken, Task> consume, CancellationToken cancellationToken)
    {
        await using Stream stream = content is not null ? new MemoryStream(content, writable: false) : RegularFile.OpenRead(file, followLinks: true);
        await consume(stream, new SourceInfo(stream.Length, null, entry.Modified), cancellationToken).ConfigureAwait(false);
    }

    public Task<string> ChecksumAsync(SyncFile entry, CancellationToken cancellationToken) => content is not null
        ? ObjectChecksum.ComputeETagAsync(new MemoryStream(content, writable: false), content.LongLength, cancellationToken)
        : ObjectChecksum.ComputeETagAsync(file, cancellationToken);

    public Task<Written> WriteAsync(SyncFile source, Stream data, SourceInfo info, CancellationToken cancellationToken) => throw new NotSupportedException("a file side is a source only");
    public Written Adopt(SyncFile source, SyncFile here) => throw new NotSupportedException("a file side is a source only");
    public Task<IReadOnlyList<(string Path, string Error)>> DeleteFilesAsync(IReadOnlyList<string> paths, CancellationToken cancellationToken) => throw new NotSupportedException("a file side is a source only");
    public Task<IReadOnlyList<(string Path, string? Error)>> DeleteDirectoriesAsync(IReadOnlyList<string> paths, CancellationToken cancellationToken) => throw new NotSupportedException("a file side is a source only");
    public IReadOnlyList<(string Path, string Error)> DeleteUndecodable(IReadOnlyList<UndecodableEntry> entries) => [];
    public IReadOnlyList<(string Path, string Error)> CreateDirectories(IReadOnlyList<string> paths) => [];
    public void RemoveLeftovers(IReadOnlyList<string> paths) { }
}
