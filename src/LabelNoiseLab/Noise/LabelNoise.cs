using System.Globalization;
using System.Numerics.Tensors;
using LabelNoiseLab.Data;
using LabelNoiseLab.Tensors;

namespace LabelNoiseLab.Noise;

/// <summary>
/// Corrupts a data set's given labels once, from the noise generator
/// <c>Rng.ForPurpose(options.Seed, "noise")</c>. Injection always starts from the true labels
/// (so injecting twice does not compound), never modifies <see cref="Dataset.TrueLabels"/>, and
/// recomputes <see cref="Dataset.NoiseMask"/>. For the flip kinds every sample is flipped
/// independently with its probability, so the requested rate is met in expectation.
/// </summary>
public static class LabelNoise
{
    /// <summary>
    /// Rewrites <paramref name="data"/>'s given labels under <paramref name="options"/> and reports what it
    /// did. Throws <see cref="ArgumentException"/> (naming the <see cref="NoiseOptions"/> property) for a
    /// set with fewer than 2 classes, a rate outside [0, 1], a bad class map or a transition matrix that is
    /// not k×k and row-stochastic.
    /// </summary>
    public static NoiseReport Inject(Dataset data, NoiseOptions options)
    {
        ArgumentNullException.ThrowIfNull(data);
        ArgumentNullException.ThrowIfNull(options);
        int k = data.NumClasses;
        if (options.Kind != NoiseKind.None && k < 2)
            throw new ArgumentException(
                $"{NoiseOptions.KindName(options.Kind)} label noise needs a classification set with at least 2 classes; {data.Name} has {k}",
                Option(nameof(NoiseOptions.Kind)));
        if (options.Kind is not (NoiseKind.None or NoiseKind.Transition) && !(options.Rate >= 0 && options.Rate <= 1))
            throw new ArgumentOutOfRangeException(Option(nameof(NoiseOptions.Rate)),
                $"noise rate {options.Rate.ToString(CultureInfo.InvariantCulture)}; expected a value in [0, 1]");

        // Kind none leaves the labels as they came (real noisy labels from data.noisy_labels or a
        // file's true labels stay, and the report describes them); every other kind starts from the truth.
        if (options.Kind != NoiseKind.None)
            data.TrueLabels.CopyTo(data.Labels, 0);
        var rng = Rng.ForPurpose(options.Seed, "noise");
        var settings = new Dictionary<string, object> { ["seed"] = options.Seed };
        double rate = options.Rate;
        double expected;
        switch (options.Kind)
        {
            case NoiseKind.None:
                rate = 0;
                expected = 0;
                break;
            case NoiseKind.Symmetric:
                settings["include_true"] = options.IncludeTrue;
                Symmetric(data, rate, options.IncludeTrue, rng);
                expected = options.IncludeTrue ? rate * (k - 1) / k : rate;
                break;
            case NoiseKind.PairFlip:
                for (int i = 0; i < data.Count; i++)
                {
                    if (rng.NextDouble() < rate)
                        data.Labels[i] = (data.TrueLabels[i] + 1) % k;
                }
                expected = rate;
                break;
            case NoiseKind.Asymmetric:
            {
                string spec = options.ClassMap ?? BuiltInName(data)
                    ?? throw new ArgumentException(
                        $"asymmetric noise on {data.Name} needs a class map (mnist, fashion-mnist, cifar10 or pairs like \"2:7, 3:8\")",
                        Option(nameof(NoiseOptions.ClassMap)));
                var map = ClassMaps.Resolve(spec, k, Option(nameof(NoiseOptions.ClassMap)));
                settings["map"] = string.Join(", ", map.OrderBy(p => p.Key).Select(p => $"{p.Key}:{p.Value}"));
                int mapped = 0;
                for (int i = 0; i < data.Count; i++)
                {
                    bool flip = rng.NextDouble() < rate;
                    if (map.TryGetValue(data.TrueLabels[i], out int to))
                    {
                        mapped++;
                        if (flip)
                            data.Labels[i] = to;
                    }
                }
                expected = data.Count == 0 ? 0 : rate * mapped / data.Count;
                break;
            }
            case NoiseKind.Instance:
                settings["instance_target"] = options.InstanceTarget == InstanceTarget.ScorerMostLikelyWrong ? "scorer" : "random";
                expected = Instance(data, rate, options.InstanceTarget, rng);
                break;
            case NoiseKind.Transition:
            {
                var t = ValidateTransition(options.T, k);
                settings["T"] = t.Select(r => r.ToList()).ToList();
                double offDiagonal = 0;
                for (int i = 0; i < data.Count; i++)
                {
                    var row = t[data.TrueLabels[i]];
                    offDiagonal += 1 - row[data.TrueLabels[i]];
                    data.Labels[i] = Draw(row, rng);
                }
                expected = data.Count == 0 ? 0 : offDiagonal / data.Count;
                rate = expected;
                break;
            }
            default:
                throw new ArgumentOutOfRangeException(Option(nameof(NoiseOptions.Kind)), $"unknown noise kind {options.Kind}");
        }
        data.UpdateNoiseMask();
        return NoiseReport.FromDataset(data, options.Kind, rate, expected, settings);
    }

