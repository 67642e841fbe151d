using LabelNoiseLab.Tensors;

namespace LabelNoiseLab.Autograd;

/// <summary>
/// 2-D convolution: x [N, C, H, W], weight [Co, C, KH, KW], optional bias [Co] → y [N, Co, OH, OW].
/// At stride 1 on a CPU with AVX2 and FMA the direct kernels compute the forward and every gradient
/// without unfolding (<see cref="DirectConv"/>, sample by sample within the blocks below; off with
/// <see cref="Tape.DirectConvolution"/>); otherwise im2col + GEMM. The batch is cut into blocks of samples (<see cref="ChunkSamples"/>: the
/// unfolded input of a block, [C·KH·KW, n·OH·OW] with one column per output position, fits
/// <see cref="Tape.ConvChunkFloats"/>, and there are at least <see cref="MinBlocks"/> blocks when
/// the batch allows). The blocks run in parallel (<see cref="ParallelRange"/>), each start to end
/// on one thread: unfold into that thread's scratch, multiply, copy the channel-major product out
/// while it is still in cache. Nothing activation-sized is saved: the backward unfolds each block
/// of the input again for the weight gradient. At stride 1 (square kernel, <see cref="TransposedGeometry"/>)
/// the input gradient is the convolution of dy with the flipped kernel; otherwise Wᵀ·G is folded
/// back onto the input (col2im). The blocks depend on the batch and the budget, not
/// on the thread count, and the weight and bias gradients are summed over blocks in block order,
/// so the bits are the same on any number of threads.
/// </summary>
public sealed class Conv2dOp : Op
{
    private static readonly Conv2dOp Instance = new();

    /// <summary>The fewest blocks a batch is cut into when it has that many samples (so every thread gets a few).</summary>
    internal const int MinBlocks = 8;

    /// <summary>
    /// y [N, Co, OH, OW] with OH = (H + 2·padding − KH)/stride + 1 (likewise OW), zero padding.
    /// Throws a <see cref="ShapeException"/> when the shapes do not fit or the kernel exceeds the padded input,
    /// and an <see cref="ArgumentOutOfRangeException"/> for stride &lt; 1 or padding &lt; 0.
    /// </summary>
    public static unsafe Tensor Forward(Tape tape, Tensor x, Tensor weight, Tensor? bias, int stride, int padding)
    {
        if (x.Rank != 4 || weight.Rank != 4 || weight.Dim(1) != x.Dim(1))
            throw new ShapeException($"conv2d: input {x.Describe()} (expected [N, C, H, W]) does not fit weight {weight.Describe()} (expected [Co, C, KH, KW])");
        if (bias is not null && bias.Length != weight.Dim(0))
            throw new ShapeException($"conv2d: bias {bias.Describe()} does not fit weight {weight.Describe()}");
        var g = Geometry.Of(x, weight, stride, padding);
        var y = tape.Workspace(g.N, g.Co, g.OH, g.OW);
        var plan = Plan.Of(g, tape.ConvChunkFloats);
        if (DirectLayout(tape, g) is { } l)
        {
            var packed = tape.Scratch(2, l.PackedWeights);
            DirectConv.PackWeights(weight.Span, packed, l);
            var padded = tape.Scratch(0, plan.Lanes * l.PaddedInput);
            var output = tape.Scratch(1, plan.Lanes * l.Output);
            fixed (float* px = x.Span, pb = bias is null ? default : bias.Span, py = y.Span, pk = packed, pp = padded, po = output)
            {
                var body = new DirectBody(plan, l, px, g.InSample, pk, bias is null ? null : pb, py, g.OutSample, false, pp, po);
                ParallelRange.For(plan.Blocks, plan.Work, ref body);
            }
        }
        else
        {
            var col = tape.Scratch(0, plan.Lanes * plan.ColFloats);
            var yt = tape.Scratch(1, plan.Lanes * plan.ProductFloats); // per lane [Co, n·OH·OW]
            fixed (float* px = x.Span, pw = weight.Span, pb = bias is null ? default : bias.Span, py = y.Span, pc = col, pt = yt)
            {
                var body = new ForwardBody(plan, px, pw, bias is null ? null : pb, py, pc, pt);
                ParallelRange.For(plan.Blocks, plan.Work, ref body);
            }
        }
        if (tape.Tracks(x, weight) || (bias is not null && tape.Tracks(bias)))
            tape.Record(new TapeEntry { Op = Instance, Output = y, A = x, B = weight, C = bias, Int0 = stride, Int1 = padding });
        return y;
    }

    /// <summary>Forward blocks [start, end): unfold, multiply, copy out (with the bias).</summary>
    private readonly unsafe struct ForwardBody(Plan plan, float* x, float* w, float* bias, float* y, float* col, float* yt) : IRangeBody
    {
        public void Run(int start, int end)
        {
            var g = plan.G;
            int lane = plan.LaneOf(ParallelRange.Lane);
            var colL = new Span<float>(col + (long)lane * plan.ColFloats, plan.ColFloats);
            var ytL = new Span<float>(yt + (long)lane * plan.ProductFloats, plan.ProductFloats);
            var bs = bias == null ? ReadOnlySpan<float>.Empty : new ReadOnlySpan<float>(bias, g.Co);
            for (int block = start; block < end; block++)
            {
                var (n0, gc) = plan.Block(block);
                int positions = gc.N * g.OutPlane;
                Im2Col(new ReadOnlySpan<float>(x + (long)n0 * g.InSample, gc.N * g.InSample), colL, gc);
                Blas.Sgemm(false, false, g.Co, positions, g.Patch, 1f, new ReadOnlySpan<float>(w, g.Co * g.Patch), g.Patch, colL, positions, 0f, ytL, positions);
                ChannelMajorToBatchMajor(ytL, new Span<float>(y + (long)n0 * g.OutSample, gc.N * g.OutSample), gc, bs);
            }
        }
    }

