using System.Diagnostics;
using System.Globalization;
using System.Text;
using LabelNoiseLab.Data;
using LabelNoiseLab.Losses;
using LabelNoiseLab.Nn;
using LabelNoiseLab.Noise;
using LabelNoiseLab.Optim;
using LabelNoiseLab.Probes;
using LabelNoiseLab.Tensors;
using LabelNoiseLab.RunFiles;
using LabelNoiseLab.Training;
using LabelNoiseLab.Experiments;
using static LabelNoiseLab.Experiments.PresetValues;

namespace LabelNoiseLab.Studies;

/// <summary>
/// Settings of the <c>two-phase</c> preset (label-noise SGD paper). Keys as written in
/// <c>config.yaml</c> and accepted by <c>--set</c>: <c>two_phase.&lt;name&gt;</c>.
/// </summary>
public sealed record TwoPhaseOptions
{
    /// <summary><c>two_phase.samples</c>: training samples n of the synthetic regression set. Default 200.</summary>
    public int Samples { get; init; } = 200;
    /// <summary><c>two_phase.test_samples</c>: test samples drawn from the same teacher. Default 1000.</summary>
    public int TestSamples { get; init; } = 1000;
    /// <summary><c>two_phase.dim</c>: input dimension d (x ~ N(0, I_d)). Default 20.</summary>
    public int Dim { get; init; } = 20;
    /// <summary><c>two_phase.width</c>: hidden width m of f(x) = aᵀWx (d×m at most 50,000,000). Default 1000.</summary>
    public int Width { get; init; } = 1000;
    /// <summary>θ* has ones on its first <c>Sparsity</c> coordinates, zeros elsewhere.</summary>
    public int Sparsity { get; init; } = 3;
    /// <summary><c>two_phase.lr</c>: SGD step size η (batch 1). Default 1e-3.</summary>
    public double Lr { get; init; } = 1e-3;
    /// <summary><c>two_phase.sigma</c>: label-noise level σ (ε = ±σ on the target at each step). Default 4.</summary>
    public double Sigma { get; init; } = 4;
    /// <summary>label_noise_periodic: noise on for Period steps, off for Period steps.</summary>
    public long Period { get; init; } = 5000;
    /// <summary><c>two_phase.rho</c>: SAM perturbation radius ρ (method <c>sam</c>). Default 0.05.</summary>
    public double Rho { get; init; } = 0.05;
    /// <summary>oscillation: a(t) = a₀ + OscAmplitude·sin(2πt/OscPeriod) on every second-layer weight.</summary>
    public double OscAmplitude { get; init; } = 0.05;
    /// <summary><c>two_phase.osc_period</c>: period in steps of the oscillation methods' sine. Default 200.</summary>
    public long OscPeriod { get; init; } = 200;
    /// <summary>Phase-I end: Kneedle on the log neuron-norm curve smoothed over this many evaluations (odd).</summary>
    public int KneeSmooth { get; init; } = 5;
    /// <summary><c>two_phase.steps</c>: SGD steps per method. Default 1,000,000.</summary>
    public long Steps { get; init; } = 1_000_000;
    /// <summary><c>two_phase.eval_every</c>: steps between evaluations (rows of metrics.csv and dynamics.csv). Default 5000.</summary>
    public long EvalEvery { get; init; } = 5000;
    /// <summary>Hessian columns every this many evaluations (and at the last one); 0 = never.</summary>
    public int HessianEvery { get; init; } = 20;
    /// <summary><c>two_phase.hessian_iterations</c>: power iterations for the top Hessian eigenvalue. Default 30.</summary>
    public int HessianIterations { get; init; } = 30;
    /// <summary><c>two_phase.hutchinson_samples</c>: probe vectors of the Hutchinson estimate of the Hessian trace. Default 10.</summary>
    public int HutchinsonSamples { get; init; } = 10;
    /// <summary><c>two_phase.seed</c>: seed of the data, initialisation, sample order and noise generators. Default 0.</summary>
    public int Seed { get; init; }

    /// <summary>The CI version: same model and data, far fewer steps (under a minute).</summary>
    public static TwoPhaseOptions Quick { get; } = new() { Steps = 20_000, EvalEvery = 1000, HessianEvery = 10, Period = 2000, HessianIterations = 15, HutchinsonSamples = 4 };

