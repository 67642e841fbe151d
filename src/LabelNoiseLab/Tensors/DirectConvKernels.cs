using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace LabelNoiseLab.Tensors;

/// <summary>
/// Stride-1 convolution of one sample computed directly, without unfolding the input.
/// The sample's planes are first copied into zero-padded planes of width Wp = W + 2·PadW
/// (<see cref="Pad"/>). An output position (oy, ox) is then the flat index q = oy·Wp + ox, and
/// out[o][q] = Σ_c Σ_i Σ_j w[o, c, i, j] · xp[c][q + i·Wp + j]: for each tap (c, i, j) the
/// positions q, q + 1, … read consecutive floats, so the sum runs over whole vectors of 8
/// positions at once. A register block holds <see cref="Channels"/> output channels × 24
/// positions (12 accumulators, each tap one broadcast weight per channel and 3 loads); positions
/// whose ox ≥ OW (the Wp − OW columns past each row's end) are computed and dropped by
/// <see cref="CopyOut"/>. Each output is summed in the same order (c, then i, then j) whatever
/// the block, so the bits do not depend on how samples are spread over threads.
/// Needs AVX2 with FMA (<see cref="IsSupported"/>); callers fall back to im2col otherwise.
/// </summary>
internal static unsafe class DirectConv
{
    /// <summary>Output channels per register block; the packed weights pad the channel count to a multiple of it with zeros.</summary>
    internal const int Channels = 4;

    private const int Lanes = 8; // floats in a Vector256

    /// <summary>Whether this CPU has the instructions the kernel uses.</summary>
    public static bool IsSupported => Avx.IsSupported && Fma.IsSupported;

    /// <summary>
    /// One sample's convolution: C input channels of H×W, Co output channels, a KH×KW kernel and
    /// zero padding PadH rows above and below, PadW columns left and right.
    /// </summary>
    internal readonly record struct Layout(int C, int H, int W, int Co, int KH, int KW, int PadH, int PadW)
    {
        public int Hp => H + 2 * PadH;
        public int Wp => W + 2 * PadW;
        public int OH => Hp - KH + 1;
        public int OW => Wp - KW + 1;

        /// <summary>Flat output positions computed per channel: OH rows of Wp, rounded up to whole vectors.</summary>
        public int Positions => (OH * Wp + Lanes - 1) / Lanes * Lanes;

        /// <summary>Floats per padded input plane: the padded image, plus the slack the last vector's taps read past it.</summary>
        public int InPlane => Math.Max(Hp * Wp, Positions + (KH - 1) * Wp + KW - 1);

        public int ChannelBlocks => (Co + Channels - 1) / Channels;

        /// <summary>Floats of <see cref="PackWeights"/>' output.</summary>
        public int PackedWeights => ChannelBlocks * Channels * C * KH * KW;

        /// <summary>Floats of one sample's padded input (<see cref="Pad"/>).</summary>
        public int PaddedInput => C * InPlane;

        /// <summary>Floats of one sample's output before <see cref="CopyOut"/>: [ChannelBlocks·Channels][Positions].</summary>
        public int Output => ChannelBlocks * Channels * Positions;

        /// <summary>Floats per sample in the weight gradient's layouts (<see cref="PadSamples"/>, <see cref="FlattenGradient"/>): the padded plane rounded up to whole vectors.</summary>
        public int SampleStride => (InPlane + Lanes - 1) / Lanes * Lanes;

        /// <summary>Floats of <see cref="PadSamples"/>' output for n samples: [C][n][SampleStride], and the slack the last taps read past it.</summary>
        public int PaddedSamples(int n) => C * n * SampleStride + (KH - 1) * Wp + KW + 3 * Lanes;

        /// <summary>Samples <see cref="WeightGradient"/> sums at once: as many as keep their input planes and 4 channels' gradients within 24 KB, in L1 (at least one).</summary>
        public int GradientGroup => Math.Max(1, 6144 / (SampleStride * (Channels + 1)));

        /// <summary>Floats of <see cref="FlattenGradient"/>'s output for n samples: [Co][n][SampleStride].</summary>
        public int FlatGradient(int n) => Co * n * SampleStride;

        /// <summary>Whether the layout is one the kernel computes (at least one output, non-negative padding).</summary>
        public bool IsValid => C > 0 && Co > 0 && KH > 0 && KW > 0 && PadH >= 0 && PadW >= 0 && OH > 0 && OW > 0;
    }

