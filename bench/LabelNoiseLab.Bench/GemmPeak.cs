using System.Diagnostics;
using System.Globalization;
using LabelNoiseLab.Tensors;

namespace LabelNoiseLab.Bench;

/// <summary>One sgemm call: C = op(A)·op(B) + beta·C, op(A) m×k, op(B) k×n.</summary>
internal readonly record struct Gemm(bool TransA, bool TransB, int M, int N, int K, float Beta)
{
    public double Flops => 2.0 * M * N * K;
}

/// <summary>
/// The GEMM floor of a workload: the sgemm calls it makes (listed, or recorded from one
/// training step) and the peak rate the selected backend reaches on exactly those shapes, so
/// fraction_of_peak = GEMM flops / time / peak says how much of the time is matrix products at
/// their best.
/// </summary>
internal static class GemmPeak
{
    private const int Repetitions = 7;

    /// <summary>The sgemm calls <paramref name="step"/> makes, in order (it runs once, on the selected backend).</summary>
    public static List<Gemm> Record(Action step)
    {
        var recorder = new Recorder(Blas.Selected);
        Blas.Override = recorder;
        try
        {
            step();
        }
        finally
        {
            Blas.Override = null;
        }
        return recorder.Calls;
    }

    /// <summary>
    /// Peak GFLOP/s of <paramref name="backend"/> over the list of sgemm calls: the best of
    /// several repetitions of ~0.1 s each, after a warm-up, each timed by the shorter of the wall
    /// clock and the process's CPU time (one thread on a loaded machine: the CPU time; several
    /// threads on an idle one: the wall clock). Calls of the same shape share their
    /// buffers (a step's chunked convolutions repeat a few shapes many times).
    /// </summary>
    public static double MeasureRate(IGemmBackend backend, List<Gemm> shapes)
    {
        var rng = new Random(7);
        var distinct = shapes.GroupBy(g => g).Select(group => (Shape: group.Key, Count: group.Count())).ToArray();
        var buffers = distinct.Select(d => (
            A: RandomArray(rng, d.Shape.M * d.Shape.K), B: RandomArray(rng, d.Shape.K * d.Shape.N), C: RandomArray(rng, d.Shape.M * d.Shape.N))).ToArray();
        double flops = shapes.Sum(g => g.Flops);

        void OneStep()
        {
            for (int i = 0; i < distinct.Length; i++)
            {
                var (g, count) = distinct[i];
                var (a, b, c) = buffers[i];
                int lda = g.TransA ? g.M : g.K, ldb = g.TransB ? g.K : g.N;
                for (int r = 0; r < count; r++)
                {
                    backend.Sgemm(g.TransA, g.TransB, g.M, g.N, g.K, 1f, a, lda, b, ldb, g.Beta, c, g.N);
                    if (g.Beta != 0f)
                        c.AsSpan().Clear(); // keep beta-1 outputs bounded across iterations
                }
            }
        }

        var sw = Stopwatch.StartNew();
        int warm = 0;
        do { OneStep(); warm++; } while (sw.Elapsed.TotalMilliseconds < 300 || warm < 5);
        int inner = Math.Max(1, (int)Math.Ceiling(0.1 / (sw.Elapsed.TotalSeconds / warm)));
        var rates = new double[Repetitions];
        var process = Process.GetCurrentProcess();
        for (int r = 0; r < Repetitions; r++)
        {
            process.Refresh();
            var cpu = process.TotalProcessorTime;
            sw.Restart();
            for (int i = 0; i < inner; i++) OneStep();
            double wall = sw.Elapsed.TotalSeconds;
            process.Refresh();
            rates[r] = flops * inner / Math.Min(wall, (process.TotalProcessorTime - cpu).TotalSeconds) / 1e9;
        }
        return rates.Max();
    }

    /// <summary>
    /// The line every training benchmark prints: the GEMM flops of the timed work, the peak rate
    /// on its sgemm calls, the floor (flops / peak) and the fraction of the peak reached
    /// (floor / measured seconds; callers pass the shorter of wall and CPU seconds, as the peak is timed).
    /// </summary>
    public static string Report(List<Gemm> stepCalls, double flops, double seconds)
    {
        double gflops = MeasureRate(Blas.Selected, stepCalls);
        double floor = flops / (gflops * 1e9);
        return string.Create(CultureInfo.InvariantCulture,
            $"gemm_gflop={flops / 1e9:F2} gemm_peak_gflops={gflops:F1} (best repetition, one step's {stepCalls.Count} sgemm calls) gemm_floor_s={floor:F3} fraction_of_peak={floor / seconds:F2}");
    }

    private static float[] RandomArray(Random rng, int count)
    {
        var x = new float[count];
        for (int i = 0; i < count; i++) x[i] = (float)(rng.NextDouble() * 2 - 1);
        return x;
    }

    /// <summary>Forwards every call to the wrapped backend and lists its shape.</summary>
    private sealed class Recorder(IGemmBackend inner) : IGemmBackend
    {
        public List<Gemm> Calls { get; } = [];

        public BlasBackend Kind => inner.Kind;

        public void Sgemm(bool transA, bool transB, int m, int n, int k,
            float alpha, ReadOnlySpan<float> a, int lda, ReadOnlySpan<float> b, int ldb,
            float beta, Span<float> c, int ldc)
        {
            Calls.Add(new Gemm(transA, transB, m, n, k, beta == 0f ? 0f : 1f));
            inner.Sgemm(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
        }
    }
}