    /// <summary>
    /// The direct kernel's layout for this convolution (<see cref="DirectConv"/>): stride 1, when
    /// the tape allows it (<see cref="Tape.DirectConvolution"/>) and the CPU has AVX2 with FMA;
    /// null for im2col.
    /// </summary>
    internal static DirectConv.Layout? DirectLayout(Tape tape, in Geometry g) =>
        tape.DirectConvolution && DirectConv.IsSupported && g.Stride == 1
            ? new DirectConv.Layout(g.C, g.H, g.W, g.Co, g.KH, g.KW, g.Padding, g.Padding)
            : null;

    /// <summary>
    /// The direct kernel's layout for the input gradient of a stride-1 convolution: dy [Co, OH, OW]
    /// convolved with the flipped, transposed kernel at padding KH − 1 − p by KW − 1 − p, giving
    /// [C, H, W]; null when the forward is not direct or the padding exceeds the kernel.
    /// </summary>
    internal static DirectConv.Layout? DirectInputGradient(Tape tape, in Geometry g) =>
        DirectLayout(tape, g) is not null && g.Padding <= g.KH - 1 && g.Padding <= g.KW - 1
            ? new DirectConv.Layout(g.Co, g.OH, g.OW, g.C, g.KH, g.KW, g.KH - 1 - g.Padding, g.KW - 1 - g.Padding)
            : null;

    /// <summary>
    /// Blocks [start, end) of a direct convolution (<see cref="DirectConv"/>), sample by sample:
    /// pad the sample into the thread's scratch, run the kernel, copy out (with the bias, or added
    /// to the target with <paramref name="accumulate"/>).
    /// </summary>
    private readonly unsafe struct DirectBody(Plan plan, DirectConv.Layout l, float* input, int inSample, float* packed, float* bias,
        float* target, int outSample, bool accumulate, float* padded, float* output) : IRangeBody
    {
        public void Run(int start, int end)
        {
            int lane = plan.LaneOf(ParallelRange.Lane);
            float* pl = padded + (long)lane * l.PaddedInput, ol = output + (long)lane * l.Output;
            for (int block = start; block < end; block++)
            {
                var (n0, gc) = plan.Block(block);
                for (int n = n0; n < n0 + gc.N; n++)
                    DirectSample(l, input + (long)n * inSample, packed, bias, target + (long)n * outSample, accumulate, pl, ol);
            }
        }
    }

    private static unsafe void DirectSample(in DirectConv.Layout l, float* input, float* packed, float* bias, float* target, bool accumulate,
        float* padded, float* output)
    {
        DirectConv.Pad(input, padded, l);
        DirectConv.Run(padded, packed, output, l);
        DirectConv.CopyOut(output, target, bias, accumulate, l);
    }

