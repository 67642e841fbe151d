using LabelNoiseLab.Tensors;

namespace LabelNoiseLab.Autograd;

/// <summary>
/// Batch normalisation over x [N, C] or [N, C, H, W], per channel c:
/// y = γ_c·x̂ + β_c with x̂ = (x − μ_c)/√(σ²_c + ε). In training μ, σ² are the batch's (biased
/// variance, over N·H·W values) and are handed back so the layer can update its running
/// statistics; in evaluation the running statistics are passed in and used as constants. The
/// forward saves μ and 1/√(σ²+ε) per channel; the backward recomputes x̂ from the input, so no
/// activation-sized buffer is kept. Every pass is one vectorised loop per (sample, channel) plane
/// (<see cref="Kernels"/>), accumulated per channel in double.
/// </summary>
public sealed class BatchNormOp : Op
{
    private static readonly BatchNormOp Instance = new();

    /// <param name="batchMean">Training: receives the batch mean per channel.</param>
    /// <param name="batchVariance">Training: receives the biased batch variance per channel.</param>
    /// <param name="runningMean">Evaluation: the mean to normalise with (null in training).</param>
    /// <param name="runningVariance">Evaluation: the variance to normalise with (null in training).</param>
    public static unsafe Tensor Forward(Tape tape, Tensor x, Tensor weight, Tensor bias, float eps,
        Span<float> batchMean, Span<float> batchVariance, ReadOnlySpan<float> runningMean = default, ReadOnlySpan<float> runningVariance = default)
    {
        bool training = runningMean.IsEmpty;
        var (n, c, plane) = Layout("batchnorm", x, weight, bias);
        if (training && (batchMean.Length != c || batchVariance.Length != c))
            throw new ArgumentException($"batchnorm: batch statistics need {c} channels", nameof(batchMean));
        if (!training && (runningMean.Length != c || runningVariance.Length != c))
            throw new ArgumentException($"batchnorm: running statistics need {c} channels", nameof(runningMean));
        int count = n * plane;
        if (training && count < 2)
            throw new ShapeException($"batchnorm: training needs more than one value per channel, got input {x.Describe()}");
        var y = tape.Workspace(x.Shape);
        var stats = tape.Workspace(2 * c); // μ_c, then 1/√(σ²_c + ε)
        fixed (float* px = x.Span, py = y.Span, pStats = stats.Span, pMean = batchMean, pVar = batchVariance,
            pRunMean = runningMean, pRunVar = runningVariance, pw = weight.Span, pb = bias.Span)
        {
            var body = new ForwardBody(px, py, pStats, training ? pMean : pRunMean, training ? pVar : pRunVar, pw, pb, training, n, c, plane, eps);
            ParallelRange.For(c, 3L * x.Length, ref body);
        }
        if (tape.Tracks(x, weight) || tape.Tracks(bias))
            tape.Record(new TapeEntry { Op = Instance, Output = y, A = x, B = weight, C = bias, State = stats, Int0 = training ? 1 : 0 });
        return y;
    }

    /// <summary>The forward for channels [start, end): statistics (training), then y = x·a + b per plane.</summary>
    private readonly unsafe struct ForwardBody(float* x, float* y, float* stats, float* mean, float* variance,
        float* weight, float* bias, bool training, int n, int c, int plane, float eps) : IRangeBody
    {
        public void Run(int start, int end)
        {
            for (int ch = start; ch < end; ch++)
            {
                double m, v;
                if (training)
                {
                    double s = 0;
                    for (int i = 0; i < n; i++)
                        s += System.Numerics.Tensors.TensorPrimitives.Sum(Plane(x, i, ch));
                    m = s / ((double)n * plane);
                    double ss = 0;
                    for (int i = 0; i < n; i++)
                        ss += Kernels.SumSquaredDeviations(Plane(x, i, ch), (float)m);
                    v = ss / ((double)n * plane);
                    mean[ch] = (float)m;
                    variance[ch] = (float)v;
                }
                else
                {
                    m = mean[ch];
                    v = variance[ch];
                }
                float inv = (float)(1.0 / Math.Sqrt(v + eps)), mf = (float)m;
                stats[ch] = mf;
                stats[c + ch] = inv;
                // y = γ·(x − μ)·inv + β = x·a + b.
                float a = weight[ch] * inv, b = bias[ch] - mf * a;
                for (int i = 0; i < n; i++)
                    Kernels.Affine(Plane(x, i, ch), a, b, Plane(y, i, ch));
            }
        }

        private Span<float> Plane(float* p, int i, int ch) => new(p + ((long)i * c + ch) * plane, plane);
    }

