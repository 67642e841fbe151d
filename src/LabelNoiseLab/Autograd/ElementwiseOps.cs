using System.Numerics.Tensors;
using LabelNoiseLab.Tensors;

namespace LabelNoiseLab.Autograd;

/// <summary>c = a + b, same shapes.</summary>
public sealed class AddOp : Op
{
    private static readonly AddOp Instance = new();

    /// <summary>a + b; throws a <see cref="ShapeException"/> when the shapes differ (no broadcasting).</summary>
    public static Tensor Forward(Tape tape, Tensor a, Tensor b)
    {
        RequireSameShape("add", a, b);
        var c = tape.Workspace(a.Shape);
        Kernels.Add(a.Span, b.Span, c.Span);
        if (tape.Tracks(a, b))
            tape.Record(new TapeEntry { Op = Instance, Output = c, A = a, B = b });
        return c;
    }

    /// <inheritdoc/>
    public override void Backward(Tape tape, in TapeEntry e)
    {
        var g = e.Output.Grad!.Span;
        if (e.A!.RequiresGrad)
            GradTarget.For(e.A).Add(g);
        if (e.B!.RequiresGrad)
            GradTarget.For(e.B).Add(g);
    }

    internal static void RequireSameShape(string op, Tensor a, Tensor b)
    {
        if (!a.SameShape(b))
            throw new ShapeException($"{op}: shapes differ: {a.Describe()} and {b.Describe()}");
    }
}

/// <summary>c = a ⊙ b, same shapes.</summary>
public sealed class MulOp : Op
{
    private static readonly MulOp Instance = new();

    /// <summary>a ⊙ b; throws a <see cref="ShapeException"/> when the shapes differ (no broadcasting).</summary>
    public static Tensor Forward(Tape tape, Tensor a, Tensor b)
    {
        AddOp.RequireSameShape("mul", a, b);
        var c = tape.Workspace(a.Shape);
        TensorPrimitives.Multiply(a.Span, b.Span, c.Span);
        if (tape.Tracks(a, b))
            tape.Record(new TapeEntry { Op = Instance, Output = c, A = a, B = b });
        return c;
    }

    /// <inheritdoc/>
    public override void Backward(Tape tape, in TapeEntry e)
    {
        var g = e.Output.Grad!.Span;
        if (e.A!.RequiresGrad)
        {
            var da = GradTarget.For(e.A);
            Kernels.MultiplyInto(g, e.B!.Span, da.Span, da.Accumulate);
        }
        if (e.B!.RequiresGrad)
        {
            var db = GradTarget.For(e.B);
            Kernels.MultiplyInto(g, e.A.Span, db.Span, db.Accumulate);
        }
    }
}

/// <summary>c = s · a for a scalar s.</summary>
public sealed class ScaleOp : Op
{
    private static readonly ScaleOp Instance = new();

    /// <summary>s · a, same shape as <paramref name="a"/>.</summary>
    public static Tensor Forward(Tape tape, Tensor a, float s)
    {
        var c = tape.Workspace(a.Shape);
        TensorPrimitives.Multiply(a.Span, s, c.Span);
        if (tape.Tracks(a))
            tape.Record(new TapeEntry { Op = Instance, Output = c, A = a, Scalar = s });
        return c;
    }

    /// <inheritdoc/>
    public override void Backward(Tape tape, in TapeEntry e)
    {
        var da = GradTarget.For(e.A!);
        Kernels.ScaleInto(e.Output.Grad!.Span, e.Scalar, da.Span, da.Accumulate);
    }
}

/// <summary>Scalar sum (or mean) of all elements.</summary>
public sealed class SumOp : Op
{
    private static readonly SumOp Instance = new();

    /// <summary>The sum of all elements of <paramref name="a"/>, a tensor of shape [1].</summary>
    public static Tensor Forward(Tape tape, Tensor a) => Reduce(tape, a, 1f);

    /// <summary>The mean of all elements of <paramref name="a"/>, a tensor of shape [1].</summary>
    public static Tensor Mean(Tape tape, Tensor a) => Reduce(tape, a, 1f / a.Length);

    private static Tensor Reduce(Tape tape, Tensor a, float scale)
    {
        var c = tape.Workspace(1);
        c.Span[0] = TensorPrimitives.Sum(a.Span) * scale;
        if (tape.Tracks(a))
            tape.Record(new TapeEntry { Op = Instance, Output = c, A = a, Scalar = scale });
        return c;
    }

    /// <inheritdoc/>
    public override void Backward(Tape tape, in TapeEntry e)
    {
        float v = e.Output.Grad!.Span[0] * e.Scalar;
        var da = GradTarget.For(e.A!);
        if (da.Accumulate)
            TensorPrimitives.Add(da.Span, v, da.Span);
        else
            da.Span.Fill(v);
    }
}

/// <summary>
/// Identity whose backward calls a hook with the output's gradient (complete at that point,
/// since every consumer of the output was recorded later and so ran earlier in backward).
/// </summary>
public sealed class GradientHookOp : Op
{
    private static readonly GradientHookOp Instance = new();

    /// <summary>Records a hook on <paramref name="output"/>: during backward, <paramref name="hook"/> receives its gradient (reused by the next step: copy what must outlive it). Nothing is recorded when the tape does not track <paramref name="output"/>.</summary>
    public static void Attach(Tape tape, Tensor output, Action<Tensor> hook)
    {
        if (tape.IsRecording && output.RequiresGrad)
            tape.Record(new TapeEntry { Op = Instance, Output = output, State = hook });
    }

    /// <inheritdoc/>
    public override void Backward(Tape tape, in TapeEntry e) => ((Action<Tensor>)e.State!)(e.Output.Grad!);
}
