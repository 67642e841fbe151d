using LabelNoiseLab.Tensors;

namespace LabelNoiseLab.Noise;

/// <summary>When per-step label noise is switched on.</summary>
public enum StepNoiseScheduleKind
{
    /// <summary>On at every step.</summary>
    Constant,

    /// <summary>On for <see cref="StepNoiseSchedule.Period"/> steps, off for as many, and so on (on first).</summary>
    Periodic,

    /// <summary>On for steps 0 .. <see cref="StepNoiseSchedule.OffAfter"/> − 1, then off for good.</summary>
    Until,
}

/// <summary>
/// Schedule of per-step label noise (0-based step counter).
/// </summary>
public readonly record struct StepNoiseSchedule
{
    private StepNoiseSchedule(StepNoiseScheduleKind kind, long period, long offAfter)
    {
        Kind = kind;
        Period = period;
        OffAfter = offAfter;
    }

    /// <summary>Which kind of schedule this is.</summary>
    public StepNoiseScheduleKind Kind { get; }

    /// <summary>Periodic: length of each on (and each off) stretch.</summary>
    public long Period { get; }

    /// <summary>Until: the first step without noise.</summary>
    public long OffAfter { get; }

    /// <summary>Noise at every step.</summary>
    public static StepNoiseSchedule Constant => new(StepNoiseScheduleKind.Constant, 0, 0);

    /// <summary>
    /// Noise on for <paramref name="period"/> steps, off for as many, and so on; throws
    /// <see cref="ArgumentOutOfRangeException"/> unless the period is positive.
    /// </summary>
    public static StepNoiseSchedule Periodic(long period) =>
        period > 0 ? new(StepNoiseScheduleKind.Periodic, period, 0)
        : throw new ArgumentOutOfRangeException(nameof(period), $"period {period}; expected a positive number of steps");

    /// <summary>
    /// Noise on before step <paramref name="offAfter"/>, off from it on; throws
    /// <see cref="ArgumentOutOfRangeException"/> for a negative step.
    /// </summary>
    public static StepNoiseSchedule Until(long offAfter) =>
        offAfter >= 0 ? new(StepNoiseScheduleKind.Until, 0, offAfter)
        : throw new ArgumentOutOfRangeException(nameof(offAfter), $"off-after step {offAfter}; expected a step ≥ 0");

    /// <summary>Whether the noise is on at (0-based) <paramref name="step"/>.</summary>
    public bool IsOn(long step) => Kind switch
    {
        StepNoiseScheduleKind.Constant => true,
        StepNoiseScheduleKind.Periodic => (step / Period) % 2 == 0,
        _ => step < OffAfter,
    };

    /// <summary>The schedule in words: <c>constant</c>, <c>periodic(P)</c> or <c>until(S)</c>.</summary>
    public override string ToString() => Kind switch
    {
        StepNoiseScheduleKind.Constant => "constant",
        StepNoiseScheduleKind.Periodic => $"periodic({Period})",
        _ => $"until({OffAfter})",
    };
}

/// <summary>Distribution of the regression label noise ε.</summary>
public enum StepNoiseDistribution
{
    /// <summary>ε uniform on {−σ, +σ} (the label-noise SGD paper's choice).</summary>
    PlusMinus,

    /// <summary>ε ~ N(0, σ²).</summary>
    Gaussian,
}

/// <summary>
/// Label noise for label-noise SGD on regression: fresh ε added to each target at every step,
/// from its own generator (<c>Rng.ForPurpose(seed, "step-label-noise")</c>), separate from the
/// initialisation and shuffling generators. Writes into caller buffers; allocates nothing per step.
/// </summary>
public sealed class RegressionStepNoise
{
    private readonly Rng _rng;