    /// <inheritdoc/>
    public override unsafe void Backward(Tape tape, in TapeEntry e)
    {
        Tensor x = e.A!, weight = e.B!, bias = e.C!;
        var (n, c, plane) = Layout("batchnorm", x, weight, bias);
        var g = e.Output.Grad!.Span;
        var xs = x.Span;
        var stats = ((Tensor)e.State!).Span;
        bool training = e.Int0 == 1;
        Span<double> sumG = c <= 256 ? stackalloc double[c] : new double[c];
        Span<double> sumGx = c <= 256 ? stackalloc double[c] : new double[c];
        var dx = x.RequiresGrad ? GradTarget.For(x) : default;
        fixed (float* pg = g, px = xs, pStats = stats, pw = weight.Span, pdx = dx.Span)
        fixed (double* pSumG = sumG, pSumGx = sumGx)
        {
            var body = new BackwardBody(pg, px, pStats, pw, pdx, pSumG, pSumGx, training, dx.Accumulate, n, c, plane);
            ParallelRange.For(c, 3L * x.Length, ref body);
        }
        AffineGradients(weight, bias, sumG, sumGx);
    }

    /// <summary>
    /// The backward for channels [start, end): Σ g and Σ g·x̂ (x̂ recomputed from x), then, when dx
    /// is wanted, dx (+)= γ/σ·(g − mean(g) − x̂·mean(g·x̂)) in training, γ/σ·g in evaluation.
    /// </summary>
    private readonly unsafe struct BackwardBody(float* g, float* x, float* stats, float* weight, float* dx,
        double* sumG, double* sumGx, bool training, bool accumulate, int n, int c, int plane) : IRangeBody
    {
        public void Run(int start, int end)
        {
            int count = n * plane;
            for (int ch = start; ch < end; ch++)
            {
                double s = 0, sx = 0;
                for (int i = 0; i < n; i++)
                {
                    var (sg, sgx) = Kernels.SumAndCenteredDot(Plane(g, i, ch), Plane(x, i, ch), stats[ch]);
                    s += sg;
                    sx += sgx;
                }
                sumG[ch] = s;
                sumGx[ch] = sx * stats[c + ch]; // Σ g·x̂
                if (dx == null)
                    continue;
                float m = stats[ch], inv = stats[c + ch], scale = weight[ch] * inv;
                // With x̂ = (x − μ)·inv, dx = a·g + b·x + k.
                float meanG = training ? (float)(sumG[ch] / count) : 0f;
                float meanGx = training ? (float)(sumGx[ch] / count) : 0f;
                float b = -scale * inv * meanGx, k = -scale * meanG - b * m;
                for (int i = 0; i < n; i++)
                    Kernels.AffineCombine(Plane(g, i, ch), Plane(x, i, ch), scale, b, k, Plane(dx, i, ch), accumulate);
            }
        }

        private Span<float> Plane(float* p, int i, int ch) => new(p + ((long)i * c + ch) * plane, plane);
    }

    /// <summary>dγ_c (+)= Σ g·x̂, dβ_c (+)= Σ g over the channel.</summary>
    internal static void AffineGradients(Tensor weight, Tensor bias, ReadOnlySpan<double> sumG, ReadOnlySpan<double> sumGx)
    {
        if (weight.RequiresGrad)
        {
            var dw = GradTarget.For(weight);
            for (int ch = 0; ch < sumGx.Length; ch++)
                dw.Span[ch] = dw.Accumulate ? dw.Span[ch] + (float)sumGx[ch] : (float)sumGx[ch];
        }
        if (bias.RequiresGrad)
        {
            var db = GradTarget.For(bias);
            for (int ch = 0; ch < sumG.Length; ch++)
                db.Span[ch] = db.Accumulate ? db.Span[ch] + (float)sumG[ch] : (float)sumG[ch];
        }
    }

