using System.Diagnostics;
using System.Globalization;
using LabelNoiseLab.Autograd;
using LabelNoiseLab.Losses;
using LabelNoiseLab.Nn;
using LabelNoiseLab.Robust;
using LabelNoiseLab.Tensors;

namespace LabelNoiseLab.Bench;

/// <summary>
/// Per-sample gradient norms on the MLP 784-512-512-10 at batch 128 (random inputs and labels),
/// the setting of ../shared/peers/torch_online_and_per_sample.py. Median milliseconds of:
/// step (forward + CE + backward, no hooks), norms (the same with the per-sample norm hooks),
/// prune (a full gradient-pruning step without the optimizer update: forward, deferred backward
/// with norms, truncation weights, re-weighted parameter GEMMs) and naive (one forward + backward
/// per sample). Options: <c>--threads N</c> (BLAS threads, default 1 like the peer's torch).
/// </summary>
public static class PerSampleNormsBench
{
    public static int Run(string[] args)
    {
        int threads = 1;
        if (args is ["--threads", var s] && int.TryParse(s, CultureInfo.InvariantCulture, out int t) && t > 0)
            threads = t;
        else if (args.Length > 0)
        {
            Console.Error.WriteLine("usage: LabelNoiseLab.Bench per-sample-norms [--threads N]");
            return 2;
        }
        Blas.Threads = threads;
        const int batch = 128;
        var rng = new Rng(0);
        var x = new Tensor(batch, 784);
        for (int i = 0; i < x.Length; i++)
            x[i] = (float)rng.NextNormal();
        var labels = Enumerable.Range(0, batch).Select(_ => rng.NextInt(10)).ToArray();

        var plain = new Mlp(784, [512, 512], 10);
        Init.Apply(plain, InitKind.Default, new Rng(1));
        var hooked = new Mlp(784, [512, 512], 10);
        Init.Apply(hooked, InitKind.Default, new Rng(1));
        var psg = new PerSampleGradients(hooked);
        var pruning = new GradientPruning(PruneStatistic.MeanStd, PruneWeighting.Truncate, 2f, 2f);
        var weights = new float[batch];
        var naive = new float[batch];
        var tape = new Tape();
        var naiveTape = new Tape();
        float check = 0;

        void Step(Module model)
        {
            tape.Reset();
            foreach (var p in model.Parameters())
                p.ZeroGrad();
            tape.Backward(SoftmaxCrossEntropyOp.Forward(tape, model.Forward(tape, x), labels).Mean);
        }
        void Norms()
        {
            Step(hooked);
            check = psg.Norms[0];
        }
        void Prune()
        {
            tape.Reset();
            foreach (var p in hooked.Parameters())
                p.ZeroGrad();
            var loss = SoftmaxCrossEntropyOp.Forward(tape, hooked.Forward(tape, x), labels).Mean;
            psg.DeferParameterGradients();
            tape.Backward(loss);
            pruning.Weights(psg.Norms, weights);
            psg.ApplySampleWeights(weights);
        }
        void Naive() => psg.NaiveNorms(x, labels, naive, naiveTape);

        // Interleaved repetitions, so that load from other processes falls on all four alike.
        var (stepMs, normsMs, pruneMs, naiveMs) = InterleavedMedians(() => Step(plain), Norms, Prune, Naive, 41);
        double worst = 0;
        Norms();
        var fast = psg.Norms.ToArray();
        for (int i = 0; i < batch; i++)
            worst = Math.Max(worst, Math.Abs(fast[i] - naive[i]) / naive[i]);
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"per-sample-norms mlp=784-512-512-10 batch={batch} threads={threads} backend={Blas.Backend} pruned={weights.Count(w => w == 0)} fast_vs_naive_max_rel_diff={worst:E2} norm0={check:G4}"));
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"step_ms={stepMs:F2} norms_ms={normsMs:F2} prune_ms={pruneMs:F2} naive_ms={naiveMs:F1} norms/step={normsMs / stepMs:F2} prune/step={pruneMs / stepMs:F2} naive/norms={naiveMs / normsMs:F1} naive/step={naiveMs / stepMs:F1}"));
        return 0;
    }

    /// <summary>Median wall time in ms of each action over <paramref name="reps"/> rounds (one run of each per round) after warm-up.</summary>
    private static (double, double, double, double) InterleavedMedians(Action a, Action b, Action c, Action d, int reps)
    {
        Action[] actions = [a, b, c, d];
        var times = new double[4, reps];
        for (int w = 0; w < 3; w++)
            foreach (var action in actions)
                action();
        for (int r = 0; r < reps; r++)
            for (int k = 0; k < 4; k++)
            {
                long start = Stopwatch.GetTimestamp();
                actions[k]();
                times[k, r] = Stopwatch.GetElapsedTime(start).TotalMilliseconds;
            }
        double Median(int k)
        {
            var row = Enumerable.Range(0, reps).Select(r => times[k, r]).Order().ToArray();
            return row[reps / 2];
        }
        return (Median(0), Median(1), Median(2), Median(3));
    }
}
