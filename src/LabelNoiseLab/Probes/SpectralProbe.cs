using System.Diagnostics;
using System.Globalization;
using System.Numerics.Tensors;
using System.Text;
using LabelNoiseLab.Data;
using LabelNoiseLab.Nn;

namespace LabelNoiseLab.Probes;

/// <summary>One layer's features of a data set (n×D, row-major) with the given and the true labels.</summary>
public sealed record FeatureSet(float[] X, int Count, int Dim, int[] Labels, int[] TrueLabels);

/// <summary>How the spectral probe runs. Sizes are the only knobs; the method is fixed (see <see cref="SpectralProbe"/>).</summary>
public sealed record SpectralOptions
{
    /// <summary>The d values; null = <see cref="SpectralProbe.DefaultGrid"/>.</summary>
    public IReadOnlyList<int>? Grid { get; init; }

    /// <summary>False: only the spectrum, truncation and tail energies (the probe columns are NaN).</summary>
    public bool FitProbes { get; init; } = true;

    /// <summary>Epochs of each linear probe's training; default 5.</summary>
    public int ProbeEpochs { get; init; } = 5;

    /// <summary>Batch size of the linear probes' training; default 256.</summary>
    public int ProbeBatchSize { get; init; } = 256;

    /// <summary>Adam learning rate of the linear probes; default 0.01.</summary>
    public float ProbeLr { get; init; } = 0.01f;

    /// <summary>Seed of the probes' shuffling generator (<c>Rng.ForPurpose(Seed, "spectral-probe")</c>).</summary>
    public long Seed { get; init; }
}

/// <summary>One row of <c>spectral.csv</c>.</summary>
public sealed record SpectralRow(int D, double ProbeTestAcc, double ProbeCleanAcc, double ProbeNoisyGivenAcc, double ProbeNoisyTrueAcc,
    double TruncTestAcc, double TruncValAcc, double CleanTailEnergy, double NoisyTailEnergy);

/// <summary>What truncation gives for each d of a grid: test accuracy (true labels), validation accuracy (given labels), and the untruncated model.</summary>
public sealed record TruncationScores(double[] TestAcc, double[] ValAcc, double FullTestAcc, double FullValAcc);

/// <summary>The network with its features replaced by their projection on the top-d principal subspace.</summary>
public interface ITruncation
{
    /// <summary>
    /// Test and validation accuracy of the network with its features truncated to each d of
    /// <paramref name="grid"/> (ascending), in <paramref name="basis"/>.
    /// </summary>
    TruncationScores Score(SpectralBasis basis, IReadOnlyList<int> grid);
}

/// <summary>Everything one spectral probe measured.</summary>
public sealed class SpectralResult
{
    /// <summary>Columns of <c>spectral.csv</c> (one row per d, see <see cref="SpectralRow"/>).</summary>
    public const string SpectralHeader = "d,probe_test_acc,probe_clean_acc,probe_noisy_given_acc,probe_noisy_true_acc,trunc_test_acc,trunc_val_acc,clean_tail_energy,noisy_tail_energy";
    /// <summary>Columns of <c>spectrum.csv</c> (one row per principal direction).</summary>
    public const string SpectrumHeader = "index,singular_value,explained_variance,cumulative_variance";

    /// <summary>The principal basis of the training features.</summary>
    public required SpectralBasis Basis { get; init; }
    /// <summary>One row per d of the grid, ascending.</summary>
    public required IReadOnlyList<SpectralRow> Rows { get; init; }
    /// <summary>Classes of the data set (k).</summary>
    public required int Classes { get; init; }
    /// <summary>Test accuracy of the untruncated network; NaN without a truncation.</summary>
    public double FullTestAcc { get; init; } = double.NaN;
    /// <summary>Validation accuracy (given labels) of the untruncated network; NaN without validation data.</summary>
    public double FullValAcc { get; init; } = double.NaN;
    /// <summary>The d of the best truncated accuracy on the noisy validation split (smallest d on ties); null without validation data.</summary>
    public int? BestDByVal { get; init; }
    /// <summary>Truncated test accuracy at <see cref="BestDByVal"/>; NaN without validation data.</summary>
    public double TruncTestAccAtBestD { get; init; } = double.NaN;
    /// <summary>The d of the best probe test accuracy: an oracle figure that locates the valley, not a model choice.</summary>
    public int? ProbeBestD { get; init; }
    /// <summary>The best probe test accuracy (at <see cref="ProbeBestD"/>).</summary>
    public double ProbeBestTestAcc { get; init; } = double.NaN;
    /// <summary>Seconds spent on the spectrum and the tail energies.</summary>
    public double SpectrumSeconds { get; init; }
    /// <summary>Seconds spent on the truncation scores.</summary>
    public double TruncationSeconds { get; init; }
    /// <summary>Seconds spent training the linear probes.</summary>
    public double ProbeSeconds { get; init; }

