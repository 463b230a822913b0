using System.Runtime.InteropServices;

namespace InfraTools.Cli;

/// <summary>
/// A run's signal handlers, shared by the host and cron. A stop signal often comes twice (timeout(1) signals the
/// child, then its process group), and the second may arrive after the run ended: once a stop signal arrived the
/// handlers stay registered until the process exits and absorb it, instead of the default action killing a
/// process that stopped cleanly (143).
/// </summary>
public sealed class SignalHandlers
{
    private readonly List<PosixSignalRegistration> _registrations = [];
    private int _stopped;

    /// <summary>A stop signal: handled instead of its default action, and from then on the handlers stay.</summary>
    public void OnStop(PosixSignal signal, Action<PosixSignalContext> handler) =>
        On(signal, context =>
        {
            Volatile.Write(ref _stopped, 1);
            handler(context);
        });

    /// <summary>Any other signal (a reload): handled instead of its default action.</summary>
    public void On(PosixSignal signal, Action<PosixSignalContext> handler) =>
        _registrations.Add(PosixSignalRegistration.Create(signal, context =>
        {
            context.Cancel = true;
            handler(context);
        }));

    /// <summary>The run is over: the handlers go, unless a stop signal arrived (then they stay until the process exits).</summary>
    public void Release()
    {
        if (Volatile.Read(ref _stopped) != 0) return;
        foreach (var registration in _registrations) registration.Dispose();
    }
}