    /// <summary>
    /// packed[((b·C + c)·KH·KW + i·KW + j)·Channels + r] = w[b·Channels + r, c, i, j] (0 for channels past Co),
    /// with w [Co, C, KH, KW]. With <paramref name="transposedFlipped"/> the kernel is that of the
    /// input gradient instead: w is [C, Co, KH, KW] (the forward's weight, whose output channels
    /// are this layout's input channels) and the tap (i, j) reads w[c, o, KH − 1 − i, KW − 1 − j].
    /// </summary>
    public static void PackWeights(ReadOnlySpan<float> w, Span<float> packed, in Layout l, bool transposedFlipped = false)
    {
        int kk = l.KH * l.KW;
        if (w.Length < l.Co * l.C * kk || packed.Length < l.PackedWeights)
            throw new ArgumentException($"direct conv: {w.Length} weights or {packed.Length} packed floats too few for {l}");
        for (int b = 0; b < l.ChannelBlocks; b++)
        for (int c = 0; c < l.C; c++)
        for (int i = 0; i < l.KH; i++)
        for (int j = 0; j < l.KW; j++)
        for (int r = 0; r < Channels; r++)
        {
            int o = b * Channels + r;
            float v = 0f;
            if (o < l.Co)
                v = transposedFlipped
                    ? w[(c * l.Co + o) * kk + (l.KH - 1 - i) * l.KW + (l.KW - 1 - j)]
                    : w[(o * l.C + c) * kk + i * l.KW + j];
            packed[((b * l.C + c) * kk + i * l.KW + j) * Channels + r] = v;
        }
    }

    /// <summary>Copies one sample x [C, H, W] into zero-padded planes xp [C][InPlane] (borders and slack cleared).</summary>
    public static void Pad(float* x, float* xp, in Layout l)
    {
        int plane = l.H * l.W, inPlane = l.InPlane, wp = l.Wp;
        for (int c = 0; c < l.C; c++)
        {
            float* dst = xp + (long)c * inPlane;
            float* src = x + (long)c * plane;
            new Span<float>(dst, inPlane).Clear();
            for (int y = 0; y < l.H; y++)
                new ReadOnlySpan<float>(src + y * l.W, l.W).CopyTo(new Span<float>(dst + (y + l.PadH) * wp + l.PadW, l.W));
        }
    }

    /// <summary>out [ChannelBlocks·Channels][Positions] from the padded input xp (<see cref="Pad"/>) and packed weights (<see cref="PackWeights"/>).</summary>
    public static void Run(float* xp, float* packed, float* output, in Layout l)
    {
        int positions = l.Positions, taps = l.C * l.KH * l.KW;
        for (int b = 0; b < l.ChannelBlocks; b++)
        {
            float* wb = packed + (long)b * taps * Channels;
            float* ob = output + (long)b * Channels * positions;
            // Blocks of 3 vectors, the rest as blocks of 2 (a lone vector left over turns 3 + 1 into 2 + 2):
            // a block of one vector has too few accumulators to hide the FMA latency.
            int vectors = positions / Lanes, threes = vectors / 3, rest = vectors % 3;
            if (rest == 1 && threes > 0)
            {
                threes--;
                rest = 4;
            }
            int q = 0;
            for (int t = 0; t < threes; t++, q += 3 * Lanes)
                Block3(xp + q, wb, ob + q, positions, l);
            for (; rest >= 2; rest -= 2, q += 2 * Lanes)
                Block2(xp + q, wb, ob + q, positions, l);
            if (rest == 1)
                Block1(xp + q, wb, ob + q, positions, l);
        }
    }

