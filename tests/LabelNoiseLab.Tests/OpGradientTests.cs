using LabelNoiseLab.Autograd;
using LabelNoiseLab.Losses;
using LabelNoiseLab.Tensors;

namespace LabelNoiseLab.Tests;

/// <summary>Every op's backward against central differences (relative error reported and bounded).</summary>
public class OpGradientTests(ITestOutputHelper output)
{
    private const double Tolerance = 1e-3;
    private readonly Rng _rng = new(42);

    private void AssertGradients(string name, Func<Tape, Tensor> f, Tensor[] inputs, double h = 1e-2)
    {
        double err = GradCheck.MaxRelativeError(f, inputs, h);
        output.WriteLine($"{name}: relative error {err:E2}");
        Assert.True(err < Tolerance, $"{name}: relative gradient error {err:E3} ≥ {Tolerance}");
    }

    private Tensor R(params int[] shape) => GradCheck.Random(_rng, shape);

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void Linear(bool bias)
    {
        var x = R(5, 7);
        var w = R(3, 7);
        var b = R(3);
        AssertGradients($"linear bias={bias}", t => LinearOp.Forward(t, x, w, bias ? b : null), bias ? [x, w, b] : [x, w]);
    }

    [Fact]
    public void MatMul()
    {
        var a = R(4, 6);
        var b = R(6, 3);
        AssertGradients("matmul", t => MatMulOp.Forward(t, a, b), [a, b]);
    }

    [Fact]
    public void Add_mul_scale_sum_mean()
    {
        var a = R(3, 4);
        var b = R(3, 4);
        AssertGradients("add", t => AddOp.Forward(t, a, b), [a, b]);
        AssertGradients("mul", t => MulOp.Forward(t, a, b), [a, b]);
        AssertGradients("scale", t => ScaleOp.Forward(t, a, -1.7f), [a]);
        AssertGradients("sum", t => SumOp.Forward(t, a), [a]);
        AssertGradients("mean", t => SumOp.Mean(t, a), [a]);
    }

    [Fact]
    public void Same_input_used_twice_accumulates()
    {
        var a = R(3, 4);
        AssertGradients("a*a + a", t => AddOp.Forward(t, MulOp.Forward(t, a, a), a), [a]);
    }

    [Fact]
    public void Activations()
    {
        var x = GradCheck.Random(_rng, [4, 9], 1.5f, awayFromZero: 0.05f);
        AssertGradients("relu", t => ReluOp.Instance.Forward(t, x), [x], h: 1e-3);
        AssertGradients("gelu", t => GeluOp.Instance.Forward(t, x), [x]);
        AssertGradients("erf", t => ErfOp.Instance.Forward(t, x), [x]);
        AssertGradients("tanh", t => TanhOp.Instance.Forward(t, x), [x]);
        AssertGradients("sigmoid", t => SigmoidOp.Instance.Forward(t, x), [x]);
    }

    [Fact]
    public void Reshape()
    {
        var x = R(2, 3, 4);
        var w = R(5, 12);
        AssertGradients("flatten→linear", t => LinearOp.Forward(t, ReshapeOp.Flatten(t, x), w, null), [x, w]);
    }

    [Theory]
    [InlineData(1, 0)]
    [InlineData(1, 1)]
    [InlineData(2, 1)]
    public void Conv2d(int stride, int padding)
    {
        var x = R(2, 3, 7, 6);
        var w = R(4, 3, 3, 3);
        var b = R(4);
        AssertGradients($"conv2d s={stride} p={padding}", t => Conv2dOp.Forward(t, x, w, b, stride, padding), [x, w, b]);
    }

    [Fact]
    public void Convolutional_chain()
    {
        // conv → tanh → avgpool → conv → tanh → avgpool → flatten → linear: every smooth piece
        // of a CNN composed, so the backward passes hand gradients to each other correctly.
        var x = R(2, 1, 12, 12);
        var w1 = GradCheck.Random(_rng, [3, 1, 3, 3], 0.3f);
        var b1 = GradCheck.Random(_rng, [3], 0.1f);
        var w2 = GradCheck.Random(_rng, [4, 3, 3, 3], 0.3f);
        var b2 = GradCheck.Random(_rng, [4], 0.1f);
        var w3 = GradCheck.Random(_rng, [5, 36], 0.3f);
        AssertGradients("conv chain", t =>
        {
            var h = AvgPool2dOp.Forward(t, TanhOp.Instance.Forward(t, Conv2dOp.Forward(t, x, w1, b1, 1, 1)), 2, 2);
            h = AvgPool2dOp.Forward(t, TanhOp.Instance.Forward(t, Conv2dOp.Forward(t, h, w2, b2, 1, 1)), 2, 2);
            return LinearOp.Forward(t, ReshapeOp.Flatten(t, h), w3, null);
        }, [x, w1, b1, w2, b2, w3]);
    }

