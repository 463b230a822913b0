using InfraTools.Cron.Logging;

namespace InfraTools.Cron.Scheduling;

/// <summary>
/// -inotify: watches the directory that holds the crontab (inotify, through FileSystemWatcher), not the file
/// itself, so that every way of replacing it is seen: writing in place, an editor's rename, and Kubernetes'
/// ConfigMap update, which swaps the "..data" symlink the crontab path points through. Events are debounced;
/// the scheduler then reloads only if the content really changed.
/// </summary>
public sealed class CrontabWatcher : IDisposable
{
    private static readonly TimeSpan Debounce = TimeSpan.FromMilliseconds(250);

    private readonly List<FileSystemWatcher> _watchers = [];
    private readonly Timer _timer;
    private readonly CronLog _log;

    public CrontabWatcher(string crontabPath, Action changed, CronLog log)
    {
        _log = log;
        _timer = new Timer(_ => changed(), null, Timeout.Infinite, Timeout.Infinite);
        var path = Path.GetFullPath(crontabPath);
        var directories = new List<string> { Path.GetDirectoryName(path)! };
        // A crontab that is a symlink into another directory (e.g. /etc/crontab -> /config/crontab): watch that one too.
        try
        {
            if (File.ResolveLinkTarget(path, returnFinalTarget: false) is { } link)
            {
                var target = Path.GetFullPath(link.FullName);
                var targetDirectory = Path.GetDirectoryName(target)!;
                if (!targetDirectory.StartsWith(directories[0] + Path.DirectorySeparatorChar, StringComparison.Ordinal) && targetDirectory != directories[0])
                    directories.Add(targetDirectory);
            }
        }
        catch (IOException)
        {
        }
        foreach (var directory in directories)
        {
            var watcher = new FileSystemWatcher(directory)
            {
                IncludeSubdirectories = false,
                NotifyFilter = NotifyFilters.FileName | NotifyFilters.DirectoryName | NotifyFilters.LastWrite | NotifyFilters.Size
                    | NotifyFilters.Attributes | NotifyFilters.CreationTime | NotifyFilters.Security,
            };
            watcher.Changed += OnEvent;
            watcher.Created += OnEvent;
            watcher.Deleted += OnEvent;
            watcher.Renamed += OnEvent;
            watcher.Error += (_, e) => _log.Warn($"inotify watch on {directory} failed: {e.GetException().Message}");
            watcher.EnableRaisingEvents = true;
            _watchers.Add(watcher);
            _log.Info($"adding file watch for '{directory}'");
        }
    }

    private void OnEvent(object sender, FileSystemEventArgs e)
    {
        _log.Debug($"event: {e.ChangeType} \"{e.FullPath}\"");
        _timer.Change(Debounce, Timeout.InfiniteTimeSpan);
    }

    public void Dispose()
    {
        foreach (var watcher in _watchers) watcher.Dispose();
        _timer.Dispose();
    }
}
