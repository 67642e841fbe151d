using System.Diagnostics;
using System.Globalization;
using System.Text;
using LabelNoiseLab.Data;
using LabelNoiseLab.Experiments;
using LabelNoiseLab.RunFiles;
using LabelNoiseLab.Tensors;
using LabelNoiseLab.Training;
using static LabelNoiseLab.Experiments.PresetValues;

namespace LabelNoiseLab.Studies;

/// <summary>
/// Settings of the <c>two-phase-paper</c> preset, keys <c>two_phase_paper.&lt;name&gt;</c>: the
/// label-noise SGD paper's real-data notebook (Dense(width) → erf → Dense(10), standard
/// parameterisation with N(0, 1/fan_in) weights and N(0, 1) biases, the first <c>samples</c> train
/// and test images, full-batch gradient descent on 0.5·mean((f − y)²)).
/// </summary>
public sealed record TwoPhasePaperOptions
{
    /// <summary>fashion-mnist (the notebook's), mnist or cifar10 (binary files from --data-dir).</summary>
    public string Data { get; init; } = "fashion-mnist";
    /// <summary><c>two_phase_paper.samples</c>: the first N training images trained on, and the first N test images evaluated on (at least 2). Default 64.</summary>
    public int Samples { get; init; } = 64;
    /// <summary><c>two_phase_paper.width</c>: hidden width of Dense(width) → erf → Dense(classes). Default 512.</summary>
    public int Width { get; init; } = 512;
    /// <summary><c>two_phase_paper.lr</c>: gradient-descent step size. Default 1e-3.</summary>
    public double Lr { get; init; } = 1e-3;
    /// <summary><c>two_phase_paper.steps</c>: full-batch steps per method. Default 10,000.</summary>
    public long Steps { get; init; } = 10_000;
    /// <summary><c>two_phase_paper.eval_every</c>: steps between rows of <c>curves.csv</c>. Default 100.</summary>
    public long EvalEvery { get; init; } = 100;
    /// <summary>label_noise: each label redrawn with this probability at every step.</summary>
    public double P { get; init; } = 0.5;
    /// <summary><c>two_phase_paper.rho</c>: SAM perturbation radius ρ (method <c>sam</c>). Default 0.05.</summary>
    public double Rho { get; init; } = 0.05;
    /// <summary><c>two_phase_paper.seed</c>: seed of the initialisation (shared by every method) and the label noise. Default 0.</summary>
    public int Seed { get; init; }

    /// <summary>The CI version: the same experiment, 500 steps.</summary>
    public static TwoPhasePaperOptions Quick { get; } = new() { Steps = 500, EvalEvery = 50 };

    private static readonly (string Key, Func<TwoPhasePaperOptions, string> Get, Func<TwoPhasePaperOptions, string, TwoPhasePaperOptions> Set)[] Table =
    [
        ("two_phase_paper.data", o => o.Data, (o, v) => o with { Data = v }),
        ("two_phase_paper.samples", o => F(o.Samples), (o, v) => o with { Samples = I(v) }),
        ("two_phase_paper.width", o => F(o.Width), (o, v) => o with { Width = I(v) }),
        ("two_phase_paper.lr", o => F(o.Lr), (o, v) => o with { Lr = D(v) }),
        ("two_phase_paper.steps", o => F(o.Steps), (o, v) => o with { Steps = L(v) }),
        ("two_phase_paper.eval_every", o => F(o.EvalEvery), (o, v) => o with { EvalEvery = L(v) }),
        ("two_phase_paper.p", o => F(o.P), (o, v) => o with { P = D(v) }),
        ("two_phase_paper.rho", o => F(o.Rho), (o, v) => o with { Rho = D(v) }),
        ("two_phase_paper.seed", o => F(o.Seed), (o, v) => o with { Seed = I(v) }),
    ];

    /// <summary>Applies <c>key=value</c>; an unknown key or a value of the wrong type is a <see cref="ConfigException"/>.</summary>
    public TwoPhasePaperOptions With(string assignment) => PresetSettings.Apply(this, assignment, "two-phase-paper", Table);