    [Fact]
    public void Pooling()
    {
        // Distinct values spaced ≥ 0.05 apart so the maximum never switches under ±h.
        var x = new Tensor(2, 2, 6, 6);
        var order = Enumerable.Range(0, x.Length).ToArray();
        _rng.Shuffle(order);
        for (int i = 0; i < x.Length; i++)
            x[i] = order[i] * 0.05f - 3f;
        AssertGradients("maxpool2d", t => MaxPool2dOp.Forward(t, x, 2, 2), [x], h: 1e-3);
        AssertGradients("maxpool2d k3 s2", t => MaxPool2dOp.Forward(t, x, 3, 2), [x], h: 1e-3);
        AssertGradients("avgpool2d", t => AvgPool2dOp.Forward(t, x, 2, 2), [x]);
    }

    [Fact]
    public void Dropout_with_fixed_mask()
    {
        var x = R(4, 10);
        AssertGradients("dropout", t => DropoutOp.Forward(t, x, 0.3f, new Rng(5)), [x]);
    }

    [Fact]
    public void Cross_entropy_hard_soft_weighted()
    {
        var z = R(6, 5);
        int[] labels = [0, 4, 2, 2, 1, 3];
        var soft = new Tensor(6, 5);
        for (int i = 0; i < 6; i++)
        for (int k = 0; k < 5; k++)
            soft[i, k] = k == labels[i] ? 0.8f : 0.05f;
        var w = new Tensor([1f, 0f, 0.5f, 2f, 1f, 1f], 6);
        AssertGradients("ce hard", t => SoftmaxCrossEntropyOp.Forward(t, z, labels).Mean, [z]);
        AssertGradients("ce soft", t => SoftmaxCrossEntropyOp.Forward(t, z, soft).Mean, [z]);
        AssertGradients("ce weighted", t => SoftmaxCrossEntropyOp.Forward(t, z, labels, w).Mean, [z]);
    }

    [Fact]
    public void Mse_tensor_labels_weighted()
    {
        var p = R(4, 3);
        var target = R(4, 3);
        int[] labels = [2, 0, 1, 1];
        var w = new Tensor([1f, 2f, 0f, 0.5f], 4);
        AssertGradients("mse", t => MseOp.Forward(t, p, target).Mean, [p]);
        AssertGradients("mse half", t => MseOp.Forward(t, p, target, factor: 0.5f).Mean, [p]);
        AssertGradients("mse one-hot", t => MseOp.Forward(t, p, labels).Mean, [p]);
        AssertGradients("mse weighted", t => MseOp.Forward(t, p, labels, 1f, w).Mean, [p]);
    }

    [Fact]
    public void Cross_entropy_is_stable_for_huge_logits_and_matches_a_double_reference()
    {
        var tape = new Tape(recording: false);
        var z = new Tensor([1000f, -1000f, 0f, 3f, 1f, 2f], 2, 3);
        var loss = SoftmaxCrossEntropyOp.Forward(tape, z, [1, 0]);
        Assert.Equal(2000f, loss.PerSample[0]);
        double lse = Math.Log(Math.Exp(3) + Math.Exp(1) + Math.Exp(2));
        Assert.Equal(lse - 3, loss.PerSample[1], 5);
        Assert.False(float.IsNaN(loss.Mean[0]));
    }

    [Fact]
    public void Shape_mismatch_names_both_shapes()
    {
        var tape = new Tape();
        var x = new Tensor(2, 5) { Name = "x" };
        var w = new Tensor(3, 4) { Name = "w" };
        var ex = Assert.Throws<ShapeException>(() => LinearOp.Forward(tape, x, w, null));
        Assert.Contains("x [2, 5]", ex.Message);
        Assert.Contains("w [3, 4]", ex.Message);
    }

    [Fact]
    public void Backward_hook_sees_the_output_gradient()
    {
        var x = R(3, 4);
        var w = R(2, 4);
        var tape = new Tape();
        w.RequiresGrad = true;
        var y = LinearOp.Forward(tape, x, w, null);
        float[]? seen = null;
        GradientHookOp.Attach(tape, y, g => seen = g.ToArray());
        var loss = SumOp.Mean(tape, y);
        tape.Backward(loss);
        Assert.NotNull(seen);
        Assert.All(seen!, v => Assert.Equal(1f / 6f, v, 6));
    }
}
