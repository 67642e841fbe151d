using System.Diagnostics;
using System.Globalization;
using LabelNoiseLab.Tensors;

namespace LabelNoiseLab.Bench;

/// <summary>
/// sgemm GFLOP/s of each backend at n×n×n for n = 256, 512, 1024 (no transposes, alpha 1,
/// beta 0). Each figure: warm-up, then the median of several repetitions, each repetition
/// timing enough products to last at least ~50 ms.
/// </summary>
internal static class GemmBench
{
    private static readonly int[] Sizes = [256, 512, 1024];
    private const int Repetitions = 9;

    /// <summary>Options: <c>--threads N</c> (default <see cref="Blas.Threads"/>, i.e. all processors).</summary>
    public static int Run(string[] options)
    {
        if (options is ["--threads", var t] && int.TryParse(t, CultureInfo.InvariantCulture, out int threads) && threads >= 1)
            Blas.Threads = threads;
        else if (options.Length > 0)
        {
            Console.Error.WriteLine("usage: LabelNoiseLab.Bench gemm [--threads N]");
            return 2;
        }
        OpenBlasGemm? openBlas = Blas.OpenBlas;
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"gemm threads={Blas.Threads} processors={Environment.ProcessorCount} managed_kernel=\"{ManagedGemm.KernelName}\" openblas={(openBlas == null ? "none" : $"{openBlas.Path} core={openBlas.Corename}")}"));
        var rng = new Random(12345);
        foreach (int n in Sizes)
        {
            float[] a = Random(rng, n * n), b = Random(rng, n * n), c = new float[n * n];
            IGemmBackend[] backends = openBlas == null ? [Blas.Managed] : [Blas.Managed, openBlas];
            double[] medians = Measure(backends, n, a, b, c);
            double managed = medians[0];
            double? native = openBlas == null ? null : medians[1];
            string ratio = native is { } o ? (managed / o).ToString("F2", CultureInfo.InvariantCulture) : "n/a";
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"gemm n={n} openblas_gflops={(native is { } g ? g.ToString("F1", CultureInfo.InvariantCulture) : "n/a")} managed_gflops={managed:F1} managed/openblas={ratio}"));
        }
        return 0;
    }

    /// <summary>
    /// Median GFLOP/s per backend. Repetitions alternate between the backends so that both see
    /// the same machine load (the machine is shared; figures drift with it).
    /// </summary>
    private static double[] Measure(IGemmBackend[] backends, int n, float[] a, float[] b, float[] c)
    {
        double flops = 2.0 * n * n * n;
        var inner = new int[backends.Length];
        var sw = new Stopwatch();
        for (int q = 0; q < backends.Length; q++)
        {
            // Warm-up (JIT tiers, buffers, OpenBLAS threads), also sizing the inner loop.
            sw.Restart();
            int warm = 0;
            do { Product(backends[q], n, a, b, c); warm++; } while (sw.Elapsed.TotalMilliseconds < 200 || warm < 3);
            inner[q] = Math.Max(1, (int)Math.Ceiling(0.05 / (sw.Elapsed.TotalSeconds / warm)));
        }

        var gflops = new double[backends.Length][];
        for (int q = 0; q < backends.Length; q++) gflops[q] = new double[Repetitions];
        for (int r = 0; r < Repetitions; r++)
        for (int q = 0; q < backends.Length; q++)
        {
            sw.Restart();
            for (int i = 0; i < inner[q]; i++) Product(backends[q], n, a, b, c);
            gflops[q][r] = flops * inner[q] / sw.Elapsed.TotalSeconds / 1e9;
        }
        var medians = new double[backends.Length];
        for (int q = 0; q < backends.Length; q++)
        {
            Array.Sort(gflops[q]);
            medians[q] = gflops[q][Repetitions / 2];
        }
        return medians;
    }

    private static void Product(IGemmBackend backend, int n, float[] a, float[] b, float[] c)
        => backend.Sgemm(false, false, n, n, n, 1f, a, n, b, n, 0f, c, n);

    private static float[] Random(Random rng, int count)
    {
        var x = new float[count];
        for (int i = 0; i < count; i++) x[i] = (float)(rng.NextDouble() * 2 - 1);
        return x;
    }
}