    /// <summary>Throws a <see cref="ConfigException"/> naming the first out-of-range key.</summary>
    public void Validate()
    {
        if (Data is not ("fashion-mnist" or "mnist" or "cifar10"))
            throw new ConfigException("two_phase_paper.data", $"expected fashion-mnist, mnist or cifar10, got '{Data}'");
        if (Samples < 2)
            throw new ConfigException("two_phase_paper.samples", $"expected at least 2 images, got {Samples}");
        if (Width < 1)
            throw new ConfigException("two_phase_paper.width", $"expected a positive width, got {Width}");
        if (!(Lr > 0) || !double.IsFinite(Lr))
            throw new ConfigException("two_phase_paper.lr", $"expected a finite value > 0, got {F(Lr)}");
        if (Steps < 1)
            throw new ConfigException("two_phase_paper.steps", $"expected a positive number of steps, got {Steps}");
        if (EvalEvery < 1)
            throw new ConfigException("two_phase_paper.eval_every", $"expected a positive number of steps, got {EvalEvery}");
        if (!(P is >= 0 and <= 1))
            throw new ConfigException("two_phase_paper.p", $"expected a probability in [0, 1], got {F(P)}");
        if (!(Rho > 0) || !double.IsFinite(Rho))
            throw new ConfigException("two_phase_paper.rho", $"expected a finite value > 0, got {F(Rho)}");
    }

    /// <summary>The settings as YAML (<c>config.yaml</c>), one <c>two_phase_paper.*</c> key per line.</summary>
    public string ToYaml() => PresetSettings.ToYaml(this, "two-phase-paper preset (the label-noise SGD paper's real-data notebook)", Table);

}

/// <summary>
/// <c>lnlab run two-phase-paper</c>: the label-noise SGD paper's real-data experiment as its
/// published notebook runs it — three methods from one initialisation, each beside its
/// linearised twin f_lin(x) = f₀(x) + J₀(x)(θ − θ₀) trained by the same steps on the same targets:
/// <c>gd</c> (full-batch gradient descent), <c>label_noise</c> (every label redrawn with
/// probability p uniformly from all classes at every step) and <c>sam</c> (label noise off).
/// Writes <c>curves.csv</c> every <c>eval_every</c> steps and <c>summary.json</c> with each
/// method's final figures and the claims (what the paper says, what was measured, whether it held).
/// </summary>
public sealed class TwoPhasePaperPreset : IPreset
{
    /// <summary>The learning curves, one row per method and evaluation (columns <see cref="CurvesHeader"/>).</summary>
    public const string CurvesFile = "curves.csv";
    /// <summary>The header of <see cref="CurvesFile"/>: losses of the network and of its linearised twin, neuron norms, kernel distance and function gaps.</summary>
    public const string CurvesHeader = "method,step,train_loss_clean,test_loss,lin_train_loss_clean,lin_test_loss,neuron_norm_mean,neuron_norm_std,kernel_distance,function_gap_train,function_gap_test";
    private static readonly string[] Methods = ["gd", "label_noise", "sam"];

    /// <inheritdoc/>
    public string Name => "two-phase-paper";

    /// <inheritdoc/>
    public string Description => "label-noise SGD paper's real-data notebook: 64 images, erf network, full-batch GD vs label noise vs SAM, each with its linearised twin";

    /// <summary><c>--set two_phase_paper.&lt;key&gt;=value</c> over the defaults (or <see cref="TwoPhasePaperOptions.Quick"/>), checked.</summary>
    public PresetPlan Prepare(PresetRequest request)
    {
        ArgumentNullException.ThrowIfNull(request);
        var o = request.Quick ? TwoPhasePaperOptions.Quick : new TwoPhasePaperOptions();
        foreach (var set in request.Sets)
            o = o.With(set);
        o.Validate();
        return new PresetPlan(request.Quick ? "two-phase-paper-quick" : "two-phase-paper", (dir, context) => Run(o, dir, context, request.Quick));
    }

