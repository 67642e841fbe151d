using System.Diagnostics;
using System.Globalization;
using LabelNoiseLab.Autograd;
using LabelNoiseLab.Losses;
using LabelNoiseLab.Nn;
using LabelNoiseLab.Optim;
using LabelNoiseLab.Tensors;

namespace LabelNoiseLab.Bench;

/// <summary>
/// A ResNet-20 (BatchNorm) training step at batch 128 on 28×28×1 random inputs, SGD momentum 0.9,
/// softmax cross-entropy: the setting of ../shared/peers/torch_resnet_epoch.py; <c>vit-step</c>
/// (<c>vit: true</c>) times the default ViT (patch 7, dimension 64, 4 blocks, 4 heads) in the same
/// setting, against bench/peers/torch_vit_step.py. Prints the median
/// step time after 5 warm-up steps, the 60,000-sample epoch extrapolated from it (epoch_s=), and
/// the managed bytes a warm step allocates, the process's peak working set, and the fraction of the GEMM peak the step reaches
/// (<see cref="GemmPeak"/>; measured after the peak working set is read). Options: <c>--steps N</c>, <c>--channels C</c>, <c>--size S</c>, <c>--threads T</c>, <c>--chunk F</c> (the convolutions' unfolding budget in floats, <see cref="Tape.ConvChunkFloats"/>),
/// <c>--peak 0</c> (skip the GEMM peak, e.g. under a profiler), <c>--im2col 1</c> (stride-1 convolutions unfold instead of running the direct kernel, <see cref="Tape.DirectConvolution"/>).
/// The GEMM work of a step is that of its im2col form (recorded with the direct kernel off), so the
/// fraction of peak compares the same arithmetic whichever way the convolutions run.
/// Also the process's CPU time per timed step (cpu_ms=): on a loaded machine at one thread it
/// approximates the idle step time better than the wall clock does.
/// </summary>
public static class ResNetStepBench
{
    public static int Run(string[] args, bool vit = false)
    {
        int steps = 20, channels = 1, size = 28, chunk = 0;
        bool im2col = false, peak = true;
        for (int i = 0; i + 1 < args.Length; i += 2)
        {
            int v = int.Parse(args[i + 1], CultureInfo.InvariantCulture);
            switch (args[i])
            {
                case "--steps": steps = v; break;
                case "--channels": channels = v; break;
                case "--size": size = v; break;
                case "--threads": Blas.Threads = v; break;
                case "--chunk": chunk = v; break;
                case "--im2col": im2col = v != 0; break;
                case "--peak": peak = v != 0; break;
                default:
                    Console.Error.WriteLine("usage: LabelNoiseLab.Bench resnet-step|vit-step [--steps N] [--channels C] [--size S] [--threads T] [--chunk F] [--im2col 0|1] [--peak 0|1]");
                    return 2;
            }
        }
        const int batch = 128;
        var rng = new Rng(0);
        Model model = vit ? new VisionTransformer(channels, size, 10) : new ResNet(channels, size, 10, depth: 20);
        Init.Apply(model, InitKind.Default, rng);
        var optimizer = new Sgd(model.Parameters(), 0.05f, 0.9f, nesterov: false, weightDecay: 0f);
        var x = new Tensor(batch, channels * size * size);
        for (int i = 0; i < x.Length; i++)
            x.Span[i] = (float)rng.NextNormal();
        var labels = Enumerable.Range(0, batch).Select(i => i % 10).ToArray();
        var tape = new Tape { DirectConvolution = !im2col };
        if (chunk > 0)
            tape.ConvChunkFloats = chunk;
        void Step()
        {
            tape.Reset();
            optimizer.ZeroGrad();
            var loss = SoftmaxCrossEntropyOp.Forward(tape, model.Forward(tape, x), labels).Mean;
            tape.Backward(loss);
            optimizer.Step();
        }
        for (int i = 0; i < 5; i++)
            Step();
        long before = GC.GetTotalAllocatedBytes(precise: true); // every thread: the kernels run on worker threads too
        Step();
        long allocated = GC.GetTotalAllocatedBytes(precise: true) - before;
        var times = new List<double>();
        var cpuBefore = Process.GetCurrentProcess().TotalProcessorTime;
        for (int i = 0; i < steps; i++)
        {
            var clock = Stopwatch.StartNew();
            Step();
            times.Add(clock.Elapsed.TotalMilliseconds);
        }
        double cpuMs = (Process.GetCurrentProcess().TotalProcessorTime - cpuBefore).TotalMilliseconds / steps;
        double median = times.Order().ElementAt(times.Count / 2);
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{(vit ? "vit" : "resnet-20")} step ({Blas.Backend}, {Blas.Threads} threads, batch {batch}, {channels}x{size}x{size}): step_ms={median:F1} cpu_ms={cpuMs:F1} epoch_s={median * 60_000 / batch / 1000:F0} allocated_bytes_per_step={allocated} peak_working_set_mb={Process.GetCurrentProcess().PeakWorkingSet64 / (1024 * 1024)}"));
        if (!peak)
            return 0;
        tape.DirectConvolution = false;
        var calls = GemmPeak.Record(Step);
        Console.WriteLine(GemmPeak.Report(calls, calls.Sum(g => g.Flops), Math.Min(median, cpuMs) / 1000));
        return 0;
    }
}