    /// <summary>(N, C, H·W) of an input [N, C] or [N, C, H, W] with affine parameters [C].</summary>
    internal static (int N, int C, int Plane) Layout(string op, Tensor x, Tensor weight, Tensor bias)
    {
        if (x.Rank is not (2 or 4))
            throw new ShapeException($"{op}: input {x.Describe()} must be [N, C] or [N, C, H, W]");
        int c = x.Dim(1);
        if (weight.Length != c || bias.Length != c)
            throw new ShapeException($"{op}: weight {weight.Describe()} and bias {bias.Describe()} must have {c} values for input {x.Describe()}");
        return (x.Dim(0), c, x.Rank == 4 ? x.Dim(2) * x.Dim(3) : 1);
    }

    internal static double Sum(ReadOnlySpan<float> values)
    {
        double s = 0;
        foreach (float v in values)
            s += v;
        return s;
    }
}

/// <summary>
/// Group normalisation (Wu &amp; He 2018) over x [N, C] or [N, C, H, W]: the C channels are split
/// into G groups of C/G; each sample's group is normalised by its own mean and (biased)
/// variance over C/G·H·W values, then y = γ_c·x̂ + β_c. Samples never mix.
/// </summary>
public sealed class GroupNormOp : Op
{
    private static readonly GroupNormOp Instance = new();

    /// <summary>y, same shape as <paramref name="x"/>, with γ = <paramref name="weight"/> [C] and β = <paramref name="bias"/> [C]; throws a <see cref="ShapeException"/> for a wrong layout or when <paramref name="groups"/> does not divide C.</summary>
    public static unsafe Tensor Forward(Tape tape, Tensor x, Tensor weight, Tensor bias, int groups, float eps)
    {
        var (n, c, plane) = BatchNormOp.Layout("groupnorm", x, weight, bias);
        if (groups < 1 || c % groups != 0)
            throw new ShapeException($"groupnorm: {groups} groups do not divide {c} channels");
        var y = tape.Workspace(x.Shape);
        bool track = tape.Tracks(x, weight) || tape.Tracks(bias);
        var xhat = track ? tape.Workspace(x.Shape) : null;
        var invStd = tape.Workspace(n * groups);
        fixed (float* px = x.Span, py = y.Span, ph = xhat is null ? default : xhat.Span, pInv = invStd.Span, pw = weight.Span, pb = bias.Span)
        {
            var body = new ForwardBody(px, py, ph, pInv, pw, pb, groups, c / groups, plane, eps);
            ParallelRange.For(n * groups, 3L * x.Length, ref body);
        }
        if (track)
            tape.Record(new TapeEntry { Op = Instance, Output = y, A = x, B = weight, C = bias, Saved = xhat, State = invStd, Int0 = groups });
        return y;
    }

    /// <summary>Sample-groups [start, end): mean and 1/σ in double, then x̂ (saved when tracked) and y = γ·x̂ + β.</summary>
    private readonly unsafe struct ForwardBody(float* x, float* y, float* xhat, float* invStd, float* weight, float* bias,
        int groups, int channelsPerGroup, int plane, float eps) : IRangeBody
    {
        public void Run(int start, int end)
        {
            int perGroup = channelsPerGroup * plane;
            for (int ng = start; ng < end; ng++)
            {
                var values = new ReadOnlySpan<float>(x + (long)ng * perGroup, perGroup);
                double mean = BatchNormOp.Sum(values) / perGroup, v = 0;
                foreach (float value in values)
                    v += (value - mean) * (value - mean);
                float inv = (float)(1.0 / Math.Sqrt(v / perGroup + eps)), m = (float)mean;
                invStd[ng] = inv;
                int firstChannel = ng % groups * channelsPerGroup;
                for (int cc = 0; cc < channelsPerGroup; cc++)
                {
                    float gamma = weight[firstChannel + cc], beta = bias[firstChannel + cc];
                    long o = (long)ng * perGroup + cc * plane;
                    for (int k = 0; k < plane; k++)
                    {
                        float h = (x[o + k] - m) * inv;
                        if (xhat != null)
                            xhat[o + k] = h;
                        y[o + k] = gamma * h + beta;
                    }
                }
            }
        }
    }

