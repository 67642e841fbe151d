using LabelNoiseLab.Autograd;
using LabelNoiseLab.Data;
using LabelNoiseLab.Nn;
using LabelNoiseLab.Optim;
using LabelNoiseLab.RunFiles;
using LabelNoiseLab.Experiments;
using LabelNoiseLab.Probes;

namespace LabelNoiseLab.Training;

/// <summary>Everything a training run is made of, for objectives and hooks to read.</summary>
public sealed record TrainingRun(
    ExperimentConfig Config,
    RunDirectory Directory,
    PreparedData Data,
    Model Model,
    Optimizer Optimizer,
    Batcher Batcher,
    IProgressSink Progress);

/// <summary>
/// The loss of one training step. The default is the configured cross-entropy or MSE against
/// the batch's given labels; robust losses, loss correction, per-step label noise and
/// per-sample weighting are other objectives. Must not allocate per step.
/// </summary>
public interface ITrainingObjective
{
    /// <summary>The scalar to back-propagate for this batch (recorded on <paramref name="tape"/>).</summary>
    Tensor Loss(Tape tape, Tensor output, Batcher batch, long step);

    /// <summary>After the backward, before the optimizer step (per-sample re-weighting of the gradients).</summary>
    void AfterBackward(Tape tape, Batcher batch, long step)
    {
    }
}

/// <summary>
/// Something that runs beside training: a probe writing its own CSV, extra metrics columns.
/// Created per run from the config by a factory in <see cref="TrainerHooks.Factories"/>.
/// </summary>
public interface ITrainerHook
{
    /// <summary>Extra metrics.csv columns this hook fills at each evaluation.</summary>
    IReadOnlyList<string> MetricsColumns => [];

    /// <summary>Before the first step (the model is initialised, nothing trained).</summary>
    void OnStart(TrainingRun run)
    {
    }

    /// <summary>After each evaluation row is computed and before it is written: fill <paramref name="extra"/>.</summary>
    void OnEvaluation(TrainingRun run, int epoch, long step, IDictionary<string, double> extra)
    {
    }

    /// <summary>After training, before summary.json is written: add figures to it.</summary>
    void OnEnd(TrainingRun run, IDictionary<string, object?> summary)
    {
    }
}

/// <summary>
/// Where features plug into the trainer: each factory looks at the config and returns a hook
/// (or null when its feature is off). One line per feature.
/// </summary>
public static class TrainerHooks
{
    public static IReadOnlyList<Func<ExperimentConfig, ITrainerHook?>> Factories { get; } =
    [
        NeuronNormHook.Create,
        c => c.ProbeSpectralEvery > 0 ? new SpectralTrainerHook(c.ProbeSpectralEvery) : null,
        c => c.ProbeActivationsEvery > 0 ? new Probes.ActivationProbe(c) : null,
        c => c.ProbePhases ? new Probes.PhaseDetectionHook(c) : null,
    ];

    /// <summary>
    /// Objective factories, tried in order; the first non-null wins, else the plain loss. An
    /// objective that is also an <see cref="ITrainerHook"/> is run as one (its metrics columns).
    /// </summary>
    public static IReadOnlyList<Func<ExperimentConfig, TrainingRun, ITrainingObjective?>> Objectives { get; } =
    [
        LabelNoiseObjective.Create,
        (c, run) => Robust.RobustObjective.TryCreate(c, run),
    ];
}
