using LabelNoiseLab.Data;
using LabelNoiseLab.Nn;
using LabelNoiseLab.Optim;
using LabelNoiseLab.RunFiles;

namespace LabelNoiseLab.Training;

/// <summary>How the loss is scored in evaluation (and, for the plain loss, trained).</summary>
public enum LossKind
{
    /// <summary>Softmax cross-entropy.</summary>
    CrossEntropy,
    /// <summary>Mean squared error (one-hot targets for classification).</summary>
    Mse,
}

/// <summary>The trainer's own settings, free of any config format (the Experiments layer fills them).</summary>
public sealed record TrainingOptions
{
    /// <summary>The run's name (summary.json).</summary>
    public string Name { get; init; } = "run";

    /// <summary>Epochs to train (the cap when early stopping is on).</summary>
    public int Epochs { get; init; } = 1;

    /// <summary>Samples per minibatch (the last batch of an epoch may be smaller).</summary>
    public int BatchSize { get; init; } = 32;

    /// <summary>The base learning rate the schedule scales.</summary>
    public float LearningRate { get; init; } = 0.01f;

    /// <summary>Evaluate every N steps as well as after each epoch (0 = per epoch only).</summary>
    public int EvalEverySteps { get; init; }

    /// <summary>A resumable checkpoint every N epochs (0 = none).</summary>
    public int CheckpointEvery { get; init; }

    /// <summary>A resumable checkpoint every N steps, inside epochs too (0 = none).</summary>
    public int CheckpointEverySteps { get; init; }

    /// <summary>Stop after this many evaluations without a better validation loss (0 = never).</summary>
    public int EarlyStopPatience { get; init; }

    /// <summary>BLAS threads (0 = leave as is).</summary>
    public int Threads { get; init; }

    /// <summary>Seed of the evaluation subset.</summary>
    public long Seed { get; init; }

    /// <summary>Training samples scored at each evaluation (0 = all).</summary>
    public int EvalTrainSamples { get; init; }

    /// <summary>The loss used for evaluation, and for training when <see cref="TrainingSetup.Loss"/> is null.</summary>
    public LossKind LossKind { get; init; } = LossKind.CrossEntropy;

    /// <summary>Evaluate only at log-spaced epochs (<see cref="EvaluationSchedule.IsLogEpoch"/>) and the last, instead of after every epoch.</summary>
    public bool LogSpacedEvaluation { get; init; }

    /// <summary>
    /// Stop at epoch ceil(F × E), E = the first evaluated epoch whose noisy samples are fitted
    /// (noisy_given_acc ≥ 0.99); 0 = off. <see cref="Epochs"/> stays the cap.
    /// </summary>
    public double NoisyFitFactor { get; init; }

    /// <summary>Write <c>checkpoints/best_val.safetensors</c> (model state, its epoch in the metadata) at each new lowest validation loss.</summary>
    public bool SaveBestValCheckpoint { get; init; }

    /// <summary>What a checkpoint must have been written for (the resolved config): a resume from another is refused.</summary>
    public string Fingerprint { get; init; } = "";

    /// <summary>Extra metadata of every checkpoint file (e.g. <c>model.kind</c>).</summary>
    public IReadOnlyDictionary<string, string> CheckpointMetadata { get; init; } = new Dictionary<string, string>();
}

/// <summary>Everything a training run is made of, for components and callbacks to read.</summary>
public sealed record TrainingRun(
    TrainingOptions Options,
    RunDirectory Directory,
    PreparedData Data,
    Model Model,
    Optimizer Optimizer,
    Batcher Batcher,
    IProgressSink Progress);

/// <summary>
/// What one run trains with: the built data, model and optimizer, the schedule, and the
/// components. Built by the composition root (Experiments) from a config, or by hand.
/// </summary>
public sealed record TrainingSetup
{
    /// <summary>The trainer's settings.</summary>
    public required TrainingOptions Options { get; init; }
    /// <summary>The prepared data (noise injected, normalised).</summary>
    public required PreparedData Data { get; init; }
    /// <summary>The model to train (initialised: see <c>Init.Apply</c>).</summary>
    public required Model Model { get; init; }
    /// <summary>The optimizer over the model's parameters.</summary>
    public required Optimizer Optimizer { get; init; }
    /// <summary>The learning-rate schedule (<see cref="LrSchedule.Constant"/> for none).</summary>
    public required LrSchedule Schedule { get; init; }

    /// <summary>Label-noise SGD and the like, applied in order before the forward.</summary>
    public IReadOnlyList<ITargetStep> Targets { get; init; } = [];

    /// <summary>The loss (null = cross-entropy or MSE per <see cref="TrainingOptions.LossKind"/>).</summary>
    public ILossStep? Loss { get; init; }

    /// <summary>Sample weighting (small-loss selection, co-teaching), applied in order on the first pass.</summary>
    public IReadOnlyList<ISampleWeighting> Weightings { get; init; } = [];

    /// <summary>Per-sample gradient weighting (pruning), or null.</summary>
    public IGradientWeighting? GradientWeighting { get; init; }

    /// <summary>SAM around the optimizer (null = plain steps).</summary>
    public SharpnessAware? Sam { get; init; }

    /// <summary>Callbacks (probes), called in order.</summary>
    public IReadOnlyList<ITrainingCallback> Callbacks { get; init; } = [];
}

/// <summary>When evaluations happen.</summary>
public static class EvaluationSchedule
{
    private static readonly int[] Mantissas10 = [10, 12, 15, 20, 25, 30, 40, 50, 60, 80];

    /// <summary>The noisy-label fit threshold of <see cref="TrainingOptions.NoisyFitFactor"/>: accuracy on the given (wrong) labels of the noisy samples.</summary>
    public const double NoisyFitAccuracy = 0.99;

    /// <summary>Epochs 1..10, then 12, 15, 20, 25, 30, 40, 50, 60, 80 in every decade (100, 120, 150, ...): about ten a decade.</summary>
    public static bool IsLogEpoch(int epoch)
    {
        if (epoch <= 0)
            return false;
        if (epoch <= 10)
            return true;
        long decade = 1;
        while (decade * 10 <= epoch)
            decade *= 10;
        foreach (int m in Mantissas10)
        {
            if ((long)epoch * 10 == m * decade)
                return true;
        }
        return false;
    }
}
