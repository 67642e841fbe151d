using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using LabelNoiseLab.Tensors;

namespace LabelNoiseLab.Autograd;

// Sequence tensors are 2-D [N·T, D]: row n·T + t is token t of sample n. The ops that need T
// (token assembly, attention, pooling) take it as an argument.

/// <summary>
/// Layer normalisation over the last dimension (PyTorch's nn.LayerNorm(D)): each row of
/// x [R, D] is normalised by its own mean and biased variance, then y = γ·x̂ + β with γ, β [D].
/// </summary>
public sealed class LayerNormOp : Op
{
    private static readonly LayerNormOp Instance = new();

    /// <summary>y, the shape of <paramref name="x"/> (any rank, rows of its last dimension D); throws a <see cref="ShapeException"/> when γ or β does not have D values.</summary>
    public static Tensor Forward(Tape tape, Tensor x, Tensor weight, Tensor bias, float eps)
    {
        int d = x.Dim(-1), rows = x.Length / d;
        if (weight.Length != d || bias.Length != d)
            throw new ShapeException($"layernorm: weight {weight.Describe()} and bias {bias.Describe()} must have {d} values for input {x.Describe()}");
        var y = tape.Workspace(x.Shape);
        bool track = tape.Tracks(x, weight) || tape.Tracks(bias);
        var xhat = track ? tape.Workspace(x.Shape) : y;
        var invStd = tape.Workspace(rows);
        var job = t_rows ??= new RowJob();
        (job.X, job.Xhat, job.Y, job.Weight, job.Bias, job.InvStd, job.Eps, job.Backward) = (x, xhat, y, weight, bias, invStd, eps, false);
        RowParallel.For(rows, MinRowsPerThread, job);
        job.Clear();
        if (track)
            tape.Record(new TapeEntry { Op = Instance, Output = y, A = x, B = weight, C = bias, Saved = xhat, State = invStd });
        return y;
    }