    /// <inheritdoc/>
    public override unsafe void Backward(Tape tape, in TapeEntry e)
    {
        Tensor x = e.A!, w = e.B!;
        var g = Geometry.Of(x, w, e.Int0, e.Int1);
        var plan = Plan.Of(g, tape.ConvChunkFloats);
        bool wantW = w.RequiresGrad, wantB = e.C is { RequiresGrad: true }, wantX = x.RequiresGrad;
        // Stride 1: the weight and bias gradients direct (lW); the input gradient a convolution of dy
        // with the flipped kernel, direct (lT) or by im2col (gT). Otherwise im2col and col2im.
        var lW = wantW || wantB ? DirectLayout(tape, g) : null;
        var lT = wantX ? DirectInputGradient(tape, g) : null;
        var gT = wantX && lT is null ? TransposedGeometry(g) : null;
        bool fold = wantX && lT is null && gT is null;
        bool unfold = (lW is null && (wantW || wantB)) || fold;
        int colFloats = Math.Max(unfold ? plan.ColFloats : 0,
            Math.Max(lW is { } w1 && wantW ? w1.PaddedInput : 0, gT is { } t1 ? t1.Patch * plan.Chunk * t1.OutPlane : lT?.PaddedInput ?? 0));
        int productFloats = Math.Max(unfold ? plan.ProductFloats : 0,
            Math.Max(lW is { } w2 && wantW ? w2.TransposedGradient + w2.GradientAccumulator : 0, gT is { } t2 ? t2.Co * plan.Chunk * t2.OutPlane : lT?.Output ?? 0));
        var col = tape.Scratch(0, plan.Lanes * colFloats); // a block's unfolded input (or a sample's padded one), then its (or dy's) unfolding
        var gt = tape.Scratch(1, plan.Lanes * productFloats); // a block's dy channel-major (or a sample's transposed, and the weight gradient's accumulator)
        int perBlock = g.Co * g.Patch + g.Co; // a block's weight and bias gradients
        var partial = tape.Scratch(2, wantW || wantB ? plan.Blocks * perBlock : 0);
        var flipped = tape.Scratch(3, gT is not null ? g.C * g.Co * g.KH * g.KW : lT?.PackedWeights ?? 0);
        if (gT is not null)
            FlipKernel(w.Span, flipped, g);
        else if (lT is { } packT)
            DirectConv.PackWeights(w.Span, flipped, packT, transposedFlipped: true);
        var dx = wantX ? GradTarget.For(x) : default;
        fixed (float* px = x.Span, pw = w.Span, pdy = e.Output.Grad!.Span, pdx = dx.Span, pc = col, pt = gt, pp = partial, pf = flipped)
        {
            var body = new BackwardBody(plan, px, gT is null && lT is null ? pw : pf, lW, gT, lT, pdy, wantX ? pdx : null, dx.Accumulate, pc, colFloats, pt, productFloats,
                wantW, wantB, pp, perBlock);
            ParallelRange.For(plan.Blocks, plan.Work, ref body);
        }
        // Block partials summed in block order: the same bits on any thread count.
        if (wantW)
        {
            var dw = GradTarget.For(w);
            for (int block = 0; block < plan.Blocks; block++)
            {
                var part = partial.Slice(block * perBlock, g.Co * g.Patch);
                if (block == 0 && !dw.Accumulate)
                    part.CopyTo(dw.Span);
                else
                    System.Numerics.Tensors.TensorPrimitives.Add(dw.Span, part, dw.Span);
            }
        }
        if (wantB)
        {
            var db = GradTarget.For(e.C!);
            for (int block = 0; block < plan.Blocks; block++)
            {
                var part = partial.Slice(block * perBlock + g.Co * g.Patch, g.Co);
                if (block == 0 && !db.Accumulate)
                    part.CopyTo(db.Span);
                else
                    System.Numerics.Tensors.TensorPrimitives.Add(db.Span, part, db.Span);
            }
        }
    }

    /// <summary>
    /// Backward blocks [start, end): the block's weight and bias gradients into its partial,
    /// direct (<paramref name="lW"/>: per sample the input padded, dy transposed, <see cref="DirectConv.WeightGradient"/>)
    /// or from dy channel-major as G·colᵀ; then the block's input gradient
    /// (its own samples, so no other block writes there): at stride 1 the convolution of dy with
    /// the flipped kernel, direct per <paramref name="lT"/> (<paramref name="wx"/> that kernel packed
    /// by <see cref="DirectConv.PackWeights"/>) or unfolded per <paramref name="gT"/> (<paramref name="wx"/>
    /// [C, Co·KH·KW]); otherwise dcol = Wᵀ·G (<paramref name="wx"/> the weight) folded back.
    /// </summary>
    private readonly unsafe struct BackwardBody(Plan plan, float* x, float* wx, DirectConv.Layout? lW, Geometry? gT, DirectConv.Layout? lT, float* dy, float* dx, bool accumulateX,
        float* col, int colFloats, float* gt, int productFloats, bool wantW, bool wantB, float* partial, int perBlock) : IRangeBody
    {
        public void Run(int start, int end)
        {
            var g = plan.G;
            int lane = plan.LaneOf(ParallelRange.Lane);
            var colL = new Span<float>(col + (long)lane * colFloats, colFloats);
            var gtL = new Span<float>(gt + (long)lane * productFloats, productFloats);
            for (int block = start; block < end; block++)
            {
                var (n0, gc) = plan.Block(block);
                int positions = gc.N * g.OutPlane;
                var dyBlock = new ReadOnlySpan<float>(dy + (long)n0 * g.OutSample, gc.N * g.OutSample);
                var dxBlock = new Span<float>(dx + (long)n0 * g.InSample, dx == null ? 0 : gc.N * g.InSample);
                float* part = partial + (long)block * perBlock;
                bool fold = dx != null && gT is null && lT is null;
                if (lW is { } lw)
                {
                    // Sample by sample: the weight gradient into the lane's accumulator, the bias gradient into the partial.
                    fixed (float* pc = colL, pt = gtL)
                    {
                        float* acc = pt + lw.TransposedGradient;
                        if (wantW)
                            new Span<float>(acc, lw.GradientAccumulator).Clear();
                        for (int n = 0; n < gc.N; n++)
                        {
                            float* dys = dy + (long)(n0 + n) * g.OutSample;
                            if (wantW)
                            {
                                DirectConv.Pad(x + (long)(n0 + n) * g.InSample, pc, lw);
                                DirectConv.TransposeGradient(dys, pt, lw);
                                DirectConv.WeightGradient(pc, pt, acc, lw);
                            }
                            if (wantB)
                                for (int c = 0; c < g.Co; c++)
                                {
                                    float sum = System.Numerics.Tensors.TensorPrimitives.Sum(new ReadOnlySpan<float>(dys + (long)c * g.OutPlane, g.OutPlane));
                                    part[g.Co * g.Patch + c] = n == 0 ? sum : part[g.Co * g.Patch + c] + sum;
                                }
                        }
                        if (wantW)
                            DirectConv.ScatterGradient(acc, part, accumulate: false, lw);
                    }
                }
                if ((lW is null && (wantW || wantB)) || fold)
                    BatchMajorToChannelMajor(dyBlock, gtL, gc);
                if (lW is null && wantW)
                {
                    Im2Col(new ReadOnlySpan<float>(x + (long)n0 * g.InSample, gc.N * g.InSample), colL, gc);
                    Blas.Sgemm(false, true, g.Co, g.Patch, positions, 1f, gtL, positions, colL, positions, 0f, new Span<float>(part, g.Co * g.Patch), g.Patch);
                }
                if (lW is null && wantB)
                    for (int c = 0; c < g.Co; c++)
                        part[g.Co * g.Patch + c] = System.Numerics.Tensors.TensorPrimitives.Sum(gtL.Slice(c * positions, positions));
                if (dx == null)
                    continue;
                if (lT is { } l)
                {
                    fixed (float* pc = colL, pt = gtL)
                        for (int n = 0; n < gc.N; n++)
                            DirectSample(l, dy + (long)(n0 + n) * g.OutSample, wx, null, dx + (long)(n0 + n) * g.InSample, accumulateX, pc, pt);
                }
                else if (gT is { } t)
                {
                    // dx = conv(dy, flipped kernel): unfold dy, one product into channel-major, copy (or add) out.
                    var tc = t with { N = gc.N };
                    int inPositions = gc.N * t.OutPlane;
                    Im2Col(dyBlock, colL, tc);
                    Blas.Sgemm(false, false, t.Co, inPositions, t.Patch, 1f, new ReadOnlySpan<float>(wx, t.Co * t.Patch), t.Patch, colL, inPositions, 0f, gtL, inPositions);
                    ChannelMajorToBatchMajorAdd(gtL, dxBlock, tc, accumulateX);
                }
                else
                {
                    Blas.Sgemm(true, false, g.Patch, positions, g.Co, 1f, new ReadOnlySpan<float>(wx, g.Co * g.Patch), g.Patch, gtL, positions, 0f, colL, positions);
                    Col2ImAdd(colL, dxBlock, gc, overwrite: !accumulateX);
                }
            }
        }
    }

