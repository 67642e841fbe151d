using LabelNoiseLab.Autograd;
using LabelNoiseLab.Tensors;

namespace LabelNoiseLab.Tests;

/// <summary>
/// The convolution kernels against their definitions: the range-based im2col and col2im against
/// the element-by-element references, and the whole Conv2d forward against a direct six-loop
/// convolution, over kernels, strides and paddings (margins wider than the kernel included).
/// </summary>
public class ConvKernelTests
{
    public static TheoryData<int, int, int, int, int> Geometries()
    {
        var data = new TheoryData<int, int, int, int, int>();
        // (H, W, kernel, stride, padding)
        foreach (var (h, w) in new[] { (7, 7), (8, 5), (1, 1), (28, 28) })
        foreach (int k in new[] { 1, 3, 5 })
        foreach (int s in new[] { 1, 2, 3 })
        foreach (int p in new[] { 0, 1, 2, 4 })
            if (h + 2 * p >= k && w + 2 * p >= k)
                data.Add(h, w, k, s, p);
        return data;
    }

    [Theory]
    [MemberData(nameof(Geometries))]
    public void Im2col_and_col2im_match_their_references(int h, int w, int k, int s, int p)
    {
        var rng = new Rng((ulong)(h * 1000 + w * 100 + k * 10 + s + p));
        var x = GradCheck.Random(rng, [3, 2, h, w]);
        var weight = new Tensor(4, 2, k, k);
        var g = Conv2dOp.Geometry.Of(x, weight, s, p);
        int size = g.Patch * g.N * g.OutPlane;
        var fast = Enumerable.Repeat(float.NaN, size).ToArray(); // every entry must be written
        var reference = new float[size];
        Conv2dOp.Im2Col(x.Span, fast, g);
        Conv2dOp.Im2ColReference(x.Span, reference, g);
        Assert.Equal(reference, fast);

        var dcol = GradCheck.Random(rng, [size]);
        var dx0 = GradCheck.Random(rng, [x.Length]);
        var dxFast = dx0.ToArray();
        var dxRef = dx0.ToArray();
        Conv2dOp.Col2ImAdd(dcol.Span, dxFast, g);
        Conv2dOp.Col2ImAddReference(dcol.Span, dxRef, g);
        for (int i = 0; i < dxRef.Length; i++)
            Assert.True(Math.Abs(dxFast[i] - dxRef[i]) <= 1e-5f * (1 + Math.Abs(dxRef[i])), $"dx[{i}]: {dxFast[i]} vs {dxRef[i]}");
    }

    [Theory]
    [InlineData(1, 1, 3, 1, 1, true)]
    [InlineData(3, 5, 3, 2, 1, false)]
    [InlineData(4, 3, 1, 2, 0, true)]
    [InlineData(2, 6, 5, 3, 2, true)]
    public void Conv2d_forward_matches_a_direct_convolution(int c, int co, int k, int s, int p, bool bias)
    {
        var rng = new Rng((ulong)(c * 100 + co * 10 + k));
        int n = 3, h = 9, w = 8;
        var x = GradCheck.Random(rng, [n, c, h, w]);
        var weight = GradCheck.Random(rng, [co, c, k, k]);
        var b = bias ? GradCheck.Random(rng, [co]) : null;
        var y = Conv2dOp.Forward(new Tape(recording: false), x, weight, b, s, p);
        int oh = (h + 2 * p - k) / s + 1, ow = (w + 2 * p - k) / s + 1;
        Assert.Equal([n, co, oh, ow], y.Shape.ToArray());
        for (int i = 0; i < n; i++)
        for (int o = 0; o < co; o++)
        for (int oy = 0; oy < oh; oy++)
        for (int ox = 0; ox < ow; ox++)
        {
            double sum = b?[o] ?? 0;
            for (int ch = 0; ch < c; ch++)
            for (int a = 0; a < k; a++)
            for (int bb = 0; bb < k; bb++)
            {
                int iy = oy * s - p + a, ix = ox * s - p + bb;
                if (iy >= 0 && iy < h && ix >= 0 && ix < w)
                    sum += weight[((o * c + ch) * k + a) * k + bb] * (double)x[((i * c + ch) * h + iy) * w + ix];
            }
            float actual = y[((i * co + o) * oh + oy) * ow + ox];
            Assert.True(Math.Abs(actual - sum) <= 1e-4 * (1 + Math.Abs(sum)), $"y[{i},{o},{oy},{ox}] = {actual}, direct {sum}");
        }
    }