    /// <inheritdoc/>
    public override unsafe void Backward(Tape tape, in TapeEntry e)
    {
        Tensor x = e.A!, weight = e.B!, bias = e.C!;
        var (n, c, plane) = BatchNormOp.Layout("groupnorm", x, weight, bias);
        int groups = e.Int0;
        Span<double> sumG = c <= 256 ? stackalloc double[c] : new double[c];
        Span<double> sumGx = c <= 256 ? stackalloc double[c] : new double[c];
        var dx = x.RequiresGrad ? GradTarget.For(x) : default;
        fixed (float* pg = e.Output.Grad!.Span, ph = e.Saved!.Span, pInv = ((Tensor)e.State!).Span, pw = weight.Span, pdx = dx.Span)
        fixed (double* pSumG = sumG, pSumGx = sumGx)
        {
            var sums = new AffineSumsBody(pg, ph, pSumG, pSumGx, n, c, plane);
            ParallelRange.For(c, 2L * x.Length, ref sums);
            if (pdx != null)
            {
                var body = new InputGradientBody(pg, ph, pInv, pw, pdx, dx.Accumulate, groups, c / groups, plane);
                ParallelRange.For(n * groups, 3L * x.Length, ref body);
            }
        }
        BatchNormOp.AffineGradients(weight, bias, sumG, sumGx);
    }

    /// <summary>Channels [start, end): Σ g and Σ g·x̂ over every sample, in double.</summary>
    private readonly unsafe struct AffineSumsBody(float* g, float* xhat, double* sumG, double* sumGx, int n, int c, int plane) : IRangeBody
    {
        public void Run(int start, int end)
        {
            for (int ch = start; ch < end; ch++)
            {
                double s = 0, sx = 0;
                for (int i = 0; i < n; i++)
                {
                    long o = ((long)i * c + ch) * plane;
                    for (long k = o; k < o + plane; k++)
                    {
                        s += g[k];
                        sx += g[k] * (double)xhat[k];
                    }
                }
                sumG[ch] = s;
                sumGx[ch] = sx;
            }
        }
    }

    /// <summary>Sample-groups [start, end): with d = γ·g, dx (+)= (1/σ)·(d − mean(d) − x̂·mean(d·x̂)) over the group.</summary>
    private readonly unsafe struct InputGradientBody(float* g, float* xhat, float* invStd, float* weight, float* dx, bool accumulate,
        int groups, int channelsPerGroup, int plane) : IRangeBody
    {
        public void Run(int start, int end)
        {
            int perGroup = channelsPerGroup * plane;
            for (int ng = start; ng < end; ng++)
            {
                int firstChannel = ng % groups * channelsPerGroup;
                long first = (long)ng * perGroup;
                double sd = 0, sdx = 0;
                for (int k = 0; k < perGroup; k++)
                {
                    double d = weight[firstChannel + k / plane] * (double)g[first + k];
                    sd += d;
                    sdx += d * xhat[first + k];
                }
                float meanD = (float)(sd / perGroup), meanDx = (float)(sdx / perGroup), inv = invStd[ng];
                for (int cc = 0; cc < channelsPerGroup; cc++)
                {
                    float gamma = weight[firstChannel + cc];
                    long o = first + cc * plane;
                    for (int k = 0; k < plane; k++)
                    {
                        float d = inv * (gamma * g[o + k] - meanD - xhat[o + k] * meanDx);
                        dx[o + k] = accumulate ? dx[o + k] + d : d;
                    }
                }
            }
        }
    }
}
