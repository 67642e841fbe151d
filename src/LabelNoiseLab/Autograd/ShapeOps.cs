namespace LabelNoiseLab.Autograd;

/// <summary>The same values under another shape (no copy); the gradient flows back unchanged.</summary>
public sealed class ReshapeOp : Op
{
    private static readonly ReshapeOp Instance = new();

    /// <summary>A view of <paramref name="x"/> with <paramref name="shape"/>; throws a <see cref="Tensors.ShapeException"/> when the element counts differ.</summary>
    public static Tensor Forward(Tape tape, Tensor x, ReadOnlySpan<int> shape)
    {
        var y = tape.View(x, shape);
        if (tape.Tracks(x))
            tape.Record(new TapeEntry { Op = Instance, Output = y, A = x });
        return y;
    }

    /// <summary>[N, ...] → [N, product of the rest].</summary>
    public static Tensor Flatten(Tape tape, Tensor x) => Forward(tape, x, [x.Rows, x.RowLength]);

    /// <inheritdoc/>
    public override void Backward(Tape tape, in TapeEntry e)
    {
        // The source may have stopped requiring a gradient after the forward (a parameter whose
        // gradient is deferred, as per-sample weighting does): then nothing is written to it.
        if (e.A!.RequiresGrad)
            GradTarget.For(e.A).Add(e.Output.Grad!.Span);
    }
}
