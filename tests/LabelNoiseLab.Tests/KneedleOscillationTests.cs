using LabelNoiseLab.Autograd;
using LabelNoiseLab.Losses;
using LabelNoiseLab.Nn;
using LabelNoiseLab.Optim;
using LabelNoiseLab.Probes;
using LabelNoiseLab.Tensors;

namespace LabelNoiseLab.Tests;

/// <summary>Kneedle on synthetic curves with a known knee; the oscillation variant's first-layer step against the engine's gradient.</summary>
public sealed class KneedleOscillationTests
{
    private static double[] Steps(int n) => [.. Enumerable.Range(0, n).Select(i => 100.0 * i)];

    [Fact]
    public void The_knee_of_a_broken_line_is_its_bend_even_when_the_floor_keeps_creeping_down()
    {
        // Falls linearly to step 3000, then creeps down slowly to the end (its arg-min is the last point).
        var x = Steps(101);
        var y = x.Select(s => s <= 3000 ? 1 - 0.9 * s / 3000 : 0.1 - 0.02 * (s - 3000) / 7000).ToArray();
        Assert.Equal(30, Kneedle.Knee(x, y));
        Assert.Equal(100, Array.IndexOf(y, y.Min()));
    }

    [Theory]
    [InlineData(0.05)]
    [InlineData(0.1)]
    [InlineData(0.2)]
    public void The_knee_of_an_exponential_decay_is_where_its_slope_equals_the_chord(double tau)
    {
        // Scaled to [0, 1], y = (e^(−x/τ) − e^(−1/τ))/(1 − e^(−1/τ)): d = 1 − x − y is largest where
        // y′ = −1, at x* = −τ ln(τ (1 − e^(−1/τ))).
        int n = 1001;
        var x = Enumerable.Range(0, n).Select(i => i / (double)(n - 1)).ToArray();
        var y = x.Select(v => Math.Exp(-v / tau)).ToArray();
        double expected = -tau * Math.Log(tau * (1 - Math.Exp(-1 / tau)));
        Assert.Equal(expected, x[Kneedle.Knee(x, y)!.Value], 3);
    }

    [Fact]
    public void A_curve_that_does_not_fall_or_is_straight_has_no_knee()
    {
        var x = Steps(20);
        Assert.Null(Kneedle.Knee(x, [.. x.Select(s => 1 + s)]));
        Assert.Null(Kneedle.Knee(x, [.. x.Select(s => 5 - s / 1000)]));
        Assert.Null(Kneedle.Knee([0.0, 1], [1.0, 0]));
    }

    [Fact]
    public void The_smoothed_log_knee_ignores_noise_around_the_bend()
    {
        var rng = new Rng(3);
        var x = Steps(201);
        var y = x.Select(s => Math.Exp(s <= 5000 ? -s / 2500.0 : -2 - (s - 5000) / 200000.0) * (1 + 0.002 * rng.NextNormal())).ToArray();
        double knee = Kneedle.KneeOfLog(x, y, 5)!.Value;
        Assert.InRange(knee, 4500, 5500);
        Assert.Equal((double[])[1.5, 2, 3, 4, 4.5], Kneedle.Smooth([1.0, 2, 3, 4, 5], 3));
        Assert.Throws<ArgumentOutOfRangeException>(() => Kneedle.Smooth([1.0], 2));
    }

    [Fact]
    public void First_layer_step_equals_sgd_on_w_with_the_given_a_from_the_engine()
    {
        const int d = 5, m = 37;
        var model = new TwoLayerLinear(d, m);
        Init.Apply(model, InitKind.Ntk, new Rng(1));
        var kernel = new OnlineTwoLayerLinear(d, m);
        kernel.Load(model);
        var rng = new Rng(2);
        var x = Enumerable.Range(0, d).Select(_ => (float)rng.NextNormal()).ToArray();
        var a = Enumerable.Range(0, m).Select(_ => (float)(0.1 * rng.NextNormal())).ToArray();
        float lr = 0.05f, target = 0.7f;

        // Reference: set a, take the engine's gradient of ½(f − y)² on W, step W only.
        a.CopyTo(model.A.Span);
        var w0 = model.W.ToArray();
        var tape = new Tape();
        model.W.ZeroGrad();
        model.A.ZeroGrad();
        var loss = MseOp.Forward(tape, model.Forward(tape, new Tensor(x, 1, d)), new Tensor([target], 1, 1), 0.5f).Mean;
        tape.Backward(loss);
        var g = model.W.GradSpan().ToArray();

        float half = kernel.FirstLayerStep(x, target, lr, a);
        Assert.Equal(loss.Span[0], half, 5);
        kernel.Store(model);
        for (int i = 0; i < w0.Length; i++)
            Assert.Equal(w0[i] - lr * g[i], model.W.Span[i], 5);
        Assert.Equal(a, model.A.ToArray());
    }
}
