using System.Runtime.InteropServices;
using LabelNoiseLab.Cli;

// SIGTERM (a scheduler's preemption), SIGINT (Ctrl+C) and SIGHUP: the trainer writes a checkpoint
// at the next step boundary and the run ends as interrupted (exit 5); a second signal ends the
// process at once.
using var interruption = new CancellationTokenSource();
var registrations = new[] { PosixSignal.SIGTERM, PosixSignal.SIGINT, PosixSignal.SIGHUP }
    .Select(signal => PosixSignalRegistration.Create(signal, context =>
    {
        if (interruption.IsCancellationRequested)
            return; // the second signal: the default action (terminate)
        context.Cancel = true;
        interruption.Cancel();
    }))
    .ToList();

int code = LnlabCli.Run(args, Console.Out, Console.Error, new CliHost(
    Runner: Runners.Default(),
    Interactive: !Console.IsOutputRedirected,
    Cancellation: interruption.Token));
registrations.ForEach(r => r.Dispose());
return code;
