using System.CommandLine;
using System.Globalization;
using InfraTools.Cli;
using InfraTools.Crypto;
using InfraTools.Files;
using InfraTools.Monitoring;
using InfraTools.S3;
using InfraTools.Storage;
using Prometheus;

const string tool = "s3-driver";
var root = new RootCommand("Runs one operation of the shared S3 client (test driver for the AOT tests)");
CommonOptions.AddTo(root, s3: true, metrics: false);
var countRequests = new Option<bool>("--count-requests") { Description = "Print the number of HTTP requests sent to stderr", Recursive = true };
root.Options.Add(countRequests);
var rangeKeys = new Option<int>("--range-keys") { Description = "Known keys per range of a ranged listing (ls --known)", DefaultValueFactory = _ => 1000, Recursive = true };
root.Options.Add(rangeKeys);

// A test driver binds nothing: its "options record" is the parse result itself.
Command Cmd(string name, string description, Func<ParseResult, ToolContext, S3Store, Task> run, params Symbol[] symbols)
{
    var command = new Command(name, description);
    foreach (var symbol in symbols)
    {
        if (symbol is Argument argument) command.Arguments.Add(argument);
        else command.Options.Add((Option)symbol);
    }
    ToolHost.SetAction(command, tool, parse => parse, (parse, context) => new DriverRun(async () =>
    {
        using var client = new S3Store(context.ReadS3Settings()) { RangeKeys = parse.GetValue(rangeKeys) };
        await run(parse, context, client);
        if (parse.GetValue(countRequests)) Console.Error.WriteLine($"requests={client.RequestsSent}");
        return ExitCodes.Ok;
    }));
    root.Subcommands.Add(command);
    return command;
}

var location = new Argument<string>("location") { Description = "s3://bucket/key" };
var bucketArg = new Argument<string>("bucket");
var file = new Argument<string>("file");
var keys = new Argument<string[]>("keys") { Arity = ArgumentArity.ZeroOrMore };
var meta = new Option<string[]>("--meta") { Description = "name=value user metadata", AllowMultipleArgumentsPerToken = false };
var range = new Option<string?>("--range") { Description = "FROM-TO byte range" };

Cmd("mb", "Create a bucket", async (p, c, s3) => await s3.MakeBucketAsync(p.GetValue(bucketArg)!, c.Stopping), bucketArg);
Cmd("exists", "Print whether a bucket exists", async (p, c, s3) =>
    Console.WriteLine(await s3.BucketExistsAsync(p.GetValue(bucketArg)!, c.Stopping) ? "true" : "false"), bucketArg);