    /// <summary>
    /// For a stride-1 convolution with a square kernel larger than 1×1 and padding below its size:
    /// the geometry of the input gradient as a convolution of dy [N, Co, OH, OW] with the flipped
    /// kernel (<see cref="FlipKernel"/>) at padding KH − 1 − padding, whose output is [N, C, H, W];
    /// null when the input gradient is folded back from Wᵀ·G instead.
    /// </summary>
    internal static Geometry? TransposedGeometry(in Geometry g)
    {
        if (g.Stride != 1 || g.KH != g.KW || g.KH < 2 || g.Padding > g.KH - 1)
            return null;
        var t = new Geometry(g.N, g.Co, g.OH, g.OW, g.C, g.KH, g.KW, 1, g.KH - 1 - g.Padding, g.H, g.W);
        return t;
    }

    /// <summary>flipped[c, (o·KH + i)·KW + j] = w[o, c, KH − 1 − i, KW − 1 − j]: the kernel of the input gradient at stride 1.</summary>
    internal static void FlipKernel(ReadOnlySpan<float> w, Span<float> flipped, in Geometry g)
    {
        int kk = g.KH * g.KW;
        for (int o = 0; o < g.Co; o++)
        for (int c = 0; c < g.C; c++)
        for (int i = 0; i < g.KH; i++)
        for (int j = 0; j < g.KW; j++)
            flipped[(c * g.Co + o) * kk + i * g.KW + j] = w[(o * g.C + c) * kk + (g.KH - 1 - i) * g.KW + (g.KW - 1 - j)];
    }

    /// <summary>
    /// Samples per block: as many as keep the unfolded input within <paramref name="budget"/> floats,
    /// and few enough that the batch makes at least <see cref="MinBlocks"/> blocks when it can (at least one sample).
    /// </summary>
    internal static int ChunkSamples(in Geometry g, int budget) =>
        Math.Clamp(budget / Math.Max(1, g.Patch * g.OutPlane), 1, Math.Max(1, (g.N + MinBlocks - 1) / MinBlocks));

    /// <summary>How a convolution's batch is cut into blocks, and each lane's scratch.</summary>
    private readonly record struct Plan(Geometry G, int Chunk, int Blocks, int Lanes, int ColFloats, int ProductFloats, long Work)
    {
        public static Plan Of(in Geometry g, int budget)
        {
            int chunk = ChunkSamples(g, budget);
            int blocks = (g.N + chunk - 1) / chunk;
            return new Plan(g, chunk, blocks, ParallelRange.Lanes, g.Patch * chunk * g.OutPlane, g.Co * chunk * g.OutPlane,
                (long)g.N * g.OutPlane * (g.Patch + g.Co));
        }

        /// <summary>Block <paramref name="block"/>'s first sample and geometry.</summary>
        public (int N0, Geometry Gc) Block(int block)
        {
            int n0 = block * Chunk;
            return (n0, G with { N = Math.Min(Chunk, G.N - n0) });
        }

        /// <summary>The scratch lane of a thread (every lane a loop can use is below <see cref="Lanes"/>).</summary>
        public int LaneOf(int lane) =>
            lane < Lanes ? lane : throw new InvalidOperationException($"conv2d: thread lane {lane} beyond the {Lanes} scratch lanes");
    }