    /// <summary>x̂ = (x − mean)/σ and y = γ·x̂ + β for one row (<paramref name="xhat"/> may be <paramref name="y"/>); returns 1/σ.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static float NormaliseRow(ReadOnlySpan<float> x, Span<float> xhat, Span<float> y, ReadOnlySpan<float> gamma, ReadOnlySpan<float> beta, float eps)
    {
        const int W = 8;
        int d = x.Length, k = 0;
        float sum = 0f;
        if (Vector256.IsHardwareAccelerated)
        {
            var acc = Vector256<float>.Zero;
            for (; k <= d - W; k += W)
                acc += Vector256.Create(x.Slice(k, W));
            sum = Vector256.Sum(acc);
        }
        for (; k < d; k++)
            sum += x[k];
        float mean = sum / d, squares = 0f;
        k = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            var m = Vector256.Create(mean);
            var acc = Vector256<float>.Zero;
            for (; k <= d - W; k += W)
            {
                var c = Vector256.Create(x.Slice(k, W)) - m;
                acc = Vector256.FusedMultiplyAdd(c, c, acc);
            }
            squares = Vector256.Sum(acc);
        }
        for (; k < d; k++)
            squares += (x[k] - mean) * (x[k] - mean);
        float inv = 1f / MathF.Sqrt(squares / d + eps);
        k = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            var m = Vector256.Create(mean);
            var s = Vector256.Create(inv);
            for (; k <= d - W; k += W)
            {
                var h = (Vector256.Create(x.Slice(k, W)) - m) * s;
                h.CopyTo(xhat.Slice(k, W));
                Vector256.FusedMultiplyAdd(h, Vector256.Create(gamma.Slice(k, W)), Vector256.Create(beta.Slice(k, W))).CopyTo(y.Slice(k, W));
            }
        }
        for (; k < d; k++)
        {
            float h = (x[k] - mean) * inv;
            xhat[k] = h;
            y[k] = gamma[k] * h + beta[k];
        }
        return inv;
    }

    /// <inheritdoc/>
    public override void Backward(Tape tape, in TapeEntry e)
    {
        Tensor x = e.A!, weight = e.B!, bias = e.C!;
        int d = x.Dim(-1), rows = x.Length / d;
        var g = e.Output.Grad!.Span;
        var xhat = e.Saved!.Span;
        var invStd = ((Tensor)e.State!).Span;
        var scratch = tape.Scratch(0, 2 * d);
        Span<float> sumG = scratch[..d], sumGx = scratch.Slice(d, d);
        sumG.Clear();
        sumGx.Clear();
        ColumnSums(g, xhat, sumG, sumGx);
        AddInto(weight, sumGx);
        AddInto(bias, sumG);
        if (!x.RequiresGrad)
            return;
        var dx = GradTarget.For(x);
        var job = t_rows ??= new RowJob();
        (job.X, job.Xhat, job.Y, job.Weight, job.InvStd, job.Backward, job.Accumulate) = (x, e.Saved!, e.Output, weight, (Tensor)e.State!, true, dx.Accumulate);
        RowParallel.For(rows, MinRowsPerThread, job);
        job.Clear();
    }

    private const int MinRowsPerThread = 128;

    [ThreadStatic]
    private static RowJob? t_rows;

    /// <summary>Rows of the forward (x̂, y, 1/σ) or of the backward (x's gradient from y's) for <see cref="RowParallel"/>.</summary>
    private sealed class RowJob : IRowBody
    {
        public Tensor? X, Xhat, Y, Weight, Bias, InvStd;
        public float Eps;
        public bool Backward, Accumulate;

        public void Run(int start, int end)
        {
            int d = X!.Dim(-1);
            for (int r = start; r < end; r++)
            {
                if (Backward)
                    RowGradient(Y!.Grad!.Span.Slice(r * d, d), Xhat!.Span.Slice(r * d, d), Weight!.Span, InvStd!.Span[r], X.Grad!.Span.Slice(r * d, d), Accumulate);
                else
                    InvStd!.Span[r] = NormaliseRow(X.Span.Slice(r * d, d), Xhat!.Span.Slice(r * d, d), Y!.Span.Slice(r * d, d), Weight!.Span, Bias!.Span, Eps);
            }
        }

        public void Clear() => X = Xhat = Y = Weight = Bias = InvStd = null;
    }

    /// <summary>sumG += Σ_rows g and sumGx += Σ_rows g⊙x̂ over the rows of g and x̂ [R, D] (β's and γ's gradients).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void ColumnSums(ReadOnlySpan<float> g, ReadOnlySpan<float> xhat, Span<float> sumG, Span<float> sumGx)
    {
        const int W = 8;
        int d = sumG.Length;
        for (int start = 0; start < g.Length; start += d)
        {
            var gRow = g.Slice(start, d);
            var hRow = xhat.Slice(start, d);
            int k = 0;
            if (Vector256.IsHardwareAccelerated)
            {
                for (; k <= d - W; k += W)
                {
                    var gk = Vector256.Create(gRow.Slice(k, W));
                    (Vector256.Create((ReadOnlySpan<float>)sumG.Slice(k, W)) + gk).CopyTo(sumG.Slice(k, W));
                    Vector256.FusedMultiplyAdd(gk, Vector256.Create(hRow.Slice(k, W)), Vector256.Create((ReadOnlySpan<float>)sumGx.Slice(k, W))).CopyTo(sumGx.Slice(k, W));
                }
            }
            for (; k < d; k++)
            {
                sumG[k] += gRow[k];
                sumGx[k] += gRow[k] * hRow[k];
            }
        }
    }

    /// <summary>One row's dx (+)= (1/σ)·(γg − mean(γg) − x̂·mean(γg·x̂)).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void RowGradient(ReadOnlySpan<float> g, ReadOnlySpan<float> xhat, ReadOnlySpan<float> gamma, float inv, Span<float> dx, bool accumulate)
    {
        const int W = 8;
        int d = g.Length, k = 0;
        float sd = 0f, sdx = 0f;
        if (Vector256.IsHardwareAccelerated)
        {
            Vector256<float> acc = Vector256<float>.Zero, accX = Vector256<float>.Zero;
            for (; k <= d - W; k += W)
            {
                var dk = Vector256.Create(gamma.Slice(k, W)) * Vector256.Create(g.Slice(k, W));
                acc += dk;
                accX = Vector256.FusedMultiplyAdd(dk, Vector256.Create(xhat.Slice(k, W)), accX);
            }
            sd = Vector256.Sum(acc);
            sdx = Vector256.Sum(accX);
        }
        for (; k < d; k++)
        {
            float dk = gamma[k] * g[k];
            sd += dk;
            sdx += dk * xhat[k];
        }
        // dx = a·(γg) + b·x̂ + c.
        float a = inv, b = -inv * sdx / d, c = -inv * sd / d;
        k = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            Vector256<float> av = Vector256.Create(a), bv = Vector256.Create(b), cv = Vector256.Create(c);
            for (; k <= d - W; k += W)
            {
                var dk = Vector256.Create(gamma.Slice(k, W)) * Vector256.Create(g.Slice(k, W));
                var v = Vector256.FusedMultiplyAdd(av, dk, Vector256.FusedMultiplyAdd(bv, Vector256.Create(xhat.Slice(k, W)), cv));
                if (accumulate)
                    v += Vector256.Create((ReadOnlySpan<float>)dx.Slice(k, W));
                v.CopyTo(dx.Slice(k, W));
            }
        }
        for (; k < d; k++)
        {
            float v = a * gamma[k] * g[k] + b * xhat[k] + c;
            dx[k] = accumulate ? dx[k] + v : v;
        }
    }

    /// <summary>t's gradient (+)= <paramref name="value"/> when t requires one.</summary>
    private static void AddInto(Tensor t, ReadOnlySpan<float> value)
    {
        if (t.RequiresGrad)
            GradTarget.For(t).Add(value);
    }
}