var known = new Option<string?>("--known") { Description = "A file of paths under the prefix, one per line: list in ranges between them" };
Cmd("ls", "List objects under a prefix: key, size, etag, last-modified", async (p, c, s3) =>
{
    var loc = S3Location.Parse(p.GetValue(location)!);
    var count = 0;
    var listing = p.GetValue(known) is { } knownFile
        ? s3.ListAsync(loc.Bucket, loc.Path, File.ReadAllLines(knownFile), c.Stopping)
        : s3.ListAsync(loc.Bucket, loc.Path, c.Stopping);
    await foreach (var o in listing)
    {
        Console.WriteLine($"{o.Key}\t{o.Size}\t{o.ETag}\t{o.LastModified:O}");
        count++;
    }
    Console.Error.WriteLine($"count={count}");
}, location, known);
Cmd("stat", "Print an object's size, etag, last-modified, content type and metadata", async (p, c, s3) =>
{
    var loc = S3Location.Parse(p.GetValue(location)!);
    var info = await s3.StatAsync(loc.Bucket, loc.RequireKey("location"), c.Stopping);
    PrintInfo(info);
}, location);
Cmd("get", "Download an object to a file", async (p, c, s3) =>
{
    var loc = S3Location.Parse(p.GetValue(location)!);
    (long, long)? byteRange = p.GetValue(range) is { } r
        ? (long.Parse(r.Split('-')[0], CultureInfo.InvariantCulture), long.Parse(r.Split('-')[1], CultureInfo.InvariantCulture))
        : null;
    var info = await s3.GetAsync(loc.Bucket, loc.RequireKey("location"), async (stream, _, ct) =>
    {
        await using var output = File.Create(p.GetValue(file)!);
        await stream.CopyToAsync(output, ct);
    }, new GetOptions(Range: byteRange), c.Stopping);
    PrintInfo(info);
}, location, file, range);
Cmd("put", "Upload a file", async (p, c, s3) =>
{
    var loc = S3Location.Parse(p.GetValue(location)!);
    var metadata = (p.GetValue(meta) ?? []).Select(m => m.Split('=', 2)).ToDictionary(pair => pair[0], pair => pair[1]);
    await using var input = File.OpenRead(p.GetValue(file)!);
    var etag = await s3.PutAsync(loc.Bucket, loc.RequireKey("location"), input, input.Length, new PutOptions(Metadata: metadata), c.Stopping);
    Console.WriteLine($"etag={etag}");
}, file, location, meta);
Cmd("rm", "Delete one object", async (p, c, s3) =>
{
    var loc = S3Location.Parse(p.GetValue(location)!);
    var failures = await s3.DeleteManyAsync(loc.Bucket, [loc.RequireKey("location")], c.Stopping);
    if (failures.Count > 0) throw new StoreException(StoreErrorKind.ServerError, $"delete failed: {failures[0].Error}");
}, location);
Cmd("rm-many", "Delete keys in batches (keys as arguments or one per line on stdin)", async (p, c, s3) =>
{
    var bucket = p.GetValue(bucketArg)!;
    var list = p.GetValue(keys) is { Length: > 0 } given ? given.ToList() : ReadLines(Console.In);
    var failures = await s3.DeleteManyAsync(bucket, list, c.Stopping);
    foreach (var (key, error) in failures) Console.WriteLine($"failed\t{key}\t{error}");
    Console.WriteLine($"deleted={list.Count - failures.Count}");
}, bucketArg, keys);

var metricsPath = new Argument<string>("path");
var metricsRegistry = new Option<bool>("--registry") { Description = "Write through a prometheus-net registry (cron's writer) instead of the batch tools' gauges" };
var metricsCommand = new Command("write-metrics", "Write a sample textfile with the shared metrics writers");
metricsCommand.Arguments.Add(metricsPath);
metricsCommand.Options.Add(metricsRegistry);
ToolHost.SetAction(metricsCommand, tool, parse => parse, (p, c) => new DriverRun(async () =>
{
    var path = p.GetValue(metricsPath)!;
    if (p.GetValue(metricsRegistry))
    {
        var registry = Metrics.NewCustomRegistry();
        var factory = Metrics.WithCustomRegistry(registry);
        factory.CreateGauge("s3_driver_last_success_timestamp_seconds", "Unix time of the last successful run.").SetToCurrentTimeUtc();
        factory.CreateGauge("s3_driver_objects", "Objects handled by the last run.").Set(42);
        factory.CreateGauge("s3_driver_bytes", "Bytes handled by the last run.", "name").WithLabels("acme").Set(1234);
        factory.CreateCounter("s3_driver_runs_total", "Runs since the counter was created.").Inc();
        await TextfileMetrics.WriteAsync(registry, path, c.Stopping);
        return ExitCodes.Ok;
    }
    await RunMetrics.WriteAsync(path, "s3_driver", "run of the driver", [], DateTimeOffset.UtcNow, TimeSpan.FromSeconds(1.5), success: true, successMetrics: true, metrics =>
    {
        metrics.Gauge("s3_driver_objects", "Objects handled by the last run.", 42);
        metrics.Gauge("s3_driver_bytes", "Bytes handled by the last run.", "name", [("acme", 1234)]);
        metrics.Gauge("s3_driver_escaped", "A label value with a quote, a backslash and a newline.\nSecond line of help.", "path", [("a\"b\\c\nd", 1)]);
    });
    return ExitCodes.Ok;
}));
root.Subcommands.Add(metricsCommand);