    private static RunResult Run(TwoPhasePaperOptions o, RunDirectory dir, PresetContext context, bool quick)
    {
        var clock = Stopwatch.StartNew();
        dir.WriteText(RunDirectory.ConfigFile, o.ToYaml());
        var splits = DataSources.Load(new DataOptions { Name = o.Data, DataDir = context.DataDir, Seed = o.Seed });
        var (x, y, classes) = FirstImages(splits.Train, o.Samples);
        var (xTest, yTest, _) = FirstImages(splits.Test, o.Samples);
        context.Log($"two-phase-paper: {o.Data}, {o.Samples} train and {o.Samples} test images, width {o.Width}, {o.Steps} full-batch steps at lr {o.Lr}");
        var initial = ErfNet.Initialise(x.Length / o.Samples, o.Width, classes, Rng.ForPurpose(o.Seed, "two-phase-paper-init"));
        var runs = RunMethods(o, initial, x, y, xTest, yTest, classes, concurrent: Environment.ProcessorCount >= 2, context.Cancellation);
        if (runs is null)
            return new RunResult(RunStatus.Interrupted, "interrupted before every method finished");
        var curves = new StringBuilder(CurvesHeader).Append('\n');
        var perMethod = new Dictionary<string, object?>();
        var finals = new Dictionary<string, MethodResult>();
        var metrics = dir.OpenMetrics(["method_id"]);
        for (int mi = 0; mi < Methods.Length; mi++)
        {
            var (method, result) = (Methods[mi], runs[mi].Result);
            curves.Append(runs[mi].Curves);
            foreach (var row in runs[mi].Rows)
                metrics.Append(row);
            finals[method] = result;
            perMethod[method] = result.ToDictionary();
            context.Log(string.Create(CultureInfo.InvariantCulture,
                $"{method}: test loss {result.TestLoss:G5} (linearised {result.LinTestLoss:G5}), neuron-norm mean min/start {result.MinNormRatio:G8}, kernel distance {result.KernelDistance:G4} ({result.Seconds:F1} s)"));
        }
        dir.WriteText(CurvesFile, curves.ToString());
        var claims = PaperClaims(finals, quick);
        dir.WriteSummary(new Dictionary<string, object?>
        {
            ["preset"] = "two-phase-paper",
            ["quick"] = quick,
            ["data"] = o.Data,
            ["samples"] = o.Samples,
            ["width"] = o.Width,
            ["steps"] = o.Steps,
            ["lr"] = o.Lr,
            ["p"] = o.P,
            ["rho"] = o.Rho,
            ["methods"] = perMethod,
            ["claims"] = claims,
            ["paper_figure"] = new Dictionary<string, object?>
            {
                ["test_loss_label_noise"] = 0.105,
                ["test_loss_gd"] = 0.111,
                ["test_loss_linearised"] = 0.111,
                ["note"] = "read off the notebook's figure (approximate), 10,000 steps on Fashion-MNIST",
            },
            ["seconds_total"] = clock.Elapsed.TotalSeconds,
            ["provenance"] = Provenance.Describe(),
        });
        return RunResult.Complete;
    }

    /// <summary>The claims of the paper this run checks: what was measured and whether it held (a quick run only checks that it runs).</summary>
    private static List<Dictionary<string, object?>> PaperClaims(Dictionary<string, MethodResult> r, bool quick)
    {
        var (gd, noise) = (r["gd"], r["label_noise"]);
        return
        [
            Claims.Claim("label_noise_test_loss_below_gd", "label noise ends with a lower test loss than plain gradient descent",
                noise.TestLoss, $"< {gd.TestLoss:G6} (gd)", noise.TestLoss < gd.TestLoss, quick),
            Claims.Claim("label_noise_norms_dip", "under label noise the first layer's mean neuron norm dips below its start",
                noise.MinNormRatio, "< 1 (min/start)", noise.MinNormRatio < 1, quick),
            Claims.Claim("linearised_close_to_gd", "the linearised twin's test loss stays within 5% of plain gradient descent's",
                gd.LinTestLoss / gd.TestLoss, "within [0.95, 1.05] (twin/gd)", Math.Abs(gd.LinTestLoss / gd.TestLoss - 1) <= 0.05, quick),
            Claims.Claim("gd_stays_lazier", "plain gradient descent's kernel distance stays below label noise's",
                gd.KernelDistance, $"< {noise.KernelDistance:G6} (label_noise)", gd.KernelDistance < noise.KernelDistance, quick),
        ];
    }

    /// <summary>The first <paramref name="n"/> samples, flattened and standardised by their own global mean and standard deviation, with one-hot targets.</summary>
    private static (float[] X, int[] Y, int Classes) FirstImages(Dataset data, int n)
    {
        if (data.Count < n)
            throw new ConfigException("two_phase_paper.samples", $"{n} is more than the {data.Count} images of {data.Name}");
        int d = data.FeatureLength;
        var x = data.Features.AsSpan(0, n * d).ToArray();
        double mean = 0;
        foreach (float v in x)
            mean += v;
        mean /= x.Length;
        double var = 0;
        foreach (float v in x)
            var += (v - mean) * (v - mean);
        double std = Math.Sqrt(var / x.Length);
        for (int i = 0; i < x.Length; i++)
            x[i] = (float)((x[i] - mean) / std);
        return (x, data.Labels.AsSpan(0, n).ToArray(), data.NumClasses);
    }