    private static readonly (string Key, Func<TwoPhaseOptions, string> Get, Func<TwoPhaseOptions, string, TwoPhaseOptions> Set)[] Table =
    [
        ("two_phase.samples", o => F(o.Samples), (o, v) => o with { Samples = I(v) }),
        ("two_phase.test_samples", o => F(o.TestSamples), (o, v) => o with { TestSamples = I(v) }),
        ("two_phase.dim", o => F(o.Dim), (o, v) => o with { Dim = I(v) }),
        ("two_phase.width", o => F(o.Width), (o, v) => o with { Width = I(v) }),
        ("two_phase.sparsity", o => F(o.Sparsity), (o, v) => o with { Sparsity = I(v) }),
        ("two_phase.lr", o => F(o.Lr), (o, v) => o with { Lr = D(v) }),
        ("two_phase.sigma", o => F(o.Sigma), (o, v) => o with { Sigma = D(v) }),
        ("two_phase.period", o => F(o.Period), (o, v) => o with { Period = L(v) }),
        ("two_phase.rho", o => F(o.Rho), (o, v) => o with { Rho = D(v) }),
        ("two_phase.osc_amplitude", o => F(o.OscAmplitude), (o, v) => o with { OscAmplitude = D(v) }),
        ("two_phase.osc_period", o => F(o.OscPeriod), (o, v) => o with { OscPeriod = L(v) }),
        ("two_phase.knee_smooth", o => F(o.KneeSmooth), (o, v) => o with { KneeSmooth = I(v) }),
        ("two_phase.steps", o => F(o.Steps), (o, v) => o with { Steps = L(v) }),
        ("two_phase.eval_every", o => F(o.EvalEvery), (o, v) => o with { EvalEvery = L(v) }),
        ("two_phase.hessian_every", o => F(o.HessianEvery), (o, v) => o with { HessianEvery = I(v) }),
        ("two_phase.hessian_iterations", o => F(o.HessianIterations), (o, v) => o with { HessianIterations = I(v) }),
        ("two_phase.hutchinson_samples", o => F(o.HutchinsonSamples), (o, v) => o with { HutchinsonSamples = I(v) }),
        ("two_phase.seed", o => F(o.Seed), (o, v) => o with { Seed = I(v) }),
    ];

    /// <summary>Applies <c>key=value</c>; an unknown key or a value of the wrong type is a <see cref="ConfigException"/>.</summary>
    public TwoPhaseOptions With(string assignment) => PresetSettings.Apply(this, assignment, "two-phase", Table);

    /// <summary>Throws a <see cref="ConfigException"/> naming the first out-of-range key.</summary>
    public void Validate()
    {
        Positive("two_phase.samples", Samples);
        Positive("two_phase.test_samples", TestSamples);
        Positive("two_phase.dim", Dim);
        Positive("two_phase.width", Width);
        if (Sparsity < 1 || Sparsity > Dim)
            throw new ConfigException("two_phase.sparsity", $"expected 1..{Dim} nonzeros, got {Sparsity}");
        if (!(Lr > 0) || !double.IsFinite(Lr))
            throw new ConfigException("two_phase.lr", $"expected a finite value > 0, got {F(Lr)}");
        if (!(Sigma >= 0) || !double.IsFinite(Sigma))
            throw new ConfigException("two_phase.sigma", $"expected a finite value ≥ 0, got {F(Sigma)}");
        if (Period <= 0)
            throw new ConfigException("two_phase.period", $"expected a positive number of steps, got {F(Period)}");
        if (!(Rho > 0) || !double.IsFinite(Rho))
            throw new ConfigException("two_phase.rho", $"expected a finite value > 0, got {F(Rho)}");
        if (!(OscAmplitude >= 0) || !double.IsFinite(OscAmplitude))
            throw new ConfigException("two_phase.osc_amplitude", $"expected a finite value ≥ 0, got {F(OscAmplitude)}");
        if (OscPeriod <= 0)
            throw new ConfigException("two_phase.osc_period", $"expected a positive number of steps, got {F(OscPeriod)}");
        if (KneeSmooth < 1 || KneeSmooth % 2 == 0)
            throw new ConfigException("two_phase.knee_smooth", $"expected an odd number of evaluations ≥ 1, got {KneeSmooth}");
        Positive("two_phase.steps", Steps);
        Positive("two_phase.eval_every", EvalEvery);
        if (HessianEvery < 0)
            throw new ConfigException("two_phase.hessian_every", $"expected ≥ 0 (0 = never), got {HessianEvery}");
        Positive("two_phase.hessian_iterations", HessianIterations);
        Positive("two_phase.hutchinson_samples", HutchinsonSamples);
        if ((long)Dim * Width > 50_000_000)
            throw new ConfigException("two_phase.width", $"d×m = {(long)Dim * Width} is too large for this preset");
    }