/// <summary>
/// Cuts images x [N, C, H, W] into non-overlapping p×p patches: y [N·T, C·p·p] with
/// T = (H/p)·(W/p) patches in row-major order, each flattened as (c, i, j), which is the layout
/// of a Conv2d weight [D, C, p, p]: y·Wᵀ equals the convolution with kernel = stride = p,
/// flattened and transposed to tokens (PyTorch's <c>proj(x).flatten(2).transpose(1, 2)</c>).
/// </summary>
public sealed class PatchifyOp : Op
{
    private static readonly PatchifyOp Instance = new();

    /// <summary>Patches [N·T, C·p·p] for p = <paramref name="patch"/>; throws a <see cref="ShapeException"/> unless <paramref name="x"/> is 4-D with H and W divisible by p.</summary>
    public static Tensor Forward(Tape tape, Tensor x, int patch)
    {
        if (x.Rank != 4 || patch < 1 || x.Dim(2) % patch != 0 || x.Dim(3) % patch != 0)
            throw new ShapeException($"patchify: input {x.Describe()} must be [N, C, H, W] with H and W divisible by the patch size {patch}");
        int n = x.Dim(0), c = x.Dim(1), h = x.Dim(2), w = x.Dim(3);
        int ph = h / patch, pw = w / patch;
        var y = tape.Workspace(n * ph * pw, c * patch * patch);
        Map(x.Span, y.Span, n, c, h, w, patch, toPatches: true, accumulate: false);
        if (tape.Tracks(x))
            tape.Record(new TapeEntry { Op = Instance, Output = y, A = x, Int0 = patch });
        return y;
    }

    /// <inheritdoc/>
    public override void Backward(Tape tape, in TapeEntry e)
    {
        var x = e.A!;
        var dx = GradTarget.For(x);
        Map(dx.Span, e.Output.Grad!.Span, x.Dim(0), x.Dim(1), x.Dim(2), x.Dim(3), e.Int0, toPatches: false, dx.Accumulate);
    }

