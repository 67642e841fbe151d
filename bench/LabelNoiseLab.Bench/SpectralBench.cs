using System.Diagnostics;
using System.Globalization;
using LabelNoiseLab.Probes;
using LabelNoiseLab.Tensors;

namespace LabelNoiseLab.Bench;

/// <summary>
/// The spectral probe on 60,000 × 512 training features (10 classes, 40% symmetric label noise,
/// 6,000 validation and 10,000 test samples, a random head): features = class signal in 10
/// directions + a decaying spectrum of noise, so the eigenvalues are spread like a trained
/// network's. Times (1) the spectrum (covariance GEMM + ssyevd), the training coordinates, tail
/// energies and the whole default d-grid of truncation evaluations (target ≤ 2 s), and (2) the
/// same with linear-probe fits on a 20-point grid (target ≤ 30 s). Options: <c>--n N</c>.
/// </summary>
public static class SpectralBench
{
    public static int Run(string[] args)
    {
        int n = 60_000;
        if (args is ["--n", var s] && int.TryParse(s, CultureInfo.InvariantCulture, out int parsed) && parsed > 0)
            n = parsed;
        else if (args.Length > 0)
        {
            Console.Error.WriteLine("usage: LabelNoiseLab.Bench spectral [--n N]");
            return 2;
        }
        const int dim = 512, classes = 10;
        var rng = new Rng(7);
        var directions = new float[classes * dim];
        for (int i = 0; i < directions.Length; i++)
            directions[i] = (float)rng.NextNormal() / MathF.Sqrt(dim);
        var scales = Enumerable.Range(0, dim).Select(j => 1f / MathF.Sqrt(1 + j)).ToArray();
        FeatureSet Make(int count, double noise)
        {
            var x = new float[(long)count * dim];
            var labels = new int[count];
            var trueLabels = new int[count];
            for (int i = 0; i < count; i++)
            {
                int c = i % classes;
                trueLabels[i] = c;
                labels[i] = rng.NextDouble() < noise ? (c + 1 + rng.NextInt(classes - 1)) % classes : c;
                var row = x.AsSpan(i * dim, dim);
                for (int j = 0; j < dim; j++)
                    row[j] = 4f * directions[c * dim + j] + scales[j] * (float)rng.NextNormal();
            }
            return new FeatureSet(x, count, dim, labels, trueLabels);
        }
        var train = Make(n, 0.4);
        var val = Make(6_000, 0.4);
        var test = Make(10_000, 0);
        var head = new float[classes * dim];
        for (int i = 0; i < head.Length; i++)
            head[i] = (float)rng.NextNormal() / MathF.Sqrt(dim);
        Blas.Sgemm(false, false, 1, 1, 1, 1f, [1f], 1, [1f], 1, 0f, new float[1], 1); // load OpenBLAS before timing
        Console.WriteLine($"spectral probe: {n} x {dim} training features, {val.Count} validation, {test.Count} test, {classes} classes; BLAS {Blas.Backend}, {Blas.Threads} threads, {Environment.ProcessorCount} cores");

        // The floor: the two n×D×D GEMMs (covariance, coordinates) the spectrum needs.
        var cov = new float[dim * dim];
        var gemmClock = Stopwatch.StartNew();
        Blas.Sgemm(true, false, dim, dim, n, 1f / n, train.X, dim, train.X, dim, 0f, cov, dim);
        double gemmSeconds = gemmClock.Elapsed.TotalSeconds;
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"one {n}x{dim}x{dim} sgemm: {gemmSeconds:F2} s ({2.0 * n * dim * dim / gemmSeconds / 1e9:F0} GFLOP/s); the spectrum needs two"));

        var truncation = new HeadTruncation(val, test, head, null, classes);
        var noProbes = new SpectralOptions { FitProbes = false };
        SpectralProbe.Analyze(train, test, classes, truncation, noProbes); // warm-up (JIT, buffers)
        var clock = Stopwatch.StartNew();
        var r1 = SpectralProbe.Analyze(train, test, classes, truncation, noProbes);
        double t1 = clock.Elapsed.TotalSeconds;
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"spectrum + {r1.Rows.Count}-point truncation grid: {t1:F2} s (spectrum, coordinates and tail energies {r1.SpectrumSeconds:F2} s, truncation {r1.TruncationSeconds:F2} s); target <= 2 s; effective rank {r1.EffectiveRank:F1}"));

        // 20 distinct log-spaced d from 1 to D (rounding merges some small ones: take more points until 20 remain).
        List<int> grid = [];
        for (int points = 20; grid.Count < 20; points++)
            grid = Enumerable.Range(0, points).Select(i => (int)Math.Round(Math.Pow(dim, i / (points - 1.0)))).Distinct().ToList();
        var withProbes = new SpectralOptions { Grid = grid };
        clock.Restart();
        var r2 = SpectralProbe.Analyze(train, test, classes, truncation, withProbes);
        double t2 = clock.Elapsed.TotalSeconds;
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"with linear-probe fits on a {grid.Count}-point grid ({withProbes.ProbeEpochs} epochs, batch {withProbes.ProbeBatchSize}): {t2:F2} s (probes {r2.ProbeSeconds:F2} s); target <= 30 s; probe best d {r2.ProbeBestD} ({r2.ProbeBestTestAcc:F4})"));
        return 0;
    }
}
