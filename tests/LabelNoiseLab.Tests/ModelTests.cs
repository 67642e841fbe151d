using LabelNoiseLab.Autograd;
using LabelNoiseLab.Losses;
using LabelNoiseLab.Nn;
using LabelNoiseLab.Optim;
using LabelNoiseLab.Tensors;

namespace LabelNoiseLab.Tests;

public class ModelTests(ITestOutputHelper output)
{
    private static void CheckModel(ITestOutputHelper output, string name, Model model, Tensor x, double tolerance = 1e-3, bool checkInput = true)
    {
        var parameters = model.Parameters().ToArray();
        Tensor[] inputs = checkInput ? [x, .. parameters] : parameters;
        double err = GradCheck.MaxRelativeError(t => model.Forward(t, x), inputs, h: 1e-2, maxElements: 40);
        output.WriteLine($"{name}: relative error {err:E2}");
        Assert.True(err < tolerance, $"{name}: relative gradient error {err:E3}");
    }

    [Theory]
    [InlineData("relu")]
    [InlineData("gelu")]
    [InlineData("tanh")]
    [InlineData("erf")]
    public void Mlp_gradients(string activation)
    {
        var rng = new Rng(1);
        var model = new Mlp(6, [8, 5], 3, Activation.Parse(activation));
        Init.Apply(model, InitKind.Default, rng);
        CheckModel(output, $"mlp {activation}", model, GradCheck.Random(rng, [4, 6]));
    }

    [Fact]
    public void TwoLayerLinear_gradients_and_effective_predictor()
    {
        var rng = new Rng(2);
        var model = new TwoLayerLinear(5, 7);
        Init.Apply(model, InitKind.Ntk, rng);
        Assert.Equal(["first.weight", "second.weight"], model.NamedParameters().Select(p => p.Name));
        var x = GradCheck.Random(rng, [3, 5]);
        CheckModel(output, "two-layer linear", model, x);
        // f(x) = θᵀx with θ = Wᵀa.
        var theta = model.EffectivePredictor();
        var y = model.Forward(new Tape(false), x);
        for (int i = 0; i < 3; i++)
        {
            double expected = 0;
            for (int j = 0; j < 5; j++)
                expected += theta[j] * x[i, j];
            Assert.Equal(expected, y[i], 4);
        }
    }

    /// <summary>
    /// The CNN with GELU and average pooling is smooth, so central differences check every
    /// parameter tightly. (With ReLU and max-pooling, a first-layer weight moves every position
    /// of a channel and some pooling maxima switch within ±h: the error then shrinks with h,
    /// the signature of kinks rather than of a wrong gradient. Max-pooling and ReLU are checked
    /// on their own, away from kinks, in OpGradientTests.)
    /// </summary>
    [Theory]
    [InlineData(1, 28)]
    [InlineData(3, 32)]
    public void SmallCnn_gradients(int channels, int size)
    {
        var rng = new Rng(3);
        var model = new SmallCnn(channels, size, 10, width: 2, hidden: 6, activation: ActivationKind.Gelu, averagePooling: true);
        Init.Apply(model, InitKind.Default, rng);
        var x = GradCheck.Random(rng, [2, channels * size * size]);
        var logits = model.Forward(new Tape(false), x);
        Assert.Equal([2, 10], logits.Shape.ToArray());
        // Parameters only: the input's gradient here is small next to the float32 rounding of the
        // logits, which the central difference divides by 2h (its error grows as h shrinks:
        // noise, not a wrong gradient). Conv2d's input gradient is checked in OpGradientTests.
        CheckModel(output, $"small cnn {channels}×{size}", model, x, checkInput: false);
    }

    [Fact]
    public void Default_SmallCnn_has_the_expected_shapes()
    {
        var model = new SmallCnn(3, 32, 10);
        Init.Apply(model, InitKind.Default, new Rng(1));
        var features = model.Features(new Tape(false), new Tensor(4, 3, 32, 32));
        Assert.Equal([4, 128], features.Shape.ToArray());
        Assert.Equal(["features.0.weight", "features.0.bias", "features.3.weight", "features.3.bias", "features.7.weight", "features.7.bias", "head.weight", "head.bias"],
            model.NamedParameters().Select(p => p.Name));
    }

    [Fact]
    public void Parameters_are_named_like_pytorch_sequential()
    {
        var model = new Mlp(784, [512, 512], 10);
        Assert.Equal(
            ["layers.0.weight", "layers.0.bias", "layers.2.weight", "layers.2.bias", "layers.4.weight", "layers.4.bias"],
            model.NamedParameters().Select(p => p.Name));
        Assert.Equal(784 * 512 + 512 + 512 * 512 + 512 + 512 * 10 + 10, model.ParameterCount());
    }

    [Fact]
    public void Kaiming_uniform_init_respects_the_bound_and_ntk_init_has_the_requested_variance()
    {
        var model = new Mlp(400, [300], 10);
        Init.Apply(model, InitKind.Default, new Rng(4));
        var w = model.Layers[0] is Linear l ? l.Weight : throw new InvalidOperationException();
        float bound = 1f / MathF.Sqrt(400);
        Assert.All(w.ToArray(), v => Assert.InRange(v, -bound, bound));
        Assert.True(w.ToArray().Max() > 0.95f * bound);

        var tl = new TwoLayerLinear(20, 1000);
        Init.Apply(tl, InitKind.Ntk, new Rng(5), scale: 2f);
        double var = tl.W.ToArray().Select(v => (double)v * v).Average();
        Assert.InRange(var, 0.9 * 4.0 / 20, 1.1 * 4.0 / 20);
        double varA = tl.A.ToArray().Select(v => (double)v * v).Average();
        Assert.InRange(varA, 0.8 * 4.0 / 1000, 1.2 * 4.0 / 1000);
    }

