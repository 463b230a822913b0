using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using InfraTools.Cli;
using InfraTools.Files;
using InfraTools.Releases;
using InfraTools.Sync;

namespace InfraTools.S3Driver;

/// <summary>
/// The release-directory mechanics (src/InfraTools.Core/Releases) in a real Native AOT process, for the crash
/// tests: "release-run DEST SOURCE" plays the sync engine with a local directory as the source (a file whose
/// size and mtime match the current release's is unchanged and linked, the others are copied into the staging
/// tree with the source's mtime), then publishes and cleans up. RELEASE_TEST_STOP=STEP[:N] makes the process
/// print "stopped at STEP:N" on stderr and wait there (for the test's SIGKILL) when the module reaches that step;
/// RELEASE_TEST_TRACE=1 prints "step NAME" each time the step name changes, so a random kill can be placed.
/// </summary>
internal static class ReleaseCommands
{
    private const string Tool = "s3-driver";

    public static void AddTo(RootCommand root)
    {
        var dest = new Argument<string>("dest");
        var source = new Argument<string>("source");
        var id = new Argument<string?>("id") { Arity = ArgumentArity.ZeroOrOne };
        var keep = new Option<int>("--keep-releases") { DefaultValueFactory = _ => 3 };
        var grace = new Option<double>("--grace-seconds") { DefaultValueFactory = _ => 300 };
        var keepAssets = new Option<string[]>("--keep-assets");
        var keepAssetsFor = new Option<double>("--keep-assets-for-seconds") { DefaultValueFactory = _ => 86400 };

        ReleaseOptions Options(ParseResult parse) => new()
        {
            KeepReleases = parse.GetValue(keep),
            Grace = TimeSpan.FromSeconds(parse.GetValue(grace)),
            KeepAssets = parse.GetValue(keepAssets) ?? [],
            KeepAssetsFor = TimeSpan.FromSeconds(parse.GetValue(keepAssetsFor)),
            Step = StepHook(),
        };

        Add(root, "release-run", "Build, publish and clean up a release of DEST from a local SOURCE directory", c =>
        {
            using var directory = Open(c.GetValue(dest)!, Options(c));
            Run(directory, c.GetValue(source)!);
            return ExitCodes.Ok;
        }, [dest, source, keep, grace, keepAssets, keepAssetsFor]);

        Add(root, "release-rollback", "Point DEST/current at release ID (default: the one before the current one)", c =>
        {
            using var directory = Open(c.GetValue(dest)!, Options(c));
            var result = directory.Rollback(c.GetValue(id));
            Console.WriteLine($"from={result.From}");
            Console.WriteLine($"to={result.To}");
            return ExitCodes.Ok;
        }, [dest, id]);

        Add(root, "release-list", "List the releases of DEST: id, created, files, bytes, current", c =>
        {
            using var directory = Open(c.GetValue(dest)!, Options(c));
            foreach (var r in directory.List())
                Console.WriteLine($"{r.Id}\t{r.CreatedUtc:O}\t{r.Files}\t{r.Bytes}\t{(r.IsCurrent ? "current" : "")}\t{r.CarriedFiles}");
            return ExitCodes.Ok;
        }, [dest]);

        var work = new Argument<string>("workdir") { Description = "an empty directory on the file system to measure" };
        var files = new Option<int>("--files") { DefaultValueFactory = _ => 100_000 };
        var changed = new Option<int>("--changed") { DefaultValueFactory = _ => 1_000 };
        Add(root, "release-bench", "Measure building, publishing and deleting releases of many small files (bench/RESULTS.md, Releases)", c =>
        {
            ReleaseBench.Run(c.GetValue(work)!, c.GetValue(files), c.GetValue(changed));
            return ExitCodes.Ok;
        }, [work, files, changed]);

        var tree = new Argument<string>("path");
        Add(root, "release-delete-tree", "Delete a directory tree as a cleanup does and print the time it took (bench/RESULTS.md, Releases)", c =>
        {
            var watch = Stopwatch.StartNew();
            var entries = DirectoryTree.Delete(c.GetValue(tree)!);
            Console.WriteLine($"deleted {entries} entries in {watch.Elapsed.TotalSeconds.ToString("F3", CultureInfo.InvariantCulture)} s");
            return ExitCodes.Ok;
        }, [tree]);

        Add(root, "release-remove-legacy", "Remove the in-place tree DEST held before its first release", c =>
        {
            using var directory = Open(c.GetValue(dest)!, Options(c));
            Console.WriteLine($"removed={directory.RemoveLegacyTree()}");
            return ExitCodes.Ok;
        }, [dest]);
    }

