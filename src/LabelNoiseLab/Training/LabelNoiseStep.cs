using System.Globalization;
using LabelNoiseLab.Data;
using LabelNoiseLab.Noise;
using LabelNoiseLab.Tensors;

namespace LabelNoiseLab.Training;

/// <summary>Which labels label-noise SGD perturbs.</summary>
public enum LabelNoiseSgdKind
{
    /// <summary>Each label redrawn with probability p uniformly from all classes.</summary>
    Classification,

    /// <summary>ε (±σ or N(0, σ²)) added to each regression target.</summary>
    Regression,
}

/// <summary>Label-noise SGD settings, free of any config format.</summary>
public sealed record LabelNoiseSgdOptions(LabelNoiseSgdKind Kind, double P, double Sigma, StepNoiseDistribution Distribution, StepNoiseSchedule Schedule, long Seed);

/// <summary>
/// Label-noise SGD (<c>label_noise</c>) for any model and any loss: fresh noise at every step
/// from its own generator (<c>Rng.ForPurpose(seed, "step-label-noise")</c>), written into the
/// step's labels (classification: each redrawn with probability p uniformly from all classes, so
/// it may land on the given class) or targets (regression: ε added). Drawn once per step, so
/// SAM's second pass and every later component see the same labels. The data set's labels are
/// never changed. Also a callback: summary.json gets the realised rates under <c>label_noise</c>.
/// <see cref="ITrainingComponent.Acted"/> counts the steps in which at least one label was redrawn
/// (classification) or noise was added (regression).
/// </summary>
public sealed class LabelNoiseStep : ITargetStep, ITrainingCallback
{
    private readonly LabelNoiseSgdOptions _options;
    private readonly Rng _rng;
    private readonly ClassificationStepNoise? _classes;
    private readonly RegressionStepNoise? _targets;
    private readonly Tensor? _noisyTargets;
    private readonly int _targetLength;

    /// <summary>
    /// Label-noise SGD on <paramref name="train"/> with batches of at most <paramref name="batchSize"/>
    /// samples. Throws <see cref="ArgumentException"/> when the kind does not match the data set
    /// (classification noise on regression targets or the reverse) or a rate is out of range.
    /// </summary>
    public LabelNoiseStep(LabelNoiseSgdOptions options, Dataset train, int batchSize)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(train);
        _options = options;
        var rng = _rng = Rng.ForPurpose(options.Seed, "step-label-noise");
        bool regression = train.NumClasses == 0;
        if (options.Kind == LabelNoiseSgdKind.Classification)
        {
            if (regression)
                throw new ArgumentException($"classification label noise needs a classification data set; {train.Name} has regression targets", nameof(options));
            _classes = new ClassificationStepNoise(options.P, train.NumClasses, options.Schedule, rng);
        }
        else
        {
            if (!regression)
                throw new ArgumentException($"regression label noise needs regression targets; {train.Name} is a classification set", nameof(options));
            _targets = new RegressionStepNoise(options.Sigma, options.Distribution, options.Schedule, rng);
            _targetLength = train.TargetLength;
            _noisyTargets = new Tensor(batchSize, _targetLength);
        }
    }

    /// <inheritdoc/>
    public string Name => "label_noise";

    /// <inheritdoc/>
    public long Acted { get; private set; }

    /// <summary>Samples seen at steps where the schedule had the noise on.</summary>
    public long NoisySamples { get; private set; }

    /// <summary>Samples seen in all steps.</summary>
    public long Samples { get; private set; }

    /// <summary>Classification: labels redrawn (including redraws that landed on the given label).</summary>
    public long Redrawn { get; private set; }

    /// <summary>Classification: labels that ended different from the given label.</summary>
    public long Changed { get; private set; }

    /// <summary>When the noise is on.</summary>
    public StepNoiseSchedule Schedule => _classes?.Schedule ?? _targets!.Schedule;

    /// <inheritdoc/>
    public void Apply(StepContext step)
    {
        ArgumentNullException.ThrowIfNull(step);
        var batch = step.Batch;
        int n = batch.Length;
        Samples += n;
        bool on = Schedule.IsOn(step.Step);
        if (on)
            NoisySamples += n;
        if (_classes is not null)
        {
            var given = batch.Labels;
            long redrawn = _classes.Apply(given, step.Labels, step.Step);
            Redrawn += redrawn;
            Acted += redrawn > 0 ? 1 : 0;
            for (int i = 0; i < n; i++)
                Changed += step.Labels[i] != given[i] ? 1 : 0;
            return;
        }
        _noisyTargets!.Resize([n, _targetLength]);
        _targets!.Apply(batch.Targets, _noisyTargets.Span, step.Step);
        step.Targets = _noisyTargets;
        Acted += on ? 1 : 0;
    }

    /// <summary>The generator's state and the counters, so a resumed run draws the same labels.</summary>
    public ComponentState SaveState() => new ComponentState()
        .Set("rng", _rng.GetState())
        .Set("samples", Samples).Set("noisy_samples", NoisySamples)
        .Set("redrawn", Redrawn).Set("changed", Changed).Set("acted", Acted);

    /// <inheritdoc/>
    public void RestoreState(ComponentState state)
    {
        ArgumentNullException.ThrowIfNull(state);
        _rng.SetState(state.ULongs("rng"));
        (Samples, NoisySamples, Redrawn, Changed, Acted) =
            (state.Long("samples"), state.Long("noisy_samples"), state.Long("redrawn"), state.Long("changed"), state.Long("acted"));
    }

    /// <inheritdoc/>
    public void OnEnd(TrainingRun run, IDictionary<string, object?> summary)
    {
        ArgumentNullException.ThrowIfNull(summary);
        bool classification = _classes is not null;
        summary["label_noise"] = new Dictionary<string, object?>
        {
            ["kind"] = classification ? "classification" : "regression",
            ["schedule"] = Schedule.ToString(),
            ["p"] = classification ? _options.P : null,
            ["sigma"] = classification ? null : _options.Sigma,
            ["distribution"] = classification ? null : _options.Distribution == StepNoiseDistribution.Gaussian ? "gaussian" : "sign",
            ["samples"] = Samples,
            ["noisy_samples"] = NoisySamples,
            ["redrawn"] = classification ? Redrawn : null,
            ["changed"] = classification ? Changed : null,
            // Over the samples seen while the noise was on: p and p·(k−1)/k expected.
            ["realised_redraw_rate"] = !classification || NoisySamples == 0 ? null : (double)Redrawn / NoisySamples,
            ["realised_change_rate"] = !classification || NoisySamples == 0 ? null : (double)Changed / NoisySamples,
        };
    }
}