    /// <summary>The settings as YAML (<c>config.yaml</c>), one <c>two_phase.*</c> key per line.</summary>
    public string ToYaml() => PresetSettings.ToYaml(this, "two-phase preset (label-noise SGD on a two-layer linear network)", Table);

    private static void Positive(string key, long value)
    {
        if (value < 1)
            throw new ConfigException(key, $"expected a positive integer, got {value}");
    }

}

/// <summary>What one method of the preset ended with (also written to <c>summary.json</c>).</summary>
public sealed record TwoPhaseMethodSummary(
    string Method, double InitialAlignment, double FinalAlignment, double MinNeuronNormRatio,
    long? Phase1EndStep, long MinNormStep, double FinalTestLoss, double FinalTrainLoss, double FinalThetaDist,
    double FinalWeightChange, double Seconds, long Steps, string? DivergedAt);

/// <summary>
/// The <c>two-phase</c> preset: label-noise SGD on f(x) = aᵀWx (arXiv 2603.10397). Synthetic
/// regression (x ~ N(0, I_d), y = θ*ᵀx, θ* = ones on the first k coordinates), NTK init
/// (W ~ N(0, 1/d), a ~ N(0, 1/m)) shared by all methods, online SGD (batch 1, the sample drawn
/// uniformly each step from the same sample-order generator for every method), loss
/// ½(f − y − ε)², η = lr. Methods: <c>sgd</c> (ε = 0), <c>label_noise_sgd</c> (ε = ±σ),
/// <c>label_noise_periodic</c> (±σ for Period steps, then Period steps without, ...), <c>sam</c>
/// (SAM, ρ, no label noise). Steps run in <see cref="OnlineTwoLayerLinear"/>'s fused kernel.
/// Writes <c>config.yaml</c>, <c>metrics.csv</c> (train/test loss per evaluation, with a
/// <c>method_id</c> column indexing <see cref="Methods"/>), <c>dynamics.csv</c> and
/// <c>summary.json</c>; the caller marks the run complete.
/// </summary>
public sealed class TwoPhasePreset : IPreset
{
    /// <summary>The methods run, in order; <c>metrics.csv</c>'s <c>method_id</c> indexes this list.</summary>
    public static IReadOnlyList<string> Methods { get; } = ["sgd", "label_noise_sgd", "label_noise_periodic", "sam", "oscillation", "oscillation_periodic"];

    /// <inheritdoc/>
    public string Name => "two-phase";

    /// <inheritdoc/>
    public string Description => "label-noise SGD, SAM and the two phases of a two-layer linear network";

    /// <summary><c>--set two_phase.&lt;key&gt;=value</c> over the defaults (or <see cref="TwoPhaseOptions.Quick"/>), checked.</summary>
    public PresetPlan Prepare(PresetRequest request)
    {
        ArgumentNullException.ThrowIfNull(request);
        var settings = request.Quick ? TwoPhaseOptions.Quick : new TwoPhaseOptions();
        foreach (var set in request.Sets)
            settings = settings.With(set);
        settings.Validate();
        return new PresetPlan(request.Quick ? "two-phase-quick" : "two-phase", (dir, context) => Run(settings, dir, context.Log, request.Quick, context.Cancellation));
    }