    /// <summary>Channels × 24 positions starting at xp (already offset by q): 12 accumulators over every tap.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Block3(float* xp, float* w, float* o, int stride, in Layout l)
    {
        Vector256<float> a00 = default, a01 = default, a02 = default;
        Vector256<float> a10 = default, a11 = default, a12 = default;
        Vector256<float> a20 = default, a21 = default, a22 = default;
        Vector256<float> a30 = default, a31 = default, a32 = default;
        int inPlane = l.InPlane, wp = l.Wp, kh = l.KH, kw = l.KW;
        for (int c = 0; c < l.C; c++)
        {
            float* xc = xp + (long)c * inPlane;
            for (int i = 0; i < kh; i++)
            {
                float* xr = xc + i * wp;
                for (int j = 0; j < kw; j++, w += Channels)
                {
                    var x0 = Avx.LoadVector256(xr + j);
                    var x1 = Avx.LoadVector256(xr + j + Lanes);
                    var x2 = Avx.LoadVector256(xr + j + 2 * Lanes);
                    var v = Vector256.Create(w[0]);
                    a00 = Fma.MultiplyAdd(x0, v, a00);
                    a01 = Fma.MultiplyAdd(x1, v, a01);
                    a02 = Fma.MultiplyAdd(x2, v, a02);
                    v = Vector256.Create(w[1]);
                    a10 = Fma.MultiplyAdd(x0, v, a10);
                    a11 = Fma.MultiplyAdd(x1, v, a11);
                    a12 = Fma.MultiplyAdd(x2, v, a12);
                    v = Vector256.Create(w[2]);
                    a20 = Fma.MultiplyAdd(x0, v, a20);
                    a21 = Fma.MultiplyAdd(x1, v, a21);
                    a22 = Fma.MultiplyAdd(x2, v, a22);
                    v = Vector256.Create(w[3]);
                    a30 = Fma.MultiplyAdd(x0, v, a30);
                    a31 = Fma.MultiplyAdd(x1, v, a31);
                    a32 = Fma.MultiplyAdd(x2, v, a32);
                }
            }
        }
        Avx.Store(o, a00); Avx.Store(o + Lanes, a01); Avx.Store(o + 2 * Lanes, a02);
        o += stride;
        Avx.Store(o, a10); Avx.Store(o + Lanes, a11); Avx.Store(o + 2 * Lanes, a12);
        o += stride;
        Avx.Store(o, a20); Avx.Store(o + Lanes, a21); Avx.Store(o + 2 * Lanes, a22);
        o += stride;
        Avx.Store(o, a30); Avx.Store(o + Lanes, a31); Avx.Store(o + 2 * Lanes, a32);
    }

    /// <summary>Channels × 16 positions, taps in the same order as <see cref="Block3"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Block2(float* xp, float* w, float* o, int stride, in Layout l)
    {
        Vector256<float> a00 = default, a01 = default, a10 = default, a11 = default;
        Vector256<float> a20 = default, a21 = default, a30 = default, a31 = default;
        int inPlane = l.InPlane, wp = l.Wp, kh = l.KH, kw = l.KW;
        for (int c = 0; c < l.C; c++)
        {
            float* xc = xp + (long)c * inPlane;
            for (int i = 0; i < kh; i++)
            {
                float* xr = xc + i * wp;
                for (int j = 0; j < kw; j++, w += Channels)
                {
                    var x0 = Avx.LoadVector256(xr + j);
                    var x1 = Avx.LoadVector256(xr + j + Lanes);
                    var v = Vector256.Create(w[0]);
                    a00 = Fma.MultiplyAdd(x0, v, a00);
                    a01 = Fma.MultiplyAdd(x1, v, a01);
                    v = Vector256.Create(w[1]);
                    a10 = Fma.MultiplyAdd(x0, v, a10);
                    a11 = Fma.MultiplyAdd(x1, v, a11);
                    v = Vector256.Create(w[2]);
                    a20 = Fma.MultiplyAdd(x0, v, a20);
                    a21 = Fma.MultiplyAdd(x1, v, a21);
                    v = Vector256.Create(w[3]);
                    a30 = Fma.MultiplyAdd(x0, v, a30);
                    a31 = Fma.MultiplyAdd(x1, v, a31);
                }
            }
        }
        Avx.Store(o, a00); Avx.Store(o + Lanes, a01);
        o += stride;
        Avx.Store(o, a10); Avx.Store(o + Lanes, a11);
        o += stride;
        Avx.Store(o, a20); Avx.Store(o + Lanes, a21);
        o += stride;
        Avx.Store(o, a30); Avx.Store(o + Lanes, a31);
    }