    /// <summary>Copies image → patches, or patches → image (adding when <paramref name="accumulate"/>).</summary>
    internal static void Map(Span<float> image, Span<float> patches, int n, int c, int h, int w, int p, bool toPatches, bool accumulate)
    {
        int ph = h / p, pw = w / p, len = c * p * p;
        for (int s = 0; s < n; s++)
            for (int a = 0; a < ph; a++)
                for (int b = 0; b < pw; b++)
                {
                    int row = (s * ph + a) * pw + b;
                    for (int ch = 0; ch < c; ch++)
                        for (int i = 0; i < p; i++)
                        {
                            var img = image.Slice(((s * c + ch) * h + a * p + i) * w + b * p, p);
                            var pat = patches.Slice(row * len + (ch * p + i) * p, p);
                            if (toPatches)
                                img.CopyTo(pat);
                            else if (accumulate)
                                System.Numerics.Tensors.TensorPrimitives.Add(img, pat, img);
                            else
                                pat.CopyTo(img);
                        }
                }
    }
}

/// <summary>
/// Token assembly of a vision transformer: patch embeddings [N·T, D], an optional class token
/// [1, 1, D] put first, and learned position embeddings [1, T', D] added (T' = T or T + 1):
/// y [N·T', D], y[n, 0] = cls + pos[0], y[n, t'] = patch[n, t' − 1] + pos[t'].
/// </summary>
public sealed class TokenEmbedOp : Op
{
    private static readonly TokenEmbedOp Instance = new();

    /// <summary>Tokens [N·T', D] for T = <paramref name="tokens"/> patches per image; throws a <see cref="ShapeException"/> when the shapes do not fit.</summary>
    public static Tensor Forward(Tape tape, Tensor patches, int tokens, Tensor? cls, Tensor pos)
    {
        int d = patches.Dim(-1), n = patches.Length / d / tokens, extra = cls is null ? 0 : 1, total = tokens + extra;
        if (n * tokens * d != patches.Length || pos.Length != total * d || (cls is not null && cls.Length != d))
            throw new ShapeException($"token embedding: patches {patches.Describe()} with {tokens} tokens, class token {cls?.Describe() ?? "none"}, position embedding {pos.Describe()} do not fit");
        var y = tape.Workspace(n * total, d);
        var ys = y.Span;
        var ps = pos.Span;
        for (int s = 0; s < n; s++)
        {
            if (cls is not null)
                System.Numerics.Tensors.TensorPrimitives.Add(cls.Span, ps[..d], ys.Slice(s * total * d, d));
            System.Numerics.Tensors.TensorPrimitives.Add(patches.Span.Slice(s * tokens * d, tokens * d), ps[(extra * d)..],
                ys.Slice((s * total + extra) * d, tokens * d));
        }
        if (tape.Tracks(patches, pos) || (cls is not null && tape.Tracks(cls)))
            tape.Record(new TapeEntry { Op = Instance, Output = y, A = patches, B = pos, C = cls, Int0 = tokens });
        return y;
    }

    /// <inheritdoc/>
    public override void Backward(Tape tape, in TapeEntry e)
    {
        Tensor patches = e.A!, pos = e.B!;
        var cls = e.C;
        int tokens = e.Int0, d = patches.Dim(-1), n = patches.Length / d / tokens, extra = cls is null ? 0 : 1, total = tokens + extra;
        var g = e.Output.Grad!.Span;
        if (patches.RequiresGrad)
        {
            var dp = GradTarget.For(patches);
            for (int s = 0; s < n; s++)
            {
                var src = g.Slice((s * total + extra) * d, tokens * d);
                var dst = dp.Span.Slice(s * tokens * d, tokens * d);
                if (dp.Accumulate)
                    System.Numerics.Tensors.TensorPrimitives.Add(dst, src, dst);
                else
                    src.CopyTo(dst);
            }
        }
        if (pos.RequiresGrad)
        {
            // dpos = Σ_samples g over each sample's T' rows.
            var sum = tape.Scratch(0, total * d);
            sum.Clear();
            for (int s = 0; s < n; s++)
                System.Numerics.Tensors.TensorPrimitives.Add(sum, g.Slice(s * total * d, total * d), sum);
            GradTarget.For(pos).Add(sum);
        }
        if (cls is { RequiresGrad: true })
        {
            // dcls = Σ_samples g of the sample's first row.
            var sum = tape.Scratch(0, d);
            sum.Clear();
            for (int s = 0; s < n; s++)
                System.Numerics.Tensors.TensorPrimitives.Add(sum, g.Slice(s * total * d, d), sum);
            GradTarget.For(cls).Add(sum);
        }
    }
}

