using System.Diagnostics;
using System.Globalization;
using LabelNoiseLab.Studies;
using LabelNoiseLab.Tensors;

namespace LabelNoiseLab.Bench;

/// <summary>
/// The two-phase-paper preset's step at its size (64 standardised random 784-dim inputs, width
/// 512, 10 classes): the network's full-batch gradient-descent step, and its linearised twin's
/// step in function space, timed separately (median of 5 repetitions of N steps). The issue's
/// budget: the twin costs at most 2× the network's step. Also the erf activation of one step by
/// <see cref="Kernels.Erf"/>'s series and by <see cref="Kernels.ErfSingle"/>. Options: <c>--steps N</c>.
/// </summary>
public static class TwoPhasePaperBench
{
    public static int Run(string[] args)
    {
        int steps = 200;
        if (args is ["--steps", var s] && int.TryParse(s, CultureInfo.InvariantCulture, out int parsed) && parsed > 0)
            steps = parsed;
        else if (args.Length > 0)
        {
            Console.Error.WriteLine("usage: LabelNoiseLab.Bench two-phase-paper [--steps N]");
            return 2;
        }
        const int n = 64, d = 784, m = 512, k = 10;
        var rng = new Rng(0);
        var x = new float[n * d];
        for (int i = 0; i < x.Length; i++)
            x[i] = (float)rng.NextNormal();
        var targets = TwoPhasePaperPreset.OneHot([.. Enumerable.Range(0, n).Select(i => i % k)], k);
        var initial = ErfNet.Initialise(d, m, k, rng);
        var net = initial.Clone().On(x);
        var twin = new FunctionSpaceTwin(initial, x, x);
        double Median(Action step)
        {
            step(); // warm-up
            var times = new List<double>();
            for (int rep = 0; rep < 5; rep++)
            {
                var clock = Stopwatch.StartNew();
                for (int i = 0; i < steps; i++)
                    step();
                times.Add(clock.Elapsed.TotalMilliseconds / steps);
            }
            return times.Order().ElementAt(2);
        }
        double netMs = Median(() => net.Step(targets, 1e-3f));
        double twinMs = Median(() => twin.Step(targets, 1e-3f));
        // The erf activation of one step (n × m values): the double-precision series against the table with its guard.
        var z = initial.PreActivations(x);
        var h = new float[z.Length];
        double seriesMs = Median(() => { for (int i = 0; i < z.Length; i++) h[i] = (float)Kernels.Erf(z[i]); });
        double tableMs = Median(() => { for (int i = 0; i < z.Length; i++) h[i] = Kernels.ErfSingle(z[i]); });
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"two-phase-paper step ({Blas.Backend}, {Blas.Threads} threads): network_ms={netMs:F3} twin_ms={twinMs:F3} twin_over_network={twinMs / netMs:F3} full_run_estimate_s={(netMs + twinMs) * 10_000 * 4 / 1000:F0} erf_series_ms={seriesMs:F3} erf_table_ms={tableMs:F3}"));
        return 0;
    }
}