    /// <summary>Channels × 8 positions (a row of blocks' last vector when there is only one), taps in the same order as <see cref="Block3"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Block1(float* xp, float* w, float* o, int stride, in Layout l)
    {
        Vector256<float> a0 = default, a1 = default, a2 = default, a3 = default;
        int inPlane = l.InPlane, wp = l.Wp, kh = l.KH, kw = l.KW;
        for (int c = 0; c < l.C; c++)
        {
            float* xc = xp + (long)c * inPlane;
            for (int i = 0; i < kh; i++)
            {
                float* xr = xc + i * wp;
                for (int j = 0; j < kw; j++, w += Channels)
                {
                    var x0 = Avx.LoadVector256(xr + j);
                    a0 = Fma.MultiplyAdd(x0, Vector256.Create(w[0]), a0);
                    a1 = Fma.MultiplyAdd(x0, Vector256.Create(w[1]), a1);
                    a2 = Fma.MultiplyAdd(x0, Vector256.Create(w[2]), a2);
                    a3 = Fma.MultiplyAdd(x0, Vector256.Create(w[3]), a3);
                }
            }
        }
        Avx.Store(o, a0);
        Avx.Store(o + stride, a1);
        Avx.Store(o + 2 * stride, a2);
        Avx.Store(o + 3 * stride, a3);
    }

    /// <summary>
    /// Copies n samples x [n][C, H, W] into zero-padded planes xp [C][n][SampleStride] (each plane
    /// as <see cref="Pad"/> writes it, cleared to the stride), then clears the slack after the last.
    /// </summary>
    public static void PadSamples(float* x, float* xp, int n, in Layout l)
    {
        int stride = l.SampleStride, plane = l.H * l.W, wp = l.Wp;
        for (int c = 0; c < l.C; c++)
        for (int s = 0; s < n; s++)
        {
            float* dst = xp + ((long)c * n + s) * stride;
            float* src = x + ((long)s * l.C + c) * plane;
            new Span<float>(dst, stride).Clear();
            for (int y = 0; y < l.H; y++)
                new ReadOnlySpan<float>(src + y * l.W, l.W).CopyTo(new Span<float>(dst + (y + l.PadH) * wp + l.PadW, l.W));
        }
        int total = l.PaddedSamples(n), used = l.C * n * stride;
        new Span<float>(xp + used, total - used).Clear();
    }

    /// <summary>
    /// The output gradient of n samples, dy [n][Co, OH, OW], in the flat positions of the padded
    /// input: g [Co][n][SampleStride] with g[o][s][oy·Wp + ox] = dy[s, o, oy, ox] and zero at every
    /// other position (the columns past OW and the stride's tail), so that a tap's contribution is
    /// one long dot product with the padded input (<see cref="WeightGradient"/>).
    /// </summary>
    public static void FlattenGradient(float* dy, float* g, int n, in Layout l)
    {
        int stride = l.SampleStride, wp = l.Wp, oh = l.OH, ow = l.OW, plane = oh * ow;
        for (int o = 0; o < l.Co; o++)
        for (int s = 0; s < n; s++)
        {
            float* dst = g + ((long)o * n + s) * stride;
            float* src = dy + ((long)s * l.Co + o) * plane;
            new Span<float>(dst, stride).Clear();
            for (int y = 0; y < oh; y++)
                new ReadOnlySpan<float>(src + y * ow, ow).CopyTo(new Span<float>(dst + y * wp, ow));
        }
    }

    /// <summary>
    /// dw [Co, C, KH, KW] += Σ_s Σ_q g[o][s][q] · xp[c][s][q + i·Wp + j] over the n samples laid
    /// out by <see cref="PadSamples"/> and <see cref="FlattenGradient"/>. The samples are taken a
    /// few at a time (<paramref name="group"/>, so a group's planes stay in cache); within a group
    /// the sum runs as vectors along the flat positions, 4 output channels × 3 taps of a kernel row
    /// at once, and each group's vector sums are reduced and added to dw in group order.
    /// </summary>
    public static void WeightGradient(float* xp, float* g, int n, float* dw, in Layout l, int group)
    {
        int stride = l.SampleStride, kk = l.KH * l.KW, wp = l.Wp;
        long channel = (long)n * stride;
        for (int s0 = 0; s0 < n; s0 += group)
        {
            int length = Math.Min(group, n - s0) * stride;
            for (int o0 = 0; o0 < l.Co; o0 += Channels)
            {
                // Channels past Co read the last real one's row; their sums are dropped.
                float* g0 = g + Math.Min(o0, l.Co - 1) * channel + (long)s0 * stride;
                float* g1 = g + Math.Min(o0 + 1, l.Co - 1) * channel + (long)s0 * stride;
                float* g2 = g + Math.Min(o0 + 2, l.Co - 1) * channel + (long)s0 * stride;
                float* g3 = g + Math.Min(o0 + 3, l.Co - 1) * channel + (long)s0 * stride;
                for (int c = 0; c < l.C; c++)
                for (int i = 0; i < l.KH; i++)
                for (int j0 = 0; j0 < l.KW; j0 += 3)
                {
                    float* xr = xp + c * channel + (long)s0 * stride + i * wp + j0;
                    var sums = TapSums(xr, g0, g1, g2, g3, length);
                    for (int r = 0; r < Channels && o0 + r < l.Co; r++)
                    for (int jj = 0; jj < 3 && j0 + jj < l.KW; jj++)
                        dw[((o0 + r) * l.C + c) * kk + i * l.KW + j0 + jj] += sums[r * 3 + jj];
                }
            }
        }
    }