// age encryption in the AOT binary (src/InfraTools.Core/Crypto). Identities only ever come from a file.
var ageInput = new Argument<string>("input");
var ageOutput = new Argument<string>("output");
var ageRecipient = new Option<string[]>("--recipient", "-r") { Description = "An age1... recipient (repeatable)" };
var ageRecipientsFile = new Option<string?>("--recipients-file", "-R") { Description = "A file of recipients, one a line" };
var ageIdentityFile = new Option<string>("--identity-file", "-i") { Description = "A file of identities (AGE-SECRET-KEY-1...)", Required = true };
var ageEncrypt = new Command("age-encrypt", "Encrypt INPUT to OUTPUT for the recipients (age v1)");
ageEncrypt.Arguments.Add(ageInput);
ageEncrypt.Arguments.Add(ageOutput);
ageEncrypt.Options.Add(ageRecipient);
ageEncrypt.Options.Add(ageRecipientsFile);
ToolHost.SetAction(ageEncrypt, tool, parse => parse, (p, c) => new DriverRun(() => AgeCommand(async () =>
{
    var recipients = (p.GetValue(ageRecipient) ?? []).Select(AgeRecipient.Parse).ToList();
    if (p.GetValue(ageRecipientsFile) is { } file) recipients.AddRange(AgeRecipient.ParseFile(file));
    if (recipients.Count == 0) throw new UsageException("age-encrypt needs --recipient or --recipients-file");
    await using var input = File.OpenRead(p.GetValue(ageInput)!);
    await using var encrypting = new AgeEncryptingStream(input, recipients);
    await AtomicFile.WriteAsync(p.GetValue(ageOutput)!, async output => await encrypting.CopyToAsync(output, c.Stopping), AtomicFile.ReadableByAll,
        cancellationToken: c.Stopping);
    Console.WriteLine($"encrypted {encrypting.Length} bytes for {string.Join(", ", recipients)}");
})));
root.Subcommands.Add(ageEncrypt);
var ageDecrypt = new Command("age-decrypt", "Decrypt INPUT to OUTPUT (all or nothing) with the identities file");
ageDecrypt.Arguments.Add(ageInput);
ageDecrypt.Arguments.Add(ageOutput);
ageDecrypt.Options.Add(ageIdentityFile);
ToolHost.SetAction(ageDecrypt, tool, parse => parse, (p, c) => new DriverRun(() => AgeCommand(async () =>
{
    var identities = AgeIdentity.ParseFile(p.GetValue(ageIdentityFile)!);
    await using var input = File.OpenRead(p.GetValue(ageInput)!);
    var recipient = await Age.DecryptToFileAsync(input, p.GetValue(ageOutput)!, identities, AtomicFile.OwnerOnly, c.Stopping);
    Console.WriteLine($"decrypted with the identity of {recipient}");
})));
root.Subcommands.Add(ageDecrypt);
InfraTools.S3Driver.ReleaseCommands.AddTo(root);

return ToolHost.Run(tool, root, args);

// A key problem or wrong identity is a setting to fix (exit 3); a damaged or non-age file, exit 11 like any
// object that fails an integrity check. The tools may choose otherwise; the message stays the library's.
static async Task<int> AgeCommand(Func<Task> run)
{
    try
    {
        await run();
        return ExitCodes.Ok;
    }
    catch (AgeException ex) when (ex is AgeKeyException or AgeNoMatchException)
    {
        throw new ConfigurationException(ex.Message);
    }
    catch (AgeException ex)
    {
        throw new ToolException(ExitCodes.S3Error, ex.Message, ex);
    }
}

static void PrintInfo(ObjectInfo info)
{
    Console.WriteLine($"size={info.Size}");
    Console.WriteLine($"etag={info.ETag}");
    Console.WriteLine($"last-modified={info.LastModified.UtcDateTime:O}");
    Console.WriteLine($"content-type={info.ContentType}");
    foreach (var (name, value) in info.Metadata.OrderBy(m => m.Key, StringComparer.Ordinal)) Console.WriteLine($"meta.{name}={value}");
}

static List<string> ReadLines(TextReader reader)
{
    var lines = new List<string>();
    while (reader.ReadLine() is { } line) if (line.Length > 0) lines.Add(line);
    return lines;
}

/// <summary>One driver command as a run of the shared host.</summary>
sealed class DriverRun(Func<Task<int>> run) : IToolRun
{
    public RunReport? Report => null;
    public async Task<ToolResult> RunAsync() => await run();
}
