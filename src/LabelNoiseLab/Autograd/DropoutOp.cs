using LabelNoiseLab.Tensors;

namespace LabelNoiseLab.Autograd;

/// <summary>Inverted dropout: keeps each element with probability 1 − p, scaled by 1/(1 − p).</summary>
public sealed class DropoutOp : Op
{
    private static readonly DropoutOp Instance = new();

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

    public override void Backward(Tape tape, in TapeEntry e)
    {
        var dx = GradTarget.For(e.A!);
        Kernels.MultiplyInto(e.Output.Grad!.Span, e.Saved!.Span, dx.Span, dx.Accumulate);
    }
}