    internal readonly record struct Geometry(int N, int C, int H, int W, int Co, int KH, int KW, int Stride, int Padding, int OH, int OW)
    {
        public int Patch => C * KH * KW;
        public int OutPlane => OH * OW;
        public int InSample => C * H * W;
        public int OutSample => Co * OH * OW;

        public static Geometry Of(Tensor x, Tensor weight, int stride, int padding)
        {
            if (stride < 1 || padding < 0)
                throw new ArgumentOutOfRangeException(nameof(stride), $"conv2d: stride {stride} must be ≥ 1 and padding {padding} ≥ 0");
            int h = x.Dim(2), w = x.Dim(3), kh = weight.Dim(2), kw = weight.Dim(3);
            int oh = (h + 2 * padding - kh) / stride + 1, ow = (w + 2 * padding - kw) / stride + 1;
            if (oh < 1 || ow < 1)
                throw new ShapeException($"conv2d: kernel {kh}×{kw} larger than padded input {x.Describe()}");
            return new Geometry(x.Dim(0), x.Dim(1), h, w, weight.Dim(0), kh, kw, stride, padding, oh, ow);
        }
    }

    /// <summary>
    /// col[(c·KH + i)·KW + j, n·OH·OW + oy·OW + ox] = x[n, c, oy·s − p + i, ox·s − p + j] (0 outside).
    /// Each output row's valid range [lo, hi) is computed once, so the interior is a contiguous
    /// copy at stride 1 (a strided gather otherwise) and only the padding margins are cleared.
    /// Rows run in parallel (<see cref="ParallelRange"/>); each is written by one thread.
    /// </summary>
    internal static unsafe void Im2Col(ReadOnlySpan<float> x, Span<float> col, in Geometry g)
    {
        int size = g.Patch * g.N * g.OutPlane;
        if (x.Length < g.N * g.InSample || col.Length < size)
            throw new ArgumentException($"im2col: {x.Length} inputs or {col.Length} columns too few for {g}");
        fixed (float* px = x, pc = col)
        {
            var body = new Im2ColBody(px, pc, g);
            ParallelRange.For(g.Patch, size, ref body);
        }
    }

    private readonly unsafe struct Im2ColBody(float* x, float* col, Geometry g) : IRangeBody
    {
        public void Run(int start, int end) =>
            Im2ColRows(new ReadOnlySpan<float>(x, g.N * g.InSample), new Span<float>(col, g.Patch * g.N * g.OutPlane), g, start, end);
    }

    /// <summary>Rows [<paramref name="start"/>, <paramref name="end"/>) of <see cref="Im2Col"/>, row (c·KH + i)·KW + j.</summary>
    private static void Im2ColRows(ReadOnlySpan<float> x, Span<float> col, in Geometry g, int start, int end)
    {
        int positions = g.N * g.OutPlane, plane = g.H * g.W, s = g.Stride;
        for (int r = start; r < end; r++)
        {
            int c = r / (g.KH * g.KW), i = r / g.KW % g.KH, j = r % g.KW;
            var row = col.Slice(r * positions, positions);
            var (lo, hi) = ValidRange(j - g.Padding, s, g.W, g.OW);
            for (int n = 0; n < g.N; n++)
            {
                var src = x.Slice((n * g.C + c) * plane, plane);
                int o = n * g.OutPlane;
                for (int oy = 0; oy < g.OH; oy++)
                {
                    int iy = oy * s - g.Padding + i;
                    var dst = row.Slice(o + oy * g.OW, g.OW);
                    if ((uint)iy >= (uint)g.H || lo >= hi)
                    {
                        dst.Clear();
                        continue;
                    }
                    dst[..lo].Clear();
                    dst[hi..].Clear();
                    int first = iy * g.W + lo * s + j - g.Padding; // x index of output column lo
                    if (s == 1)
                        src.Slice(first, hi - lo).CopyTo(dst[lo..hi]);
                    else
                        for (int ox = lo; ox < hi; ox++)
                            dst[ox] = src[first + (ox - lo) * s];
                }
            }
        }
    }

    /// <summary>
    /// The adjoint of <see cref="Im2Col"/>: dx[...] += dcol[...] (contiguous vector adds at stride 1);
    /// with <paramref name="overwrite"/>, dx's old contents are replaced instead (cleared first).
    /// Channels run in parallel, each in the serial order.
    /// </summary>
    internal static unsafe void Col2ImAdd(ReadOnlySpan<float> dcol, Span<float> dx, in Geometry g, bool overwrite = false)
    {
        int size = g.Patch * g.N * g.OutPlane;
        if (dx.Length < g.N * g.InSample || dcol.Length < size)
            throw new ArgumentException($"col2im: {dx.Length} inputs or {dcol.Length} columns too few for {g}");
        fixed (float* pd = dcol, px = dx)
        {
            var body = new Col2ImBody(pd, px, g, overwrite);
            ParallelRange.For(g.C, size, ref body);
        }
    }

    private readonly unsafe struct Col2ImBody(float* dcol, float* dx, Geometry g, bool overwrite) : IRangeBody
    {
        public void Run(int start, int end) =>
            Col2ImChannels(new ReadOnlySpan<float>(dcol, g.Patch * g.N * g.OutPlane), new Span<float>(dx, g.N * g.InSample), g, overwrite, start, end);
    }

