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
/// the block, so the bits do not depend on how samples are spread over threads. The input
/// gradient is the same kernel on dy with the flipped, transposed weights (<see cref="PackWeights"/>);
/// the weight gradient runs position-major instead (<see cref="WeightGradient"/>).
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

        /// <summary>Output channels of the weight gradient's transposed dy (<see cref="TransposeGradient"/>): Co rounded up to 16.</summary>
        public int GradientChannels => (Co + 2 * Lanes - 1) / (2 * Lanes) * (2 * Lanes);

        /// <summary>Floats of one sample's transposed dy: [OH·OW][GradientChannels].</summary>
        public int TransposedGradient => OH * OW * GradientChannels;

        /// <summary>Floats of the weight gradient's accumulator (<see cref="WeightGradient"/>): [C·KH·KW][GradientChannels].</summary>
        public int GradientAccumulator => C * KH * KW * GradientChannels;
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
    /// One sample's output gradient dy [Co, OH, OW] position-major: t[(oy·OW + ox)·GradientChannels + o]
    /// = dy[o, oy, ox], zero for the channels past Co, so that the weight gradient reads 16
    /// channels of one position as two vectors (<see cref="WeightGradient"/>).
    /// </summary>
    public static void TransposeGradient(float* dy, float* t, in Layout l)
    {
        int oc = l.GradientChannels, positions = l.OH * l.OW;
        for (int p = 0; p < positions; p++)
        {
            float* row = t + (long)p * oc;
            for (int o = 0; o < l.Co; o++)
                row[o] = dy[(long)o * positions + p];
            for (int o = l.Co; o < oc; o++)
                row[o] = 0f;
        }
    }

    /// <summary>
    /// One sample's weight gradient added to acc [C·KH·KW][GradientChannels]:
    /// acc[(c·KH + i)·KW + j][o] += Σ_oy Σ_ox dy[o, oy, ox] · xp[c][(oy + i)·Wp + ox + j], from the
    /// padded input (<see cref="Pad"/>) and the transposed gradient (<see cref="TransposeGradient"/>).
    /// Only real output positions are visited (none of the padded columns). A register block is 6
    /// taps × 16 output channels: per position two vector loads of dy, six broadcasts of x, 12 FMAs.
    /// Taps are taken in groups of 6 (a last, shorter group repeats its last tap and drops the sums).
    /// </summary>
    public static void WeightGradient(float* xp, float* t, float* acc, in Layout l)
    {
        int taps = l.C * l.KH * l.KW, oc = l.GradientChannels, kk = l.KH * l.KW;
        Span<int> offsets = stackalloc int[6];
        for (int t0 = 0; t0 < taps; t0 += 6)
        {
            for (int k = 0; k < 6; k++)
            {
                int tap = Math.Min(t0 + k, taps - 1), c = tap / kk, i = tap % kk / l.KW, j = tap % l.KW;
                offsets[k] = c * l.InPlane + i * l.Wp + j;
            }
            int count = Math.Min(6, taps - t0);
            for (int o0 = 0; o0 < oc; o0 += 2 * Lanes)
                Taps6(xp, t + o0, acc + (long)t0 * oc + o0, offsets, count, l);
        }
    }

    /// <summary>Six taps (<paramref name="offsets"/> into xp) × 16 channels (t and acc already offset to them), over every output position.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Taps6(float* xp, float* t, float* acc, ReadOnlySpan<int> offsets, int count, in Layout l)
    {
        Vector256<float> a00 = default, a01 = default, a10 = default, a11 = default, a20 = default, a21 = default;
        Vector256<float> a30 = default, a31 = default, a40 = default, a41 = default, a50 = default, a51 = default;
        float* x0 = xp + offsets[0], x1 = xp + offsets[1], x2 = xp + offsets[2];
        float* x3 = xp + offsets[3], x4 = xp + offsets[4], x5 = xp + offsets[5];
        int oc = l.GradientChannels, oh = l.OH, ow = l.OW, wp = l.Wp;
        for (int oy = 0; oy < oh; oy++)
        {
            int r = oy * wp;
            float* d = t + (long)oy * ow * oc;
            for (int ox = 0; ox < ow; ox++, d += oc)
            {
                var d0 = Avx.LoadVector256(d);
                var d1 = Avx.LoadVector256(d + Lanes);
                int q = r + ox;
                var v = Vector256.Create(x0[q]);
                a00 = Fma.MultiplyAdd(v, d0, a00);
                a01 = Fma.MultiplyAdd(v, d1, a01);
                v = Vector256.Create(x1[q]);
                a10 = Fma.MultiplyAdd(v, d0, a10);
                a11 = Fma.MultiplyAdd(v, d1, a11);
                v = Vector256.Create(x2[q]);
                a20 = Fma.MultiplyAdd(v, d0, a20);
                a21 = Fma.MultiplyAdd(v, d1, a21);
                v = Vector256.Create(x3[q]);
                a30 = Fma.MultiplyAdd(v, d0, a30);
                a31 = Fma.MultiplyAdd(v, d1, a31);
                v = Vector256.Create(x4[q]);
                a40 = Fma.MultiplyAdd(v, d0, a40);
                a41 = Fma.MultiplyAdd(v, d1, a41);
                v = Vector256.Create(x5[q]);
                a50 = Fma.MultiplyAdd(v, d0, a50);
                a51 = Fma.MultiplyAdd(v, d1, a51);
            }
        }
        Add(acc, a00, a01);
        if (count > 1) Add(acc + oc, a10, a11);
        if (count > 2) Add(acc + 2 * oc, a20, a21);
        if (count > 3) Add(acc + 3 * oc, a30, a31);
        if (count > 4) Add(acc + 4 * oc, a40, a41);
        if (count > 5) Add(acc + 5 * oc, a50, a51);
    }

    private static void Add(float* acc, Vector256<float> low, Vector256<float> high)
    {
        Avx.Store(acc, Avx.Add(Avx.LoadVector256(acc), low));
        Avx.Store(acc + Lanes, Avx.Add(Avx.LoadVector256(acc + Lanes), high));
    }

    /// <summary>dw [Co, C·KH·KW] (+)= the accumulator [C·KH·KW][GradientChannels], transposed.</summary>
    public static void ScatterGradient(float* acc, float* dw, bool accumulate, in Layout l)
    {
        int taps = l.C * l.KH * l.KW, oc = l.GradientChannels;
        for (int o = 0; o < l.Co; o++)
        for (int tap = 0; tap < taps; tap++)
        {
            float v = acc[(long)tap * oc + o];
            dw[(long)o * taps + tap] = accumulate ? dw[(long)o * taps + tap] + v : v;
        }
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