    private static void Add(RootCommand root, string name, string description, Func<ParseResult, int> action, Symbol[] symbols)
    {
        var command = new Command(name, description);
        foreach (var symbol in symbols)
        {
            if (symbol is Argument argument) command.Arguments.Add(argument);
            else command.Options.Add((Option)symbol);
        }
        ToolHost.SetAction(command, Tool, parse => parse, (parse, _) => new DriverRun(() => Task.FromResult(action(parse))));
        root.Subcommands.Add(command);
    }

    private static ReleaseDirectory Open(string dest, ReleaseOptions options) =>
        ReleaseDirectory.TryOpen(dest, options) ?? throw new ToolException(ExitCodes.Refused, $"another run holds the lock on {dest}");

    private static void Run(ReleaseDirectory directory, string sourceRoot)
    {
        var watch = Stopwatch.StartNew();
        var phases = new List<string>();
        void Phase(string name)
        {
            phases.Add($"{name}={watch.Elapsed.TotalSeconds.ToString("F3", CultureInfo.InvariantCulture)}");
            watch.Restart();
        }

        var leftovers = directory.RemoveLeftovers();
        Console.WriteLine($"leftovers={leftovers.StagingDirectories}+{leftovers.TemporaryLinks}+{leftovers.OrphanFiles} entries={leftovers.Entries}");
        Phase("leftovers");

        var source = LocalTree.Scan(sourceRoot);
        var current = directory.ScanCurrent();
        var carried = directory.CarriedIntoCurrent();
        var unchanged = source.Files.Where(f => current.Files.TryGetValue(f.Key, out var c) && c == f.Value).Select(f => f.Key).ToList();
        var changed = source.Files.Keys.Except(unchanged).ToList();
        var deleted = current.Files.Keys.Count(k => !source.Files.ContainsKey(k) && !carried.Contains(k));
        Phase("scan");
        if (!directory.NeedsRelease(changed.Count > 0 || deleted > 0))
        {
            Console.WriteLine("unchanged");
            PrintCleanup(directory.Cleanup());
            return;
        }

        using var staging = directory.BeginStaging(unchanged);
        Phase("link");
        changed.AddRange(staging.Missing);
        var names = TempNames.Random();
        var written = 0;
        foreach (var path in changed.Order(StringComparer.Ordinal))
        {
            var target = staging.PathOf(path);
            var slash = path.LastIndexOf('/');
            if (slash > 0) staging.CreateDirectory(path[..slash]);
            var temp = names.PathFor(target);
            File.Copy(Path.Join(sourceRoot, path), temp);
            File.SetUnixFileMode(temp, AtomicFile.ReadableByAll);
            File.SetLastWriteTimeUtc(temp, source.Files[path].LastWriteUtc);
            AtomicFile.Rename(temp, target);
            written++;
            directory.Options.Step?.Invoke("write", written);
        }
        foreach (var folder in source.Directories) staging.CreateDirectory(folder);
        Phase("write");

        var result = staging.Publish();
        Console.WriteLine($"published={result.Id}");
        Console.WriteLine($"previous={result.PreviousId}");
        Console.WriteLine($"linked={result.Linked} written={written} carried={result.Carried} deleted={deleted}");
        Console.WriteLine($"syncfs={result.SyncDuration.TotalSeconds.ToString("F3", CultureInfo.InvariantCulture)} swap={result.SwapDuration.TotalSeconds.ToString("F6", CultureInfo.InvariantCulture)}");
        Phase("publish");
        PrintCleanup(directory.Cleanup());
        Phase("cleanup");
        Console.WriteLine("phases " + string.Join(' ', phases));
    }

    private static void PrintCleanup(CleanupResult cleanup) =>
        Console.WriteLine($"cleanup deleted={string.Join(',', cleanup.Deleted)} kept={string.Join(',', cleanup.Kept)} entries={cleanup.Entries}");

    /// <summary>The test seam: stop at RELEASE_TEST_STOP=STEP[:N], trace step changes with RELEASE_TEST_TRACE=1.</summary>
    private static Action<string, long>? StepHook()
    {
        var stop = Environment.GetEnvironmentVariable("RELEASE_TEST_STOP");
        var trace = Environment.GetEnvironmentVariable("RELEASE_TEST_TRACE") == "1";
        if (string.IsNullOrEmpty(stop) && !trace) return null;
        var stopName = stop?.Split(':')[0];
        long? stopCount = stop?.Contains(':') == true ? long.Parse(stop.Split(':')[1], CultureInfo.InvariantCulture) : null;
        string? last = null;
        return (name, count) =>
        {
            if (trace && name != last)
            {
                Console.Error.WriteLine($"step {name}");
                last = name;
            }
            if (name == stopName && (stopCount is null || stopCount == count))
            {
                Console.Error.WriteLine($"stopped at {name}:{count}");
                Console.Error.Flush();
                Thread.Sleep(Timeout.Infinite);
            }
        };
    }
}