/// <summary>
/// Multi-head scaled dot-product self-attention on a fused projection qkv [N·T, 3D] (columns:
/// q, k, v, each split into H heads of D/H, as PyTorch's
/// <c>qkv.reshape(N, T, 3, H, D/H).permute(2, 0, 3, 1, 4)</c>): per sample and head
/// P = softmax(Q·Kᵀ/√(D/H)) row-wise (the row maximum subtracted first), O = P·V; y [N·T, D]
/// holds the heads side by side (<c>(P·V).transpose(1, 2).reshape(N, T, D)</c>). The forward
/// saves P for the backward. Each head's rows are contiguous D/H floats of qkv, so the products
/// run in place as eight-lane dot products and scaled additions (no head split or merge
/// copies), and the exponentials of a head's T×T scores as one eight-lane pass.
/// </summary>
public sealed class SelfAttentionOp : Op
{
    private static readonly SelfAttentionOp Instance = new();

    /// <summary>y [N·T, D] for T = <paramref name="tokens"/>; throws a <see cref="ShapeException"/> when <paramref name="qkv"/> is not [N·T, 3D] or <paramref name="heads"/> does not divide D.</summary>
    public static Tensor Forward(Tape tape, Tensor qkv, int tokens, int heads)
    {
        if (qkv.Rank != 2 || qkv.Dim(1) % 3 != 0 || tokens < 1 || qkv.Rows % tokens != 0)
            throw new ShapeException($"attention: input {qkv.Describe()} must be [N·{tokens}, 3D]");
        int d = qkv.Dim(1) / 3;
        if (heads < 1 || d % heads != 0)
            throw new ShapeException($"attention: {heads} heads do not divide the dimension {d}");
        int n = qkv.Rows / tokens, t = tokens;
        var y = tape.Workspace(n * t, d);
        var probs = tape.Workspace(n * heads * t * t);
        var job = t_samples ??= new SampleJob();
        (job.Qkv, job.Y, job.Probs, job.Tokens, job.Heads, job.Backward) = (qkv, y, probs, t, heads, false);
        RowParallel.For(n, MinSamplesPerThread, job);
        job.Clear();
        if (tape.Tracks(qkv))
            tape.Record(new TapeEntry { Op = Instance, Output = y, A = qkv, Saved = probs, Int0 = tokens, Int1 = heads });
        return y;
    }

    /// <summary>Sample <paramref name="s"/>'s rows of y [N·T, D] and its heads' P (each [T, T]) from its rows of qkv [N·T, 3D].</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void ForwardSample(ReadOnlySpan<float> qkv, Span<float> y, Span<float> probs, int s, int t, int d, int heads)
    {
        int hd = d / heads, w = 3 * d;
        float scale = 1f / MathF.Sqrt(hd);
        var kt = Scratch(hd * t);
        for (int h = 0; h < heads; h++)
        {
            int q = s * t * w + h * hd, k = q + d, v = q + 2 * d;
            var p = probs.Slice((s * heads + h) * t * t, t * t);
            SmallMatMul.Transpose(qkv[k..], w, kt, t, t, hd);
            SmallMatMul.Multiply(qkv[q..], w, kt, t, p, t, t, t, hd, accumulate: false); // Q·Kᵀ
            for (int i = 0; i < t; i++)
            {
                var row = p.Slice(i * t, t);
                float max = float.NegativeInfinity;
                foreach (float value in row)
                    max = MathF.Max(max, value);
                for (int j = 0; j < t; j++)
                    row[j] = (row[j] - max) * scale;
            }
            ExpInPlace(p);
            for (int i = 0; i < t; i++)
            {
                var row = p.Slice(i * t, t);
                float total = 0f;
                foreach (float value in row)
                    total += value;
                float inv = 1f / total;
                for (int j = 0; j < t; j++)
                    row[j] *= inv;
            }
            SmallMatMul.Multiply(p, t, qkv[v..], w, y[(s * t * d + h * hd)..], d, t, hd, t, accumulate: false); // P·V
        }
    }

