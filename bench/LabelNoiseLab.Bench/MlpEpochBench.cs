using System.Diagnostics;
using System.Globalization;
using LabelNoiseLab.Autograd;
using LabelNoiseLab.Data;
using LabelNoiseLab.Losses;
using LabelNoiseLab.Nn;
using LabelNoiseLab.Noise;
using LabelNoiseLab.Optim;
using LabelNoiseLab.Tensors;

namespace LabelNoiseLab.Bench;

/// <summary>
/// <c>mlp-epoch [--threads N] [--batch B] [--widths 784,512,512,10] [--breakdown] [--gemm-backends]</c>: the
/// workload of <c>shared/peers/torch_mlp_epoch.py</c> (MLP with ReLU, SGD lr 0.05 momentum 0.9,
/// softmax cross-entropy, PyTorch-default init, shuffled batches copied through a
/// <see cref="Batcher"/>) on the Fashion-MNIST train set with 30% symmetric label noise, or on
/// random data of that shape when the files are absent. Times the second of two epochs and
/// compares it with the GEMM floor: the epoch's GEMM flops over the peak sgemm rate measured on
/// the exact list of sgemm calls one training step makes.
/// </summary>
public static class MlpEpochBench
{
    private const int Samples = 60_000;

    public static int Run(string[] args)
    {
        ArgumentNullException.ThrowIfNull(args);
        int batch = 128;
        int[] widths = [784, 512, 512, 10];
        bool breakdown = false, backends = false;
        for (int i = 0; i < args.Length; i++)
        {
            string? value = i + 1 < args.Length ? args[i + 1] : null;
            switch (args[i])
            {
                case "--threads" when int.TryParse(value, CultureInfo.InvariantCulture, out int t) && t >= 1:
                    Blas.Threads = t; i++; break;
                case "--batch" when int.TryParse(value, CultureInfo.InvariantCulture, out int b) && b >= 1:
                    batch = b; i++; break;
                case "--widths" when value is not null && TryParseWidths(value, out var w):
                    widths = w; i++; break;
                case "--breakdown":
                    breakdown = true; break;
                case "--gemm-backends":
                    backends = true; break;
                default:
                    Console.Error.WriteLine("usage: LabelNoiseLab.Bench mlp-epoch [--threads N] [--batch B] [--widths 784,512,512,10] [--breakdown] [--gemm-backends]");
                    return 2;
            }
        }

        if (backends)
            return CompareGemmBackends(widths, batch);

        var (data, source) = LoadData(widths[0], widths[^1]);
        var rng = new Rng(0);
        var model = new Mlp(widths[0], widths[1..^1], widths[^1]);
        Init.Apply(model, InitKind.Default, rng);
        var opt = new Sgd(model.Parameters(), 0.05f, momentum: 0.9f);
        var batcher = new Batcher(data, batch, new Rng(1), shuffle: true);
        var tape = new Tape();
        var phases = new double[4]; // batch copy, forward, backward, optimizer step
        var stepSeconds = new List<double>(batcher.BatchesPerEpoch);

        var shapes = StepGemms(widths, batch);
        double gflopsBefore = GemmPeak.MeasureRate(Blas.Selected, shapes);
        Epoch(model, opt, batcher, tape, phases, stepSeconds, out _); // warm-up: JIT tiers, workspaces, BLAS threads
        Array.Clear(phases);
        stepSeconds.Clear();
        double epochSeconds = Epoch(model, opt, batcher, tape, phases, stepSeconds, out float lastLoss);
        stepSeconds.Sort();

        double epochFlops = EpochGemmFlops(widths, batch, data.Count);
        // The peak: the better of the rates measured before and after the epochs (the machine is
        // shared; a busy spell during one measurement should not lower the floor).
        double gflops = Math.Max(gflopsBefore, GemmPeak.MeasureRate(Blas.Selected, shapes));
        double floor = epochFlops / (gflops * 1e9);

        var ci = CultureInfo.InvariantCulture;
        var openBlas = Blas.OpenBlas;
        Console.WriteLine(string.Create(ci,
            $"mlp-epoch data={source} samples={data.Count} widths={string.Join(",", widths)} batch={batch} backend={Blas.Backend} threads={Blas.Threads}{(Blas.Backend == BlasBackend.OpenBlas && openBlas != null ? $" core={openBlas.Corename}" : "")} last_loss={lastLoss:F4}"));
        if (breakdown)
            Console.WriteLine(string.Create(ci,
                $"breakdown_s batch={phases[0]:F3} forward={phases[1]:F3} backward={phases[2]:F3} step={phases[3]:F3} step_ms_min={stepSeconds[0] * 1e3:F3} step_ms_median={stepSeconds[stepSeconds.Count / 2] * 1e3:F3} steps={stepSeconds.Count}"));
        Console.WriteLine(string.Create(ci, $"gemm_peak_gflops={gflops:F1} (best repetition, one step's {shapes.Count} sgemm calls)"));
        Console.WriteLine(string.Create(ci, $"epoch_s={epochSeconds:F3}"));
        Console.WriteLine(string.Create(ci, $"gemm_floor_s={floor:F3} fraction_of_peak={floor / epochSeconds:F2}"));
        return 0;
    }