    private static void Symmetric(Dataset data, double rate, bool includeTrue, Rng rng)
    {
        int k = data.NumClasses;
        for (int i = 0; i < data.Count; i++)
        {
            if (rng.NextDouble() >= rate)
                continue;
            int t = data.TrueLabels[i];
            if (includeTrue)
            {
                data.Labels[i] = rng.NextInt(k);
            }
            else
            {
                int r = rng.NextInt(k - 1);
                data.Labels[i] = r >= t ? r + 1 : r;
            }
        }
    }

    /// <summary>
    /// Instance-dependent noise. A random linear scorer W (k × D, entries N(0, 1), drawn from the
    /// noise generator) scores the centred features: z = W(x − μ), μ the set's mean sample,
    /// divided by the standard deviation of all scores (a fixed temperature). With p = softmax(z),
    /// a sample's margin is p_true − max_{j≠true} p_j, and its difficulty d ∈ (0, 1] is its rank
    /// by margin, largest margin first, divided by n (1 for the sample the scorer gets most
    /// confidently wrong). Ranks rather than raw margins, because a random scorer's softmax
    /// margins over 10 classes sit in a narrow band and would make the noise nearly uniform. The
    /// flip probability is r = min(1, s·d) with s found by bisection so that mean(r) = rate (for
    /// rate ≤ 1/2: r rises linearly from ≈0 to 2·rate). The flip decisions are
    /// drawn first (one uniform per sample), then the targets: the scorer's highest-scoring wrong
    /// class, or a uniformly random other class; so one seed flips the same samples whatever the
    /// target rule. Returns mean(r), the expected realised rate.
    /// </summary>
    private static double Instance(Dataset data, double rate, InstanceTarget target, Rng rng)
    {
        int n = data.Count;
        int k = data.NumClasses;
        if (n == 0)
            return 0;
        var r = InstanceRates(data, rate, rng, out var wrongBest);
        var flip = new bool[n];
        for (int i = 0; i < n; i++)
            flip[i] = rng.NextDouble() < r[i];
        for (int i = 0; i < n; i++)
        {
            if (!flip[i])
                continue;
            int t = data.TrueLabels[i];
            if (target == InstanceTarget.ScorerMostLikelyWrong)
            {
                data.Labels[i] = wrongBest[i];
            }
            else
            {
                int o = rng.NextInt(k - 1);
                data.Labels[i] = o >= t ? o + 1 : o;
            }
        }
        return r.Average();
    }