    /// <inheritdoc/>
    public override void Backward(Tape tape, in TapeEntry e)
    {
        var qkv = e.A!;
        int t = e.Int0, heads = e.Int1, d = qkv.Dim(1) / 3, n = qkv.Rows / t;
        var dx = GradTarget.For(qkv);
        var job = t_samples ??= new SampleJob();
        (job.Qkv, job.Y, job.Probs, job.Tokens, job.Heads, job.Backward, job.Accumulate) = (qkv, e.Output, e.Saved!, t, heads, true, dx.Accumulate);
        RowParallel.For(n, MinSamplesPerThread, job);
        job.Clear();
    }

    private const int MinSamplesPerThread = 8;

    [ThreadStatic]
    private static SampleJob? t_samples;

    /// <summary>Samples of the forward or the backward for <see cref="RowParallel"/> (each sample's rows are its own).</summary>
    private sealed class SampleJob : IRowBody
    {
        public Tensor? Qkv, Y, Probs;
        public int Tokens, Heads;
        public bool Backward, Accumulate;

        public void Run(int start, int end)
        {
            int d = Qkv!.Dim(1) / 3;
            for (int s = start; s < end; s++)
            {
                if (Backward)
                    BackwardSample(Qkv.Span, Y!.Grad!.Span, Probs!.Span, Qkv.Grad!.Span, Accumulate, s, Tokens, d, Heads);
                else
                    ForwardSample(Qkv.Span, Y!.Span, Probs!.Span, s, Tokens, d, Heads);
            }
        }

        public void Clear() => Qkv = Y = Probs = null;
    }

    /// <summary>Sample <paramref name="s"/>'s rows of dqkv (+)= from its rows of g [N·T, D], qkv and P.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void BackwardSample(ReadOnlySpan<float> qkv, ReadOnlySpan<float> g, ReadOnlySpan<float> probs, Span<float> dqkv,
        bool accumulate, int s, int t, int d, int heads)
    {
        int hd = d / heads, w = 3 * d;
        float scale = 1f / MathF.Sqrt(hd);
        if (!accumulate)
            dqkv.Slice(s * t * w, t * w).Clear();
        var scratch = Scratch(2 * t * t + hd * t);
        Span<float> transposed = scratch[..(t * t)], dp = scratch.Slice(t * t, t * t), vt = scratch.Slice(2 * t * t, hd * t);
        for (int h = 0; h < heads; h++)
        {
            int q = s * t * w + h * hd, k = q + d, v = q + 2 * d, gi = s * t * d + h * hd;
            var p = probs.Slice((s * heads + h) * t * t, t * t);
            SmallMatMul.Transpose(p, t, transposed, t, t, t);
            SmallMatMul.Multiply(transposed, t, g[gi..], d, dqkv[v..], w, t, hd, t, accumulate: true); // dV += Pᵀ·G
            SmallMatMul.Transpose(qkv[v..], w, vt, t, t, hd);
            SmallMatMul.Multiply(g[gi..], d, vt, t, dp, t, t, t, hd, accumulate: false); // dP = G·Vᵀ
            for (int i = 0; i < t; i++)
            {
                // dS_ij = P_ij·(dP_ij − Σ_j' P_ij'·dP_ij')·scale.
                var row = p.Slice(i * t, t);
                var dRow = dp.Slice(i * t, t);
                float weighted = 0f;
                for (int j = 0; j < t; j++)
                    weighted += row[j] * dRow[j];
                for (int j = 0; j < t; j++)
                    dRow[j] = row[j] * (dRow[j] - weighted) * scale;
            }
            SmallMatMul.Multiply(dp, t, qkv[k..], w, dqkv[q..], w, t, hd, t, accumulate: true); // dQ += dS·K
            SmallMatMul.Transpose(dp, t, transposed, t, t, t);
            SmallMatMul.Multiply(transposed, t, qkv[q..], w, dqkv[k..], w, t, hd, t, accumulate: true); // dK += dSᵀ·Q
        }
    }

    [ThreadStatic]
    private static float[]? t_scratch;

    /// <summary>This thread's scratch of at least <paramref name="length"/> floats (grown, never shrunk).</summary>
    private static Span<float> Scratch(int length)
    {
        if (t_scratch is null || t_scratch.Length < length)
            t_scratch = new float[length];
        return t_scratch.AsSpan(0, length);
    }

    /// <summary>x = e^x for x ≤ 0 (shifted scores), eight lanes at a time.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void ExpInPlace(Span<float> x)
    {
        int k = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            for (; k <= x.Length - Vector256<float>.Count; k += Vector256<float>.Count)
            {
                var xk = x.Slice(k, Vector256<float>.Count);
                VectorMath.Exp(Vector256.Create((ReadOnlySpan<float>)xk)).CopyTo(xk);
            }
        }
        for (; k < x.Length; k++)
            x[k] = MathF.Exp(x[k]);
    }
}

