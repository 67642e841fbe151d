using LabelNoiseLab.Autograd;
using LabelNoiseLab.Losses;
using LabelNoiseLab.Nn;
using LabelNoiseLab.Noise;
using LabelNoiseLab.Optim;
using LabelNoiseLab.Tensors;

namespace LabelNoiseLab.Tests;

/// <summary>Per-step label noise (draws and schedules), the SAM wrapper, and the fused batch-1 kernel.</summary>
public class LabelNoiseSamTests
{
    [Fact]
    public void LabelNoise_plus_minus_draws_are_exactly_sigma_with_equal_frequency()
    {
        var noise = new RegressionStepNoise(4, StepNoiseDistribution.PlusMinus, StepNoiseSchedule.Constant, Rng.ForPurpose(1, "step-label-noise"));
        const int n = 100_000;
        int plus = 0;
        for (int t = 0; t < n; t++)
        {
            float e = noise.Next(t);
            Assert.True(e is 4f or -4f, $"draw {e}");
            plus += e > 0 ? 1 : 0;
        }
        // Binomial(n, ½): standard deviation √n/2 ≈ 158; allow 4 of them.
        Assert.InRange(plus, n / 2 - 4 * 158, n / 2 + 4 * 158);
    }

    [Fact]
    public void LabelNoise_gaussian_has_variance_sigma_squared_and_apply_adds_to_targets()
    {
        var noise = new RegressionStepNoise(2, StepNoiseDistribution.Gaussian, StepNoiseSchedule.Constant, new Rng(3));
        var targets = new float[50_000];
        for (int i = 0; i < targets.Length; i++)
            targets[i] = i % 7;
        var noisy = new float[targets.Length];
        noise.Apply(targets, noisy, 0);
        double mean = 0, m2 = 0;
        for (int i = 0; i < targets.Length; i++)
        {
            double e = noisy[i] - targets[i];
            mean += e;
            m2 += e * e;
        }
        mean /= targets.Length;
        double variance = m2 / targets.Length - mean * mean;
        // Standard errors: mean σ/√n ≈ 0.009; variance σ²√(2/n) ≈ 0.025.
        Assert.InRange(mean, -0.036, 0.036);
        Assert.InRange(variance, 4 - 0.1, 4 + 0.1);
    }

    [Fact]
    public void Classification_noise_redraws_with_probability_p_over_all_classes()
    {
        const int n = 50_000, k = 10;
        const double p = 0.5;
        var noise = new ClassificationStepNoise(p, k, StepNoiseSchedule.Constant, new Rng(5));
        var labels = new int[n];
        for (int i = 0; i < n; i++)
            labels[i] = i % k;
        var noisy = new int[n];
        long before = GC.GetAllocatedBytesForCurrentThread();
        int redrawn = noise.Apply(labels, noisy, 0);
        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
        int changed = 0;
        for (int i = 0; i < n; i++)
        {
            Assert.InRange(noisy[i], 0, k - 1);
            changed += noisy[i] != labels[i] ? 1 : 0;
        }
        double sd = Math.Sqrt(n * p * (1 - p));
        Assert.InRange(redrawn, n * p - 4 * sd, n * p + 4 * sd);
        // A redraw may land on the true class: P(changed) = p(k−1)/k.
        double q = p * (k - 1) / k, sdq = Math.Sqrt(n * q * (1 - q));
        Assert.InRange(changed, n * q - 4 * sdq, n * q + 4 * sdq);
        Assert.True(changed < redrawn);
    }

    [Fact]
    public void Schedules_switch_on_and_off_at_the_right_steps()
    {
        var periodic = StepNoiseSchedule.Periodic(3);
        Assert.Equal([true, true, true, false, false, false, true, true, true, false],
            Enumerable.Range(0, 10).Select(t => periodic.IsOn(t)));
        var until = StepNoiseSchedule.Until(4);
        Assert.Equal([true, true, true, true, false, false], Enumerable.Range(0, 6).Select(t => until.IsOn(t)));
        Assert.True(StepNoiseSchedule.Constant.IsOn(1_000_000));

        var noise = new RegressionStepNoise(1, StepNoiseDistribution.PlusMinus, periodic, new Rng(1));
        for (int t = 0; t < 30; t++)
            Assert.Equal(periodic.IsOn(t), noise.Next(t) != 0);
        var labels = new[] { 1, 2, 3, 4 };
        var output = new int[4];
        var cls = new ClassificationStepNoise(1, 5, until, new Rng(2));
        Assert.Equal(0, cls.Apply(labels, output, 4));
        Assert.Equal(labels, output);
        Assert.Equal(4, cls.Apply(labels, output, 3));
    }

