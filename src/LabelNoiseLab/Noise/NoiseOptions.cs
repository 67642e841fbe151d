using LabelNoiseLab.Data;

namespace LabelNoiseLab.Noise;

/// <summary>The label-noise models <see cref="LabelNoise.Inject"/> implements.</summary>
public enum NoiseKind
{
    /// <summary>No noise: given labels equal true labels.</summary>
    None,

    /// <summary>With probability rate, the label is drawn uniformly from the other classes (or from all classes with IncludeTrue).</summary>
    Symmetric,

    /// <summary>With probability rate, class c becomes (c + 1) mod k.</summary>
    PairFlip,

    /// <summary>With probability rate, a class listed in the class map becomes its mapped class; other classes stay clean.</summary>
    Asymmetric,

    /// <summary>Instance-dependent: harder samples (under a fixed random linear scorer) flip more often; mean rate = rate.</summary>
    Instance,

    /// <summary>The given label of a sample of true class i is drawn from row i of a row-stochastic k×k matrix T.</summary>
    Transition,
}

/// <summary>Where instance-dependent noise sends a flipped label.</summary>
public enum InstanceTarget
{
    /// <summary>The random scorer's highest-scoring wrong class (structured, feature-dependent noise).</summary>
    ScorerMostLikelyWrong,

    /// <summary>A uniformly random other class.</summary>
    RandomOther,
}

/// <summary>
/// One label-noise model, injected by <see cref="LabelNoise.Inject"/> (which
/// <see cref="DataSources.Prepare"/> calls through <see cref="ILabelNoise"/>). An option that
/// cannot be used (with this data set) is an <see cref="ArgumentException"/> whose
/// <see cref="ArgumentException.ParamName"/> names the property, <c>NoiseOptions.ClassMap</c>;
/// the layer that filled the options maps that back to its own names (config keys).
/// </summary>
public sealed record NoiseOptions : ILabelNoise
{
    /// <summary>Which noise model (config key <c>noise.kind</c>); default <see cref="NoiseKind.None"/>.</summary>
    public NoiseKind Kind { get; init; } = NoiseKind.None;

    /// <summary>Flip probability per sample, in [0, 1]; ignored by <see cref="NoiseKind.Transition"/>.</summary>
    public double Rate { get; init; }

    /// <summary>Seed of the noise generator (<c>Rng.ForPurpose(Seed, "noise")</c>).</summary>
    public long Seed { get; init; }

    /// <summary>Symmetric only: draw the new label over all k classes; redrawing the true class is not noise.</summary>
    public bool IncludeTrue { get; init; }

    /// <summary>
    /// Asymmetric only: a built-in map name (<c>mnist</c>, <c>fashion-mnist</c>, <c>cifar10</c>)
    /// or a user map written <c>"2:7, 3:8, 5:6, 6:5"</c> (source:target pairs). Null picks the
    /// built-in map named like the data set.
    /// </summary>
    public string? ClassMap { get; init; }

    /// <summary>Transition only: the k×k matrix T, row i = distribution of the given label for true class i.</summary>
    public double[][]? T { get; init; }

    /// <summary>Instance only: where a flipped label goes; default the scorer's most likely wrong class.</summary>
    public InstanceTarget InstanceTarget { get; init; } = InstanceTarget.ScorerMostLikelyWrong;

    ILabelNoiseReport ILabelNoise.Inject(Dataset train) => LabelNoise.Inject(train, this);

    bool ILabelNoise.ChangesLabels => Kind != NoiseKind.None;

    /// <summary>Parses a kind name as written in configs: none, symmetric, pairflip, asymmetric, instance, transition.</summary>
    public static NoiseKind ParseKind(string name) => name.Trim().ToLowerInvariant() switch
    {
        "none" or "" => NoiseKind.None,
        "symmetric" or "uniform" => NoiseKind.Symmetric,
        "pairflip" or "pair" or "pair-flip" => NoiseKind.PairFlip,
        "asymmetric" or "classmap" => NoiseKind.Asymmetric,
        "instance" or "instance-dependent" => NoiseKind.Instance,
        "transition" => NoiseKind.Transition,
        _ => throw new ArgumentException(
            $"unknown noise kind '{name}'; expected one of none, symmetric, pairflip, asymmetric, instance, transition", nameof(name)),
    };

    /// <summary>The name written into configs and summaries.</summary>
    public static string KindName(NoiseKind kind) => kind switch
    {
        NoiseKind.None => "none",
        NoiseKind.Symmetric => "symmetric",
        NoiseKind.PairFlip => "pairflip",
        NoiseKind.Asymmetric => "asymmetric",
        NoiseKind.Instance => "instance",
        NoiseKind.Transition => "transition",
        _ => throw new ArgumentOutOfRangeException(nameof(kind)),
    };
}
