namespace LabelNoiseLab.Robust;

/// <summary>Per-batch statistics of the gradient norms: centre μ and spread σ.</summary>
public enum PruneStatistic
{
    /// <summary>Mean and (population) standard deviation.</summary>
    MeanStd,

    /// <summary>Median and IQR/1.349 (the IQR scaled to a normal's σ, so α and β mean the same in both).</summary>
    MedianIqr,
}

/// <summary>How a sample's weight follows from its gradient norm gᵢ, the centre μ and the spread σ.</summary>
public enum PruneWeighting
{
    /// <summary>wᵢ = 0 outside [μ − βσ, μ + ασ], else 1.</summary>
    Truncate,

    /// <summary>wᵢ = exp(−(gᵢ − μ)²/(2σ²)).</summary>
    Soft,
}

/// <summary>Per-sample gradient pruning: weights from one batch's gradient norms.</summary>
public sealed class GradientPruning(PruneStatistic statistic, PruneWeighting weighting, float alpha, float beta)
{
    private float[] _sorted = [];

    /// <summary>Which centre and spread are used.</summary>
    public PruneStatistic Statistic { get; } = statistic;
    /// <summary>Hard truncation or soft Gaussian weights.</summary>
    public PruneWeighting Weighting { get; } = weighting;
    /// <summary>
    /// α: truncation keeps norms up to μ + ασ; throws <see cref="ArgumentOutOfRangeException"/> unless
    /// positive.
    /// </summary>
    public float Alpha { get; } = alpha > 0 ? alpha : throw new ArgumentOutOfRangeException(nameof(alpha), alpha, "must be > 0");
    /// <summary>
    /// β: truncation keeps norms from μ − βσ; throws <see cref="ArgumentOutOfRangeException"/> unless
    /// positive.
    /// </summary>
    public float Beta { get; } = beta > 0 ? beta : throw new ArgumentOutOfRangeException(nameof(beta), beta, "must be > 0");

    /// <summary>Writes wᵢ for the norms gᵢ; a batch with σ = 0 keeps every sample.</summary>
    public void Weights(ReadOnlySpan<float> norms, Span<float> weights)
    {
        var (mu, sigma) = Centre(norms);
        for (int i = 0; i < norms.Length; i++)
        {
            double g = norms[i];
            if (!(sigma > 0))
                weights[i] = 1f;
            else if (Weighting == PruneWeighting.Truncate)
                weights[i] = g > mu + Alpha * sigma || g < mu - Beta * sigma ? 0f : 1f;
            else
                weights[i] = (float)Math.Exp(-(g - mu) * (g - mu) / (2 * sigma * sigma));
        }
    }

    /// <summary>The centre μ and spread σ of one batch's gradient norms under <see cref="Statistic"/>.</summary>
    public (double Mu, double Sigma) Centre(ReadOnlySpan<float> norms)
    {
        int n = norms.Length;
        if (Statistic == PruneStatistic.MeanStd)
        {
            double sum = 0, sq = 0;
            foreach (float g in norms)
                sum += g;
            double mean = sum / n;
            foreach (float g in norms)
                sq += (g - mean) * (g - mean);
            return (mean, Math.Sqrt(sq / n));
        }
        if (_sorted.Length < n)
            _sorted = new float[n];
        var s = _sorted.AsSpan(0, n);
        norms.CopyTo(s);
        s.Sort();
        return (Quantile(s, 0.5), (Quantile(s, 0.75) - Quantile(s, 0.25)) / 1.349);
    }

    /// <summary>Linear interpolation between order statistics (numpy's default).</summary>
    internal static double Quantile(ReadOnlySpan<float> sorted, double q)
    {
        double pos = q * (sorted.Length - 1);
        int lo = (int)Math.Floor(pos);
        int hi = Math.Min(lo + 1, sorted.Length - 1);
        return sorted[lo] + (pos - lo) * (sorted[hi] - sorted[lo]);
    }
}