    /// <summary>One line for a log: what was probed and its figures.</summary>
    public string Describe(string what) => string.Create(CultureInfo.InvariantCulture,
        $"{what}: D = {Basis.Dim}, effective rank {EffectiveRank:F1}, stable rank {StableRank:F2}, full test acc {FullTestAcc:F4}, "
        + $"best d by val {BestDByVal?.ToString(CultureInfo.InvariantCulture) ?? "-"} (trunc test acc {TruncTestAccAtBestD:F4}), "
        + $"probe best d {ProbeBestD?.ToString(CultureInfo.InvariantCulture) ?? "-"} (test acc {ProbeBestTestAcc:F4}); "
        + $"{SpectrumSeconds:F1} s spectrum, {TruncationSeconds:F1} s truncation, {ProbeSeconds:F1} s probes");

    /// <summary>Effective rank of the training features (<see cref="SpectralBasis.EffectiveRank"/>).</summary>
    public double EffectiveRank => Basis.EffectiveRank;
    /// <summary>Stable rank of the training features (<see cref="SpectralBasis.StableRank"/>).</summary>
    public double StableRank => Basis.StableRank;

    /// <summary>
    /// The content of <c>spectrum.csv</c>: per direction its singular value, explained and cumulative
    /// variance.
    /// </summary>
    public string SpectrumCsv()
    {
        var sb = new StringBuilder(SpectrumHeader).Append('\n');
        double total = Basis.Eigenvalues.Sum(l => (double)l), cumulative = 0;
        for (int j = 0; j < Basis.Dim; j++)
        {
            double ev = total > 0 ? Basis.Eigenvalues[j] / total : 0;
            cumulative += ev;
            sb.Append(Invariant($"{j + 1},{F(Basis.SingularValues[j])},{F(ev)},{F(cumulative)}\n"));
        }
        return sb.ToString();
    }

    /// <summary>
    /// The rows of <c>spectral.csv</c> without the header, each line starting with
    /// <paramref name="prefix"/>.
    /// </summary>
    public string SpectralCsv(string prefix = "")
    {
        var sb = new StringBuilder();
        foreach (var r in Rows)
            sb.Append(prefix).Append(Row(r)).Append('\n');
        return sb.ToString();
    }

    /// <summary>The summary.json figures the issue names; <paramref name="suffix"/> (e.g. <c>_at_init</c>) is added to each key.</summary>
    public Dictionary<string, object?> Summary(string suffix = "") => new()
    {
        ["effective_rank" + suffix] = EffectiveRank,
        ["stable_rank" + suffix] = StableRank,
        ["full_test_acc" + suffix] = FullTestAcc,
        ["best_d_by_val" + suffix] = BestDByVal,
        ["trunc_test_acc_at_best_d" + suffix] = TruncTestAccAtBestD,
        ["probe_best_d" + suffix] = ProbeBestD,
        ["probe_best_test_acc" + suffix] = ProbeBestTestAcc,
    };

    /// <summary>The row of dimension <paramref name="d"/>; null when d is not on the grid.</summary>
    public SpectralRow? RowAt(int d) => Rows.FirstOrDefault(r => r.D == d);

