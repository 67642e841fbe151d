using System.Numerics.Tensors;
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

/// <summary>Exact GELU: y = x·Φ(x) = ½x(1 + erf(x/√2)).</summary>
public sealed class GeluOp : UnaryOp
{
    /// <summary>The shared instance (the op has no state).</summary>
    public static readonly GeluOp Instance = new();
    private static readonly double InvSqrt2 = 1.0 / Math.Sqrt(2.0);
    private static readonly double InvSqrt2Pi = 1.0 / Math.Sqrt(2.0 * Math.PI);

    /// <inheritdoc/>
    public override void Apply(ReadOnlySpan<float> x, Span<float> y)
    {
        for (int i = 0; i < x.Length; i++)
            y[i] = (float)(0.5 * x[i] * (1.0 + Kernels.Erf(x[i] * InvSqrt2)));
    }

    /// <inheritdoc/>
    protected override void Derivative(ReadOnlySpan<float> x, ReadOnlySpan<float> y, ReadOnlySpan<float> g, Span<float> dx, bool accumulate)
    {
        for (int i = 0; i < x.Length; i++)
        {
            double xi = x[i];
            double cdf = 0.5 * (1.0 + Kernels.Erf(xi * InvSqrt2));
            double pdf = InvSqrt2Pi * Math.Exp(-0.5 * xi * xi);
            float d = (float)(g[i] * (cdf + xi * pdf));
            dx[i] = accumulate ? dx[i] + d : d;
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