    /// <summary>
    /// The input gradient against its definition, dx[n, c, iy, ix] = Σ w[o, c, a, b]·dy[n, o, oy, ox]
    /// over iy = oy·s − p + a, ix = ox·s − p + b, written and accumulated: at stride 1 with a square
    /// kernel (the convolution of dy with the flipped kernel, <see cref="Conv2dOp.TransposedGeometry"/>)
    /// and otherwise (Wᵀ·G folded back).
    /// </summary>
    [Theory]
    [InlineData(3, 3, 1, 1, true)]
    [InlineData(3, 3, 1, 0, true)]
    [InlineData(3, 3, 1, 2, true)]
    [InlineData(5, 5, 1, 2, true)]
    [InlineData(2, 2, 1, 1, true)]
    [InlineData(3, 3, 1, 3, false)]
    [InlineData(3, 3, 2, 1, false)]
    [InlineData(3, 2, 1, 1, false)]
    [InlineData(1, 1, 1, 0, false)]
    public void Conv2d_input_gradient_matches_its_definition(int k, int kw, int s, int p, bool transposed)
    {
        var rng = new Rng((ulong)(k * 1000 + kw * 100 + s * 10 + p));
        int n = 3, c = 4, co = 5, h = 9, w = 8;
        var x = GradCheck.Random(rng, [n, c, h, w]);
        var weight = GradCheck.Random(rng, [co, c, k, kw]);
        var g = Conv2dOp.Geometry.Of(x, weight, s, p);
        Assert.Equal(transposed, Conv2dOp.TransposedGeometry(g) is not null);
        var dyValues = GradCheck.Random(rng, [n, co, g.OH, g.OW]);
        var prior = GradCheck.Random(rng, [x.Length]);
        foreach (bool accumulate in new[] { false, true })
        {
            x.RequiresGrad = true;
            x.ZeroGrad();
            if (accumulate)
            {
                prior.Span.CopyTo(x.EnsureGrad().Span);
                x.GradIsZero = false;
            }
            var tape = new Tape();
            var y = Conv2dOp.Forward(tape, x, weight, null, s, p);
            tape.Backward(SumOp.Forward(tape, MulOp.Forward(tape, y, dyValues)));
            var expected = new double[x.Length];
            for (int i = 0; i < n; i++)
            for (int o = 0; o < co; o++)
            for (int oy = 0; oy < g.OH; oy++)
            for (int ox = 0; ox < g.OW; ox++)
            for (int ch = 0; ch < c; ch++)
            for (int a = 0; a < k; a++)
            for (int b = 0; b < kw; b++)
            {
                int iy = oy * s - p + a, ix = ox * s - p + b;
                if (iy >= 0 && iy < h && ix >= 0 && ix < w)
                    expected[((i * c + ch) * h + iy) * w + ix] += weight[((o * c + ch) * k + a) * kw + b] * (double)dyValues[((i * co + o) * g.OH + oy) * g.OW + ox];
            }
            var dx = x.GradSpan();
            for (int j = 0; j < expected.Length; j++)
            {
                double want = expected[j] + (accumulate ? prior[j] : 0);
                Assert.True(Math.Abs(dx[j] - want) <= 1e-4 * (1 + Math.Abs(want)), $"dx[{j}] = {dx[j]}, definition {want} (accumulate {accumulate})");
            }
        }
    }

    /// <summary>
    /// Working through the batch in blocks of samples (one per block; two, with a shorter last
    /// block; three, the most <see cref="Conv2dOp.MinBlocks"/> allows for 17 samples) gives the
    /// same output and the same input, weight and bias gradients, writing and accumulating into them.
    /// </summary>
    [Theory]
    [InlineData(3, 3, 1, 1, true)]
    [InlineData(3, 3, 2, 1, false)]
    [InlineData(1, 1, 2, 0, true)]
    public void Conv2d_in_chunks_of_samples_matches_the_whole_batch(int k, int kw, int s, int p, bool bias)
    {
        var rng = new Rng((ulong)(k * 10 + s + p));
        int n = 17, c = 3, co = 4;
        var x = GradCheck.Random(rng, [n, c, 9, 8]);
        var weight = GradCheck.Random(rng, [co, c, k, kw]);
        var b = bias ? GradCheck.Random(rng, [co]) : null;
        var g = Conv2dOp.Geometry.Of(x, weight, s, p);
        Tensor[] inputs = b is null ? [x, weight] : [x, weight, b];
        var prior = inputs.Select(t => GradCheck.Random(rng, [t.Length])).ToArray();
        (float[] Y, float[][] Grads) Run(int budget, bool accumulate)
        {
            var tape = new Tape { ConvChunkFloats = budget };
            for (int i = 0; i < inputs.Length; i++)
            {
                inputs[i].RequiresGrad = true;
                inputs[i].ZeroGrad();
                if (accumulate)
                {
                    prior[i].Span.CopyTo(inputs[i].EnsureGrad().Span);
                    inputs[i].GradIsZero = false;
                }
            }
            var y = Conv2dOp.Forward(tape, x, weight, b, s, p);
            var r = GradCheck.Random(new Rng(5), y.Shape.ToArray());
            tape.Backward(SumOp.Forward(tape, MulOp.Forward(tape, y, r)));
            return (y.Span.ToArray(), inputs.Select(t => t.GradSpan().ToArray()).ToArray());
        }
        foreach (bool accumulate in new[] { false, true })
        {
            var whole = Run(1 << 20, accumulate);
            Assert.Equal(3, Conv2dOp.ChunkSamples(g, 1 << 20)); // ⌈17 / MinBlocks⌉ = 3 samples a block, 6 blocks
            Assert.Equal(1, Conv2dOp.ChunkSamples(g with { N = 5 }, 1 << 20)); // 5 blocks of one
            foreach (int budget in new[] { 1, 2 * g.Patch * g.OutPlane })
            {
                Assert.Equal(budget == 1 ? 1 : 2, Conv2dOp.ChunkSamples(g, budget));
                var chunked = Run(budget, accumulate);
                for (int j = 0; j < whole.Y.Length; j++)
                    Assert.True(Math.Abs(whole.Y[j] - chunked.Y[j]) <= 1e-5f * (1 + Math.Abs(whole.Y[j])), $"y[{j}]: {whole.Y[j]} vs {chunked.Y[j]}");
                for (int i = 0; i < inputs.Length; i++)
                for (int j = 0; j < whole.Grads[i].Length; j++)
                    Assert.True(Math.Abs(whole.Grads[i][j] - chunked.Grads[i][j]) <= 1e-5f * (1 + Math.Abs(whole.Grads[i][j])),
                        $"input {i}, gradient [{j}]: whole batch {whole.Grads[i][j]}, chunks of {budget} floats {chunked.Grads[i][j]}");
            }
        }
    }
}
