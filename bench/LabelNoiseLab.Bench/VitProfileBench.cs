using System.Diagnostics;
using System.Globalization;
using LabelNoiseLab.Autograd;
using LabelNoiseLab.Nn;
using LabelNoiseLab.Tensors;

namespace LabelNoiseLab.Bench;

/// <summary>
/// Where a ViT training step's time goes (the default ViT of <c>vit-step</c>: batch 128, 28×28×1,
/// patch 7, dimension 64, 4 blocks, 4 heads, MLP 256): each op of the step run alone at its
/// shape, forward and backward timed apart (the backward from a random output gradient), and
/// multiplied by how often the step runs it; each time the best of <c>--reps</c> runs. At <c>--threads 1</c> each time is the shorter of
/// the wall clock and the thread's CPU time (on a loaded machine: the CPU time); else the wall clock.
/// </summary>
public static class VitProfileBench
{
    public static int Run(string[] args)
    {
        if (ProfileArgs.Reps(args, "vit-profile", 15) is not int reps)
            return 2;
        const int n = 128, d = 64, depth = 4, heads = 4, hidden = 256, patch = 7, size = 28;
        const int patches = size / patch * (size / patch), t = patches + 1, rows = n * t;
        var rng = new Rng(1);
        Tensor Param(params int[] shape) => Fill(new Tensor(shape), rng, 0.1f, requiresGrad: true);
        var images = Fill(new Tensor(n, 1, size, size), rng, 1f, requiresGrad: true);
        var patchRows = Param(n * patches, patch * patch);
        var embedded = Param(n * patches, d);
        var tokens = Param(rows, d);
        var qkv = Param(rows, 3 * d);
        var wide = Param(rows, hidden);
        var other = Param(rows, d);
        var (gamma, beta) = (Param(d), Param(d));
        var (cls, pos) = (Param(1, 1, d), Param(1, t, d));
        var wEmbed = Param(d, patch * patch);
        var wQkv = Param(3 * d, d);
        var wProj = Param(d, d);
        var wFc1 = Param(hidden, d);
        var wFc2 = Param(d, hidden);
        var (bD, b3D, bH) = (Param(d), Param(3 * d), Param(hidden));
        (string Name, int Count, Func<Tape, Tensor> Forward)[] ops =
        [
            ("patchify", 1, tape => PatchifyOp.Forward(tape, images, patch)),
            ("linear patch-embed 49->64", 1, tape => LinearOp.Forward(tape, patchRows, wEmbed, bD)),
            ("token embed", 1, tape => TokenEmbedOp.Forward(tape, embedded, patches, cls, pos)),
            ("layernorm", 2 * depth + 1, tape => LayerNormOp.Forward(tape, tokens, gamma, beta, 1e-5f)),
            ("linear qkv 64->192", depth, tape => LinearOp.Forward(tape, tokens, wQkv, b3D)),
            ("attention", depth, tape => SelfAttentionOp.Forward(tape, qkv, t, heads)),
            ("linear proj 64->64", depth, tape => LinearOp.Forward(tape, tokens, wProj, bD)),
            ("residual add", 2 * depth, tape => AddOp.Forward(tape, tokens, other)),
            ("linear fc1 64->256", depth, tape => LinearOp.Forward(tape, tokens, wFc1, bH)),
            ("gelu", depth, tape => GeluOp.Instance.Forward(tape, wide)),
            ("linear fc2 256->64", depth, tape => LinearOp.Forward(tape, wide, wFc2, bD)),
            ("reshape pair", depth, tape => ReshapeOp.Forward(tape, ReshapeOp.Forward(tape, tokens, [n, t * d]), [rows, d])),
            ("token pool", 1, tape => TokenPoolOp.Forward(tape, tokens, t, first: true)),
        ];
        double forwardTotal = 0, backwardTotal = 0;
        foreach (var (name, count, forward) in ops)
        {
            var tape = new Tape();
            double fwd = Best(reps, () =>
            {
                tape.Reset();
                forward(tape);
            });
            // The backward alone: replay the recorded entries from a random output gradient.
            tape.Reset();
            var y = forward(tape);
            Fill(y.EnsureGrad(), rng, 1f, requiresGrad: true);
            var entries = tape.Entries.ToArray();
            double bwd = Best(reps, () =>
            {
                foreach (var e in entries)
                    e.Output.GradIsZero = false;
                foreach (var input in new[] { images, patchRows, embedded, tokens, qkv, wide, other, gamma, beta, cls, pos, wEmbed, wQkv, wProj, wFc1, wFc2, bD, b3D, bH })
                    input.GradIsZero = true;
                for (int i = entries.Length - 1; i >= 0; i--)
                    entries[i].Op.Backward(tape, entries[i]);
            });
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"{name,-26} x{count}: forward {fwd:F2} ms, backward {bwd:F2} ms, step share {count * (fwd + bwd):F1} ms"));
            forwardTotal += count * fwd;
            backwardTotal += count * bwd;
        }
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"per step (weighted, without the head and loss): forward {forwardTotal:F0} ms, backward {backwardTotal:F0} ms, total {forwardTotal + backwardTotal:F0} ms"));
        return 0;
    }

    private static Tensor Fill(Tensor t, Rng rng, float scale, bool requiresGrad)
    {
        for (int i = 0; i < t.Length; i++)
            t.Span[i] = scale * (float)rng.NextNormal();
        t.RequiresGrad = requiresGrad;
        return t;
    }

    private static double Best(int reps, Action run)
    {
        run();
        var times = new List<double>();
        for (int i = 0; i < reps; i++)
        {
            long cpu = ThreadCpuNanoseconds();
            var clock = Stopwatch.StartNew();
            run();
            double wall = clock.Elapsed.TotalMilliseconds;
            double cpuMs = (ThreadCpuNanoseconds() - cpu) / 1e6;
            times.Add(Blas.Threads == 1 ? Math.Min(wall, cpuMs) : wall);
        }
        return times.Min();
    }

    // The calling thread's CPU time (clock_gettime(CLOCK_THREAD_CPUTIME_ID)): at one thread the
    // whole op runs on it, and unlike the process time (10 ms ticks) it resolves microseconds.
    private static long ThreadCpuNanoseconds()
    {
        clock_gettime(3, out var ts);
        return ts.Seconds * 1_000_000_000L + ts.Nanoseconds;
    }

    [System.Runtime.InteropServices.StructLayout(System.Runtime.InteropServices.LayoutKind.Sequential)]
    private struct TimeSpec
    {
        public long Seconds;
        public long Nanoseconds;
    }

    [System.Runtime.InteropServices.DllImport("libc", SetLastError = false)]
    private static extern int clock_gettime(int clock, out TimeSpec ts);
}
