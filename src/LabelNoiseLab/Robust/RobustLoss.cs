using System.Numerics.Tensors;
using LabelNoiseLab.Autograd;
using LabelNoiseLab.Data;
using LabelNoiseLab.Losses;
using LabelNoiseLab.Nn;
using LabelNoiseLab.Training;

namespace LabelNoiseLab.Robust;

/// <summary>
/// Forward or backward loss correction with a transition matrix estimated from the model's own
/// predictions (anchor points at <paramref name="Percentile"/>), after epoch <paramref name="AfterEpoch"/>.
/// </summary>
public sealed record TransitionEstimate(bool Backward, int AfterEpoch, double Percentile);

/// <summary>
/// The robust loss of a step (<c>robust_loss</c>): GCE, SCE, MAE, NCE+RCE, label smoothing,
/// bootstrapping, or loss correction with a given or estimated transition matrix T, against the
/// step's labels (so it composes with label-noise SGD), weighted by the step's sample weights
/// unless those are applied after the backward. With an estimate, the loss is cross-entropy until
/// the epoch after <see cref="TransitionEstimate.AfterEpoch"/> starts, then T is estimated once from
/// the model's softmax on the training set. <see cref="ITrainingComponent.Acted"/> counts steps
/// taken with a loss other than plain cross-entropy.
/// </summary>
public sealed class RobustLoss : ILossStep, ITrainingCallback
{
    private readonly TransitionEstimate? _estimate;
    private readonly Dataset _train;
    private readonly Model _model;
    private TrainingRun? _run;

    /// <summary>
    /// The loss <paramref name="spec"/> for <paramref name="model"/> on <paramref name="train"/>; with an
    /// <paramref name="estimate"/>, T is estimated from the model's predictions. Throws
    /// <see cref="ArgumentNullException"/> for a null spec, data set or model.
    /// </summary>
    public RobustLoss(RobustLossSpec spec, TransitionEstimate? estimate, Dataset train, Model model)
    {
        ArgumentNullException.ThrowIfNull(spec);
        ArgumentNullException.ThrowIfNull(train);
        ArgumentNullException.ThrowIfNull(model);
        Spec = spec;
        _estimate = estimate;
        _train = train;
        _model = model;
    }

    /// <inheritdoc/>
    public string Name => "robust_loss";

    /// <inheritdoc/>
    public long Acted { get; private set; }

    /// <summary>The loss as it is now (changes once T is estimated).</summary>
    public RobustLossSpec Spec { get; private set; }

    /// <summary>The estimated T (row-major), once estimated.</summary>
    public float[]? EstimatedT { get; private set; }

    /// <summary>Turned off while T is estimated (per-sample gradient hooks must not see those forwards).</summary>
    public PerSampleGradients? PerSample { get; set; }

    /// <inheritdoc/>
    public void Attach(TrainingRun run) => _run = run;

    /// <inheritdoc/>
    public void BeforeStep(StepContext step)
    {
        ArgumentNullException.ThrowIfNull(step);
        if (_estimate is not null && EstimatedT is null && step.Batch.Epoch > _estimate.AfterEpoch)
            EstimateT();
    }

    /// <inheritdoc/>
    public Tensor Loss(Tape tape, Tensor output, StepContext step)
    {
        ArgumentNullException.ThrowIfNull(step);
        if (step.Pass == 0 && Spec.Kind != RobustLossKind.CrossEntropy)
            Acted++;
        var weights = step.Weighted && !step.WeightsAfterBackward ? step.FinalWeights() : null;
        return RobustLossOp.Forward(tape, output, step.Labels, Spec, weights).Mean;
    }

    private void EstimateT()
    {
        int k = _train.NumClasses, d = _train.FeatureLength;
        var tape = new Tape(recording: false);
        var probs = new float[_train.Count * k];
        const int chunk = 1000;
        var x = new Tensor(chunk, d);
        bool training = _model.Training;
        _model.SetTraining(false);
        if (PerSample is not null)
            PerSample.Enabled = false;
        for (int start = 0; start < _train.Count; start += chunk)
        {
            int len = Math.Min(chunk, _train.Count - start);
            x.Resize([len, d]);
            _train.Features.AsSpan(start * d, len * d).CopyTo(x.Span);
            tape.Reset();
            var z = _model.Forward(tape, x);
            for (int i = 0; i < len; i++)
                TensorPrimitives.SoftMax(z.Span.Slice(i * k, k), probs.AsSpan((start + i) * k, k));
        }
        _model.SetTraining(training);
        if (PerSample is not null)
            PerSample.Enabled = true;
        SetEstimate(TransitionMatrix.EstimateFromAnchors(probs, k, _estimate!.Percentile));
        _run?.Progress.OnMessage($"transition matrix estimated from anchor points ({_estimate.Percentile}th percentile) after epoch {_estimate.AfterEpoch}");
    }

    private void SetEstimate(float[] t)
    {
        int k = _train.NumClasses;
        EstimatedT = t;
        Spec = _estimate!.Backward
            ? Spec with
            {
                Kind = RobustLossKind.BackwardCorrection,
                Matrix = TransitionMatrix.Inverse(t, k) ?? throw new InvalidOperationException("the estimated transition matrix is singular; backward correction is impossible (give the matrix)"),
            }
            : Spec with { Kind = RobustLossKind.ForwardCorrection, Matrix = t };
    }

    /// <inheritdoc/>
    public ComponentState SaveState()
    {
        var state = new ComponentState().Set("acted", Acted);
        if (EstimatedT is not null)
            state.SetArray("estimated_T", EstimatedT);
        return state;
    }

    /// <inheritdoc/>
    public void RestoreState(ComponentState state)
    {
        ArgumentNullException.ThrowIfNull(state);
        Acted = state.Long("acted");
        if (state.Arrays.TryGetValue("estimated_T", out var t))
        {
            if (_estimate is null || t.Length != _train.NumClasses * _train.NumClasses)
                throw new InvalidDataException($"an estimated T of {t.Length} entries does not fit this run");
            SetEstimate(t);
        }
    }
}
