using System.Numerics.Tensors;
using System.Runtime.Intrinsics;
using LabelNoiseLab.Tensors;

namespace LabelNoiseLab.Autograd;

/// <summary>
/// An element-wise function y = f(x): each subclass writes f and its derivative next to each
/// other; recording and gradient bookkeeping live here once.
/// </summary>
public abstract class UnaryOp : Op
{
    /// <summary>y = f(x) element-wise, same shape as <paramref name="x"/>; recorded when <paramref name="x"/> requires a gradient.</summary>
    public Tensor Forward(Tape tape, Tensor x)
    {
        var y = tape.Workspace(x.Shape);
        Apply(x.Span, y.Span);
        if (tape.Tracks(x))
            tape.Record(new TapeEntry { Op = this, Output = y, A = x });
        return y;
    }

    /// <summary>y = f(x).</summary>
    public abstract void Apply(ReadOnlySpan<float> x, Span<float> y);

    /// <summary>dx (+)= g ⊙ f'(x), given x and y = f(x).</summary>
    protected abstract void Derivative(ReadOnlySpan<float> x, ReadOnlySpan<float> y, ReadOnlySpan<float> g, Span<float> dx, bool accumulate);

    /// <inheritdoc/>
    public override void Backward(Tape tape, in TapeEntry e)
    {
        var dx = GradTarget.For(e.A!);
        Derivative(e.A!.Span, e.Output.Span, e.Output.Grad!.Span, dx.Span, dx.Accumulate);
    }
}

/// <summary>y = max(x, 0).</summary>
public sealed class ReluOp : UnaryOp
{
    /// <summary>The shared instance (the op has no state).</summary>
    public static readonly ReluOp Instance = new();

    /// <inheritdoc/>
    public override void Apply(ReadOnlySpan<float> x, Span<float> y) => Kernels.Relu(x, y);

    /// <inheritdoc/>
    protected override void Derivative(ReadOnlySpan<float> x, ReadOnlySpan<float> y, ReadOnlySpan<float> g, Span<float> dx, bool accumulate)
        => Kernels.ReluBackward(y, g, dx, accumulate);
}

/// <summary>y = tanh(x).</summary>
public sealed class TanhOp : UnaryOp
{
    /// <summary>The shared instance (the op has no state).</summary>
    public static readonly TanhOp Instance = new();

    /// <inheritdoc/>
    public override void Apply(ReadOnlySpan<float> x, Span<float> y) => TensorPrimitives.Tanh(x, y);

    /// <inheritdoc/>
    protected override void Derivative(ReadOnlySpan<float> x, ReadOnlySpan<float> y, ReadOnlySpan<float> g, Span<float> dx, bool accumulate)
    {
        for (int i = 0; i < x.Length; i++)
        {
            float d = g[i] * (1f - y[i] * y[i]);
            dx[i] = accumulate ? dx[i] + d : d;
        }
    }
}

/// <summary>y = 1/(1 + e^−x).</summary>
public sealed class SigmoidOp : UnaryOp
{
    /// <summary>The shared instance (the op has no state).</summary>
    public static readonly SigmoidOp Instance = new();

    /// <inheritdoc/>
    public override void Apply(ReadOnlySpan<float> x, Span<float> y) => TensorPrimitives.Sigmoid(x, y);

    /// <inheritdoc/>
    protected override void Derivative(ReadOnlySpan<float> x, ReadOnlySpan<float> y, ReadOnlySpan<float> g, Span<float> dx, bool accumulate)
    {
        for (int i = 0; i < x.Length; i++)
        {
            float d = g[i] * y[i] * (1f - y[i]);
            dx[i] = accumulate ? dx[i] + d : d;
        }
    }
}

/// <summary>y = erf(x), the activation of the label-noise SGD paper's classifier.</summary>
public sealed class ErfOp : UnaryOp
{
    /// <summary>The shared instance (the op has no state).</summary>
    public static readonly ErfOp Instance = new();
    private static readonly double TwoOverSqrtPi = 2.0 / Math.Sqrt(Math.PI);

