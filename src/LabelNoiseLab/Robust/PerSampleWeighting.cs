using LabelNoiseLab.Autograd;
using LabelNoiseLab.Training;

namespace LabelNoiseLab.Robust;

/// <summary>
/// Per-sample gradient norms inside the ordinary backward, and gradient pruning from them
/// (<c>prune</c>; without a pruning rule it only measures the norms, for detection).
/// <para>
/// Fast mode, no second forward: before the backward the layers' parameter gradients are
/// deferred, so the backward computes only input gradients while the layer hooks compute each
/// sample's norm; after it the weights wᵢ follow from the norms and only the parameter-gradient
/// GEMMs run, on diag(w)·G (<see cref="PerSampleGradients.ApplySampleWeights"/>): the exact
/// (1/B)Σ wᵢ∇ℓᵢ, with the selection weights multiplied in. Naive (reference) mode: the norms from
/// one backward per sample, then the weighted loss. Under SAM the second pass reuses the first
/// pass's weights (hooks off). <see cref="ITrainingComponent.Acted"/> counts the steps in which the
/// rule down-weighted at least one sample.
/// </para>
/// </summary>
public sealed class PerSampleWeighting : IGradientWeighting
{
    private readonly GradientPruning? _rule;
    private readonly bool _naive;
    private readonly float[] _pruneWeights;
    private readonly float[] _naiveNorms;
    private readonly Tape _naiveTape = new();
    private Tensor? _x;

    /// <summary>
    /// Per-sample norms from <paramref name="gradients"/> and, with a <paramref name="rule"/>, pruning
    /// weights from them; <paramref name="naive"/> selects the reference mode (one backward per sample).
    /// Throws <see cref="ArgumentNullException"/> for null gradients.
    /// </summary>
    public PerSampleWeighting(PerSampleGradients gradients, GradientPruning? rule, bool naive, int batchSize)
    {
        ArgumentNullException.ThrowIfNull(gradients);
        Gradients = gradients;
        _rule = rule;
        _naive = naive;
        _pruneWeights = new float[batchSize];
        _naiveNorms = new float[batchSize];
    }

    /// <inheritdoc/>
    public string Name => _rule is null ? "per_sample_norms" : "prune";

    /// <inheritdoc/>
    public long Acted { get; private set; }

    /// <summary>The per-sample gradient machinery the norms come from.</summary>
    public PerSampleGradients Gradients { get; }

    /// <inheritdoc/>
    public void BeforeLoss(Tensor output, StepContext step)
    {
        ArgumentNullException.ThrowIfNull(step);
        if (step.Pass > 0)
        {
            Gradients.Enabled = false; // the weights of the first pass stand; no norms at the perturbed point
            return;
        }
        if (_naive && _rule is not null)
        {
            var batch = step.Batch;
            int n = batch.Length, d = batch.Data.FeatureLength;
            if (_x is null || _x.Rows != n)
                _x = new Tensor(n, d); // only when the batch size changes (the last batch of an epoch)
            batch.Features.CopyTo(_x.Span);
            Gradients.NaiveNorms(_x, step.Labels.AsSpan(0, n), _naiveNorms, _naiveTape);
            Prune(step, _naiveNorms.AsSpan(0, n));
            step.Norms = _naiveNorms.AsMemory(0, n);
            step.Weighted = true;
            return;
        }
        Gradients.DeferParameterGradients();
        step.WeightsAfterBackward = true;
    }

    /// <inheritdoc/>
    public void AfterBackward(StepContext step)
    {
        ArgumentNullException.ThrowIfNull(step);
        if (step.Pass > 0)
        {
            Gradients.Enabled = true;
            return;
        }
        if (!step.WeightsAfterBackward)
            return;
        int n = step.Length;
        var norms = Gradients.Norms;
        norms.CopyTo(_naiveNorms);
        step.Norms = _naiveNorms.AsMemory(0, n);
        if (_rule is not null)
            Prune(step, norms);
        Gradients.ApplySampleWeights(step.FinalWeights().Span);
        step.WeightsAfterBackward = false; // applied: a second (SAM) pass takes the weighted loss
        step.Weighted = true;
    }

    private void Prune(StepContext step, ReadOnlySpan<float> norms)
    {
        var pw = _pruneWeights.AsSpan(0, step.Length);
        _rule!.Weights(norms, pw);
        bool any = false;
        foreach (float v in pw)
            any |= v < 1f;
        Acted += any ? 1 : 0;
        System.Numerics.Tensors.TensorPrimitives.Multiply(step.Weights, pw, step.Weights);
    }

    /// <inheritdoc/>
    public void Detach() => Gradients.RestoreRequiresGrad();

    /// <inheritdoc/>
    public ComponentState SaveState() => new ComponentState().Set("acted", Acted);

    /// <inheritdoc/>
    public void RestoreState(ComponentState state)
    {
        ArgumentNullException.ThrowIfNull(state);
        Acted = state.Long("acted");
    }
}