    internal static string Row(SpectralRow r) => Invariant(
        $"{r.D},{F(r.ProbeTestAcc)},{F(r.ProbeCleanAcc)},{F(r.ProbeNoisyGivenAcc)},{F(r.ProbeNoisyTrueAcc)},{F(r.TruncTestAcc)},{F(r.TruncValAcc)},{F(r.CleanTailEnergy)},{F(r.NoisyTailEnergy)}");

    /// <summary>CSV number: empty for NaN (no such samples), as in metrics.csv.</summary>
    internal static string F(double v) => double.IsNaN(v) ? "" : v.ToString("R", CultureInfo.InvariantCulture);

    private static string Invariant(FormattableString s) => s.ToString(CultureInfo.InvariantCulture);
}

/// <summary>
/// The spectral linear probe and explicit spectral truncation of the malignant-tail paper
/// (papers/2-malignant-tail.md) on one layer's features:
/// <list type="bullet">
/// <item>spectrum: covariance of the centred training features by GEMM, eigen-decomposition by LAPACK;</item>
/// <item>probe(d): a softmax linear classifier (the engine's Linear + fused cross-entropy, Adam,
/// zero init, <see cref="SpectralOptions.ProbeEpochs"/> epochs of minibatches) on the top-d
/// principal coordinates, whitened by 1/√λ_j (better conditioned; the same model class), fitted
/// with the given (noisy) training labels;</item>
/// <item>trunc(d): the network's own head on mean + V_d V_dᵀ(f − mean) (<see cref="ITruncation"/>);</item>
/// <item>tail energy(d): per sample, the fraction of ‖f − mean‖² outside the top-d subspace,
/// averaged over clean and over noisy training samples.</item>
/// </list>
/// </summary>
public static class SpectralProbe
{
    /// <summary>Log-spaced d from 1 to D (16 points) plus every d within 5 of the class count.</summary>
    public static IReadOnlyList<int> DefaultGrid(int dim, int classes)
    {
        var grid = new SortedSet<int>();
        const int points = 16;
        for (int i = 0; i < points; i++)
            grid.Add((int)Math.Round(Math.Pow(dim, i / (double)(points - 1))));
        for (int d = classes - 5; d <= classes + 5; d++)
            grid.Add(d);
        return grid.Where(d => d >= 1 && d <= dim).ToList();
    }

    /// <summary>Sorts and de-duplicates a grid; a d outside 1..D is an <see cref="InputException"/> naming <c>--d-grid</c>.</summary>
    public static IReadOnlyList<int> CheckGrid(IReadOnlyList<int> grid, int dim, string where)
    {
        if (grid.Count == 0)
            throw new InputException("--d-grid: empty; expected d values like 1,2,5,10");
        foreach (int d in grid)
        {
            if (d < 1)
                throw new InputException($"--d-grid: d = {d} must be at least 1");
            if (d > dim)
                throw new InputException($"--d-grid: d = {d} is larger than the feature dimension D = {dim} of {where}");
        }
        return grid.Distinct().Order().ToList();
    }

    /// <summary>
    /// Probes one layer of a model on prepared data: features of the training, validation and
    /// test sets; truncation through the head (penultimate) or a projection hook (other layers).
    /// </summary>
    public static SpectralResult ProbeModel(Model model, PreparedData data, string layer, SpectralOptions options)
    {
        int classes = data.Train.NumClasses;
        if (classes < 2)
            throw new InputException($"the spectral probe needs a classification data set; {data.Train.Name} has no classes");
        var module = FeatureExtractor.ResolveLayer(model, layer);
        var train = FeatureExtractor.Extract(model, data.Train, layer);
        var test = FeatureExtractor.Extract(model, data.Test, layer);
        string where = $"layer '{layer}'";
        // Check the grid before the expensive part.
        CheckGrid(options.Grid ?? DefaultGrid(train.Dim, classes), train.Dim, where);
        ITruncation truncation = module is null
            ? new HeadTruncation(data.Validation is null ? null : FeatureExtractor.Extract(model, data.Validation, layer), test, model.Head)
            : new ForwardTruncation(model, module, data.Validation, data.Test);
        return Analyze(train, test, classes, truncation, options, where);
    }

