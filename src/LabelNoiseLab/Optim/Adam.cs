namespace LabelNoiseLab.Optim;

/// <summary>
/// Adam (Kingma &amp; Ba) with bias correction, PyTorch's update rule; with
/// <c>decoupled</c> weight decay it is AdamW (w ← w − lr·λ·w before the Adam step), otherwise
/// the decay is added to the gradient (L2).
/// </summary>
public sealed class Adam : Optimizer
{
    private readonly float[][] _m;
    private readonly float[][] _v;

    /// <summary>Adam over <paramref name="parameters"/> with PyTorch's defaults; throws an <see cref="ArgumentOutOfRangeException"/> for betas outside [0, 1), eps ≤ 0 or negative weight decay.</summary>
    /// <param name="decoupled">True: AdamW's decoupled decay; false: L2 decay added to the gradient.</param>
    public Adam(IEnumerable<Tensor> parameters, float lr, float beta1 = 0.9f, float beta2 = 0.999f,
        float eps = 1e-8f, float weightDecay = 0f, bool decoupled = false)
        : base(parameters, lr)
    {
        if (beta1 is < 0f or >= 1f || beta2 is < 0f or >= 1f)
            throw new ArgumentOutOfRangeException(nameof(beta1), $"betas ({beta1}, {beta2}) must be in [0, 1)");
        if (!(eps > 0f))
            throw new ArgumentOutOfRangeException(nameof(eps), eps, "eps must be positive");
        if (weightDecay < 0f)
            throw new ArgumentOutOfRangeException(nameof(weightDecay), weightDecay, "weight decay must be ≥ 0");
        (Beta1, Beta2, Eps, WeightDecay, Decoupled) = (beta1, beta2, eps, weightDecay, decoupled);
        _m = Parameters.Select(p => new float[p.Length]).ToArray();
        _v = Parameters.Select(p => new float[p.Length]).ToArray();
    }

    /// <summary>Decay rate of the first-moment (mean) estimate.</summary>
    public float Beta1 { get; }
    /// <summary>Decay rate of the second-moment (uncentred variance) estimate.</summary>
    public float Beta2 { get; }
    /// <summary>Added to the bias-corrected √v in the denominator.</summary>
    public float Eps { get; }
    /// <summary>Weight-decay coefficient λ (0: none).</summary>
    public float WeightDecay { get; }
    /// <summary>Whether the decay is decoupled (AdamW) rather than added to the gradient.</summary>
    public bool Decoupled { get; }

    /// <inheritdoc/>
    public override void Step()
    {
        StepCount++;
        float bc1 = 1f - MathF.Pow(Beta1, StepCount);
        float bc2 = 1f - MathF.Pow(Beta2, StepCount);
        float stepSize = LearningRate / bc1;
        float bc2Sqrt = MathF.Sqrt(bc2);
        for (int k = 0; k < Parameters.Count; k++)
        {
            var w = Parameters[k].Span;
            var g = GradientOf(Parameters[k]);
            var m = _m[k];
            var v = _v[k];
            for (int i = 0; i < w.Length; i++)
            {
                float gi = g[i];
                if (WeightDecay != 0f)
                {
                    if (Decoupled)
                        w[i] *= 1f - LearningRate * WeightDecay;
                    else
                        gi += WeightDecay * w[i];
                }
                m[i] = Beta1 * m[i] + (1f - Beta1) * gi;
                v[i] = Beta2 * v[i] + (1f - Beta2) * gi * gi;
                w[i] -= stepSize * m[i] / (MathF.Sqrt(v[i]) / bc2Sqrt + Eps);
            }
        }
    }

    /// <summary>Each parameter's first and second moments, named <c>exp_avg.i</c> and <c>exp_avg_sq.i</c>.</summary>
    public override IEnumerable<(string Name, float[] Buffer)> StateBuffers()
    {
        for (int i = 0; i < _m.Length; i++)
        {
            yield return ($"exp_avg.{i}", _m[i]);
            yield return ($"exp_avg_sq.{i}", _v[i]);
        }
    }
}
