using System.CommandLine;
using System.Globalization;
using InfraTools.Cli;
using InfraTools.Monitoring;
using InfraTools.S3;
using Prometheus;

const string tool = "s3-driver";
var root = new RootCommand("Runs one operation of the shared S3 client (test driver for the AOT tests)");
CommonOptions.AddTo(root, s3: true, metrics: false);
var countRequests = new Option<bool>("--count-requests") { Description = "Print the number of HTTP requests sent to stderr", Recursive = true };
root.Options.Add(countRequests);

Command Cmd(string name, string description, Func<ToolContext, S3Client, Task> run, params Symbol[] symbols)
{
    var command = new Command(name, description);
    foreach (var symbol in symbols)
    {
        if (symbol is Argument argument) command.Arguments.Add(argument);
        else command.Options.Add((Option)symbol);
    }
    ToolHost.SetAction(command, tool, async context =>
    {
        using var client = new S3Client(context.ReadS3Settings());
        await run(context, client);
        if (context.Parse.GetValue(countRequests)) Console.Error.WriteLine($"requests={client.RequestsSent}");
        return ExitCodes.Ok;
    });
    root.Subcommands.Add(command);
    return command;
}

var location = new Argument<string>("location") { Description = "s3://bucket/key" };
var bucketArg = new Argument<string>("bucket");
var file = new Argument<string>("file");
var keys = new Argument<string[]>("keys") { Arity = ArgumentArity.ZeroOrMore };
var meta = new Option<string[]>("--meta") { Description = "name=value user metadata", AllowMultipleArgumentsPerToken = false };
var range = new Option<string?>("--range") { Description = "FROM-TO byte range" };

Cmd("mb", "Create a bucket", async (c, s3) => await s3.MakeBucketAsync(c.Parse.GetValue(bucketArg)!, c.Stopping), bucketArg);
Cmd("exists", "Print whether a bucket exists", async (c, s3) =>
    Console.WriteLine(await s3.BucketExistsAsync(c.Parse.GetValue(bucketArg)!, c.Stopping) ? "true" : "false"), bucketArg);
Cmd("ls", "List objects under a prefix: key, size, etag, last-modified", async (c, s3) =>
{
    var loc = S3Location.Parse(c.Parse.GetValue(location)!);
    var count = 0;
    await foreach (var o in s3.ListAsync(loc.Bucket, loc.Path, c.Stopping))
    {
        Console.WriteLine($"{o.Key}\t{o.Size}\t{o.ETag}\t{o.LastModified:O}");
        count++;
    }
    Console.Error.WriteLine($"count={count}");
}, location);
Cmd("stat", "Print an object's size, etag, last-modified, content type and metadata", async (c, s3) =>
{
    var loc = S3Location.Parse(c.Parse.GetValue(location)!);
    var info = await s3.StatAsync(loc.Bucket, loc.RequireKey("location"), c.Stopping);
    PrintInfo(info);
}, location);
Cmd("get", "Download an object to a file", async (c, s3) =>
{
    var loc = S3Location.Parse(c.Parse.GetValue(location)!);
    (long, long)? byteRange = c.Parse.GetValue(range) is { } r
        ? (long.Parse(r.Split('-')[0], CultureInfo.InvariantCulture), long.Parse(r.Split('-')[1], CultureInfo.InvariantCulture))
        : null;
    var info = await s3.GetAsync(loc.Bucket, loc.RequireKey("location"), async (stream, _, ct) =>
    {
        await using var output = File.Create(c.Parse.GetValue(file)!);
        await stream.CopyToAsync(output, ct);
    }, byteRange, c.Stopping);
    PrintInfo(info);
}, location, file, range);
Cmd("put", "Upload a file", async (c, s3) =>
{
    var loc = S3Location.Parse(c.Parse.GetValue(location)!);
    var metadata = (c.Parse.GetValue(meta) ?? []).Select(m => m.Split('=', 2)).ToDictionary(p => p[0], p => p[1]);
    await using var input = File.OpenRead(c.Parse.GetValue(file)!);
    var etag = await s3.PutAsync(loc.Bucket, loc.RequireKey("location"), input, input.Length, metadata, null, c.Stopping);
    Console.WriteLine($"etag={etag}");
}, file, location, meta);
Cmd("rm", "Delete one object", async (c, s3) =>
{
    var loc = S3Location.Parse(c.Parse.GetValue(location)!);
    await s3.DeleteAsync(loc.Bucket, loc.RequireKey("location"), c.Stopping);
}, location);
Cmd("rm-many", "Delete keys in batches (keys as arguments or one per line on stdin)", async (c, s3) =>
{
    var bucket = c.Parse.GetValue(bucketArg)!;
    var list = c.Parse.GetValue(keys) is { Length: > 0 } given ? given.ToList() : ReadLines(Console.In);
    var failures = await s3.DeleteManyAsync(bucket, list, c.Stopping);
    foreach (var (key, error) in failures) Console.WriteLine($"failed\t{key}\t{error}");
    Console.WriteLine($"deleted={list.Count - failures.Count}");
}, bucketArg, keys);

var metricsPath = new Argument<string>("path");
var metricsCommand = new Command("write-metrics", "Write a sample textfile with the shared metrics writer");
metricsCommand.Arguments.Add(metricsPath);
ToolHost.SetAction(metricsCommand, tool, async c =>
{
    var registry = Metrics.NewCustomRegistry();
    var factory = Metrics.WithCustomRegistry(registry);
    factory.CreateGauge("s3_driver_last_success_timestamp_seconds", "Unix time of the last successful run.").SetToCurrentTimeUtc();
    factory.CreateGauge("s3_driver_objects", "Objects handled by the last run.").Set(42);
    factory.CreateGauge("s3_driver_bytes", "Bytes handled by the last run.", "name").WithLabels("acme").Set(1234);
    factory.CreateCounter("s3_driver_runs_total", "Runs since the counter was created.").Inc();
    await TextfileMetrics.WriteAsync(registry, c.Parse.GetValue(metricsPath)!, c.Stopping);
    return ExitCodes.Ok;
});
root.Subcommands.Add(metricsCommand);

InfraTools.S3Driver.ReleaseCommands.AddTo(root);

return ToolHost.Run(tool, root, args);

static void PrintInfo(S3ObjectInfo info)
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
