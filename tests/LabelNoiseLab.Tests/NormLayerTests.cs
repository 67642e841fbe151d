using LabelNoiseLab.Autograd;
using LabelNoiseLab.Nn;
using LabelNoiseLab.Tensors;

namespace LabelNoiseLab.Tests;

/// <summary>
/// The layers of the convolutional architectures (batch and group norm, leaky ReLU, channel
/// dropout, residual addition, global average pooling): backward against central differences,
/// and the running statistics BatchNorm keeps.
/// </summary>
public class NormLayerTests(ITestOutputHelper output)
{
    private const double Tolerance = 1e-3;
    private readonly Rng _rng = new(17);

    private void AssertGradients(string name, Func<Tape, Tensor> f, Tensor[] inputs, double h = 1e-2)
    {
        double err = GradCheck.MaxRelativeError(f, inputs, h);
        output.WriteLine($"{name}: relative error {err:E2}");
        Assert.True(err < Tolerance, $"{name}: relative gradient error {err:E3} ≥ {Tolerance}");
    }

    private Tensor R(params int[] shape) => GradCheck.Random(_rng, shape);

    private Tensor Affine(int c, float around)
    {
        var t = GradCheck.Random(_rng, [c], 0.3f);
        for (int i = 0; i < c; i++)
            t[i] += around;
        return t;
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void Batch_norm_training_and_evaluation(bool image)
    {
        int[] shape = image ? [3, 2, 3, 3] : [6, 4];
        int c = shape[1];
        var x = R(shape);
        var w = Affine(c, 1f);
        var b = Affine(c, 0f);
        var mean = new float[c];
        var variance = new float[c];
        AssertGradients($"batchnorm train {string.Join("x", shape)}", t => BatchNormOp.Forward(t, x, w, b, 1e-5f, mean, variance), [x, w, b]);
        var runningMean = GradCheck.Random(_rng, [c], 0.5f).ToArray();
        var runningVar = Enumerable.Range(0, c).Select(i => 0.5f + i * 0.3f).ToArray();
        AssertGradients($"batchnorm eval {string.Join("x", shape)}",
            t => BatchNormOp.Forward(t, x, w, b, 1e-5f, default, default, runningMean, runningVar), [x, w, b]);
    }

    /// <summary>
    /// The vectorised BatchNorm (planes of 49 and 1: vector loops and scalar tails) against its
    /// definition in double precision: output, batch statistics, and the backward for a given
    /// upstream gradient, in training and evaluation, writing and accumulating.
    /// </summary>
    [Theory]
    [InlineData(true, false)]
    [InlineData(true, true)]
    [InlineData(false, false)]
    public void Batch_norm_matches_its_definition(bool training, bool image)
    {
        int[] shape = image ? [5, 3, 7, 7] : [37, 3];
        int n = shape[0], c = shape[1], plane = image ? 49 : 1;
        var x = GradCheck.Random(_rng, shape, 2f);
        for (int i = 0; i < x.Length; i++)
            x[i] += 0.7f; // a mean away from zero
        var w = Affine(c, 1f);
        var b = Affine(c, 0f);
        var upstream = GradCheck.Random(_rng, shape);
        var runningMean = new float[] { 0.5f, -0.2f, 0.9f };
        var runningVar = new float[] { 1.5f, 0.8f, 4f };
        var mean = new float[c];
        var variance = new float[c];
        x.RequiresGrad = w.RequiresGrad = b.RequiresGrad = true;
        foreach (bool accumulate in new[] { false, true })
        {
            var tape = new Tape();
            var y = training
                ? BatchNormOp.Forward(tape, x, w, b, 1e-5f, mean, variance)
                : BatchNormOp.Forward(tape, x, w, b, 1e-5f, default, default, runningMean, runningVar);
            var prior = GradCheck.Random(_rng, shape);
            foreach (var t in new[] { x, w, b })
                t.GradIsZero = true;
            if (accumulate)
            {
                prior.Span.CopyTo(x.EnsureGrad().Span);
                x.GradIsZero = false;
            }
            upstream.Span.CopyTo(y.EnsureGrad().Span);
            y.GradIsZero = false;
            var entry = tape.Entries[0];
            entry.Op.Backward(tape, in entry);
            for (int ch = 0; ch < c; ch++)
            {
                var idx = Enumerable.Range(0, n).SelectMany(i => Enumerable.Range((i * c + ch) * plane, plane)).ToArray();
                double mu = training ? idx.Average(k => (double)x[k]) : runningMean[ch];
                double v = training ? idx.Average(k => (x[k] - mu) * (x[k] - mu)) : runningVar[ch];
                if (training)
                {
                    Assert.Equal(mu, mean[ch], 1e-5);
                    Assert.Equal(v, variance[ch], 1e-4);
                }
                double inv = 1 / Math.Sqrt(v + 1e-5), sg = 0, sgx = 0;
                foreach (int k in idx)
                {
                    double h = (x[k] - mu) * inv;
                    Assert.Equal(w[ch] * h + b[ch], y[k], 1e-4);
                    sg += upstream[k];
                    sgx += upstream[k] * h;
                }
                Assert.Equal(sgx, w.Grad![ch], 1e-3);
                Assert.Equal(sg, b.Grad![ch], 1e-3);
                foreach (int k in idx)
                {
                    double h = (x[k] - mu) * inv;
                    double d = w[ch] * inv * (training ? upstream[k] - sg / idx.Length - h * sgx / idx.Length : upstream[k]);
                    Assert.Equal((accumulate ? prior[k] : 0) + d, x.Grad![k], 1e-4);
                }
            }
        }
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(4)]
    public void Group_norm(int groups)
    {
        var x = R(2, 4, 3, 2);
        var w = Affine(4, 1f);
        var b = Affine(4, 0f);
        AssertGradients($"groupnorm G={groups}", t => GroupNormOp.Forward(t, x, w, b, groups, 1e-5f), [x, w, b]);
    }

    [Fact]
    public void Leaky_relu_dropout2d_global_pool_and_residual()
    {
        var x = GradCheck.Random(_rng, [2, 3, 4, 4], 1.5f, awayFromZero: 0.05f);
        AssertGradients("leaky relu", t => new LeakyReluOp(0.01f).Forward(t, x), [x], h: 1e-3);
        AssertGradients("leaky relu slope 0.3", t => new LeakyReluOp(0.3f).Forward(t, x), [x], h: 1e-3);
        AssertGradients("dropout2d", t => Dropout2dOp.Forward(t, x, 0.4f, new Rng(3)), [x]);
        AssertGradients("global avg pool", t => GlobalAvgPool2dOp.Forward(t, x), [x]);
        var w = GradCheck.Random(_rng, [3, 3, 3, 3], 0.3f);
        // The residual y = f(x) + x: the gradient reaches x along both paths.
        AssertGradients("residual conv(x) + x", t => AddOp.Forward(t, Conv2dOp.Forward(t, x, w, null, 1, 1), x), [x, w]);
    }

    [Fact]
    public void Dropout2d_zeroes_whole_channels_and_scales_the_rest()
    {
        var x = new Tensor(4, 8, 3, 3);
        x.Span.Fill(1f);
        var y = Dropout2dOp.Forward(new Tape(false), x, 0.5f, new Rng(1));
        int dropped = 0;
        for (int ch = 0; ch < 32; ch++)
        {
            var plane = y.Span.Slice(ch * 9, 9);
            Assert.True(plane.IndexOfAnyExcept(plane[0]) < 0, "a channel is all kept or all dropped");
            Assert.Contains(plane[0], new[] { 0f, 2f });
            dropped += plane[0] == 0f ? 1 : 0;
        }
        Assert.InRange(dropped, 4, 28);
    }

    [Fact]
    public void Batch_norm_keeps_running_statistics_like_pytorch()
    {
        var bn = new BatchNorm2d(2);
        var x = new Tensor(2, 2, 1, 2);
        float[] values = [1, 2, 10, 20, 3, 4, 30, 40]; // channel 0: 1, 2, 3, 4; channel 1: 10, 20, 30, 40
        values.CopyTo(x.Span);
        var y = bn.Forward(new Tape(false), x);
        // Normalised with the biased batch variance: channel 0 mean 2.5, variance 1.25.
        Assert.Equal((1 - 2.5) / Math.Sqrt(1.25 + 1e-5), y[0], 5);
        Assert.Equal(0.25f, bn.RunningMean[0], 6);            // 0.9·0 + 0.1·2.5
        Assert.Equal(2.5f, bn.RunningMean[1], 5);
        Assert.Equal(0.9f + 0.1f * (5f / 3f), bn.RunningVariance[0], 6); // unbiased: 5/3
        Assert.Equal(0.9f + 0.1f * (500f / 3f), bn.RunningVariance[1], 4);
        Assert.Equal(1f, bn.BatchesTracked[0]);
        // Evaluation normalises with the running statistics and leaves them alone.
        bn.SetTraining(false);
        var e = bn.Forward(new Tape(false), x);
        Assert.Equal((1 - 0.25) / Math.Sqrt(bn.RunningVariance[0] + 1e-5), e[0], 5);
        Assert.Equal(1f, bn.BatchesTracked[0]);
        Assert.Equal(["weight", "bias", "running_mean", "running_var", "num_batches_tracked"], bn.NamedState().Select(s => s.Name).ToArray());
        Assert.Equal(["running_mean", "running_var", "num_batches_tracked"], bn.NamedBuffers().Select(s => s.Name).ToArray());
        Assert.Equal(2, bn.Parameters().Count);
    }

    [Fact]
    public void Group_counts_keep_two_channels_or_more_per_group()
    {
        Assert.Equal([2, 8, 16, 32, 32, 32], new[] { 4, 16, 32, 64, 128, 256 }.Select(GroupNorm.DefaultGroups).ToArray());
        Assert.Equal(1, GroupNorm.DefaultGroups(1));
        Assert.Equal(1, GroupNorm.DefaultGroups(7));
    }

    [Fact]
    public void ResNet_and_cnn9_are_named_like_pytorch()
    {
        var resnet = new ResNet(1, 28, 10, depth: 20);
        var names = resnet.NamedState().Select(s => s.Name).ToList();
        Assert.Equal("conv1.weight", names[0]);
        Assert.Contains("bn1.running_mean", names);
        Assert.Contains("layer1.0.conv1.weight", names);
        Assert.Contains("layer1.2.bn2.num_batches_tracked", names);
        Assert.DoesNotContain("layer1.0.shortcut.0.weight", names); // identity: shape kept
        Assert.Contains("layer2.0.shortcut.0.weight", names);
        Assert.Contains("layer3.0.shortcut.1.running_var", names);
        Assert.Equal(["linear.weight", "linear.bias"], names[^2..]);
        // 19 convolutions + 2 projections, 19 + 2 norms of 3 buffers each.
        Assert.Equal((19 + 2) * 3, resnet.NamedBuffers().Count());
        // The count usually quoted for ResNet-20 with projection shortcuts on CIFAR (3 channels, 10 classes).
        Assert.Equal(272_474, new ResNet(3, 32, 10).ParameterCount());
        var cnn = new Cnn9(3, 32, 10, new Rng(1));
        var cnnNames = cnn.NamedParameters().Select(s => s.Name).ToList();
        Assert.Equal(["c1.weight", "c1.bias"], cnnNames[..2]);
        Assert.Contains("l_c1.weight", cnnNames);
        Assert.Contains("bn9.bias", cnnNames);
        Assert.Equal(32, cnn.Head.Inputs);
        var logits = cnn.Forward(new Tape(false), new Tensor(2, 3 * 32 * 32));
        Assert.Equal([2, 10], logits.Shape.ToArray());
    }

    /// <summary>
    /// A residual block made smooth (tanh for ReLU), in training mode: strided convolution, batch
    /// norm, a projection shortcut with its own norm, the residual sum, global pooling, a head.
    /// </summary>
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Smooth_residual_block_gradients(bool group)
    {
        var x = R(3, 2, 6, 6);
        var w1 = GradCheck.Random(_rng, [4, 2, 3, 3], 0.3f);
        var w2 = GradCheck.Random(_rng, [4, 4, 3, 3], 0.3f);
        var ws = GradCheck.Random(_rng, [4, 2, 1, 1], 0.3f);
        var head = GradCheck.Random(_rng, [3, 4], 0.5f);
        Tensor[] gammas = [Affine(4, 1f), Affine(4, 1f), Affine(4, 1f)];
        Tensor[] betas = [Affine(4, 0f), Affine(4, 0f), Affine(4, 0f)];
        var mean = new float[4];
        var variance = new float[4];
        Tensor Norm(Tape t, Tensor h, int i) => group
            ? GroupNormOp.Forward(t, h, gammas[i], betas[i], 2, 1e-5f)
            : BatchNormOp.Forward(t, h, gammas[i], betas[i], 1e-5f, mean, variance);
        AssertGradients($"residual block {(group ? "group" : "batch")} norm", t =>
        {
            var h = TanhOp.Instance.Forward(t, Norm(t, Conv2dOp.Forward(t, x, w1, null, 2, 1), 0));
            h = Norm(t, Conv2dOp.Forward(t, h, w2, null, 1, 1), 1);
            var s = Norm(t, Conv2dOp.Forward(t, x, ws, null, 2, 0), 2);
            h = TanhOp.Instance.Forward(t, AddOp.Forward(t, h, s));
            return LinearOp.Forward(t, GlobalAvgPool2dOp.Forward(t, h), head, null);
        }, [x, w1, w2, ws, head, .. gammas, .. betas], h: 2e-3);
    }
}