    /// <summary>
    /// The step's sgemm rate for each backend at 1 and 2 threads (for choosing the backend and
    /// thread count on this workload), without training.
    /// </summary>
    private static int CompareGemmBackends(int[] widths, int batch)
    {
        var shapes = StepGemms(widths, batch);
        IGemmBackend[] list = Blas.OpenBlas is { } o ? [Blas.Managed, o] : [Blas.Managed];
        int saved = Blas.Threads;
        foreach (int threads in new[] { 1, 2 })
        {
            Blas.Threads = threads;
            foreach (var backend in list)
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"gemm_backend={backend.Kind} threads={threads} gemm_peak_gflops={GemmPeak.MeasureRate(backend, shapes):F1}"));
        }
        Blas.Threads = saved;
        return 0;
    }

    /// <summary>
    /// One epoch of training steps (softmax cross-entropy on the batcher's flat features); returns
    /// its seconds and the last batch's loss. <paramref name="phases"/> accumulates the seconds of
    /// batch copy, forward, backward and optimizer step; <paramref name="stepSeconds"/> gets each step's.
    /// </summary>
    internal static double Epoch(Model model, Optimizer opt, Batcher batcher, Tape tape, double[] phases, List<double> stepSeconds, out float lastLoss)
    {
        int d = batcher.Data.FeatureLength;
        Tensor? x = null;
        lastLoss = float.NaN;
        long t0 = Stopwatch.GetTimestamp();
        batcher.StartEpoch();
        while (true)
        {
            long a = Stopwatch.GetTimestamp();
            if (!batcher.Next())
                break;
            if (x is null || x.Rows != batcher.Length) // the last batch may be shorter
                x = new Tensor(batcher.FeatureBuffer, batcher.Length, d);
            long b = Stopwatch.GetTimestamp();
            tape.Reset();
            opt.ZeroGrad();
            var logits = model.Forward(tape, x);
            var loss = SoftmaxCrossEntropyOp.Forward(tape, logits, batcher.LabelBuffer).Mean;
            long c = Stopwatch.GetTimestamp();
            tape.Backward(loss);
            long e = Stopwatch.GetTimestamp();
            opt.Step();
            long f = Stopwatch.GetTimestamp();
            phases[0] += Stopwatch.GetElapsedTime(a, b).TotalSeconds;
            phases[1] += Stopwatch.GetElapsedTime(b, c).TotalSeconds;
            phases[2] += Stopwatch.GetElapsedTime(c, e).TotalSeconds;
            phases[3] += Stopwatch.GetElapsedTime(e, f).TotalSeconds;
            stepSeconds.Add(Stopwatch.GetElapsedTime(a, f).TotalSeconds);
            lastLoss = loss[0];
        }
        return Stopwatch.GetElapsedTime(t0).TotalSeconds;
    }

    /// <summary>
    /// The sgemm calls of one step, in order, as <see cref="LinearOp"/> makes them: forward
    /// y = x·Wᵀ (beta 1 over the broadcast bias) per layer, then per layer from the last:
    /// dW = gᵀ·x and, except for the first layer (its input needs no gradient), dx = g·W.
    /// </summary>
    private static List<Gemm> StepGemms(int[] widths, int batch)
    {
        var list = new List<Gemm>();
        for (int l = 0; l < widths.Length - 1; l++)
            list.Add(new Gemm(false, true, batch, widths[l + 1], widths[l], 1f));
        for (int l = widths.Length - 2; l >= 0; l--)
        {
            list.Add(new Gemm(true, false, widths[l + 1], widths[l], batch, 0f));
            if (l > 0)
                list.Add(new Gemm(false, false, batch, widths[l], widths[l + 1], 0f));
        }
        return list;
    }

    /// <summary>GEMM flops of a whole epoch, the last (shorter) batch included.</summary>
    private static double EpochGemmFlops(int[] widths, int batch, int samples)
    {
        double perSample = 0;
        foreach (var g in StepGemms(widths, 1))
            perSample += g.Flops;
        return perSample * samples; // every GEMM is linear in the batch size
    }

    private static (Dataset Data, string Source) LoadData(int features, int classes)
    {
        if (features == 784 && classes == 10)
        {
            try
            {
                var prepared = DataSources.Prepare(
                    new DataOptions { Name = "fashion-mnist", Normalization = NormalizationMode.None },
                    new NoiseOptions { Kind = NoiseKind.Symmetric, Rate = 0.3, Seed = 0 });
                return (prepared.Train, "fashion-mnist+30%symmetric");
            }
            catch (InputException e)
            {
                Console.Error.WriteLine($"mlp-epoch: {e.Message}; using random data");
            }
        }
        var rng = new Rng(2);
        var x = new float[(long)Samples * features];
        for (int i = 0; i < x.Length; i++) x[i] = rng.NextFloat();
        var y = new int[Samples];
        for (int i = 0; i < y.Length; i++) y[i] = rng.NextInt(classes);
        return (new Dataset("random", x, [features], y, classes), "random");
    }

    private static bool TryParseWidths(string text, out int[] widths)
    {
        var parts = text.Split(',');
        widths = new int[parts.Length];
        for (int i = 0; i < parts.Length; i++)
            if (!int.TryParse(parts[i], CultureInfo.InvariantCulture, out widths[i]) || widths[i] < 1)
                return false;
        return widths.Length >= 2;
    }
}