    private static void Col2ImChannels(ReadOnlySpan<float> dcol, Span<float> dx, in Geometry g, bool overwrite, int start, int end)
    {
        int positions = g.N * g.OutPlane, plane = g.H * g.W, s = g.Stride;
        for (int c = start; c < end; c++)
        {
            if (overwrite)
                for (int n = 0; n < g.N; n++)
                    dx.Slice((n * g.C + c) * plane, plane).Clear();
            for (int i = 0; i < g.KH; i++)
            for (int j = 0; j < g.KW; j++)
            {
                var row = dcol.Slice(((c * g.KH + i) * g.KW + j) * positions, positions);
                var (lo, hi) = ValidRange(j - g.Padding, s, g.W, g.OW);
                if (lo >= hi)
                    continue;
                for (int n = 0; n < g.N; n++)
                {
                    var dst = dx.Slice((n * g.C + c) * plane, plane);
                    int o = n * g.OutPlane;
                    for (int oy = 0; oy < g.OH; oy++)
                    {
                        int iy = oy * s - g.Padding + i;
                        if ((uint)iy >= (uint)g.H)
                            continue;
                        int first = iy * g.W + lo * s + j - g.Padding;
                        var src = row.Slice(o + oy * g.OW + lo, hi - lo);
                        if (s == 1)
                        {
                            var d = dst.Slice(first, hi - lo);
                            System.Numerics.Tensors.TensorPrimitives.Add(d, src, d);
                        }
                        else
                            for (int k = 0; k < src.Length; k++)
                                dst[first + k * s] += src[k];
                    }
                }
            }
        }
    }

    /// <summary>Output columns ox ∈ [lo, hi) whose input column ox·s + offset lies in [0, width).</summary>
    private static (int Lo, int Hi) ValidRange(int offset, int stride, int width, int outWidth)
    {
        int lo = offset >= 0 ? 0 : (-offset + stride - 1) / stride;
        int hi = width - 1 - offset < 0 ? 0 : (width - 1 - offset) / stride + 1;
        return (Math.Min(lo, outWidth), Math.Clamp(hi, 0, outWidth));
    }

    /// <summary>The element-by-element definition of <see cref="Im2Col"/> (the reference its tests compare against).</summary>
    internal static void Im2ColReference(ReadOnlySpan<float> x, Span<float> col, in Geometry g)
    {
        int positions = g.N * g.OutPlane, plane = g.H * g.W;
        for (int c = 0; c < g.C; c++)
        for (int i = 0; i < g.KH; i++)
        for (int j = 0; j < g.KW; j++)
        {
            var row = col.Slice(((c * g.KH + i) * g.KW + j) * positions, positions);
            for (int n = 0; n < g.N; n++)
            {
                var src = x.Slice((n * g.C + c) * plane, plane);
                int o = n * g.OutPlane;
                for (int oy = 0; oy < g.OH; oy++)
                {
                    int iy = oy * g.Stride - g.Padding + i;
                    var dst = row.Slice(o + oy * g.OW, g.OW);
                    if ((uint)iy >= (uint)g.H)
                    {
                        dst.Clear();
                        continue;
                    }
                    int rowStart = iy * g.W;
                    for (int ox = 0; ox < g.OW; ox++)
                    {
                        int ix = ox * g.Stride - g.Padding + j;
                        dst[ox] = (uint)ix < (uint)g.W ? src[rowStart + ix] : 0f;
                    }
                }
            }
        }
    }

    /// <summary>The element-by-element definition of <see cref="Col2ImAdd"/> (the reference its tests compare against).</summary>
    internal static void Col2ImAddReference(ReadOnlySpan<float> dcol, Span<float> dx, in Geometry g)
    {
        int positions = g.N * g.OutPlane, plane = g.H * g.W;
        for (int c = 0; c < g.C; c++)
        for (int i = 0; i < g.KH; i++)
        for (int j = 0; j < g.KW; j++)
        {
            var row = dcol.Slice(((c * g.KH + i) * g.KW + j) * positions, positions);
            for (int n = 0; n < g.N; n++)
            {
                var dst = dx.Slice((n * g.C + c) * plane, plane);
                int o = n * g.OutPlane;
                for (int oy = 0; oy < g.OH; oy++)
                {
                    int iy = oy * g.Stride - g.Padding + i;
                    if ((uint)iy >= (uint)g.H)
                        continue;
                    int rowStart = iy * g.W;
                    for (int ox = 0; ox < g.OW; ox++)
                    {
                        int ix = ox * g.Stride - g.Padding + j;
                        if ((uint)ix < (uint)g.W)
                            dst[rowStart + ix] += row[o + oy * g.OW + ox];
                    }
                }
            }
        }
    }

    /// <summary>y[n, c] (+bias[c]) = yt[c, n] for every sample and channel, channels in parallel.</summary>
    private static unsafe void ChannelMajorToBatchMajor(ReadOnlySpan<float> yt, Span<float> y, in Geometry g, ReadOnlySpan<float> bias)
    {
        fixed (float* pt = yt, py = y, pb = bias)
        {
            var body = new LayoutBody(pt, py, pb, g, toBatchMajor: true);
            ParallelRange.For(g.Co, (long)g.N * g.OutSample, ref body);
        }
    }

