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
        (float[] Y, float[][] Grads) Run(int budget, bool accumulate) =>
            ForwardBackward(new Tape { ConvChunkFloats = budget }, x, weight, b, s, p, inputs, prior, accumulate);
        foreach (bool accumulate in new[] { false, true })
        {
            var whole = Run(1 << 20, accumulate);
            Assert.Equal(3, Conv2dOp.ChunkSamples(g, 1 << 20)); // ⌈17 / MinBlocks⌉ = 3 samples a block, 6 blocks
            Assert.Equal(1, Conv2dOp.ChunkSamples(g with { N = 5 }, 1 << 20)); // 5 blocks of one
            foreach (int budget in new[] { 1, 2 * g.Patch * g.OutPlane })
            {
                Assert.Equal(budget == 1 ? 1 : 2, Conv2dOp.ChunkSamples(g, budget));
                var chunked = Run(budget, accumulate);
                AssertClose(whole, chunked, 1e-5f, 1e-5f, $"whole batch against chunks of {budget} floats (accumulate {accumulate})");
            }
        }
    }

    public static TheoryData<int, int, int, int, int, int, int> DirectLayouts()
    {
        var data = new TheoryData<int, int, int, int, int, int, int>();
        // (C, Co, H, W, KH, KW, padding)
        data.Add(1, 1, 1, 1, 1, 1, 0);
        data.Add(3, 5, 7, 7, 3, 3, 1);
        data.Add(4, 4, 8, 5, 3, 3, 0);
        data.Add(2, 9, 9, 8, 5, 5, 2);
        data.Add(5, 3, 6, 6, 2, 2, 1);
        data.Add(3, 4, 9, 7, 3, 2, 1);
        data.Add(2, 6, 5, 5, 3, 3, 4);
        data.Add(16, 16, 28, 28, 3, 3, 1);
        data.Add(6, 7, 14, 14, 1, 1, 0);
        return data;
    }

    /// <summary>
    /// The direct kernel (pad, run, copy out) against six nested loops, for the forward kernel and
    /// for the flipped, transposed one the input gradient uses; written with a bias and accumulated.
    /// </summary>
    [Theory]
    [MemberData(nameof(DirectLayouts))]
    public unsafe void Direct_kernel_matches_a_naive_convolution(int c, int co, int h, int w, int kh, int kw, int p)
    {
        if (!DirectConv.IsSupported)
            Assert.Skip("no AVX2 with FMA on this CPU: convolutions use im2col");
        var rng = new Rng((ulong)(c * 10_000 + co * 1000 + h * 10 + kh + p));
        foreach (bool transposed in new[] { false, true })
        {
            var l = new DirectConv.Layout(c, h, w, co, kh, kw, p, p);
            // Transposed: the weight is stored as the forward's [Co', C', KH, KW] with Co' = c (this layout's input) and C' = co.
            var weight = GradCheck.Random(rng, transposed ? [c, co, kh, kw] : [co, c, kh, kw]);
            var x = GradCheck.Random(rng, [c, h, w]);
            var bias = GradCheck.Random(rng, [co]);
            var prior = GradCheck.Random(rng, [co * l.OH * l.OW]);
            float Weight(int o, int ch, int i, int j) => transposed
                ? weight[((ch * co + o) * kh + kh - 1 - i) * kw + kw - 1 - j]
                : weight[((o * c + ch) * kh + i) * kw + j];
            var packed = new float[l.PackedWeights];
            var padded = Enumerable.Repeat(float.NaN, l.PaddedInput).ToArray(); // every float of it must be written
            var output = new float[l.Output];
            DirectConv.PackWeights(weight.Span, packed, l, transposed);
            foreach (bool accumulate in new[] { false, true })
            {
                var y = accumulate ? prior.Span.ToArray() : Enumerable.Repeat(float.NaN, co * l.OH * l.OW).ToArray();
                fixed (float* px = x.Span, pp = padded, pk = packed, po = output, pb = bias.Span, py = y)
                {
                    DirectConv.Pad(px, pp, l);
                    DirectConv.Run(pp, pk, po, l);
                    DirectConv.CopyOut(po, py, accumulate ? null : pb, accumulate, l);
                }
                for (int o = 0; o < co; o++)
                for (int oy = 0; oy < l.OH; oy++)
                for (int ox = 0; ox < l.OW; ox++)
                {
                    int at = (o * l.OH + oy) * l.OW + ox;
                    double want = accumulate ? prior[at] : bias[o];
                    for (int ch = 0; ch < c; ch++)
                    for (int i = 0; i < kh; i++)
                    for (int j = 0; j < kw; j++)
                    {
                        int iy = oy - p + i, ix = ox - p + j;
                        if (iy >= 0 && iy < h && ix >= 0 && ix < w)
                            want += Weight(o, ch, i, j) * (double)x[(ch * h + iy) * w + ix];
                    }
                    Assert.True(Math.Abs(y[at] - want) <= 1e-5 * (1 + Math.Abs(want)), $"y[{o}, {oy}, {ox}] = {y[at]}, naive {want} (transposed {transposed}, accumulate {accumulate})");
                }
            }
        }
    }

    /// <summary>
    /// The direct weight gradient (each sample padded, its dy transposed, summed into the
    /// accumulator, then scattered) against the naive sum over samples and positions, written and
    /// added to what the gradient held.
    /// </summary>
    [Theory]
    [MemberData(nameof(DirectLayouts))]
    public unsafe void Direct_weight_gradient_matches_a_naive_sum(int c, int co, int h, int w, int kh, int kw, int p)
    {
        if (!DirectConv.IsSupported)
            Assert.Skip("no AVX2 with FMA on this CPU: convolutions use im2col");
        var rng = new Rng((ulong)(c * 10_000 + co * 1000 + h * 10 + kh + p + 7));
        const int n = 3;
        var l = new DirectConv.Layout(c, h, w, co, kh, kw, p, p);
        var x = GradCheck.Random(rng, [n, c, h, w]);
        var dy = GradCheck.Random(rng, [n, co, l.OH, l.OW]);
        var prior = GradCheck.Random(rng, [co * c * kh * kw]);
        var padded = new float[l.PaddedInput];
        var transposed = Enumerable.Repeat(float.NaN, l.TransposedGradient).ToArray(); // every float of it must be written
        var acc = new float[l.GradientAccumulator];
        var sums = new double[prior.Length];
        for (int o = 0; o < co; o++)
        for (int ch = 0; ch < c; ch++)
        for (int i = 0; i < kh; i++)
        for (int j = 0; j < kw; j++)
        {
            int at = ((o * c + ch) * kh + i) * kw + j;
            for (int s = 0; s < n; s++)
            for (int oy = 0; oy < l.OH; oy++)
            for (int ox = 0; ox < l.OW; ox++)
            {
                int iy = oy - p + i, ix = ox - p + j;
                if (iy >= 0 && iy < h && ix >= 0 && ix < w)
                    sums[at] += dy[((s * co + o) * l.OH + oy) * l.OW + ox] * (double)x[((s * c + ch) * h + iy) * w + ix];
            }
        }
        fixed (float* px = x.Span, pdy = dy.Span, pp = padded, pt = transposed, pa = acc)
            for (int s = 0; s < n; s++)
            {
                DirectConv.Pad(px + s * c * h * w, pp, l);
                DirectConv.TransposeGradient(pdy + s * co * l.OH * l.OW, pt, l);
                DirectConv.WeightGradient(pp, pt, pa, l);
            }
        foreach (bool accumulate in new[] { false, true })
        {
            var dw = accumulate ? prior.Span.ToArray() : Enumerable.Repeat(float.NaN, prior.Length).ToArray();
            fixed (float* pa = acc, pw = dw)
                DirectConv.ScatterGradient(pa, pw, accumulate, l);
            for (int k = 0; k < dw.Length; k++)
            {
                double want = sums[k] + (accumulate ? prior[k] : 0);
                Assert.True(Math.Abs(dw[k] - want) <= 1e-4 * (1 + Math.Abs(want)), $"dw[{k}] = {dw[k]}, naive {want} (accumulate {accumulate})");
            }
        }
    }

    /// <summary>
    /// A whole Conv2d, forward and every gradient (written and accumulated), gives the same values
    /// through the direct kernel as through im2col, over stride-1 geometries (the padding wider
    /// than the kernel included, where the input gradient folds back instead).
    /// </summary>
    [Theory]
    [InlineData(3, 3, 1, true)]
    [InlineData(3, 3, 0, false)]
    [InlineData(5, 5, 2, true)]
    [InlineData(3, 2, 1, false)]
    [InlineData(1, 1, 0, true)]
    [InlineData(3, 3, 3, true)]
    public void Conv2d_direct_matches_im2col(int k, int kw, int p, bool bias)
    {
        if (!DirectConv.IsSupported)
            Assert.Skip("no AVX2 with FMA on this CPU: convolutions use im2col");
        var rng = new Rng((ulong)(k * 100 + kw * 10 + p));
        int n = 11, c = 5, co = 6;
        var x = GradCheck.Random(rng, [n, c, 10, 9]);
        var weight = GradCheck.Random(rng, [co, c, k, kw]);
        var b = bias ? GradCheck.Random(rng, [co]) : null;
        Tensor[] inputs = b is null ? [x, weight] : [x, weight, b];
        var prior = inputs.Select(t => GradCheck.Random(rng, [t.Length])).ToArray();
        (float[] Y, float[][] Grads) Run(bool direct, bool accumulate)
        {
            var tape = new Tape { DirectConvolution = direct };
            Assert.Equal(direct, Conv2dOp.DirectLayout(tape, Conv2dOp.Geometry.Of(x, weight, 1, p)) is not null);
            return ForwardBackward(tape, x, weight, b, 1, p, inputs, prior, accumulate);
        }
        foreach (bool accumulate in new[] { false, true })
        {
            var unfolded = Run(false, accumulate);
            var direct = Run(true, accumulate);
            AssertClose(unfolded, direct, 1e-5f, 1e-4f, $"im2col against direct (accumulate {accumulate})");
        }
    }

    /// <summary>
    /// One Conv2d forward and backward on <paramref name="tape"/>, the loss Σ y ⊙ r for a fixed random r:
    /// y and the gradients of <paramref name="inputs"/>, written, or added to <paramref name="prior"/> with <paramref name="accumulate"/>.
    /// </summary>
    private static (float[] Y, float[][] Grads) ForwardBackward(Tape tape, Tensor x, Tensor weight, Tensor? b, int s, int p,
        Tensor[] inputs, Tensor[] prior, bool accumulate)
    {
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

    /// <summary>
    /// Every output and every gradient of <paramref name="actual"/> within the relative tolerance
    /// (|e − a| ≤ tol·(1 + |e|)) of <paramref name="expected"/>'s: <paramref name="outputTolerance"/> for y,
    /// <paramref name="gradientTolerance"/> for the gradients.
    /// </summary>
    private static void AssertClose((float[] Y, float[][] Grads) expected, (float[] Y, float[][] Grads) actual,
        float outputTolerance, float gradientTolerance, string what)
    {
        for (int j = 0; j < expected.Y.Length; j++)
            Assert.True(Math.Abs(expected.Y[j] - actual.Y[j]) <= outputTolerance * (1 + Math.Abs(expected.Y[j])),
                $"{what}: y[{j}] {expected.Y[j]} vs {actual.Y[j]}");
        Assert.Equal(expected.Grads.Length, actual.Grads.Length);
        for (int i = 0; i < expected.Grads.Length; i++)
        for (int j = 0; j < expected.Grads[i].Length; j++)
            Assert.True(Math.Abs(expected.Grads[i][j] - actual.Grads[i][j]) <= gradientTolerance * (1 + Math.Abs(expected.Grads[i][j])),
                $"{what}: input {i}, gradient [{j}] {expected.Grads[i][j]} vs {actual.Grads[i][j]}");
    }
}
