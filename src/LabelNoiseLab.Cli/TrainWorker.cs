using LabelNoiseLab.RunFiles;
using LabelNoiseLab.Training;
using LabelNoiseLab.Experiments;
using LabelNoiseLab.Studies;

namespace LabelNoiseLab.Cli;

/// <summary>Exit codes of lnlab.</summary>
public static class ExitCodes
{
    public const int Complete = 0;
    public const int InternalError = 1;
    public const int BadInput = 2;
    public const int Diverged = 3;
    public const int Failed = 4;

    /// <summary>Stopped by SIGTERM, SIGINT or SIGHUP after writing a checkpoint; <c>lnlab resume</c> continues it.</summary>
    public const int Interrupted = 5;

    /// <summary><c>lnlab verify --strict</c>: everything ran and at least one claim failed.</summary>
    public const int ClaimsFailed = 6;
}

/// <summary>
/// Runs one experiment: config (file, <c>--set</c>, validation) → run directory → runner → final
/// status. Knows nothing of the command-line parser. Errors are thrown; <see cref="LnlabCli"/>
/// turns them into one line and an exit code. The run directory is marked <c>failed</c> before an
/// error leaves, and <c>complete</c> only when the runner says so and every file is written.
/// </summary>
public sealed class TrainWorker(IExperimentRunner? runner, IProgressDisplay display, TextWriter stdout, string runsRoot = "runs", CancellationToken cancellation = default)
{
    /// <summary>The last evaluation in words: what was learned, memorised and recovered.</summary>
    internal static string FinalLine(MetricsRow r) => string.Create(System.Globalization.CultureInfo.InvariantCulture,
        $"final (epoch {r.Epoch}): test_acc {r.TestAcc:F4}, clean_acc {r.CleanAcc:F4}, memorisation noisy_given_acc {r.NoisyGivenAcc:F4}, recovery noisy_true_acc {r.NoisyTrueAcc:F4}");

    public int Run(TrainOptions options)
    {
        var config = options.ConfigYaml is not null
            ? ExperimentConfig.Parse(options.ConfigYaml, options.ConfigSource, options.Sets)
            : ExperimentConfig.Load(options.ConfigPath ?? throw new ArgumentException("no config given", nameof(options)), options.Sets);
        if (runner is null)
            throw new InvalidOperationException("no experiment runner is built into this lnlab yet (the trainer is missing); the config is valid, nothing was run");

        using var dir = RunDirectory.Create(options.OutDir, config.Name, options.Overwrite, runsRoot);
        stdout.WriteLine($"run directory: {dir.Path}");
        dir.WriteConfig(config);
        return RunToEnd(runner, config, dir, new RunContext(options.DataDir, display, cancellation));
    }

    /// <summary>
    /// `lnlab resume RUN_DIR`: goes on from the run's newest <c>epoch-NNNN</c> checkpoint (from the
    /// start when it has none yet) with the run's own config.yaml. The folder must be a run that is
    /// not complete; bad input (no run, unreadable config, a truncated or foreign checkpoint) is
    /// found before anything in the folder changes.
    /// </summary>
    public int Resume(string runDir, string? dataDir)
    {
        if (runner is null)
            throw new InvalidOperationException("no experiment runner is built into this lnlab");
        using var dir = RunDirectory.Reopen(runDir);
        var config = ExperimentConfig.Load(Path.Combine(runDir, RunDirectory.ConfigFile));
        string? checkpoint = TrainingCheckpoint.Latest(runDir);
        if (checkpoint is not null)
            TrainingCheckpoint.ReadState(checkpoint, config.ToYaml()); // a bad checkpoint fails here, the folder untouched
        stdout.WriteLine(checkpoint is null ? $"resuming {runDir} from the start (no checkpoint yet)" : $"resuming {runDir} from {checkpoint}");
        return RunToEnd(runner, config, dir, new RunContext(dataDir, display, cancellation, checkpoint));
    }

    private int RunToEnd(IExperimentRunner runner, ExperimentConfig config, RunDirectory dir, RunContext context) =>
        RunEnding.Run(dir, stdout, () => display.Show(() => runner.Run(config, dir, context)),
            onComplete: () =>
            {
                if (dir.Metrics is { Rows.Count: > 0 } metrics)
                    stdout.WriteLine(FinalLine(metrics.Rows[^1]));
            });
}

/// <summary>
/// How every run that lnlab starts ends: the runner's result becomes the final status (complete
/// last of all) and the exit code; an exception marks the run failed and goes on to the one
/// place that reports it.
/// </summary>
internal static class RunEnding
{
    public static int Run(RunDirectory dir, TextWriter stdout, Func<RunResult> body, Action? onComplete = null)
    {
        RunResult result;
        try
        {
            result = body();
            RunOutcome.Record(dir, result);
        }
        catch (Exception e)
        {
            // An untouched reopened folder (resume refused on bad input) stays exactly as it was;
            // so does the old run that a run with --overwrite would have replaced (the caller's Dispose drops the new one).
            if (dir.Staged)
                stdout.WriteLine($"{dir.Path}: left as it was (the new run did not start)");
            RunOutcome.RecordException(dir, e);
            throw;
        }
        switch (result.Status)
        {
            case RunStatus.Complete:
                onComplete?.Invoke();
                stdout.WriteLine($"complete: {dir.Path}");
                return ExitCodes.Complete;
            case RunStatus.Diverged:
                stdout.WriteLine($"diverged: {dir.StatusReason} ({dir.Path})");
                return ExitCodes.Diverged;
            case RunStatus.Interrupted:
                stdout.WriteLine($"interrupted: {dir.StatusReason}; continue with: lnlab resume {dir.Path}");
                return ExitCodes.Interrupted;
            default:
                stdout.WriteLine($"failed: {dir.StatusReason} ({dir.Path})");
                return ExitCodes.Failed;
        }
    }
}
