namespace LabelNoiseLab.Data;

/// <summary>
/// A labelled data set: features, the given (possibly wrong) label, the true label and the
/// noise mask. Noise is injected once (see Noise/); the true labels are never changed.
/// Features are float32, row-major, <see cref="Count"/> × <see cref="FeatureLength"/>.
/// </summary>
public sealed class Dataset
{
    /// <summary>
    /// A classification set of <c>labels.Length</c> samples whose true labels start equal to the given ones
    /// (no noise). Throws <see cref="ArgumentException"/> when <paramref name="features"/> does not hold
    /// Count × the product of <paramref name="sampleShape"/> values.
    /// </summary>
    public Dataset(string name, float[] features, int[] sampleShape, int[] labels, int numClasses)
    {
        Name = name;
        SampleShape = sampleShape;
        FeatureLength = 1;
        foreach (var d in sampleShape)
            FeatureLength *= d;
        Count = labels.Length;
        if (features.Length != (long)Count * FeatureLength)
            throw new ArgumentException($"{name}: {features.Length} feature values for {Count} samples of {FeatureLength}");
        Features = features;
        NumClasses = numClasses;
        Labels = labels;
        TrueLabels = (int[])labels.Clone();
        NoiseMask = new bool[Count];
    }

    /// <summary>The data set's name (e.g. <c>fashion-mnist</c>, or the file name).</summary>
    public string Name { get; }

    /// <summary>All features, row-major, <see cref="Count"/> × <see cref="FeatureLength"/>.</summary>
    public float[] Features { get; }

    /// <summary>Shape of one sample: [784] for flat vectors, [C, H, W] for images.</summary>
    public int[] SampleShape { get; }

    /// <summary>Values per sample: the product of <see cref="SampleShape"/>.</summary>
    public int FeatureLength { get; }

    /// <summary>Number of samples.</summary>
    public int Count { get; }

    /// <summary>Number of classes; 0 for a regression set.</summary>
    public int NumClasses { get; }

    /// <summary>The labels training sees (after noise injection).</summary>
    public int[] Labels { get; }

    /// <summary>The original labels; never modified.</summary>
    public int[] TrueLabels { get; }

    /// <summary>NoiseMask[i] == (Labels[i] != TrueLabels[i]).</summary>
    public bool[] NoiseMask { get; }

    /// <summary>Regression targets, <see cref="Count"/> × <see cref="TargetLength"/>; null for classification.</summary>
    public float[]? Targets { get; init; }

    /// <summary>Values per regression target; default 1.</summary>
    public int TargetLength { get; init; } = 1;

    /// <summary>For a linear-teacher regression set: the teacher's weights θ* (length <see cref="FeatureLength"/>).</summary>
    public float[]? TeacherWeights { get; init; }

    /// <summary>
    /// Whether <see cref="TrueLabels"/> are a real truth to score against: noise was injected,
    /// real noisy labels replaced the originals (<c>data.noisy_labels</c>), or a file gave true
    /// labels. False for a user's data as it came (the given labels are all there is).
    /// </summary>
    public bool TruthKnown { get; set; }

    /// <summary>Sample <paramref name="i"/>'s features (a view, <see cref="FeatureLength"/> long).</summary>
    public ReadOnlySpan<float> Sample(int i) => Features.AsSpan(i * FeatureLength, FeatureLength);

    /// <summary>Number of samples whose given label differs from the true one.</summary>
    public int NoisyCount
    {
        get
        {
            int n = 0;
            foreach (bool b in NoiseMask)
                n += b ? 1 : 0;
            return n;
        }
    }

    /// <summary>
    /// A new data set holding copies of the given samples, in the given order: features,
    /// given labels, true labels, noise mask and targets all travel together.
    /// </summary>
    public Dataset Select(ReadOnlySpan<int> indices, string? name = null)
    {
        int d = FeatureLength;
        var features = new float[(long)indices.Length * d];
        var trueLabels = new int[indices.Length];
        float[]? targets = Targets is null ? null : new float[(long)indices.Length * TargetLength];
        for (int j = 0; j < indices.Length; j++)
        {
            int i = indices[j];
            if ((uint)i >= (uint)Count)
                throw new ArgumentOutOfRangeException(nameof(indices), i, $"index outside 0..{Count - 1}");
            Features.AsSpan(i * d, d).CopyTo(features.AsSpan(j * d, d));
            trueLabels[j] = TrueLabels[i];
            if (targets is not null)
                Targets.AsSpan(i * TargetLength, TargetLength).CopyTo(targets.AsSpan(j * TargetLength, TargetLength));
        }
        var result = new Dataset(name ?? Name, features, (int[])SampleShape.Clone(), trueLabels, NumClasses)
        {
            Targets = targets,
            TargetLength = TargetLength,
            TeacherWeights = TeacherWeights,
            TruthKnown = TruthKnown,
        };
        for (int j = 0; j < indices.Length; j++)
            result.Labels[j] = Labels[indices[j]];
        result.UpdateNoiseMask();
        return result;
    }

    /// <summary>Re-derives <see cref="NoiseMask"/> after labels were changed.</summary>
    public void UpdateNoiseMask()
    {
        for (int i = 0; i < Count; i++)
            NoiseMask[i] = Labels[i] != TrueLabels[i];
    }
}
