using LabelNoiseLab.Tensors;

namespace LabelNoiseLab.Autograd;

/// <summary>Inverted dropout: keeps each element with probability 1 − p, scaled by 1/(1 − p).</summary>
public sealed class DropoutOp : Op
{
    private static readonly DropoutOp Instance = new();

    /// <summary>y with the shape of <paramref name="x"/>, each element dropped with probability <paramref name="p"/> (mask drawn from <paramref name="rng"/>); throws an <see cref="ArgumentOutOfRangeException"/> for p outside [0, 1).</summary>
    public static Tensor Forward(Tape tape, Tensor x, float p, Rng rng)
    {
        if (p is < 0f or >= 1f)
            throw new ArgumentOutOfRangeException(nameof(p), p, "dropout probability must be in [0, 1)");
        var mask = tape.Workspace(x.Shape);
        var y = tape.Workspace(x.Shape);
        float keep = 1f / (1f - p);
        var m = mask.Span;
        for (int i = 0; i < m.Length; i++)
            m[i] = rng.NextFloat() >= p ? keep : 0f;
        Kernels.MultiplyInto(x.Span, m, y.Span, accumulate: false);
        if (tape.Tracks(x))
            tape.Record(new TapeEntry { Op = Instance, Output = y, A = x, Saved = mask });
        return y;
    }

    /// <inheritdoc/>
    public override void Backward(Tape tape, in TapeEntry e)
    {
        var dx = GradTarget.For(e.A!);
        Kernels.MultiplyInto(e.Output.Grad!.Span, e.Saved!.Span, dx.Span, dx.Accumulate);
    }
}

/// <summary>
/// Channel dropout (PyTorch's Dropout2d) on x [N, C, H, W]: each whole channel of each sample is
/// kept with probability 1 − p (scaled by 1/(1 − p)) or zeroed; one draw per (sample, channel).
/// </summary>
public sealed class Dropout2dOp : Op
{
    private static readonly Dropout2dOp Instance = new();

    /// <summary>y [N, C, H, W], each channel dropped with probability <paramref name="p"/>; throws an <see cref="ArgumentOutOfRangeException"/> for p outside [0, 1) and a <see cref="ShapeException"/> for an input that is not 4-D.</summary>
    public static Tensor Forward(Tape tape, Tensor x, float p, Rng rng)
    {
        if (p is < 0f or >= 1f)
            throw new ArgumentOutOfRangeException(nameof(p), p, "dropout probability must be in [0, 1)");
        if (x.Rank != 4)
            throw new ShapeException($"dropout2d: input {x.Describe()} must be [N, C, H, W]");
        int channels = x.Dim(0) * x.Dim(1), plane = x.Dim(2) * x.Dim(3);
        var mask = tape.Workspace(channels);
        var y = tape.Workspace(x.Shape);
        float keep = 1f / (1f - p);
        var m = mask.Span;
        for (int i = 0; i < channels; i++)
            m[i] = rng.NextFloat() >= p ? keep : 0f;
        for (int i = 0; i < channels; i++)
            System.Numerics.Tensors.TensorPrimitives.Multiply(x.Span.Slice(i * plane, plane), m[i], y.Span.Slice(i * plane, plane));
        if (tape.Tracks(x))
            tape.Record(new TapeEntry { Op = Instance, Output = y, A = x, Saved = mask });
        return y;
    }

    /// <inheritdoc/>
    public override void Backward(Tape tape, in TapeEntry e)
    {
        var dx = GradTarget.For(e.A!);
        var g = e.Output.Grad!.Span;
        var m = e.Saved!.Span;
        int plane = e.A!.Length / m.Length;
        for (int i = 0; i < m.Length; i++)
            Kernels.ScaleInto(g.Slice(i * plane, plane), m[i], dx.Span.Slice(i * plane, plane), dx.Accumulate);
    }
}
