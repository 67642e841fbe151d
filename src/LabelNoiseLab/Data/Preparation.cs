using System.Numerics.Tensors;
using LabelNoiseLab.Tensors;

namespace LabelNoiseLab.Data;

/// <summary>How features are standardised (see <see cref="Normalization"/>).</summary>
public enum NormalizationMode
{
    /// <summary>Features as loaded (pixels in [0, 1]).</summary>
    None,

    /// <summary>One mean and standard deviation over every feature value.</summary>
    Global,

    /// <summary>Per channel (SampleShape[0]) for images; same as Global for flat vectors.</summary>
    PerChannel,

    /// <summary>Each feature (pixel) standardised on its own; a constant feature is only centred.</summary>
    PerFeature,
}

/// <summary>
/// Standardisation statistics computed on a training split and applied unchanged to the other
/// splits: x' = (x − Mean[g]) / Std[g], g the group (whole set, channel or feature) of x.
/// Standard deviations below 1e-6 are taken as 1 (the feature is only centred).
/// </summary>
public sealed class Normalization
{
    private Normalization(NormalizationMode mode, float[] mean, float[] std, int groupLength)
    {
        Mode = mode;
        Mean = mean;
        Std = std;
        GroupLength = groupLength;
    }

    /// <summary>How the statistics are grouped.</summary>
    public NormalizationMode Mode { get; }

    /// <summary>Mean of each group, from the training split.</summary>
    public float[] Mean { get; }

    /// <summary>Standard deviation of each group (values below 1e-6 stored as 1).</summary>
    public float[] Std { get; }

    /// <summary>How many consecutive feature values share one group's statistics (per channel: H·W).</summary>
    public int GroupLength { get; }

    /// <summary>No standardisation: features pass through unchanged.</summary>
    public static Normalization Identity { get; } = new(NormalizationMode.None, [], [], 0);

    /// <summary>Computes the statistics of <paramref name="train"/> (double accumulation).</summary>
    public static Normalization Fit(Dataset train, NormalizationMode mode)
    {
        if (mode == NormalizationMode.None)
            return Identity;
        int d = train.FeatureLength;
        int n = train.Count;
        if (n == 0)
            throw new ArgumentException($"{train.Name}: cannot fit normalisation on an empty set");
        if (mode == NormalizationMode.PerFeature)
        {
            // Vectorised float partial sums over blocks of rows, flushed into double totals
            // every block so that rounding stays at the level of one block's sum.
            const int Block = 128;
            var sum = new double[d];
            var sq = new double[d];
            var blockSum = new float[d];
            var blockSq = new float[d];
            for (int start = 0; start < n; start += Block)
            {
                Array.Clear(blockSum);
                Array.Clear(blockSq);
                int end = Math.Min(n, start + Block);
                for (int i = start; i < end; i++)
                {
                    var row = train.Sample(i);
                    TensorPrimitives.Add(blockSum, row, blockSum);
                    TensorPrimitives.MultiplyAdd(row, row, blockSq, blockSq);
                }
                for (int j = 0; j < d; j++)
                {
                    sum[j] += blockSum[j];
                    sq[j] += blockSq[j];
                }
            }
            var mean = new float[d];
            var std = new float[d];
            for (int j = 0; j < d; j++)
                (mean[j], std[j]) = MeanStd(sum[j], sq[j], n);
            return new Normalization(mode, mean, std, 1);
        }
        int groups = mode == NormalizationMode.PerChannel && train.SampleShape.Length > 1 ? train.SampleShape[0] : 1;
        int groupLength = d / groups;
        var gm = new float[groups];
        var gs = new float[groups];
        for (int g = 0; g < groups; g++)
        {
            double sum = 0, sq = 0;
            for (int i = 0; i < n; i++)
            {
                var part = train.Sample(i).Slice(g * groupLength, groupLength);
                sum += TensorPrimitives.Sum(part);
                sq += TensorPrimitives.SumOfSquares(part);
            }
            (gm[g], gs[g]) = MeanStd(sum, sq, (long)n * groupLength);
        }
        return new Normalization(mode, gm, gs, groupLength);
    }

    /// <summary>Standardises the features of <paramref name="data"/> in place.</summary>
    public void Apply(Dataset data)
    {
        if (Mode == NormalizationMode.None)
            return;
        int d = data.FeatureLength;
        if (Mode == NormalizationMode.PerFeature && Mean.Length != d || Mode != NormalizationMode.PerFeature && GroupLength * Mean.Length != d)
            throw new ArgumentException($"{data.Name}: normalisation fitted on another feature length");
        var inv = new float[Std.Length];
        for (int g = 0; g < Std.Length; g++)
            inv[g] = 1f / Std[g];
        for (int i = 0; i < data.Count; i++)
        {
            var row = data.Features.AsSpan(i * d, d);
            if (Mode == NormalizationMode.PerFeature)
            {
                TensorPrimitives.Subtract(row, Mean, row);
                TensorPrimitives.Multiply(row, inv, row);
            }
            else
            {
                for (int g = 0; g < Mean.Length; g++)
                {
                    var part = row.Slice(g * GroupLength, GroupLength);
                    TensorPrimitives.Subtract(part, Mean[g], part);
                    TensorPrimitives.Multiply(part, inv[g], part);
                }
            }
        }
    }

    private static (float Mean, float Std) MeanStd(double sum, double sq, long n)
    {
        double mean = sum / n;
        double var = Math.Max(0, sq / n - mean * mean);
        double std = Math.Sqrt(var);
        return ((float)mean, std < 1e-6 ? 1f : (float)std);
    }
}