    /// <summary>Every method in turn; a signal (<paramref name="cancellation"/>) ends it interrupted at the next evaluation.</summary>
    public static RunResult Run(TwoPhaseOptions o, RunDirectory dir, Action<string>? log = null, bool quick = false, CancellationToken cancellation = default)
    {
        o.Validate();
        dir.WriteText(RunDirectory.ConfigFile, o.ToYaml());
        var thetaStar = new float[o.Dim];
        for (int j = 0; j < o.Sparsity; j++)
            thetaStar[j] = 1f;
        var train = Synthetic.LinearTeacher(thetaStar, o.Samples, 0, Rng.ForPurpose(o.Seed, "data"), "two-phase-train");
        var test = Synthetic.LinearTeacher(thetaStar, o.TestSamples, 0, Rng.ForPurpose(o.Seed, "test-data"), "two-phase-test");

        var model = new TwoLayerLinear(o.Dim, o.Width);
        Init.Apply(model, InitKind.Ntk, Rng.ForPurpose(o.Seed, "init"));
        float[] w0 = model.W.ToArray(), a0 = model.A.ToArray();

        var xTrain = new Tensor(train.Features, o.Samples, o.Dim);
        var yTrain = new Tensor(train.Targets!, o.Samples, 1);
        // Exact Hessian–vector products (forward-over-reverse) of ½·mean (f − y)², i.e. half the plain MSE's.
        var tangent = TangentNet.For(model);
        var (theta, grad, gy, gyd) = (new float[tangent.Dimension], new float[tangent.Dimension], new float[o.Samples], new float[o.Samples]);
        var hessian = new HessianProbe(model.Parameters(), tape => MseOp.Forward(tape, model.Forward(tape, xTrain), yTrain, 0.5f).Mean, (v, hv) =>
        {
            tangent.CopyParameters(theta);
            tangent.HessianVectorProduct(theta, v, train.Features, o.Samples, LossKind.Mse, [], train.Targets, grad, hv, gy, gyd);
            System.Numerics.Tensors.TensorPrimitives.Multiply(hv, 0.5f, hv);
        });

        var metrics = dir.OpenMetrics(["method_id"]);
        var csv = new StringBuilder(TwoLayerDynamics.Header).Append('\n');
        var kernel = new OnlineTwoLayerLinear(o.Dim, o.Width);
        var summaries = new List<TwoPhaseMethodSummary>();
        string? diverged = null;
        var clock = Stopwatch.StartNew();

        for (int mi = 0; mi < Methods.Count && diverged is null; mi++)
        {
            string method = Methods[mi];
            w0.CopyTo(model.W.Span);
            a0.CopyTo(model.A.Span);
            kernel.Load(model);
            var order = Rng.ForPurpose(o.Seed, "sample-order");
            var schedule = method == "label_noise_periodic" ? StepNoiseSchedule.Periodic(o.Period) : StepNoiseSchedule.Constant;
            double sigma = method is "label_noise_sgd" or "label_noise_periodic" ? o.Sigma : 0;
            var noise = new RegressionStepNoise(sigma, StepNoiseDistribution.PlusMinus, schedule, Rng.ForPurpose(o.Seed, "step-label-noise"));
            float lr = (float)o.Lr, rho = (float)o.Rho;
            bool sam = method == "sam";
            bool oscillation = method is "oscillation" or "oscillation_periodic";
            var aNow = new float[o.Width];
            double omega = 2 * Math.PI / o.OscPeriod;
            var rows = new List<DynamicsRow>();
            var methodClock = Stopwatch.StartNew();
            double trainSeconds = 0;
            int evaluation = 0;
            long step = 0;
            string? divergedAt = null;
            var targets = train.Targets!;
            var features = train.Features;
            int d = o.Dim;
            while (true)
            {
                if (step % o.EvalEvery == 0 || step == o.Steps)
                {
                    bool last = step == o.Steps;
                    kernel.Store(model);
                    var row = Evaluate(model, thetaStar, w0, train, test, method, step);
                    if (o.HessianEvery > 0 && (evaluation % o.HessianEvery == 0 || last))
                    {
                        var top = hessian.TopEigenvalue(Rng.ForPurpose(o.Seed, "hessian-power"), o.HessianIterations, 1e-3);
                        var trace = hessian.Trace(Rng.ForPurpose(o.Seed, "hessian-trace"), o.HutchinsonSamples);
                        row = row with { HessianTop = top.Value, HessianTrace = trace.Value };
                    }
                    rows.Add(row);
                    TwoLayerDynamics.AppendCsv(csv, row);
                    metrics.Append(new MetricsRow
                    {
                        Step = step, Lr = o.Lr, TrainLoss = row.TrainLoss, TestLoss = row.TestLoss,
                        Seconds = clock.Elapsed.TotalSeconds, Extra = new Dictionary<string, double> { ["method_id"] = mi },
                    });
                    evaluation++;
                    if (!double.IsFinite(row.TrainLoss))
                    {
                        divergedAt = $"{method} diverged at step {step}";
                        break;
                    }
                    if (last)
                        break;
                    if (cancellation.IsCancellationRequested)
                    {
                        dir.WriteText("dynamics.csv", csv.ToString());
                        return new RunResult(RunStatus.Interrupted, $"{method}: interrupted at step {step}");
                    }
                }
                // Train up to the next evaluation without leaving the fused kernel.
                long until = Math.Min(o.Steps, (step / o.EvalEvery + 1) * o.EvalEvery);
                long t0 = Stopwatch.GetTimestamp();
                for (; step < until; step++)
                {
                    int i = order.NextInt(o.Samples);
                    var x = features.AsSpan(i * d, d);
                    float target = targets[i] + noise.Next(step);
                    if (oscillation)
                    {
                        // a(t) = a₀ + A·sin(2πt/P); the periodic version only in the on-windows of two_phase.period.
                        bool on = method == "oscillation" || (step / o.Period) % 2 == 0;
                        float shift = on ? (float)(o.OscAmplitude * Math.Sin(omega * (step % o.OscPeriod))) : 0f;
                        for (int k = 0; k < aNow.Length; k++)
                            aNow[k] = a0[k] + shift;
                        kernel.FirstLayerStep(x, target, lr, aNow);
                    }
                    else if (sam)
                        kernel.SamStep(x, target, lr, rho);
                    else
                        kernel.SgdStep(x, target, lr);
                }
                trainSeconds += Stopwatch.GetElapsedTime(t0).TotalSeconds;
            }
            kernel.Store(model);
            var summary = Summarise(method, rows, methodClock.Elapsed.TotalSeconds, divergedAt, o.KneeSmooth);
            summaries.Add(summary);
            log?.Invoke(string.Create(CultureInfo.InvariantCulture,
                $"{method}: {rows[^1].Step} steps in {methodClock.Elapsed.TotalSeconds:F1} s ({(trainSeconds > 0 ? rows[^1].Step / trainSeconds : 0):F0} steps/s in training), alignment {summary.InitialAlignment:F3} -> {summary.FinalAlignment:F3}, min neuron norm ratio {summary.MinNeuronNormRatio:F3} at step {summary.MinNormStep}, phase I ends (knee) at {summary.Phase1EndStep?.ToString(CultureInfo.InvariantCulture) ?? "none"}, test loss {summary.FinalTestLoss:G4}"));
            diverged = divergedAt;
            dir.WriteText("dynamics.csv", csv.ToString());
        }

        dir.WriteSummary(BuildSummary(o, summaries, quick, clock.Elapsed.TotalSeconds));
        return diverged is null ? RunResult.Complete : new RunResult(RunStatus.Diverged, diverged);
    }