    /// <inheritdoc/>
    public override void Apply(ReadOnlySpan<float> x, Span<float> y)
    {
        for (int i = 0; i < x.Length; i++)
            y[i] = Kernels.ErfSingle(x[i]);
    }

    /// <inheritdoc/>
    protected override void Derivative(ReadOnlySpan<float> x, ReadOnlySpan<float> y, ReadOnlySpan<float> g, Span<float> dx, bool accumulate)
    {
        for (int i = 0; i < x.Length; i++)
        {
            float d = (float)(g[i] * TwoOverSqrtPi * Math.Exp(-(double)x[i] * x[i]));
            dx[i] = accumulate ? dx[i] + d : d;
        }
    }
}

/// <summary>
/// Exact GELU: y = x·Φ(x) = ½x(1 + erf(x/√2)), dy/dx = Φ(x) + x·φ(x). erf is evaluated in
/// float32 as PyTorch's vectorised CPU kernel does (Abramowitz and Stegun 7.1.26:
/// erf(z) = 1 − t·(a₁ + t·(a₂ + …))·e^(−z²), t = 1/(1 + p·|z|), absolute error ≤ 1.5·10⁻⁷),
/// eight lanes at a time, and the one exponential e^(−x²/2) serves both Φ and φ.
/// </summary>
public sealed class GeluOp : UnaryOp
{
    /// <summary>The shared instance (the op has no state).</summary>
    public static readonly GeluOp Instance = new();
    private const float InvSqrt2 = 0.70710678118654752f;
    private const float InvSqrt2Pi = 0.39894228040143268f;
    private const float P = 0.3275911f, A1 = 0.254829592f, A2 = -0.284496736f, A3 = 1.421413741f, A4 = -1.453152027f, A5 = 1.061405429f;

    /// <inheritdoc/>
    public override void Apply(ReadOnlySpan<float> x, Span<float> y) => RunParallel(x, default, y, derivative: false, accumulate: false);

    /// <inheritdoc/>
    protected override void Derivative(ReadOnlySpan<float> x, ReadOnlySpan<float> y, ReadOnlySpan<float> g, Span<float> dx, bool accumulate)
        => RunParallel(x, g, dx, derivative: true, accumulate);

    private const int MinElementsPerThread = 1 << 14;
    // Ranges are whole blocks of eight lanes, so each element takes the same path (vector or
    // scalar tail) and gets the same bits on any number of threads.
    private const int Block = 8;

    [ThreadStatic]
    private static Job? t_job;

    /// <summary><see cref="Run"/> over ranges of the elements on <see cref="Blas.Threads"/> threads (the spans are pinned until every range is done).</summary>
    private static unsafe void RunParallel(ReadOnlySpan<float> x, ReadOnlySpan<float> g, Span<float> dst, bool derivative, bool accumulate)
    {
        if (x.Length < 2 * MinElementsPerThread || Blas.Threads == 1)
        {
            Run(x, g, dst, derivative, accumulate);
            return;
        }
        fixed (float* px = x, pg = g, pd = dst)
        {
            var job = t_job ??= new Job();
            job.X = px;
            job.G = pg;
            job.Dst = pd;
            job.Derivative = derivative;
            job.Accumulate = accumulate;
            job.Length = x.Length;
            RowParallel.For((x.Length + Block - 1) / Block, MinElementsPerThread / Block, job);
        }
    }

    /// <summary>A range of eight-element blocks for <see cref="RowParallel"/>, over pinned buffers.</summary>
    private sealed unsafe class Job : IRowBody
    {
        public float* X, G, Dst;
        public int Length;
        public bool Derivative, Accumulate;

        public void Run(int start, int end)
        {
            int from = start * Block, count = Math.Min(end * Block, Length) - from;
            GeluOp.Run(new ReadOnlySpan<float>(X + from, count), Derivative ? new ReadOnlySpan<float>(G + from, count) : default,
                new Span<float>(Dst + from, count), Derivative, Accumulate);
        }
    }