    internal sealed record MethodResult(double TrainLossClean, double TestLoss, double LinTrainLossClean, double LinTestLoss,
        double NormMeanStart, double NormMeanFinal, double NormMeanMin, double KernelDistance, double GapTrain, double GapTest, double Seconds)
    {
        public double MinNormRatio => NormMeanMin / NormMeanStart;

        public Dictionary<string, object?> ToDictionary() => new()
        {
            ["final_train_loss_clean"] = TrainLossClean,
            ["final_test_loss"] = TestLoss,
            ["final_lin_train_loss_clean"] = LinTrainLossClean,
            ["final_lin_test_loss"] = LinTestLoss,
            ["neuron_norm_mean_start"] = NormMeanStart,
            ["neuron_norm_mean_final"] = NormMeanFinal,
            ["neuron_norm_mean_min"] = NormMeanMin,
            ["neuron_norm_min_ratio"] = MinNormRatio,
            ["final_kernel_distance"] = KernelDistance,
            ["final_function_gap_train"] = GapTrain,
            ["final_function_gap_test"] = GapTest,
            ["seconds"] = Seconds,
        };
    }

    /// <summary>One method's run: its final figures, its curves.csv rows and its metrics rows.</summary>
    internal sealed record MethodRun(MethodResult Result, string Curves, List<MetricsRow> Rows);

    /// <summary>
    /// Every method from the same initialisation, in <see cref="Methods"/> order; null when cancelled.
    /// Matrix products run single-threaded throughout; <paramref name="concurrent"/> runs the methods
    /// on one worker thread per core, longest first (each method does the same arithmetic as alone, so the same digits).
    /// </summary>
    internal static MethodRun[]? RunMethods(TwoPhasePaperOptions o, ErfNet initial, float[] x, int[] y, float[] xTest, int[] yTest, int classes,
        bool concurrent, CancellationToken cancellation)
    {
        var runs = new MethodRun?[Methods.Length];
        int threads = Blas.Threads;
        Blas.Threads = 1;
        try
        {
            if (concurrent)
            {
                // One worker per core (at most one per method), each taking the next method of the
                // longest-first order: on 2 cores SAM (two gradients a step) runs on one and gd then
                // label_noise on the other, instead of three threads sharing two cores.
                int[] order = [.. Enumerable.Range(0, Methods.Length).OrderByDescending(mi => Methods[mi] == "sam" ? 2 : 1)];
                int next = -1;
                int workers = Math.Min(Environment.ProcessorCount, Methods.Length);
                var tasks = Enumerable.Range(0, workers).Select(_ => Task.Factory.StartNew(() =>
                    {
                        for (int k; (k = Interlocked.Increment(ref next)) < order.Length && !cancellation.IsCancellationRequested;)
                            runs[order[k]] = RunMethod(Methods[order[k]], order[k], o, initial, x, y, xTest, yTest, classes, cancellation);
                    },
                    CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default)).ToArray();
                try
                {
                    Task.WaitAll(tasks);
                }
                catch (AggregateException e)
                {
                    System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(e.InnerExceptions[0]).Throw();
                }
            }
            else
            {
                for (int mi = 0; mi < Methods.Length && !cancellation.IsCancellationRequested; mi++)
                    runs[mi] = RunMethod(Methods[mi], mi, o, initial, x, y, xTest, yTest, classes, cancellation);
            }
        }
        finally
        {
            Blas.Threads = threads;
        }
        return runs.Any(r => r is null) ? null : [.. runs.Select(r => r!)];
    }