    private static DynamicsRow Evaluate(TwoLayerLinear model, float[] thetaStar, float[] w0, Dataset train, Dataset test, string method, long step)
    {
        var row = TwoLayerDynamics.Measure(model, thetaStar, w0, method, step);
        var theta = model.EffectivePredictor(); // f(x) = θᵀx exactly: the losses need no pass over W per sample
        return row with { TrainLoss = HalfSquaredLoss(theta, train), TestLoss = HalfSquaredLoss(theta, test) };
    }

    /// <summary>Mean of ½(θᵀx − y)² over a set (clean targets).</summary>
    public static double HalfSquaredLoss(float[] theta, Dataset set)
    {
        int d = theta.Length;
        double total = 0;
        for (int i = 0; i < set.Count; i++)
        {
            var x = set.Features.AsSpan(i * d, d);
            double f = 0;
            for (int j = 0; j < d; j++)
                f += (double)theta[j] * x[j];
            double r = f - set.Targets![i];
            total += 0.5 * r * r;
        }
        return total / set.Count;
    }

    private static TwoPhaseMethodSummary Summarise(string method, List<DynamicsRow> rows, double seconds, string? divergedAt, int kneeSmooth)
    {
        var first = rows[0];
        var last = rows[^1];
        var min = rows.MinBy(r => r.NeuronNormMean)!;
        double? knee = Kneedle.KneeOfLog([.. rows.Select(r => (double)r.Step)], [.. rows.Select(r => r.NeuronNormMean)], kneeSmooth);
        return new TwoPhaseMethodSummary(method, first.Alignment, last.Alignment, min.NeuronNormMean / first.NeuronNormMean,
            knee is { } k ? (long)k : null, min.Step, last.TestLoss, last.TrainLoss, last.ThetaDist, last.WeightChange, seconds, last.Step, divergedAt);
    }

