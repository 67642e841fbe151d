using LabelNoiseLab.RunFiles;
using LabelNoiseLab.Experiments;

namespace LabelNoiseLab.Training;

/// <summary>
/// The seam between the CLI (or any host) and the trainer. The host loads and validates the
/// config, creates the run directory (status <c>running</c>, <c>config.yaml</c> written) and calls
/// <see cref="Run"/>. The runner writes metrics, summary and checkpoints through
/// <see cref="RunDirectory"/> and reports how the run ended; the host then writes the final
/// status (<see cref="RunDirectory.MarkComplete"/> etc.), so the runner never marks the run itself.
/// Bad input found while running (a missing data file) is thrown as <see cref="InputException"/>;
/// the host marks the run failed and reports it.
/// </summary>
public interface IExperimentRunner
{
    RunResult Run(ExperimentConfig config, RunDirectory directory, RunContext context);
}

/// <summary>What a runner gets besides the config and the directory.</summary>
/// <param name="DataDir">
/// <c>--data-dir</c> as given, or null. The data loaders resolve it: <c>--data-dir</c>, then
/// <c>$LNLAB_DATA</c>, then the Debian package folders (DESIGN.md).
/// </param>
/// <param name="Progress">Where to report steps and evaluations; never null (<see cref="NullProgressSink"/>).</param>
/// <param name="Cancellation">Signalled on Ctrl+C; a runner that honours it ends with <see cref="RunStatus.Failed"/>.</param>
/// <param name="ResumeFrom">A training checkpoint to go on from (<c>lnlab resume</c>); null = start afresh.</param>
public sealed record RunContext(string? DataDir, IProgressSink Progress, CancellationToken Cancellation = default, string? ResumeFrom = null);

/// <summary>How a run ended: <see cref="RunStatus.Complete"/>, or diverged/failed with a one-line reason.</summary>
public sealed record RunResult(RunStatus Status, string? Reason = null)
{
    public static RunResult Complete { get; } = new(RunStatus.Complete);

    /// <summary>A NaN or infinite loss: <c>RunResult.Diverged(step)</c> → "diverged at step 123".</summary>
    public static RunResult Diverged(long step) => new(RunStatus.Diverged, $"diverged at step {step}");

    public static RunResult Failed(string reason) => new(RunStatus.Failed, reason);
}
