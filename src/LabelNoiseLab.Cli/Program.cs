using System.Runtime.InteropServices;
using LabelNoiseLab.Cli;

// SIGTERM (a scheduler's preemption), SIGINT (Ctrl+C) and SIGHUP: the trainer writes a checkpoint
// at the next step boundary and the run ends as interrupted (exit 5); a second signal ends the
// process at once. A worker of `lnlab sweep` (LNLAB_PARENT_PID set) ignores further signals: its
// sweep forwards the first one (a Ctrl+C in a terminal reaches both) and kills it after a grace
// period, and the kernel sends it SIGTERM when the sweep dies. Under Slurm (SLURM_JOB_ID set)
// every lnlab process acts on its first signal only: on preemption Slurm signals every process of
// the task and the batch script forwards the signal once more, and Slurm's own SIGKILL after its
// KillWait is the hard stop.
using var interruption = new CancellationTokenSource();
bool underSweep = ParentProcess.Expected is not null || !string.IsNullOrEmpty(Environment.GetEnvironmentVariable("SLURM_JOB_ID"));
var registrations = new[] { PosixSignal.SIGTERM, PosixSignal.SIGINT, PosixSignal.SIGHUP }
    .Select(signal => PosixSignalRegistration.Create(signal, context =>
    {
        if (interruption.IsCancellationRequested && !underSweep)
            return; // the second signal: the default action (terminate)
        context.Cancel = true;
        interruption.Cancel();
    }))
    .ToList();
if (!ParentProcess.Watch())
    interruption.Cancel(); // the sweep that started this worker is gone already

int code = LnlabCli.Run(args, Console.Out, Console.Error, new CliHost(
    Runner: Runners.Default(),
    Interactive: !Console.IsOutputRedirected,
    Cancellation: interruption.Token));
// Under a sweep or Slurm a late signal (the batch script's forward of one that has already been
// acted on) may arrive after the work has ended: the handlers stay until the process exits, so it
// is ignored and the exit code stays the run's own (5), not 143.
if (!underSweep)
    registrations.ForEach(r => r.Dispose());
return code;