    /// <summary>
    /// The per-sample flip probabilities of instance-dependent noise (see <see cref="Instance"/>)
    /// and each sample's highest-scoring wrong class; draws the scorer from <paramref name="rng"/>.
    /// </summary>
    internal static double[] InstanceRates(Dataset data, double rate, Rng rng, out int[] wrongBest)
    {
        int n = data.Count;
        int k = data.NumClasses;
        int dim = data.FeatureLength;
        var w = new float[k * dim];
        for (int j = 0; j < w.Length; j++)
            w[j] = (float)rng.NextNormal();

        var mean = new double[dim];
        for (int i = 0; i < n; i++)
        {
            var x = data.Sample(i);
            for (int j = 0; j < dim; j++)
                mean[j] += x[j];
        }
        var mu = new float[dim];
        for (int j = 0; j < dim; j++)
            mu[j] = (float)(mean[j] / n);
        var bias = new float[k];
        for (int c = 0; c < k; c++)
            bias[c] = TensorPrimitives.Dot(w.AsSpan(c * dim, dim), mu);

        var z = new float[n * k];
        double sum = 0, sq = 0;
        for (int i = 0; i < n; i++)
        {
            var x = data.Sample(i);
            for (int c = 0; c < k; c++)
            {
                float v = TensorPrimitives.Dot(w.AsSpan(c * dim, dim), x) - bias[c];
                z[i * k + c] = v;
                sum += v;
                sq += (double)v * v;
            }
        }
        double m = sum / z.Length;
        double std = Math.Sqrt(Math.Max(0, sq / z.Length - m * m));
        float invT = std > 0 ? (float)(1 / std) : 1f;

        var margin = new double[n];
        wrongBest = new int[n];
        var p = new float[k];
        for (int i = 0; i < n; i++)
        {
            TensorPrimitives.Multiply(z.AsSpan(i * k, k), invT, p);
            TensorPrimitives.SoftMax(p, p);
            int t = data.TrueLabels[i];
            int best = -1;
            for (int c = 0; c < k; c++)
            {
                if (c != t && (best < 0 || p[c] > p[best]))
                    best = c;
            }
            wrongBest[i] = best;
            margin[i] = p[t] - p[best];
        }
        var order = new int[n];
        for (int i = 0; i < n; i++)
            order[i] = i;
        Array.Sort((double[])margin.Clone(), order);
        // order now runs from the smallest margin (hardest) to the largest (easiest)
        var difficulty = new double[n];
        for (int rank = 0; rank < n; rank++)
            difficulty[order[rank]] = (double)(n - rank) / n;

        double scale = RateScale(difficulty, rate);
        var r = new double[n];
        for (int i = 0; i < n; i++)
            r[i] = Math.Min(1, scale * difficulty[i]);
        return r;
    }

    /// <summary>s ≥ 0 with mean(min(1, s·d)) = rate, by bisection (d &gt; 0).</summary>
    internal static double RateScale(double[] d, double rate)
    {
        if (rate <= 0)
            return 0;
        double minD = d.Where(v => v > 0).DefaultIfEmpty(1).Min();
        if (rate >= 1)
            return 1 / minD;
        double lo = 0, hi = 1 / minD;
        for (int it = 0; it < 100; it++)
        {
            double mid = (lo + hi) / 2;
            double mean = 0;
            foreach (double v in d)
                mean += Math.Min(1, mid * v);
            mean /= d.Length;
            if (mean < rate)
                lo = mid;
            else
                hi = mid;
        }
        return hi;
    }

    private static double[][] ValidateTransition(double[][]? t, int k)
    {
        if (t is null)
            throw new ArgumentException($"transition noise needs a {k}×{k} row-stochastic matrix T", Option(nameof(NoiseOptions.T)));
        if (t.Length != k || t.Any(r => r is null || r.Length != k))
            throw new ArgumentException($"transition matrix T: expected {k}×{k} (one row per class)", Option(nameof(NoiseOptions.T)));
        for (int i = 0; i < k; i++)
        {
            double s = 0;
            for (int j = 0; j < k; j++)
            {
                double v = t[i][j];
                if (!(v >= 0) || double.IsInfinity(v))
                    throw new ArgumentException($"transition matrix T: entry [{i}][{j}] = {v.ToString(CultureInfo.InvariantCulture)}; expected entries ≥ 0",
                        Option(nameof(NoiseOptions.T)));
                s += v;
            }
            if (Math.Abs(s - 1) > 1e-4)
                throw new ArgumentException($"transition matrix T: row {i} sums to {s.ToString("R", CultureInfo.InvariantCulture)}; expected 1 (±1e-4)",
                    Option(nameof(NoiseOptions.T)));
        }
        return t;
    }

    /// <summary>The <see cref="ArgumentException.ParamName"/> of a bad option: <c>NoiseOptions.ClassMap</c>.</summary>
    private static string Option(string property) => nameof(NoiseOptions) + "." + property;

    private static int Draw(double[] row, Rng rng)
    {
        double total = 0;
        foreach (double v in row)
            total += v;
        double u = rng.NextDouble() * total;
        double acc = 0;
        int last = 0;
        for (int j = 0; j < row.Length; j++)
        {
            if (row[j] <= 0)
                continue;
            last = j;
            acc += row[j];
            if (u < acc)
                return j;
        }
        return last; // rounding at the top end
    }

    private static string? BuiltInName(Dataset data)
    {
        string n = data.Name.ToLowerInvariant();
        if (n.StartsWith("fashion", StringComparison.Ordinal))
            return "fashion-mnist";
        if (n.StartsWith("mnist", StringComparison.Ordinal))
            return "mnist";
        if (n.StartsWith("cifar", StringComparison.Ordinal))
            return "cifar10";
        return null;
    }
}