    private static MethodRun? RunMethod(string method, int methodId, TwoPhasePaperOptions o, ErfNet initial, float[] x, int[] y, float[] xTest, int[] yTest,
        int classes, CancellationToken cancellation)
    {
        var curves = new StringBuilder();
        var rows = new List<MetricsRow>();
        var clock = Stopwatch.StartNew();
        int n = y.Length;
        var net = initial.Clone().On(x);
        var twin = new FunctionSpaceTwin(initial, x, xTest);
        var noise = Rng.ForPurpose(o.Seed, "two-phase-paper-label-noise");
        var targets = OneHot(y, classes);
        var stepTargets = (float[])targets.Clone();
        var kernel0 = initial.Kernel(x);
        double normStart = initial.NeuronNorms().Mean, normMin = normStart;
        MethodResult? last = null;
        for (long step = 0; step <= o.Steps; step++)
        {
            if (step % o.EvalEvery == 0 || step == o.Steps)
            {
                if (cancellation.IsCancellationRequested)
                    return null;
                var f = net.Forward(x);
                var ft = net.Forward(xTest);
                var fl = twin.Forward(train: true);
                var flt = twin.Forward(train: false);
                var (mean, std) = net.NeuronNorms();
                normMin = Math.Min(normMin, mean);
                double kd = KernelDistance(kernel0, net.Kernel(x));
                last = new MethodResult(Mse(f, targets), Mse(ft, OneHot(yTest, classes)), Mse(fl, targets), Mse(flt, OneHot(yTest, classes)),
                    normStart, mean, normMin, kd, Rms(f, fl), Rms(ft, flt), clock.Elapsed.TotalSeconds);
                rows.Add(new MetricsRow
                {
                    Step = step, Lr = o.Lr, TrainLoss = last.TrainLossClean, TrainAcc = Accuracy(f, y, classes),
                    TestLoss = last.TestLoss, TestAcc = Accuracy(ft, yTest, classes), Seconds = clock.Elapsed.TotalSeconds,
                    Extra = new Dictionary<string, double> { ["method_id"] = methodId },
                });
                curves.Append(string.Create(CultureInfo.InvariantCulture,
                    $"{method},{step},{last.TrainLossClean:R},{last.TestLoss:R},{last.LinTrainLossClean:R},{last.LinTestLoss:R},{mean:R},{std:R},{kd:R},{last.GapTrain:R},{last.GapTest:R}\n"));
            }
            if (step == o.Steps)
                break;
            // This step's targets: label noise redraws each label with probability p (uniform over all classes).
            if (method == "label_noise")
            {
                Array.Clear(stepTargets);
                for (int i = 0; i < n; i++)
                {
                    int label = noise.NextDouble() < o.P ? noise.NextInt(classes) : y[i];
                    stepTargets[i * classes + label] = 1f;
                }
            }
            var t = method == "label_noise" ? stepTargets : targets;
            if (method == "sam")
            {
                net.SamStep(t, (float)o.Lr, (float)o.Rho);
                twin.SamStep(t, (float)o.Lr, (float)o.Rho);
            }
            else
            {
                net.Step(t, (float)o.Lr);
                twin.Step(t, (float)o.Lr);
            }
        }
        return new MethodRun(last! with { Seconds = clock.Elapsed.TotalSeconds }, curves.ToString(), rows);
    }

    internal static float[] OneHot(int[] labels, int classes)
    {
        var t = new float[labels.Length * classes];
        for (int i = 0; i < labels.Length; i++)
            t[i * classes + labels[i]] = 1f;
        return t;
    }

    /// <summary>The fraction of rows whose largest output is the label.</summary>
    internal static double Accuracy(float[] f, int[] labels, int classes)
    {
        int correct = 0;
        for (int i = 0; i < labels.Length; i++)
        {
            var row = f.AsSpan(i * classes, classes);
            correct += System.Numerics.Tensors.TensorPrimitives.IndexOfMax(row) == labels[i] ? 1 : 0;
        }
        return (double)correct / labels.Length;
    }

    /// <summary>0.5·mean((f − y)²) over every entry.</summary>
    internal static double Mse(float[] f, float[] y)
    {
        double s = 0;
        for (int i = 0; i < f.Length; i++)
            s += (double)(f[i] - y[i]) * (f[i] - y[i]);
        return 0.5 * s / f.Length;
    }

    /// <summary>Root mean square of f − g over every entry.</summary>
    internal static double Rms(float[] f, float[] g)
    {
        double s = 0;
        for (int i = 0; i < f.Length; i++)
            s += (double)(f[i] - g[i]) * (f[i] - g[i]);
        return Math.Sqrt(s / f.Length);
    }

    /// <summary>1 − ⟨K₀, K⟩/(‖K₀‖‖K‖).</summary>
    internal static double KernelDistance(double[] k0, double[] k)
    {
        double dot = 0, a = 0, b = 0;
        for (int i = 0; i < k0.Length; i++)
        {
            dot += k0[i] * k[i];
            a += k0[i] * k0[i];
            b += k[i] * k[i];
        }
        return 1 - dot / Math.Sqrt(a * b);
    }
}