    [Fact]
    public void Hooks_record_activations_and_output_gradients()
    {
        var rng = new Rng(6);
        var model = new Mlp(4, [5], 2);
        Init.Apply(model, InitKind.Default, rng);
        var first = (Linear)model.Layers[0];
        float[]? input = null, activation = null, gradient = null;
        first.AddForwardHook((_, i, o) => { input = i.ToArray(); activation = o.ToArray(); });
        first.AddBackwardHook((_, g) => gradient = g.ToArray());
        var x = GradCheck.Random(rng, [3, 4]);
        var tape = new Tape();
        var loss = SoftmaxCrossEntropyOp.Forward(tape, model.Forward(tape, x), [0, 1, 1]).Mean;
        tape.Backward(loss);
        Assert.Equal(x.ToArray(), input);
        Assert.Equal(15, activation!.Length);
        Assert.Equal(15, gradient!.Length);
        // The output gradient times the input gives the weight gradient: dW = gᵀx.
        var dw = first.Weight.GradSpan();
        for (int o = 0; o < 5; o++)
        for (int i = 0; i < 4; i++)
        {
            double s = 0;
            for (int b = 0; b < 3; b++)
                s += gradient[b * 5 + o] * x[b, i];
            Assert.Equal(s, dw[o * 4 + i], 5);
        }
    }

    /// <summary>Two Gaussian blobs; an MLP must separate them.</summary>
    private static (Tensor X, int[] Y) TwoClassProblem(int n, Rng rng)
    {
        var x = new Tensor(n, 2);
        var y = new int[n];
        for (int i = 0; i < n; i++)
        {
            y[i] = i % 2;
            double angle = rng.NextDouble() * 2 * Math.PI;
            double radius = y[i] == 0 ? 0.5 + 0.3 * rng.NextDouble() : 1.5 + 0.3 * rng.NextDouble();
            x[i, 0] = (float)(radius * Math.Cos(angle));
            x[i, 1] = (float)(radius * Math.Sin(angle));
        }
        return (x, y);
    }

    private static List<float> TrainRings(ulong seed, out double accuracy)
    {
        var rng = new Rng(seed);
        var (x, y) = TwoClassProblem(512, rng);
        var model = new Mlp(2, [32, 32], 2);
        Init.Apply(model, InitKind.Default, rng);
        var opt = new Sgd(model.Parameters(), 0.1f, momentum: 0.9f);
        var tape = new Tape();
        var losses = new List<float>();
        const int batch = 64;
        var xb = new Tensor(batch, 2);
        var yb = new int[batch];
        var order = Enumerable.Range(0, 512).ToArray();
        for (int epoch = 0; epoch < 60; epoch++)
        {
            rng.Shuffle(order);
            for (int s = 0; s < 512; s += batch)
            {
                for (int i = 0; i < batch; i++)
                {
                    xb[i, 0] = x[order[s + i], 0];
                    xb[i, 1] = x[order[s + i], 1];
                    yb[i] = y[order[s + i]];
                }
                tape.Reset();
                opt.ZeroGrad();
                var loss = SoftmaxCrossEntropyOp.Forward(tape, model.Forward(tape, xb), yb).Mean;
                losses.Add(loss[0]);
                tape.Backward(loss);
                opt.Step();
            }
        }
        var logits = model.Forward(new Tape(false), x);
        int correct = 0;
        for (int i = 0; i < 512; i++)
            correct += (logits[i, 1] > logits[i, 0] ? 1 : 0) == y[i] ? 1 : 0;
        accuracy = correct / 512.0;
        return losses;
    }

    [Fact]
    public void Mlp_learns_a_two_class_problem_and_the_same_seed_gives_bit_identical_losses()
    {
        var first = TrainRings(11, out double accuracy);
        output.WriteLine($"accuracy {accuracy:P1}, loss {first[0]:F4} → {first[^1]:F4}");
        Assert.True(accuracy > 0.95, $"accuracy {accuracy:P1}");
        Assert.True(first[^1] < first[0] / 4);
        var second = TrainRings(11, out _);
        Assert.Equal(first.Select(BitConverter.SingleToInt32Bits), second.Select(BitConverter.SingleToInt32Bits));
    }

    [Fact]
    public void A_training_step_allocates_nothing_once_warm()
    {
        var rng = new Rng(8);
        var model = new Mlp(20, [16, 16], 4);
        Init.Apply(model, InitKind.Default, rng);
        var opt = new Adam(model.Parameters(), 1e-3f);
        var x = GradCheck.Random(rng, [8, 20]);
        int[] y = [0, 1, 2, 3, 0, 1, 2, 3];
        var tape = new Tape();
        void Step()
        {
            tape.Reset();
            opt.ZeroGrad();
            var loss = SoftmaxCrossEntropyOp.Forward(tape, model.Forward(tape, x), y).Mean;
            tape.Backward(loss);
            opt.Step();
        }
        // Enough warm-up steps for the JIT's tiered recompilation to settle.
        for (int i = 0; i < 200; i++)
            Step();
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 10; i++)
            Step();
        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
    }
}