/// <summary>Seeded subsets and splits. Samples keep their given (possibly noisy) labels.</summary>
public static class Splits
{
    /// <summary>
    /// Splits into (train, validation): a random <paramref name="validationFraction"/> of the
    /// samples (rounded to the nearest count) goes to validation. Order within each part
    /// follows the random permutation. A fraction outside [0, 1) or one that leaves a part empty is
    /// an <see cref="ArgumentOutOfRangeException"/> for <paramref name="paramName"/> (by default
    /// <c>validationFraction</c>; callers pass the option the fraction came from).
    /// </summary>
    public static (Dataset Train, Dataset Validation) TrainValidation(Dataset data, double validationFraction, Rng rng,
        string? trainName = null, string? validationName = null, string paramName = "validationFraction")
    {
        ArgumentNullException.ThrowIfNull(data);
        if (!(validationFraction >= 0 && validationFraction < 1))
            throw new ArgumentOutOfRangeException(paramName, $"split fraction {validationFraction}; expected a value in [0, 1)");
        int nVal = (int)Math.Round(data.Count * validationFraction);
        if (validationFraction > 0 && (nVal == 0 || nVal == data.Count))
            throw new ArgumentOutOfRangeException(paramName, $"split fraction {validationFraction} of {data.Count} samples leaves an empty split");
        var perm = Permutation(data.Count, rng);
        return (data.Select(perm.AsSpan(nVal), trainName ?? data.Name),
                data.Select(perm.AsSpan(0, nVal), validationName ?? data.Name + "/validation"));
    }

    /// <summary>
    /// A seeded subset of <paramref name="size"/> samples. For classification it is stratified on
    /// the true labels: each class gets its proportional share (largest remainders), so the class
    /// balance is kept. The result is in random order. A size outside 1..n is an
    /// <see cref="ArgumentOutOfRangeException"/> for <paramref name="paramName"/> (by default
    /// <c>size</c>; callers pass the option the size came from).
    /// </summary>
    public static Dataset Subset(Dataset data, int size, Rng rng, string paramName = "size")
    {
        ArgumentNullException.ThrowIfNull(data);
        if (size < 1 || size > data.Count)
            throw new ArgumentOutOfRangeException(paramName, $"a subset of {size} samples from {data.Name}; expected 1..{data.Count} (the set's size)");
        if (size == data.Count)
            return data;
        var perm = Permutation(data.Count, rng);
        if (data.NumClasses == 0)
            return data.Select(perm.AsSpan(0, size), data.Name);

        int k = data.NumClasses;
        var counts = new int[k];
        foreach (int y in data.TrueLabels)
            counts[y]++;
        var quota = new int[k];
        var remainder = new double[k];
        int assigned = 0;
        for (int c = 0; c < k; c++)
        {
            double exact = (double)counts[c] * size / data.Count;
            quota[c] = (int)Math.Floor(exact);
            remainder[c] = exact - quota[c];
            assigned += quota[c];
        }
        // Largest remainders get the leftover places; ties go to the lower class index.
        var order = Enumerable.Range(0, k).OrderByDescending(c => remainder[c]).ThenBy(c => c).ToArray();
        for (int t = 0; assigned < size; t++)
        {
            int c = order[t % k];
            if (quota[c] < counts[c])
            {
                quota[c]++;
                assigned++;
            }
        }
        var chosen = new List<int>(size);
        foreach (int i in perm)
        {
            int c = data.TrueLabels[i];
            if (quota[c] > 0)
            {
                quota[c]--;
                chosen.Add(i);
            }
        }
        return data.Select(chosen.ToArray(), data.Name);
    }

    /// <summary>
    /// K folds stratified by the given label: each class's samples, in a seeded random order,
    /// are dealt to the folds in turn (continuing where the previous class stopped), so every
    /// fold holds ⌊n_c/K⌋ or ⌈n_c/K⌉ of each class c and the fold sizes differ by at most one.
    /// Returns each sample's fold, 0..K-1. K below 2, or above the smallest class's sample count
    /// (a fold would lack that class), is an <see cref="ArgumentOutOfRangeException"/> for
    /// <paramref name="paramName"/>.
    /// </summary>
    public static int[] StratifiedFolds(Dataset data, int folds, Rng rng, string paramName = "folds")
    {
        ArgumentNullException.ThrowIfNull(data);
        ArgumentNullException.ThrowIfNull(rng);
        if (folds < 2)
            throw new ArgumentOutOfRangeException(paramName, $"{folds} folds; expected at least 2");
        if (data.NumClasses == 0)
            throw new ArgumentOutOfRangeException(paramName, "folds stratified by label need a classification data set");
        var perm = Permutation(data.Count, rng);
        var byClass = new List<int>[data.NumClasses];
        for (int c = 0; c < byClass.Length; c++)
            byClass[c] = [];
        foreach (int i in perm)
            byClass[data.Labels[i]].Add(i);
        for (int c = 0; c < byClass.Length; c++)
        {
            if (byClass[c].Count > 0 && byClass[c].Count < folds)
                throw new ArgumentOutOfRangeException(paramName, $"{folds} folds but class {c} has only {byClass[c].Count} samples (given labels); expected at most {byClass[c].Count} folds");
        }
        var fold = new int[data.Count];
        int next = 0;
        foreach (var members in byClass)
        {
            foreach (int i in members)
            {
                fold[i] = next;
                next = (next + 1) % folds;
            }
        }
        return fold;
    }

    internal static int[] Permutation(int n, Rng rng)
    {
        var perm = new int[n];
        for (int i = 0; i < n; i++)
            perm[i] = i;
        rng.Shuffle(perm);
        return perm;
    }
}
