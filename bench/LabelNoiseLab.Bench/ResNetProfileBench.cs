using System.Diagnostics;
using System.Globalization;
using LabelNoiseLab.Autograd;
using LabelNoiseLab.Tensors;

namespace LabelNoiseLab.Bench;

/// <summary>
/// Where a ResNet-20 step's time goes (batch 128, 28×28×1): for each distinct convolution shape,
/// the convolution's forward and backward (as it runs, and by im2col: <see cref="Tape.DirectConvolution"/> off) against the three GEMMs alone (the floor), and
/// im2col and col2im alone (once each over the batch; the op unfolds twice), and BatchNorm's forward
/// and backward; totals weighted by how often each shape occurs. Each time
/// is the shorter of wall clock and process CPU time (<c>--threads 1</c> on a loaded machine:
/// the CPU time).
/// </summary>
public static class ResNetProfileBench
{
    public static int Run(string[] args)
    {
        if (ProfileArgs.Reps(args, "resnet-profile", 5) is not int reps)
            return 2;
        const int n = 128;
        // (C, Co, H, stride, kernel, padding, count)
        (int C, int Co, int H, int S, int K, int P, int Count)[] shapes =
        [
            (1, 16, 28, 1, 3, 1, 1), (16, 16, 28, 1, 3, 1, 6), (16, 32, 28, 2, 3, 1, 1), (32, 32, 14, 1, 3, 1, 5),
            (16, 32, 28, 2, 1, 0, 1), (32, 64, 14, 2, 3, 1, 1), (64, 64, 7, 1, 3, 1, 5), (32, 64, 14, 2, 1, 0, 1),
        ];
        var rng = new Rng(1);
        double convTotal = 0, gemmTotal = 0, bnTotal = 0, foldTotal = 0;
        foreach (var s in shapes)
        {
            var x = Fill(new Tensor(n, s.C, s.H, s.H), rng);
            x.RequiresGrad = true;
            var w = Fill(new Tensor(s.Co, s.C, s.K, s.K), rng);
            w.RequiresGrad = true;
            var tape = new Tape();
            var g = Conv2dOp.Geometry.Of(x, w, s.S, s.P);
            int positions = g.N * g.OutPlane;
            double conv = Median(reps, () =>
            {
                tape.Reset();
                var y = Conv2dOp.Forward(tape, x, w, null, s.S, s.P);
                var loss = SumOp(tape, y);
                tape.Backward(loss);
            });
            var unfoldedTape = new Tape { DirectConvolution = false };
            double unfolded = Median(reps, () =>
            {
                unfoldedTape.Reset();
                var y = Conv2dOp.Forward(unfoldedTape, x, w, null, s.S, s.P);
                unfoldedTape.Backward(SumOp(unfoldedTape, y));
            });
            var a = new float[g.Patch * positions];
            var b = new float[g.Co * positions];
            var c = new float[g.Co * g.Patch];
            double gemm = Median(reps, () =>
            {
                Blas.Sgemm(false, false, g.Co, positions, g.Patch, 1f, w.Span, g.Patch, a, positions, 0f, b, positions);
                Blas.Sgemm(false, true, g.Co, g.Patch, positions, 1f, b, positions, a, positions, 0f, c, g.Patch);
                Blas.Sgemm(true, false, g.Patch, positions, g.Co, 1f, w.Span, g.Patch, b, positions, 0f, a, positions);
            });
            // im2col + col2im alone, over the batch in the op's chunks (the conv's non-GEMM core).
            int chunk = Conv2dOp.ChunkSamples(g, tape.ConvChunkFloats);
            var gc = g with { N = chunk };
            var dxs = new float[chunk * g.InSample];
            double fold = Median(reps, () =>
            {
                for (int n0 = 0; n0 + chunk <= n; n0 += chunk)
                {
                    Conv2dOp.Im2Col(x.Span.Slice(n0 * g.InSample, dxs.Length), a.AsSpan(0, gc.Patch * chunk * g.OutPlane), gc);
                    Conv2dOp.Col2ImAdd(a.AsSpan(0, gc.Patch * chunk * g.OutPlane), dxs, gc, overwrite: true);
                }
            });
            var yb = Fill(new Tensor(n, s.Co, g.OH, g.OW), rng);
            yb.RequiresGrad = true;
            var gamma = Fill(new Tensor(s.Co), rng);
            gamma.RequiresGrad = true;
            var beta = new Tensor(s.Co) { RequiresGrad = true };
            var mean = new float[s.Co];
            var variance = new float[s.Co];
            double bn = Median(reps, () =>
            {
                tape.Reset();
                var y = BatchNormOp.Forward(tape, yb, gamma, beta, 1e-5f, mean, variance);
                tape.Backward(SumOp(tape, y));
            });
            double flops = 3.0 * 2 * g.Co * (double)g.Patch * positions;
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"conv {s.C}->{s.Co} {s.K}x{s.K}/{s.S} at {s.H}x{s.H} (x{s.Count}): conv fwd+bwd {conv:F1} ms ({flops / conv / 1e6:F1} GFLOP/s; by im2col {unfolded:F1} ms), its 3 GEMMs {gemm:F1} ms ({flops / gemm / 1e6:F1} GFLOP/s), im2col+col2im {fold:F1} ms, batchnorm fwd+bwd {bn:F1} ms"));
            convTotal += s.Count * conv;
            foldTotal += s.Count * fold;
            gemmTotal += s.Count * gemm;
            bnTotal += s.Count * bn;
        }
        bnTotal += 1 * 0; // the stem's BatchNorm is counted with its conv shape
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"per step (weighted): conv {convTotal:F0} ms (GEMMs {gemmTotal:F0} ms, im2col+col2im {foldTotal:F0} ms), batchnorm {bnTotal:F0} ms"));
        return 0;
    }

    private static Tensor SumOp(Tape tape, Tensor y)
    {
        // Mean of y as the loss: MSE against zeros would do as well; use the loss op the engine has.
        return MeanAll.Forward(tape, y);
    }

    private static Tensor Fill(Tensor t, Rng rng)
    {
        for (int i = 0; i < t.Length; i++)
            t.Span[i] = (float)rng.NextNormal();
        return t;
    }

    private static double Median(int reps, Action run)
    {
        run();
        var times = new List<double>();
        var process = Process.GetCurrentProcess();
        for (int i = 0; i < reps; i++)
        {
            process.Refresh();
            var cpu = process.TotalProcessorTime;
            var clock = Stopwatch.StartNew();
            run();
            double wall = clock.Elapsed.TotalMilliseconds;
            process.Refresh();
            times.Add(Math.Min(wall, (process.TotalProcessorTime - cpu).TotalMilliseconds)); // CPU time at one thread under load
        }
        return times.Order().ElementAt(times.Count / 2);
    }

    /// <summary>Scalar mean of all entries (a loss for the profile).</summary>
    private sealed class MeanAll : Op
    {
        private static readonly MeanAll Instance = new();

        public static Tensor Forward(Tape tape, Tensor x)
        {
            var y = tape.Workspace(1);
            y.Span[0] = System.Numerics.Tensors.TensorPrimitives.Sum(x.Span) / x.Length;
            tape.Record(new TapeEntry { Op = Instance, Output = y, A = x });
            return y;
        }

        public override void Backward(Tape tape, in TapeEntry e)
        {
            var dx = GradTarget.For(e.A!);
            dx.Span.Fill(1f / e.A!.Length);
        }
    }
}
