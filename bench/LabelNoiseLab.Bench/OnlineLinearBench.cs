using System.Diagnostics;
using System.Globalization;
using LabelNoiseLab.Nn;
using LabelNoiseLab.Noise;
using LabelNoiseLab.Optim;
using LabelNoiseLab.Tensors;

namespace LabelNoiseLab.Bench;

/// <summary>
/// Batch-1 label-noise SGD on TwoLayerLinear (d = 20, m = 1000, n = 200, lr 1e-3, ε = ±4), the
/// setting of ../shared/peers/torch_online_and_per_sample.py: θ* = ones on 3 coordinates, the
/// sample index cycling t mod n like the peer. Each step draws ε from its own generator and runs
/// the fused kernel (<see cref="OnlineTwoLayerLinear"/>). Prints the median steps/s of several
/// repetitions and the bytes allocated per step (must be 0). Options: <c>--steps N</c> per repetition.
/// </summary>
public static class OnlineLinearBench
{
    public static int Run(string[] args)
    {
        long steps = 200_000;
        if (args is ["--steps", var s] && long.TryParse(s, CultureInfo.InvariantCulture, out long parsed) && parsed > 0)
            steps = parsed;
        else if (args.Length > 0)
        {
            Console.Error.WriteLine("usage: LabelNoiseLab.Bench online-linear [--steps N]");
            return 2;
        }
        const int d = 20, m = 1000, n = 200;
        var rng = new Rng(0);
        var x = new float[n * d];
        var y = new float[n];
        for (int i = 0; i < n; i++)
        {
            for (int j = 0; j < d; j++)
                x[i * d + j] = (float)rng.NextNormal();
            y[i] = x[i * d] + x[i * d + 1] + x[i * d + 2];
        }
        var model = new TwoLayerLinear(d, m);
        Init.Apply(model, InitKind.Ntk, rng);
        var kernel = new OnlineTwoLayerLinear(d, m);
        kernel.Load(model);
        var noise = new RegressionStepNoise(4, StepNoiseDistribution.PlusMinus, StepNoiseSchedule.Constant, Rng.ForPurpose(0, "step-label-noise"));

        long t = 0;
        void Steps(long k)
        {
            for (long e = t + k; t < e; t++)
            {
                int i = (int)(t % n);
                kernel.SgdStep(x.AsSpan(i * d, d), y[i] + noise.Next(t), 1e-3f);
            }
        }

        Steps(20_000); // warm-up (JIT tiers)
        var rates = new List<double>();
        long allocated = 0;
        for (int rep = 0; rep < 7; rep++)
        {
            long before = GC.GetAllocatedBytesForCurrentThread();
            long start = Stopwatch.GetTimestamp();
            Steps(steps);
            double seconds = Stopwatch.GetElapsedTime(start).TotalSeconds;
            allocated += GC.GetAllocatedBytesForCurrentThread() - before;
            rates.Add(steps / seconds);
        }
        rates.Sort();
        kernel.Store(model);
        float predictionCheck = kernel.Predict(x.AsSpan(0, d));
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"online-linear d={d} m={m} n={n} lr=0.001 sigma=4 steps_per_rep={steps} reps=7 median_steps_per_s={rates[3]:F0} min={rates[0]:F0} max={rates[^1]:F0} bytes_per_step={(double)allocated / (7 * steps):F3} f(x0)={predictionCheck:G4}"));
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"steps_per_s={rates[3]:F0}"));
        return 0;
    }
}