    /// <summary>The 12 dot products of g0..g3 with xr, xr + 1 and xr + 2 over <paramref name="length"/> floats (a multiple of 8).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static TapSums12 TapSums(float* xr, float* g0, float* g1, float* g2, float* g3, int length)
    {
        Vector256<float> a00 = default, a01 = default, a02 = default;
        Vector256<float> a10 = default, a11 = default, a12 = default;
        Vector256<float> a20 = default, a21 = default, a22 = default;
        Vector256<float> a30 = default, a31 = default, a32 = default;
        for (int q = 0; q < length; q += Lanes)
        {
            var x0 = Avx.LoadVector256(xr + q);
            var x1 = Avx.LoadVector256(xr + q + 1);
            var x2 = Avx.LoadVector256(xr + q + 2);
            var d = Avx.LoadVector256(g0 + q);
            a00 = Fma.MultiplyAdd(x0, d, a00);
            a01 = Fma.MultiplyAdd(x1, d, a01);
            a02 = Fma.MultiplyAdd(x2, d, a02);
            d = Avx.LoadVector256(g1 + q);
            a10 = Fma.MultiplyAdd(x0, d, a10);
            a11 = Fma.MultiplyAdd(x1, d, a11);
            a12 = Fma.MultiplyAdd(x2, d, a12);
            d = Avx.LoadVector256(g2 + q);
            a20 = Fma.MultiplyAdd(x0, d, a20);
            a21 = Fma.MultiplyAdd(x1, d, a21);
            a22 = Fma.MultiplyAdd(x2, d, a22);
            d = Avx.LoadVector256(g3 + q);
            a30 = Fma.MultiplyAdd(x0, d, a30);
            a31 = Fma.MultiplyAdd(x1, d, a31);
            a32 = Fma.MultiplyAdd(x2, d, a32);
        }
        TapSums12 sums = default;
        sums[0] = Vector256.Sum(a00); sums[1] = Vector256.Sum(a01); sums[2] = Vector256.Sum(a02);
        sums[3] = Vector256.Sum(a10); sums[4] = Vector256.Sum(a11); sums[5] = Vector256.Sum(a12);
        sums[6] = Vector256.Sum(a20); sums[7] = Vector256.Sum(a21); sums[8] = Vector256.Sum(a22);
        sums[9] = Vector256.Sum(a30); sums[10] = Vector256.Sum(a31); sums[11] = Vector256.Sum(a32);
        return sums;
    }

    [InlineArray(12)]
    private struct TapSums12
    {
        private float _element;
    }

    /// <summary>
    /// y [Co, OH, OW] of one sample from the kernel's output: y[o, oy, ox] = out[o][oy·Wp + ox]
    /// (+ bias[o] when given), or y += out with <paramref name="accumulate"/>.
    /// </summary>
    public static void CopyOut(float* output, float* y, float* bias, bool accumulate, in Layout l)
    {
        int positions = l.Positions, wp = l.Wp, oh = l.OH, ow = l.OW;
        for (int o = 0; o < l.Co; o++)
        {
            float* src = output + (long)o * positions;
            float* dst = y + (long)o * oh * ow;
            for (int r = 0; r < oh; r++)
            {
                var s = new ReadOnlySpan<float>(src + r * wp, ow);
                var d = new Span<float>(dst + r * ow, ow);
                if (accumulate)
                    System.Numerics.Tensors.TensorPrimitives.Add(d, s, d);
                else if (bias != null)
                    System.Numerics.Tensors.TensorPrimitives.Add(s, bias[o], d);
                else
                    s.CopyTo(d);
            }
        }
    }
}