/// <summary>
/// Pools tokens x [N·T, D] to [N, D]: the first token (a class token) or the mean over tokens.
/// </summary>
public sealed class TokenPoolOp : Op
{
    private static readonly TokenPoolOp Instance = new();

    /// <summary>[N, D] for T = <paramref name="tokens"/>: each sample's first token when <paramref name="first"/>, else the mean of its tokens; throws a <see cref="ShapeException"/> when <paramref name="x"/> is not [N·T, D].</summary>
    public static Tensor Forward(Tape tape, Tensor x, int tokens, bool first)
    {
        int d = x.Dim(-1), n = x.Length / d / tokens;
        if (tokens < 1 || n * tokens * d != x.Length)
            throw new ShapeException($"token pooling: input {x.Describe()} is not [N·{tokens}, D]");
        var y = tape.Workspace(n, d);
        var xs = x.Span;
        var ys = y.Span;
        for (int s = 0; s < n; s++)
        {
            var ysRow = ys.Slice(s * d, d);
            if (first)
            {
                xs.Slice(s * tokens * d, d).CopyTo(ysRow);
                continue;
            }
            for (int k = 0; k < d; k++)
            {
                double sum = 0;
                for (int i = 0; i < tokens; i++)
                    sum += xs[(s * tokens + i) * d + k];
                ysRow[k] = (float)(sum / tokens);
            }
        }
        if (tape.Tracks(x))
            tape.Record(new TapeEntry { Op = Instance, Output = y, A = x, Int0 = tokens, Int1 = first ? 1 : 0 });
        return y;
    }

    /// <inheritdoc/>
    public override void Backward(Tape tape, in TapeEntry e)
    {
        var x = e.A!;
        int tokens = e.Int0, d = x.Dim(-1), n = x.Length / d / tokens;
        bool first = e.Int1 == 1;
        var g = e.Output.Grad!.Span;
        var dx = GradTarget.For(x);
        float w = first ? 1f : 1f / tokens;
        for (int s = 0; s < n; s++)
            for (int i = 0; i < tokens; i++)
            {
                var dst = dx.Span.Slice((s * tokens + i) * d, d);
                var src = g.Slice(s * d, d);
                for (int k = 0; k < d; k++)
                {
                    float v = first && i > 0 ? 0f : w * src[k];
                    dst[k] = dx.Accumulate ? dst[k] + v : v;
                }
            }
    }
}