    /// <summary>
    /// The spectral probe on extracted features: spectrum, tail energies of clean and noisy samples, linear
    /// probes on the top-d coordinates and, with a <paramref name="truncation"/>, the truncated network's
    /// accuracies. Throws <see cref="ArgumentException"/> when the test features' D differs from the
    /// training features' and <see cref="InputException"/> for a bad grid (naming
    /// <paramref name="where"/>).
    /// </summary>
    public static SpectralResult Analyze(FeatureSet train, FeatureSet test, int classes, ITruncation? truncation, SpectralOptions options, string where = "the features")
    {
        int n = train.Count, dim = train.Dim;
        if (test.Dim != dim)
            throw new ArgumentException($"test features have D = {test.Dim}, training features D = {dim}");
        var grid = CheckGrid(options.Grid ?? DefaultGrid(dim, classes), dim, where);
        var clock = Stopwatch.StartNew();

        // Spectrum, and the training set's principal coordinates (Z·V) for tail energies and probes.
        var z = new float[(long)n * dim];
        var basis = SpectralBasis.Fit(train.X, n, dim, z);
        var coords = new float[(long)n * dim];
        basis.CoordinatesOfCentred(z, n, coords);
        z = null;
        var (cleanTail, noisyTail) = TailEnergies(coords, train, grid);
        double spectrumSeconds = clock.Elapsed.TotalSeconds;

        clock.Restart();
        var trunc = truncation?.Score(basis, grid);
        double truncSeconds = clock.Elapsed.TotalSeconds;

        clock.Restart();
        var probes = new (double Test, double Clean, double NoisyGiven, double NoisyTrue)[grid.Count];
        if (options.FitProbes)
        {
            var testCoords = new float[(long)test.Count * dim];
            basis.Coordinates(test.X, test.Count, testCoords);
            var scale = WhiteningScale(basis);
            for (int g = 0; g < grid.Count; g++)
            {
                var (w, b) = LinearProbe.Fit(coords, n, dim, grid[g], scale, train.Labels, classes, options);
                var trainPred = LinearProbe.Predict(coords, n, dim, grid[g], w, b, classes);
                var testPred = LinearProbe.Predict(testCoords, test.Count, dim, grid[g], w, b, classes);
                var (clean, noisyGiven, noisyTrue) = GroupAccuracies(trainPred, train);
                probes[g] = (Accuracy(testPred, test.TrueLabels), clean, noisyGiven, noisyTrue);
            }
        }
        else
        {
            Array.Fill(probes, (double.NaN, double.NaN, double.NaN, double.NaN));
        }
        double probeSeconds = clock.Elapsed.TotalSeconds;

        var rows = new List<SpectralRow>(grid.Count);
        for (int g = 0; g < grid.Count; g++)
        {
            rows.Add(new SpectralRow(grid[g], probes[g].Test, probes[g].Clean, probes[g].NoisyGiven, probes[g].NoisyTrue,
                trunc?.TestAcc[g] ?? double.NaN, trunc?.ValAcc[g] ?? double.NaN, cleanTail[g], noisyTail[g]));
        }
        int? bestByVal = ArgMax(rows, r => r.TruncValAcc);
        int? probeBest = ArgMax(rows, r => r.ProbeTestAcc);
        return new SpectralResult
        {
            Basis = basis,
            Rows = rows,
            Classes = classes,
            FullTestAcc = trunc?.FullTestAcc ?? double.NaN,
            FullValAcc = trunc?.FullValAcc ?? double.NaN,
            BestDByVal = bestByVal is int bv ? rows[bv].D : null,
            TruncTestAccAtBestD = bestByVal is int bt ? rows[bt].TruncTestAcc : double.NaN,
            ProbeBestD = probeBest is int pb ? rows[pb].D : null,
            ProbeBestTestAcc = probeBest is int pt ? rows[pt].ProbeTestAcc : double.NaN,
            SpectrumSeconds = spectrumSeconds,
            TruncationSeconds = truncSeconds,
            ProbeSeconds = probeSeconds,
        };
    }

