using System.Globalization;
using LabelNoiseLab.Autograd;
using LabelNoiseLab.Data;
using LabelNoiseLab.Losses;
using LabelNoiseLab.Nn;
using LabelNoiseLab.Optim;
using LabelNoiseLab.Tensors;

namespace LabelNoiseLab.Bench;

/// <summary>
/// <c>smallcnn-epoch [--threads N]</c>: the workload of ../shared/peers/torch_smallcnn_epoch.py —
/// <see cref="SmallCnn"/> (conv16–ReLU–maxpool–conv32–ReLU–maxpool–fc128–ReLU–fc10,
/// PyTorch-default init) on 60,000 random normal 1×28×28 images with random labels, shuffled
/// batches of 128, SGD lr 0.05 momentum 0.9, softmax cross-entropy. Times the second of two
/// epochs (wall clock, and the process's CPU seconds: at one thread on a loaded machine the
/// better estimate of the idle time) and reports the fraction of the GEMM peak it reaches (<see cref="GemmPeak"/>;
/// the convolutions' work counted as their im2col GEMMs).
/// </summary>
public static class SmallCnnEpochBench
{
    private const int Samples = 60_000, Side = 28, Batch = 128;

    public static int Run(string[] args)
    {
        ArgumentNullException.ThrowIfNull(args);
        for (int i = 0; i < args.Length; i++)
        {
            if (args[i] == "--threads" && i + 1 < args.Length && int.TryParse(args[i + 1], CultureInfo.InvariantCulture, out int t) && t >= 1)
            {
                Blas.Threads = t;
                i++;
                continue;
            }
            Console.Error.WriteLine("usage: LabelNoiseLab.Bench smallcnn-epoch [--threads N]");
            return 2;
        }
        var rng = new Rng(2);
        var x = new float[Samples * Side * Side];
        for (int i = 0; i < x.Length; i++) x[i] = (float)rng.NextNormal();
        var y = new int[Samples];
        for (int i = 0; i < y.Length; i++) y[i] = rng.NextInt(10);
        var data = new Dataset("random", x, [1, Side, Side], y, 10);

        var model = new SmallCnn(1, Side, 10);
        Init.Apply(model, InitKind.Default, new Rng(0));
        var opt = new Sgd(model.Parameters(), 0.05f, momentum: 0.9f);
        var batcher = new Batcher(data, Batch, new Rng(1), shuffle: true);
        var tape = new Tape();
        var phases = new double[4];
        var stepSeconds = new List<double>(batcher.BatchesPerEpoch);
        MlpEpochBench.Epoch(model, opt, batcher, tape, phases, stepSeconds, out _); // warm-up epoch, as the peer
        var cpuBefore = System.Diagnostics.Process.GetCurrentProcess().TotalProcessorTime;
        double seconds = MlpEpochBench.Epoch(model, opt, batcher, tape, phases, stepSeconds, out float lastLoss);
        double cpuSeconds = (System.Diagnostics.Process.GetCurrentProcess().TotalProcessorTime - cpuBefore).TotalSeconds;

        // One more full batch, its sgemm calls recorded; GEMM flops are linear in the batch size. The
        // convolutions are recorded in their im2col form (direct kernel off), so the fraction of peak
        // compares the same arithmetic whichever way they ran.
        tape.DirectConvolution = false;
        var calls = GemmPeak.Record(() =>
        {
            var xb = new Tensor(data.Features.AsSpan(0, Batch * Side * Side).ToArray(), Batch, Side * Side);
            tape.Reset();
            opt.ZeroGrad();
            tape.Backward(SoftmaxCrossEntropyOp.Forward(tape, model.Forward(tape, xb), y.AsSpan(0, Batch).ToArray()).Mean);
        });
        double flops = calls.Sum(g => g.Flops) / Batch * Samples;
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"smallcnn-epoch samples={Samples} batch={Batch} backend={Blas.Backend} threads={Blas.Threads} last_loss={lastLoss:F4}"));
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"epoch_s={seconds:F3} epoch_cpu_s={cpuSeconds:F3}"));
        Console.WriteLine(GemmPeak.Report(calls, flops, Math.Min(seconds, cpuSeconds)));
        return 0;
    }
}