    /// <summary>
    /// The paper's two-phase claims, judged on this run (a method that did not run is not judged):
    /// under label-noise SGD the norms fall and then the alignment with θ* rises to ≥ 0.8; plain
    /// SGD stays lazy (its alignment within 0.1 of its start).
    /// </summary>
    private static List<Dictionary<string, object?>> TwoPhaseClaims(List<TwoPhaseMethodSummary> summaries, bool quick)
    {
        var claims = new List<Dictionary<string, object?>>();
        if (summaries.FirstOrDefault(s => s.Method == "label_noise_sgd") is { } noise)
            claims.Add(Claims.Claim("label_noise_aligns", "under label-noise SGD the neuron norms fall, then the alignment with the ground truth reaches 0.8",
                noise.FinalAlignment, "≥ 0.8, with min_neuron_norm_ratio < 1", noise.FinalAlignment >= 0.8 && noise.MinNeuronNormRatio < 1, quick));
        if (summaries.FirstOrDefault(s => s.Method == "sgd") is { } sgd)
            claims.Add(Claims.Claim("sgd_stays_lazy", "plain SGD stays in the lazy regime: its alignment stays near its start",
                sgd.FinalAlignment - sgd.InitialAlignment, "|final − initial| ≤ 0.1", Math.Abs(sgd.FinalAlignment - sgd.InitialAlignment) <= 0.1, quick));
        return claims;
    }

    private static Dictionary<string, object?> BuildSummary(TwoPhaseOptions o, List<TwoPhaseMethodSummary> summaries, bool quick, double seconds)
    {
        var methods = new Dictionary<string, object?>();
        foreach (var s in summaries)
        {
            methods[s.Method] = new Dictionary<string, object?>
            {
                ["initial_alignment"] = s.InitialAlignment,
                ["final_alignment"] = s.FinalAlignment,
                ["min_neuron_norm_ratio"] = s.MinNeuronNormRatio,
                ["phase1_end_step"] = s.Phase1EndStep,
                ["min_norm_step"] = s.MinNormStep,
                ["final_test_loss"] = s.FinalTestLoss,
                ["final_train_loss"] = s.FinalTrainLoss,
                ["final_theta_dist"] = s.FinalThetaDist,
                ["final_weight_change"] = s.FinalWeightChange,
                ["steps"] = s.Steps,
                ["seconds"] = s.Seconds,
                ["diverged"] = s.DivergedAt,
            };
        }
        return new Dictionary<string, object?>
        {
            ["preset"] = "two-phase",
            ["quick"] = quick,
            ["method_ids"] = Methods.ToList(),
            ["steps"] = o.Steps,
            ["seconds"] = seconds,
            ["methods"] = methods,
            ["claims"] = TwoPhaseClaims(summaries, quick),
            ["notes"] = "phase1_end_step = the knee (Kneedle) of log neuron_norm_mean smoothed over two_phase.knee_smooth evaluations, null when the curve does not fall; "
                + "min_norm_step = step where neuron_norm_mean is smallest; min_neuron_norm_ratio = that minimum over the initial value. "
                + "oscillation(_periodic): plain SGD on W while a(t) = a0 + osc_amplitude·sin(2πt/osc_period) is prescribed (our form; the paper does not publish its own), the periodic version only in the on-windows of two_phase.period. "
                + "Losses are ½(f − y)² on clean targets. Hessian columns: power iteration / Hutchinson on exact (forward-over-reverse) Hessian-vector products of the full training batch.",
        };
    }
}