    [Fact]
    public void Bad_noise_values_name_their_parameter()
    {
        // The noise and optimizer layers name their own parameters; the config validates the keys
        // (label_noise.*, sam.*) before these are built.
        Assert.Equal("sigma", Assert.Throws<ArgumentOutOfRangeException>(() => new RegressionStepNoise(-1, StepNoiseDistribution.PlusMinus, StepNoiseSchedule.Constant, new Rng(1))).ParamName);
        Assert.Equal("p", Assert.Throws<ArgumentOutOfRangeException>(() => new ClassificationStepNoise(1.5, 3, StepNoiseSchedule.Constant, new Rng(1))).ParamName);
        Assert.Equal("p", Assert.Throws<ArgumentOutOfRangeException>(() => new ClassificationStepNoise(-0.1, 3, StepNoiseSchedule.Constant, new Rng(1))).ParamName);
        Assert.Equal("period", Assert.Throws<ArgumentOutOfRangeException>(() => StepNoiseSchedule.Periodic(0)).ParamName);
        Assert.Equal("offAfter", Assert.Throws<ArgumentOutOfRangeException>(() => StepNoiseSchedule.Until(-1)).ParamName);
        var p = new Tensor(2) { RequiresGrad = true };
        Assert.Equal("rho", Assert.Throws<ArgumentOutOfRangeException>(() => new Sam(new Sgd([p], 0.1f), 0f)).ParamName);
        Assert.Equal("adaptiveEta", Assert.Throws<ArgumentOutOfRangeException>(() => new Sam(new Sgd([p], 0.1f), 0.1f, true, -1f)).ParamName);
    }

    /// <summary>
    /// L(w) = ½ Σ cᵢwᵢ² has g = c⊙w. SAM: ε̂ = ρg/‖g‖, gradient at w + ε̂ is c⊙(w + ε̂), and
    /// SGD moves w by −η·c⊙(w + ε̂). ASAM: ε̂ = ρ T²g/‖Tg‖ with T = |w|.
    /// </summary>
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Sam_step_matches_a_hand_computation_on_a_quadratic(bool adaptive)
    {
        double[] c = [1, 3, 0.5, 2], w0 = [0.4, -1.2, 2.0, 0.7];
        const double rho = 0.1, lr = 0.05;
        var w = new Tensor([.. w0.Select(v => (float)v)], 2, 2) { RequiresGrad = true };
        var coef = new Tensor([.. c.Select(v => (float)v)], 2, 2);
        var tape = new Tape();
        var sam = new Sam(new Sgd([w], (float)lr), (float)rho, adaptive);
        float Closure()
        {
            tape.Reset();
            var loss = ScaleOp.Forward(tape, SumOp.Forward(tape, MulOp.Forward(tape, MulOp.Forward(tape, w, w), coef)), 0.5f);
            tape.Backward(loss);
            return loss.Span[0];
        }
        float first = sam.Step(Closure);

        double[] g = [.. c.Select((ci, i) => ci * w0[i])];
        double[] t = adaptive ? [.. w0.Select(Math.Abs)] : [1, 1, 1, 1];
        double norm = Math.Sqrt(g.Select((gi, i) => t[i] * gi * t[i] * gi).Sum());
        double expectedLoss = 0.5 * c.Select((ci, i) => ci * w0[i] * w0[i]).Sum();
        Assert.Equal(expectedLoss, first, 5);
        for (int i = 0; i < 4; i++)
        {
            double eps = rho * t[i] * t[i] * g[i] / norm;
            double expected = w0[i] - lr * c[i] * (w0[i] + eps);
            Assert.Equal(expected, w[i], 6);
        }
    }