    /// <summary>y[n, c] = yt[c, n], or y[n, c] += yt[c, n] with <paramref name="accumulate"/>, for every sample and channel (serially: called per block).</summary>
    private static void ChannelMajorToBatchMajorAdd(ReadOnlySpan<float> yt, Span<float> y, in Geometry g, bool accumulate)
    {
        int positions = g.N * g.OutPlane, plane = g.OutPlane;
        for (int c = 0; c < g.Co; c++)
        for (int n = 0; n < g.N; n++)
        {
            var cm = yt.Slice(c * positions + n * plane, plane);
            var bm = y.Slice((n * g.Co + c) * plane, plane);
            if (accumulate)
                System.Numerics.Tensors.TensorPrimitives.Add(bm, cm, bm);
            else
                cm.CopyTo(bm);
        }
    }

    /// <summary>yt[c, n] = y[n, c] for every sample and channel, channels in parallel.</summary>
    private static unsafe void BatchMajorToChannelMajor(ReadOnlySpan<float> y, Span<float> yt, in Geometry g)
    {
        fixed (float* pt = yt, py = y)
        {
            var body = new LayoutBody(pt, py, null, g, toBatchMajor: false);
            ParallelRange.For(g.Co, (long)g.N * g.OutSample, ref body);
        }
    }

    /// <summary>Copies planes between [Co, N·OH·OW] (channel-major) and [N, Co, OH, OW] for channels [start, end).</summary>
    private readonly unsafe struct LayoutBody(float* channelMajor, float* batchMajor, float* bias, Geometry g, bool toBatchMajor) : IRangeBody
    {
        public void Run(int start, int end)
        {
            int positions = g.N * g.OutPlane, plane = g.OutPlane;
            for (int c = start; c < end; c++)
            for (int n = 0; n < g.N; n++)
            {
                var cm = new Span<float>(channelMajor + c * positions + n * plane, plane);
                var bm = new Span<float>(batchMajor + (n * g.Co + c) * plane, plane);
                if (!toBatchMajor)
                    bm.CopyTo(cm);
                else if (bias == null)
                    cm.CopyTo(bm);
                else
                    System.Numerics.Tensors.TensorPrimitives.Add(cm, bias[c], bm);
            }
        }
    }
}

/// <summary>Max pooling over k×k windows with a stride, no padding: x [N, C, H, W].</summary>
public sealed class MaxPool2dOp : Op
{
    private static readonly MaxPool2dOp Instance = new();

    /// <summary>y [N, C, OH, OW], OH = (H − kernel)/stride + 1, each the maximum of its window; throws a <see cref="ShapeException"/> for an input that is not 4-D or smaller than the kernel.</summary>
    public static unsafe Tensor Forward(Tape tape, Tensor x, int kernel, int stride)
    {
        var (n, c, oh, ow) = PoolShape("maxpool2d", x, kernel, stride);
        int h = x.Dim(2), w = x.Dim(3);
        var y = tape.Workspace(n, c, oh, ow);
        var argmax = tape.Workspace(n, c, oh, ow); // index inside the input plane, stored as float (exact below 2^24)
        fixed (float* px = x.Span, py = y.Span, pa = argmax.Span)
        {
            var body = new ForwardBody(px, py, pa, h, w, oh, ow, kernel, stride);
            ParallelRange.For(n * c, (long)x.Length, ref body);
        }
        if (tape.Tracks(x))
            tape.Record(new TapeEntry { Op = Instance, Output = y, A = x, Saved = argmax });
        return y;
    }

    /// <summary>Planes [start, end): each output the maximum of its window, and the window's argmax.</summary>
    private readonly unsafe struct ForwardBody(float* x, float* y, float* argmax, int h, int w, int oh, int ow, int kernel, int stride) : IRangeBody
    {
        public void Run(int start, int end)
        {
            for (int p = start; p < end; p++)
            {
                float* xs = x + (long)p * h * w;
                int outBase = p * oh * ow;
                for (int oy = 0; oy < oh; oy++)
                for (int ox = 0; ox < ow; ox++)
                {
                    float best = float.NegativeInfinity;
                    int bestIndex = 0;
                    for (int i = 0; i < kernel; i++)
                    for (int j = 0; j < kernel; j++)
                    {
                        int idx = (oy * stride + i) * w + ox * stride + j;
                        float v = xs[idx];
                        if (v > best || float.IsNaN(v))
                        {
                            best = v;
                            bestIndex = idx;
                        }
                    }
                    y[outBase + oy * ow + ox] = best;
                    argmax[outBase + oy * ow + ox] = bestIndex;
                }
            }
        }
    }

    /// <inheritdoc/>
    public override unsafe void Backward(Tape tape, in TapeEntry e)
    {
        Tensor x = e.A!;
        int planes = x.Dim(0) * x.Dim(1), inPlane = x.Dim(2) * x.Dim(3), outPlane = e.Output.Dim(2) * e.Output.Dim(3);
        var dx = GradTarget.For(x);
        fixed (float* pd = dx.Span, pg = e.Output.Grad!.Span, pa = e.Saved!.Span)
        {
            var body = new BackwardBody(pd, pg, pa, inPlane, outPlane, dx.Accumulate);
            ParallelRange.For(planes, (long)x.Length, ref body);
        }
    }

