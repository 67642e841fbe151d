using LabelNoiseLab.Autograd;
using LabelNoiseLab.Data;
using LabelNoiseLab.Losses;
using LabelNoiseLab.Noise;
using LabelNoiseLab.Tensors;
using LabelNoiseLab.Experiments;

namespace LabelNoiseLab.Training;

/// <summary>
/// Label-noise SGD for any model (<c>label_noise.kind</c>): the configured loss against labels
/// (or targets) with fresh noise drawn at every step from its own generator
/// (<c>Rng.ForPurpose(seed, "step-label-noise")</c>). Classification: each label is redrawn with
/// probability p uniformly from all classes (may redraw the true class), trained with
/// cross-entropy or MSE on one-hot rows. Regression: ε (±σ or N(0, σ²)) added to each target.
/// The noisy labels of a step are drawn once and kept for every call with the same step, so
/// SAM's second forward/backward sees the same labels. Buffers are allocated once.
/// Also a hook: summary.json gets the realised rates under <c>label_noise</c>.
/// </summary>
public sealed class LabelNoiseObjective : ITrainingObjective, ITrainerHook, IResumable
{
    private readonly Rng _rng;
    private readonly string _lossKind;
    private readonly ClassificationStepNoise? _classes;
    private readonly RegressionStepNoise? _targets;
    private readonly int[] _labels = [];
    private readonly Tensor? _noisyTargets;
    private readonly int _targetLength;
    private long _drawnStep = -1;

    public LabelNoiseObjective(ExperimentConfig config, Dataset train, int batchSize)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(train);
        _lossKind = config.LossKind;
        var schedule = config.LabelNoiseSchedule switch
        {
            "periodic" => StepNoiseSchedule.Periodic(config.LabelNoisePeriod),
            "until" => StepNoiseSchedule.Until(config.LabelNoiseOffAfter),
            _ => StepNoiseSchedule.Constant,
        };
        var rng = _rng = Rng.ForPurpose(config.Seed, "step-label-noise");
        bool regression = train.NumClasses == 0;
        if (config.LabelNoiseKind == "classification")
        {
            if (regression)
                throw new ConfigException("label_noise.kind", $"classification label noise on a regression data set ({config.DataName}); use regression");
            _classes = new ClassificationStepNoise(config.LabelNoiseP, train.NumClasses, schedule, rng);
            _labels = new int[batchSize];
        }
        else
        {
            if (!regression)
                throw new ConfigException("label_noise.kind", $"regression label noise on a classification data set ({config.DataName}); use classification");
            var distribution = config.LabelNoiseDistribution == "gaussian" ? StepNoiseDistribution.Gaussian : StepNoiseDistribution.PlusMinus;
            _targets = new RegressionStepNoise(config.LabelNoiseSigma, distribution, schedule, rng);
            _targetLength = train.TargetLength;
            _noisyTargets = new Tensor(batchSize, _targetLength);
        }
    }

    /// <summary>The generator's state and the counters, so a resumed run draws the same labels.</summary>
    public string SaveState() =>
        string.Join(",", _rng.GetState().Select(v => v.ToString(System.Globalization.CultureInfo.InvariantCulture))
            .Concat(new[] { NoisySamples, Samples, Redrawn, Changed }.Select(v => v.ToString(System.Globalization.CultureInfo.InvariantCulture))));

    public void RestoreState(string state)
    {
        var parts = state.Split(',');
        if (parts.Length != 10)
            throw new InputException($"label-noise state in the checkpoint has {parts.Length} fields; expected 10");
        _rng.SetState(parts[..6].Select(p => ulong.Parse(p, System.Globalization.CultureInfo.InvariantCulture)).ToArray());
        var n = parts[6..].Select(p => long.Parse(p, System.Globalization.CultureInfo.InvariantCulture)).ToArray();
        (NoisySamples, Samples, Redrawn, Changed) = (n[0], n[1], n[2], n[3]);
    }

    /// <summary>The objective for <c>label_noise.kind</c>, or null when it is <c>none</c>.</summary>
    public static LabelNoiseObjective? Create(ExperimentConfig config, TrainingRun run) =>
        config.LabelNoiseKind == "none" ? null : new LabelNoiseObjective(config, run.Data.Train, config.BatchSize);

    /// <summary>Samples seen at steps where the schedule had the noise on.</summary>
    public long NoisySamples { get; private set; }

    /// <summary>Samples seen in all steps.</summary>
    public long Samples { get; private set; }

    /// <summary>Classification: labels redrawn (including redraws that landed on the given label).</summary>
    public long Redrawn { get; private set; }

    /// <summary>Classification: labels that ended different from the given label.</summary>
    public long Changed { get; private set; }

    /// <summary>The labels used at the last step (classification; the first batch-length entries).</summary>
    public ReadOnlySpan<int> LastLabels => _labels;

    public Tensor Loss(Tape tape, Tensor output, Batcher batch, long step)
    {
        ArgumentNullException.ThrowIfNull(batch);
        if (step != _drawnStep)
            Draw(batch, step);
        if (_noisyTargets is not null)
            return MseOp.Forward(tape, output, _noisyTargets).Mean;
        return _lossKind == "mse"
            ? MseOp.Forward(tape, output, _labels).Mean
            : SoftmaxCrossEntropyOp.Forward(tape, output, _labels).Mean;
    }

    private void Draw(Batcher batch, long step)
    {
        _drawnStep = step;
        int n = batch.Length;
        Samples += n;
        bool on = (_classes?.Schedule ?? _targets!.Schedule).IsOn(step);
        if (on)
            NoisySamples += n;
        if (_classes is not null)
        {
            var given = batch.Labels;
            Redrawn += _classes.Apply(given, _labels, step);
            for (int i = 0; i < n; i++)
                Changed += _labels[i] != given[i] ? 1 : 0;
            return;
        }
        _noisyTargets!.Resize([n, _targetLength]);
        _targets!.Apply(batch.Targets, _noisyTargets.Span, step);
    }

    public void OnEnd(TrainingRun run, IDictionary<string, object?> summary)
    {
        ArgumentNullException.ThrowIfNull(run);
        ArgumentNullException.ThrowIfNull(summary);
        var c = run.Config;
        summary["label_noise"] = new Dictionary<string, object?>
        {
            ["kind"] = c.LabelNoiseKind,
            ["schedule"] = (_classes?.Schedule ?? _targets!.Schedule).ToString(),
            ["p"] = _classes is null ? null : c.LabelNoiseP,
            ["sigma"] = _targets is null ? null : c.LabelNoiseSigma,
            ["distribution"] = _targets is null ? null : c.LabelNoiseDistribution,
            ["samples"] = Samples,
            ["noisy_samples"] = NoisySamples,
            ["redrawn"] = _classes is null ? null : Redrawn,
            ["changed"] = _classes is null ? null : Changed,
            // Over the samples seen while the noise was on: p and p·(k−1)/k expected.
            ["realised_redraw_rate"] = _classes is null || NoisySamples == 0 ? null : (double)Redrawn / NoisySamples,
            ["realised_change_rate"] = _classes is null || NoisySamples == 0 ? null : (double)Changed / NoisySamples,
        };
    }
}