    /// <summary>Φ(x) and e^(−x²/2) for one value (the scalar lanes of <see cref="Run"/>).</summary>
    internal static (float Cdf, float Exp) CdfAndExp(float x)
    {
        float z = MathF.Abs(x) * InvSqrt2, t = 1f / (1f + P * z);
        float e = MathF.Exp(-z * z);
        float erf = 1f - t * (A1 + t * (A2 + t * (A3 + t * (A4 + t * A5)))) * e;
        return (0.5f + 0.5f * MathF.CopySign(erf, x), e);
    }

    /// <summary>out = x·Φ(x), or out (+)= g·(Φ(x) + x·φ(x)) when <paramref name="derivative"/>. Compiled optimised at once: unoptimised vector code is ~5× slower.</summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveOptimization)]
    private static void Run(ReadOnlySpan<float> x, ReadOnlySpan<float> g, Span<float> dst, bool derivative, bool accumulate)
    {
        int i = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            var half = Vector256.Create(0.5f);
            var one = Vector256.Create(1f);
            var signMask = Vector256.Create(-0f);
            for (; i <= x.Length - Vector256<float>.Count; i += Vector256<float>.Count)
            {
                var xv = Vector256.Create(x.Slice(i, Vector256<float>.Count));
                var z = Vector256.AndNot(xv, signMask) * Vector256.Create(InvSqrt2);
                var t = one / Vector256.FusedMultiplyAdd(Vector256.Create(P), z, one);
                var e = VectorMath.Exp(-(z * z));
                var poly = Vector256.FusedMultiplyAdd(t, Vector256.Create(A5), Vector256.Create(A4));
                poly = Vector256.FusedMultiplyAdd(t, poly, Vector256.Create(A3));
                poly = Vector256.FusedMultiplyAdd(t, poly, Vector256.Create(A2));
                poly = Vector256.FusedMultiplyAdd(t, poly, Vector256.Create(A1));
                var erf = one - t * poly * e;
                var cdf = Vector256.FusedMultiplyAdd(half, erf | (xv & signMask), half);
                Vector256<float> result;
                if (derivative)
                {
                    result = Vector256.Create(g.Slice(i, Vector256<float>.Count))
                        * Vector256.FusedMultiplyAdd(xv * Vector256.Create(InvSqrt2Pi), e, cdf);
                    if (accumulate)
                        result += Vector256.Create((ReadOnlySpan<float>)dst.Slice(i, Vector256<float>.Count));
                }
                else
                {
                    result = xv * cdf;
                }
                result.CopyTo(dst.Slice(i, Vector256<float>.Count));
            }
        }
        for (; i < x.Length; i++)
        {
            var (cdf, e) = CdfAndExp(x[i]);
            if (!derivative)
            {
                dst[i] = x[i] * cdf;
                continue;
            }
            float d = g[i] * (cdf + x[i] * InvSqrt2Pi * e);
            dst[i] = accumulate ? dst[i] + d : d;
        }
    }
}

/// <summary>Leaky ReLU: y = x for x &gt; 0, slope·x otherwise (PyTorch's negative_slope; its gradient at 0 is slope).</summary>
public sealed class LeakyReluOp(float slope) : UnaryOp
{
    /// <summary>The slope for x ≤ 0.</summary>
    public float Slope { get; } = slope;

    /// <inheritdoc/>
    public override void Apply(ReadOnlySpan<float> x, Span<float> y) => Kernels.LeakyRelu(x, Slope, y);

    /// <inheritdoc/>
    protected override void Derivative(ReadOnlySpan<float> x, ReadOnlySpan<float> y, ReadOnlySpan<float> g, Span<float> dx, bool accumulate)
        => Kernels.LeakyReluBackward(x, g, Slope, dx, accumulate);
}