    [Fact]
    public void Sam_step_allocates_nothing_once_warm()
    {
        var rng = new Rng(9);
        var model = new TwoLayerLinear(5, 16);
        Init.Apply(model, InitKind.Ntk, rng);
        var x = GradCheck.Random(rng, [4, 5]);
        var y = GradCheck.Random(rng, [4, 1]);
        var tape = new Tape();
        var sam = new Sam(new Sgd(model.Parameters(), 0.01f), 0.05f);
        Func<float> closure = () =>
        {
            tape.Reset();
            var loss = MseOp.Forward(tape, model.Forward(tape, x), y, 0.5f).Mean;
            tape.Backward(loss);
            return loss.Span[0];
        };
        for (int i = 0; i < 5; i++)
            sam.Step(closure);
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 50; i++)
            sam.Step(closure);
        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
    }

    private static (TwoLayerLinear Model, float[] X, float[] Y) Problem(int d, int m, int n, ulong seed)
    {
        var rng = new Rng(seed);
        var model = new TwoLayerLinear(d, m);
        Init.Apply(model, InitKind.Ntk, rng);
        var x = new float[n * d];
        var y = new float[n];
        for (int i = 0; i < n; i++)
        {
            for (int j = 0; j < d; j++)
                x[i * d + j] = (float)rng.NextNormal();
            y[i] = x[i * d] - 0.5f * x[i * d + 1];
        }
        return (model, x, y);
    }

    private static void AssertClose(ReadOnlySpan<float> expected, ReadOnlySpan<float> actual, double relative, string what)
    {
        double diff2 = 0, ref2 = 0;
        for (int i = 0; i < expected.Length; i++)
        {
            diff2 += (expected[i] - (double)actual[i]) * (expected[i] - (double)actual[i]);
            ref2 += expected[i] * (double)expected[i];
        }
        double rel = Math.Sqrt(diff2 / Math.Max(ref2, 1e-30));
        Assert.True(rel <= relative, $"{what}: relative difference {rel:E2} > {relative:E1}");
    }

    /// <summary>
    /// The fused kernel against the generic path (autograd tape, MseOp ½(f − t)², Sgd or the Sam
    /// wrapper) from the same weights, with label noise: one step agrees to float32 rounding,
    /// 300 steps to accumulated rounding. d = 13, m = 37 exercise the vector tails.
    /// </summary>
    [Theory]
    [InlineData(false, 20, 1000)]
    [InlineData(false, 13, 37)]
    [InlineData(true, 20, 1000)]
    [InlineData(true, 13, 37)]
    public void Fused_online_step_matches_the_autograd_path(bool sam, int d, int m)
    {
        var (generic, x, y) = Problem(d, m, 50, 11);
        var (fusedModel, _, _) = Problem(d, m, 50, 11);
        var kernel = new OnlineTwoLayerLinear(d, m);
        kernel.Load(fusedModel);
        const float lr = 1e-3f, rho = 0.05f;
        var opt = new Sgd(generic.Parameters(), lr);
        var samOpt = new Sam(opt, rho);
        var tape = new Tape();
        var xb = new Tensor(d);
        var xv = xb.View(1, d);
        var tb = new Tensor(1, 1);
        Func<float> closure = () =>
        {
            tape.Reset();
            var loss = MseOp.Forward(tape, generic.Forward(tape, xv), tb, 0.5f).Mean;
            tape.Backward(loss);
            return loss.Span[0];
        };
        var noise1 = new RegressionStepNoise(4, StepNoiseDistribution.PlusMinus, StepNoiseSchedule.Constant, new Rng(4));
        var noise2 = new RegressionStepNoise(4, StepNoiseDistribution.PlusMinus, StepNoiseSchedule.Constant, new Rng(4));
        for (int step = 0; step < 300; step++)
        {
            int i = step % 50;
            var xi = x.AsSpan(i * d, d);
            xi.CopyTo(xb.Span);
            tb[0] = y[i] + noise1.Next(step);
            float genericLoss;
            if (sam)
                genericLoss = samOpt.Step(closure);
            else
            {
                opt.ZeroGrad();
                genericLoss = closure();
                opt.Step();
            }
            float target = y[i] + noise2.Next(step);
            float fusedLoss = sam ? kernel.SamStep(xi, target, lr, rho) : kernel.SgdStep(xi, target, lr);
            if (step == 0)
            {
                Assert.Equal(genericLoss, fusedLoss, genericLoss * 1e-5f);
                kernel.Store(fusedModel);
                AssertClose(generic.W.Span, fusedModel.W.Span, 1e-6, "W after one step");
                AssertClose(generic.A.Span, fusedModel.A.Span, 1e-6, "a after one step");
            }
        }
        kernel.Store(fusedModel);
        AssertClose(generic.W.Span, fusedModel.W.Span, 1e-4, "W after 300 steps");
        AssertClose(generic.A.Span, fusedModel.A.Span, 1e-4, "a after 300 steps");
    }

    [Fact]
    public void Fused_step_allocates_nothing()
    {
        var (model, x, y) = Problem(20, 1000, 200, 3);
        var kernel = new OnlineTwoLayerLinear(20, 1000);
        kernel.Load(model);
        var noise = new RegressionStepNoise(4, StepNoiseDistribution.PlusMinus, StepNoiseSchedule.Constant, new Rng(1));
        for (int t = 0; t < 100; t++)
            kernel.SgdStep(x.AsSpan(t % 200 * 20, 20), y[t % 200] + noise.Next(t), 1e-3f);
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int t = 0; t < 2000; t++)
        {
            int i = t % 200;
            kernel.SgdStep(x.AsSpan(i * 20, 20), y[i] + noise.Next(t), 1e-3f);
            kernel.SamStep(x.AsSpan(i * 20, 20), y[i], 1e-3f, 0.05f);
        }
        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
    }
}
