using LabelNoiseLab.Autograd;
using LabelNoiseLab.Losses;
using LabelNoiseLab.Nn;
using LabelNoiseLab.Robust;
using LabelNoiseLab.Tensors;

namespace LabelNoiseLab.Tests;

/// <summary>Fast per-sample gradient norms and the weighted re-use against the naive loop.</summary>
public class PerSampleGradientTests(ITestOutputHelper output)
{
    private static int[] Labels(Rng rng, int n, int classes) => Enumerable.Range(0, n).Select(_ => rng.NextInt(classes)).ToArray();

    /// <summary>One ordinary forward + backward with the hooks on, then the naive loop; worst relative difference.</summary>
    private double Compare(string name, Module model, Tensor x, int[] labels, ConvNormMethod method = ConvNormMethod.Auto)
    {
        var psg = new PerSampleGradients(model, method);
        var tape = new Tape();
        foreach (var p in model.Parameters())
            p.ZeroGrad();
        var loss = SoftmaxCrossEntropyOp.Forward(tape, model.Forward(tape, x), labels).Mean;
        tape.Backward(loss);
        var fast = psg.Norms.ToArray();
        var naive = new float[x.Rows];
        psg.NaiveNorms(x, labels, naive);
        double worst = 0;
        for (int i = 0; i < naive.Length; i++)
        {
            Assert.True(naive[i] > 0, $"{name}: sample {i} has a zero gradient");
            worst = Math.Max(worst, Math.Abs(fast[i] - naive[i]) / naive[i]);
        }
        output.WriteLine($"{name}: worst relative difference {worst:E2} over {naive.Length} samples (norms {naive.Min():G3}..{naive.Max():G3})");
        return worst;
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void Mlp_norms_match_the_naive_loop(bool bias)
    {
        var rng = new Rng(3);
        var model = new Mlp(20, [16, 12], 5, ActivationKind.Tanh, bias: bias);
        Init.Apply(model, InitKind.Default, rng);
        var x = GradCheck.Random(rng, [9, 20]);
        Assert.True(Compare($"mlp bias={bias}", model, x, Labels(rng, 9, 5)) < 1e-5);
    }

    [Theory]
    [InlineData(ConvNormMethod.Auto)]
    [InlineData(ConvNormMethod.Gram)]
    [InlineData(ConvNormMethod.Materialise)]
    public void SmallCnn_norms_match_the_naive_loop(ConvNormMethod method)
    {
        var rng = new Rng(4);
        var model = new SmallCnn(1, 8, 4, width: 3, hidden: 10);
        Init.Apply(model, InitKind.Default, rng);
        var x = GradCheck.Random(rng, [6, 64]);
        Assert.True(Compare($"small cnn {method}", model, x, Labels(rng, 6, 4), method) < 1e-5);
    }

    [Theory]
    [InlineData(ConvNormMethod.Gram)]
    [InlineData(ConvNormMethod.Materialise)]
    public void Strided_conv_without_bias_matches_the_naive_loop(ConvNormMethod method)
    {
        var rng = new Rng(5);
        var model = new Sequential(
            new Conv2d(2, 4, 3, stride: 2, padding: 1, bias: false), new Activation(ActivationKind.Relu),
            new Conv2d(4, 3, 2, bias: false), new Flatten(), new Linear(3 * 3 * 3, 4, bias: false));
        Init.Apply(model, InitKind.Default, rng);
        var x = GradCheck.Random(rng, [5, 2, 7, 7]);
        Assert.True(Compare($"strided conv no bias {method}", model, x, Labels(rng, 5, 4), method) < 1e-5);
    }

    /// <summary>
    /// A small ViT: patch embedding and every attention/MLP Linear on token sequences (Gram or
    /// materialised), LayerNorm over tokens, position embeddings and the class token.
    /// </summary>
    [Theory]
    [InlineData(true, ConvNormMethod.Auto)]
    [InlineData(true, ConvNormMethod.Gram)]
    [InlineData(true, ConvNormMethod.Materialise)]
    [InlineData(false, ConvNormMethod.Auto)]
    public void Vit_norms_match_the_naive_loop(bool classToken, ConvNormMethod method)
    {
        var rng = new Rng(11);
        var model = new VisionTransformer(1, 8, 4, patch: 4, dim: 8, depth: 2, heads: 2, mlpRatio: 2, classToken: classToken);
        Init.Apply(model, InitKind.Default, rng);
        var x = GradCheck.Random(rng, [6, 64]);
        Assert.True(Compare($"vit cls={classToken} {method}", model, x, Labels(rng, 6, 4), method) < 1e-4);
    }

    /// <summary>ResNet and cnn9 with GroupNorm (cnn9 in evaluation mode: its channel dropout would draw other masks in the naive loop).</summary>
    [Theory]
    [InlineData("resnet")]
    [InlineData("cnn9")]
    public void GroupNorm_models_match_the_naive_loop(string kind)
    {
        var rng = new Rng(12);
        Model model = kind == "resnet"
            ? new ResNet(1, 8, 4, depth: 8, width: 0.25, norm: NormKind.Group)
            : new Cnn9(1, 28, 4, new Rng(1), width: 0.0625, norm: NormKind.Group);
        Init.Apply(model, InitKind.Default, rng);
        if (kind == "cnn9")
            model.SetTraining(false);
        int side = kind == "resnet" ? 8 : 28, n = kind == "resnet" ? 6 : 3;
        var x = GradCheck.Random(rng, [n, side * side]);
        // Both sides are float32 through nine GroupNorm layers (cnn9): rounding alone reaches ~2e-4
        // relative on the smallest per-sample norm, depending on the GEMM's summation order
        // (thread count); a missing GroupNorm term is off by orders of magnitude more.
        Assert.True(Compare($"{kind} group norm", model, x, Labels(rng, n, 4)) < (kind == "cnn9" ? 1e-3 : 1e-4));
    }

    [Fact]
    public void BatchNorm_models_are_refused()
    {
        var ex = Assert.Throws<ArgumentException>(() => new PerSampleGradients(new ResNet(1, 8, 4, depth: 8, width: 0.25)));
        Assert.Contains("BatchNorm", ex.Message);
    }

    [Fact]
    public void Parameters_outside_linear_and_conv_are_refused()
    {
        var model = new Sequential(new Linear(3, 2), new Scaled());
        Assert.Throws<ArgumentException>(() => new PerSampleGradients(model));
    }

    private sealed class Scaled : Module
    {
        private readonly Tensor _s;

        public Scaled() => _s = RegisterParameter("s", new Tensor(1));

        protected override Tensor ForwardCore(Tape tape, Tensor x) => x;
    }

    /// <summary>The deferred pass plus re-weighting equals an ordinary backward of the weighted loss.</summary>
    [Theory]
    [InlineData("mlp")]
    [InlineData("cnn")]
    [InlineData("vit")]
    [InlineData("vit_mean")]
    [InlineData("resnet_group")]
    public void Sample_weights_give_the_weighted_loss_gradient(string kind)
    {
        var rng = new Rng(6);
        Module model = kind switch
        {
            "mlp" => new Mlp(12, [10], 4),
            "cnn" => new SmallCnn(1, 8, 4, width: 2, hidden: 6),
            "vit" or "vit_mean" => new VisionTransformer(1, 8, 4, patch: 4, dim: 8, depth: 1, heads: 2, mlpRatio: 2, classToken: kind == "vit"),
            _ => new ResNet(1, 8, 4, depth: 8, width: 0.25, norm: NormKind.Group),
        };
        Init.Apply(model, InitKind.Default, rng);
        int n = 7;
        var x = GradCheck.Random(rng, kind == "mlp" ? [n, 12] : [n, 64]);
        var labels = Labels(rng, n, 4);
        var w = new Tensor(n);
        for (int i = 0; i < n; i++)
            w[i] = i % 3 == 0 ? 0f : (float)rng.NextDouble();

        // Reference: the weighted loss, one ordinary backward.
        var tape = new Tape();
        var parameters = model.Parameters();
        foreach (var p in parameters)
            p.ZeroGrad();
        tape.Backward(SoftmaxCrossEntropyOp.Forward(tape, model.Forward(tape, x), labels, w).Mean);
        var expected = parameters.Select(p => p.GradSpan().ToArray()).ToArray();

        // Deferred: the unweighted loss without parameter GEMMs, then the weighted ones.
        var psg = new PerSampleGradients(model);
        foreach (var p in parameters)
            p.ZeroGrad();
        tape.Reset();
        var loss = SoftmaxCrossEntropyOp.Forward(tape, model.Forward(tape, x), labels).Mean;
        psg.DeferParameterGradients();
        tape.Backward(loss);
        Assert.All(parameters, p => Assert.True(p.GradIsZero)); // nothing written by the deferred backward
        psg.ApplySampleWeights(w.Span);
        Assert.All(parameters, p => Assert.True(p.RequiresGrad));
        for (int k = 0; k < parameters.Count; k++)
        {
            var actual = parameters[k].GradSpan();
            double scale = expected[k].Max(v => Math.Abs(v)) + 1e-12;
            for (int j = 0; j < actual.Length; j++)
                Assert.True(Math.Abs(actual[j] - expected[k][j]) <= 1e-5 * scale, $"{kind} parameter {k} element {j}: {actual[j]} vs {expected[k][j]}");
        }
    }
    /// <summary>The fast pruning step (forward, deferred backward with norms, weights, re-weighted GEMMs) allocates nothing once warm.</summary>
    [Theory]
    [InlineData("mlp")]
    [InlineData("cnn")]
    public void A_pruning_step_allocates_nothing_once_warm(string kind)
    {
        var rng = new Rng(8);
        Module model = kind == "mlp" ? new Mlp(12, [10], 4) : new SmallCnn(1, 8, 4, width: 2, hidden: 6);
        Init.Apply(model, InitKind.Default, rng);
        var x = GradCheck.Random(rng, kind == "mlp" ? [16, 12] : [16, 64]);
        var labels = Labels(rng, 16, 4);
        var psg = new PerSampleGradients(model);
        var pruning = new GradientPruning(PruneStatistic.MedianIqr, PruneWeighting.Truncate, 1f, 1f);
        var w = new float[16];
        var tape = new Tape();
        var parameters = model.Parameters();
        void Step()
        {
            tape.Reset();
            for (int k = 0; k < parameters.Count; k++) // not foreach: an interface enumerator is an allocation
                parameters[k].ZeroGrad();
            var loss = SoftmaxCrossEntropyOp.Forward(tape, model.Forward(tape, x), labels).Mean;
            psg.DeferParameterGradients();
            tape.Backward(loss);
            pruning.Weights(psg.Norms, w);
            psg.ApplySampleWeights(w);
        }
        for (int i = 0; i < 3; i++)
            Step();
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 5; i++)
            Step();
        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
    }
}