    /// <summary>Planes [start, end): dx (cleared unless accumulating) += g at each window's argmax.</summary>
    private readonly unsafe struct BackwardBody(float* dx, float* g, float* argmax, int inPlane, int outPlane, bool accumulate) : IRangeBody
    {
        public void Run(int start, int end)
        {
            for (int p = start; p < end; p++)
            {
                float* d = dx + (long)p * inPlane;
                if (!accumulate)
                    new Span<float>(d, inPlane).Clear();
                for (int o = 0; o < outPlane; o++)
                    d[(int)argmax[p * outPlane + o]] += g[p * outPlane + o];
            }
        }
    }

    internal static (int N, int C, int OH, int OW) PoolShape(string op, Tensor x, int kernel, int stride)
    {
        if (x.Rank != 4)
            throw new ShapeException($"{op}: input {x.Describe()} must be [N, C, H, W]");
        if (kernel < 1 || stride < 1 || kernel > x.Dim(2) || kernel > x.Dim(3))
            throw new ShapeException($"{op}: kernel {kernel}, stride {stride} do not fit input {x.Describe()}");
        return (x.Dim(0), x.Dim(1), (x.Dim(2) - kernel) / stride + 1, (x.Dim(3) - kernel) / stride + 1);
    }
}

/// <summary>Average pooling over k×k windows with a stride, no padding.</summary>
public sealed class AvgPool2dOp : Op
{
    private static readonly AvgPool2dOp Instance = new();

    /// <summary>y [N, C, OH, OW], OH = (H − kernel)/stride + 1, each the mean of its window; throws a <see cref="ShapeException"/> for an input that is not 4-D or smaller than the kernel.</summary>
    public static Tensor Forward(Tape tape, Tensor x, int kernel, int stride)
    {
        var (n, c, oh, ow) = MaxPool2dOp.PoolShape("avgpool2d", x, kernel, stride);
        int h = x.Dim(2), w = x.Dim(3);
        var y = tape.Workspace(n, c, oh, ow);
        float inv = 1f / (kernel * kernel);
        var xs = x.Span;
        var ys = y.Span;
        for (int p = 0; p < n * c; p++)
        for (int oy = 0; oy < oh; oy++)
        for (int ox = 0; ox < ow; ox++)
        {
            float s = 0;
            for (int i = 0; i < kernel; i++)
            for (int j = 0; j < kernel; j++)
                s += xs[p * h * w + (oy * stride + i) * w + ox * stride + j];
            ys[(p * oh + oy) * ow + ox] = s * inv;
        }
        if (tape.Tracks(x))
            tape.Record(new TapeEntry { Op = Instance, Output = y, A = x, Int0 = kernel, Int1 = stride });
        return y;
    }

    /// <inheritdoc/>
    public override void Backward(Tape tape, in TapeEntry e)
    {
        Tensor x = e.A!;
        int kernel = e.Int0, stride = e.Int1, h = x.Dim(2), w = x.Dim(3), oh = e.Output.Dim(2), ow = e.Output.Dim(3);
        var dx = GradTarget.For(x);
        if (!dx.Accumulate)
            dx.Span.Clear();
        var g = e.Output.Grad!.Span;
        float inv = 1f / (kernel * kernel);
        for (int p = 0; p < x.Dim(0) * x.Dim(1); p++)
        for (int oy = 0; oy < oh; oy++)
        for (int ox = 0; ox < ow; ox++)
        {
            float v = g[(p * oh + oy) * ow + ox] * inv;
            for (int i = 0; i < kernel; i++)
            for (int j = 0; j < kernel; j++)
                dx.Span[p * h * w + (oy * stride + i) * w + ox * stride + j] += v;
        }
    }
}

/// <summary>Global average pooling: x [N, C, H, W] → y [N, C], the mean of each channel's plane.</summary>
public sealed class GlobalAvgPool2dOp : Op
{
    private static readonly GlobalAvgPool2dOp Instance = new();

    /// <summary>y [N, C]; throws a <see cref="ShapeException"/> unless <paramref name="x"/> is [N, C, H, W].</summary>
    public static Tensor Forward(Tape tape, Tensor x)
    {
        if (x.Rank != 4)
            throw new ShapeException($"global average pooling: input {x.Describe()} must be [N, C, H, W]");
        int planes = x.Dim(0) * x.Dim(1), plane = x.Dim(2) * x.Dim(3);
        var y = tape.Workspace(x.Dim(0), x.Dim(1));
        for (int p = 0; p < planes; p++)
            y.Span[p] = (float)(BatchNormOp.Sum(x.Span.Slice(p * plane, plane)) / plane);
        if (tape.Tracks(x))
            tape.Record(new TapeEntry { Op = Instance, Output = y, A = x });
        return y;
    }

    /// <inheritdoc/>
    public override void Backward(Tape tape, in TapeEntry e)
    {
        var x = e.A!;
        int plane = x.Dim(2) * x.Dim(3);
        var dx = GradTarget.For(x);
        var g = e.Output.Grad!.Span;
        for (int p = 0; p < g.Length; p++)
        {
            var dst = dx.Span.Slice(p * plane, plane);
            float v = g[p] / plane;
            if (dx.Accumulate)
                System.Numerics.Tensors.TensorPrimitives.Add(dst, v, dst);
            else
                dst.Fill(v);
        }
    }
}
