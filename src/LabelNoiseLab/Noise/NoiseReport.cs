namespace LabelNoiseLab.Noise;

/// <summary>
/// What a noise injection did: the requested rate, the rate it should realise in expectation,
/// the realised rate (fraction of samples whose given label differs from the true one), the
/// realised transition matrix (counts of (true, given) normalised by row) and per-class rates.
/// </summary>
public sealed class NoiseReport : LabelNoiseLab.Data.ILabelNoiseReport
{
    /// <summary>The noise model that was injected.</summary>
    public required NoiseKind Kind { get; init; }

    /// <summary>The rate asked for (<see cref="NoiseOptions.Rate"/>).</summary>
    public required double RequestedRate { get; init; }

    /// <summary>
    /// The fraction of samples expected to end up with a wrong label: rate for symmetric, pairflip
    /// and instance; rate·(k−1)/k for symmetric with include_true; rate × the share of mapped
    /// classes for asymmetric; Σ_i π_i(1 − T_ii) for transition (π the class frequencies).
    /// </summary>
    public required double ExpectedRate { get; init; }

    /// <summary>The fraction of samples whose given label now differs from the true one.</summary>
    public required double RealisedRate { get; init; }

    /// <summary>How many samples have a given label different from the true one.</summary>
    public required int NoisyCount { get; init; }

    /// <summary>Samples in the data set.</summary>
    public required int Count { get; init; }

    /// <summary>Classes (k).</summary>
    public required int NumClasses { get; init; }

    /// <summary>Samples per true class.</summary>
    public required int[] ClassCounts { get; init; }

    /// <summary>Realised[i][j] = fraction of true-class-i samples given label j (a row of zeros for an empty class).</summary>
    public required double[][] RealisedTransition { get; init; }

    /// <summary>Fraction of each true class whose given label is wrong.</summary>
    public required double[] PerClassRate { get; init; }

    /// <summary>Kind-specific settings (seed, include_true, map, instance_target), for the record.</summary>
    public IReadOnlyDictionary<string, object> Settings { get; init; } = new Dictionary<string, object>();

    /// <summary>Counts a data set's (true, given) pairs.</summary>
    public static NoiseReport FromDataset(LabelNoiseLab.Data.Dataset data, NoiseKind kind, double requestedRate, double expectedRate,
        IReadOnlyDictionary<string, object>? settings = null)
    {
        ArgumentNullException.ThrowIfNull(data);
        int k = data.NumClasses;
        var counts = new long[k, k];
        var classCounts = new int[k];
        int noisy = 0;
        for (int i = 0; i < data.Count && k > 0; i++)
        {
            int t = data.TrueLabels[i];
            int g = data.Labels[i];
            counts[t, g]++;
            classCounts[t]++;
            if (t != g)
                noisy++;
        }
        var transition = new double[k][];
        var perClass = new double[k];
        for (int i = 0; i < k; i++)
        {
            transition[i] = new double[k];
            if (classCounts[i] == 0)
                continue;
            for (int j = 0; j < k; j++)
                transition[i][j] = (double)counts[i, j] / classCounts[i];
            perClass[i] = 1 - transition[i][i];
        }
        return new NoiseReport
        {
            Kind = kind,
            RequestedRate = requestedRate,
            ExpectedRate = expectedRate,
            RealisedRate = data.Count == 0 ? 0 : (double)noisy / data.Count,
            NoisyCount = noisy,
            Count = data.Count,
            NumClasses = k,
            ClassCounts = classCounts,
            RealisedTransition = transition,
            PerClassRate = perClass,
            Settings = settings ?? new Dictionary<string, object>(),
        };
    }

    /// <summary>A JSON-friendly shape (strings, numbers, lists, dictionaries) for summary.json.</summary>
    public Dictionary<string, object> ToDictionary() => new()
    {
        ["kind"] = NoiseOptions.KindName(Kind),
        ["requested_rate"] = RequestedRate,
        ["expected_rate"] = ExpectedRate,
        ["realised_rate"] = RealisedRate,
        ["noisy_count"] = NoisyCount,
        ["count"] = Count,
        ["num_classes"] = NumClasses,
        ["class_counts"] = ClassCounts.ToList(),
        ["per_class_rate"] = PerClassRate.ToList(),
        ["realised_transition"] = RealisedTransition.Select(r => r.ToList()).ToList(),
        ["settings"] = new Dictionary<string, object>(Settings),
    };
}