    /// <summary>Mean fraction of each clean / noisy sample's centred energy outside the top-d subspace, per grid d.</summary>
    internal static (double[] Clean, double[] Noisy) TailEnergies(float[] coords, FeatureSet train, IReadOnlyList<int> grid)
    {
        int n = train.Count, dim = train.Dim;
        var clean = new double[grid.Count];
        var noisy = new double[grid.Count];
        int cleanCount = 0, noisyCount = 0;
        var headEnergy = new double[grid.Count];
        for (int i = 0; i < n; i++)
        {
            var c = coords.AsSpan(i * dim, dim);
            // Energy from the coordinates (V is orthonormal): the tail at d = D is then exactly 0.
            double total = 0, head = 0;
            int g = 0;
            for (int j = 0; j < dim; j++)
            {
                double e = (double)c[j] * c[j];
                total += e;
                head += e;
                while (g < grid.Count && grid[g] == j + 1)
                    headEnergy[g++] = head;
            }
            if (!(total > 0))
                continue; // a sample at the mean has no direction to speak of
            bool isNoisy = train.Labels[i] != train.TrueLabels[i];
            var sums = isNoisy ? noisy : clean;
            if (isNoisy) noisyCount++; else cleanCount++;
            for (g = 0; g < grid.Count; g++)
                sums[g] += Math.Max(0, total - headEnergy[g]) / total;
        }
        for (int g = 0; g < grid.Count; g++)
        {
            clean[g] = cleanCount == 0 ? double.NaN : clean[g] / cleanCount;
            noisy[g] = noisyCount == 0 ? double.NaN : noisy[g] / noisyCount;
        }
        return (clean, noisy);
    }

    private static float[] WhiteningScale(SpectralBasis basis)
    {
        // 1/√λ_j, with λ floored at 1e-6·λ_max so directions of (numerically) zero variance are not blown up.
        float floor = Math.Max(basis.Eigenvalues[0] * 1e-6f, float.Epsilon);
        return basis.Eigenvalues.Select(l => basis.Eigenvalues[0] > 0 ? 1f / MathF.Sqrt(Math.Max(l, floor)) : 1f).ToArray();
    }

    internal static double Accuracy(ReadOnlySpan<int> predicted, int[] labels)
    {
        if (predicted.Length == 0)
            return double.NaN;
        int correct = 0;
        for (int i = 0; i < predicted.Length; i++)
            correct += predicted[i] == labels[i] ? 1 : 0;
        return (double)correct / predicted.Length;
    }

    private static (double Clean, double NoisyGiven, double NoisyTrue) GroupAccuracies(int[] predicted, FeatureSet set)
    {
        long clean = 0, cleanOk = 0, noisy = 0, givenOk = 0, trueOk = 0;
        for (int i = 0; i < set.Count; i++)
        {
            if (set.Labels[i] == set.TrueLabels[i])
            {
                clean++;
                cleanOk += predicted[i] == set.Labels[i] ? 1 : 0;
            }
            else
            {
                noisy++;
                givenOk += predicted[i] == set.Labels[i] ? 1 : 0;
                trueOk += predicted[i] == set.TrueLabels[i] ? 1 : 0;
            }
        }
        return (clean == 0 ? double.NaN : (double)cleanOk / clean,
            noisy == 0 ? double.NaN : (double)givenOk / noisy,
            noisy == 0 ? double.NaN : (double)trueOk / noisy);
    }

    /// <summary>Index of the largest value (first on ties, so the smallest d); null when all are NaN.</summary>
    private static int? ArgMax(List<SpectralRow> rows, Func<SpectralRow, double> value)
    {
        int? best = null;
        for (int i = 0; i < rows.Count; i++)
        {
            double v = value(rows[i]);
            if (!double.IsNaN(v) && (best is null || v > value(rows[best.Value])))
                best = i;
        }
        return best;
    }

    /// <summary>Row-wise arg-max of m×k logits.</summary>
    internal static void ArgMaxRows(ReadOnlySpan<float> logits, int m, int k, Span<int> predicted)
    {
        for (int i = 0; i < m; i++)
            predicted[i] = TensorPrimitives.IndexOfMax(logits.Slice(i * k, k));
    }
}