    /// <summary>
    /// Noise of scale <paramref name="sigma"/> drawn from <paramref name="rng"/>; throws
    /// <see cref="ArgumentOutOfRangeException"/> for a negative or non-finite σ.
    /// </summary>
    public RegressionStepNoise(double sigma, StepNoiseDistribution distribution, StepNoiseSchedule schedule, Rng rng)
    {
        if (!(sigma >= 0) || double.IsInfinity(sigma))
            throw new ArgumentOutOfRangeException(nameof(sigma), $"noise level σ = {sigma}; expected a finite value ≥ 0");
        Sigma = sigma;
        Distribution = distribution;
        Schedule = schedule;
        _rng = rng;
    }

    /// <summary>The noise scale σ (the ± amplitude, or the Gaussian's standard deviation).</summary>
    public double Sigma { get; }

    /// <summary>The distribution ε is drawn from.</summary>
    public StepNoiseDistribution Distribution { get; }

    /// <summary>When the noise is on.</summary>
    public StepNoiseSchedule Schedule { get; }

    /// <summary>One draw of ε for (0-based) <paramref name="step"/>: 0 while the schedule is off (no draw is consumed then).</summary>
    public float Next(long step)
    {
        if (!Schedule.IsOn(step) || Sigma == 0)
            return 0f;
        return Distribution == StepNoiseDistribution.PlusMinus
            ? ((_rng.NextUInt64() >> 63) == 0 ? (float)-Sigma : (float)Sigma)
            : (float)(Sigma * _rng.NextNormal());
    }

    /// <summary>noisy[i] = targets[i] + εᵢ, a fresh ε per element.</summary>
    public void Apply(ReadOnlySpan<float> targets, Span<float> noisy, long step)
    {
        if (noisy.Length < targets.Length)
            throw new ArgumentException($"output buffer holds {noisy.Length} values, {targets.Length} needed", nameof(noisy));
        for (int i = 0; i < targets.Length; i++)
            noisy[i] = targets[i] + Next(step);
    }
}

/// <summary>
/// Label noise for label-noise SGD on classification (the authors' convention): at every step,
/// each sample's label is replaced with probability p by a class drawn uniformly from all k
/// classes (so it may redraw the true class). Own generator; no allocation per step.
/// </summary>
public sealed class ClassificationStepNoise
{
    private readonly Rng _rng;

    /// <summary>
    /// Redraws with probability <paramref name="p"/> among <paramref name="classes"/> classes; throws
    /// <see cref="ArgumentOutOfRangeException"/> for p outside [0, 1] or fewer than 2 classes.
    /// </summary>
    public ClassificationStepNoise(double p, int classes, StepNoiseSchedule schedule, Rng rng)
    {
        if (!(p >= 0 && p <= 1))
            throw new ArgumentOutOfRangeException(nameof(p), $"redraw probability {p}; expected a probability in [0, 1]");
        if (classes < 2)
            throw new ArgumentOutOfRangeException(nameof(classes), classes, "needs at least 2 classes");
        P = p;
        Classes = classes;
        Schedule = schedule;
        _rng = rng;
    }

    /// <summary>Probability that a sample's label is redrawn at a step.</summary>
    public double P { get; }

    /// <summary>Number of classes k the redrawn label is drawn from.</summary>
    public int Classes { get; }

    /// <summary>When the noise is on.</summary>
    public StepNoiseSchedule Schedule { get; }

    /// <summary>
    /// noisy[i] = a uniformly random class with probability p, else labels[i]. Returns how many
    /// samples were redrawn (including redraws that landed on the same class).
    /// </summary>
    public int Apply(ReadOnlySpan<int> labels, Span<int> noisy, long step)
    {
        if (noisy.Length < labels.Length)
            throw new ArgumentException($"output buffer holds {noisy.Length} labels, {labels.Length} needed", nameof(noisy));
        if (!Schedule.IsOn(step) || P == 0)
        {
            labels.CopyTo(noisy);
            return 0;
        }
        int redrawn = 0;
        for (int i = 0; i < labels.Length; i++)
        {
            if (_rng.NextDouble() < P)
            {
                noisy[i] = _rng.NextInt(Classes);
                redrawn++;
            }
            else
            {
                noisy[i] = labels[i];
            }
        }
        return redrawn;
    }
}
