using LabelNoiseLab.Tensors;

namespace LabelNoiseLab.Autograd;

/// <summary>y = x·Wᵀ + b for x [B, in], W [out, in] (PyTorch's layout), optional b [out].</summary>
public sealed class LinearOp : Op
{
    private static readonly LinearOp Instance = new();

    /// <summary>y [B, out]; throws a <see cref="ShapeException"/> when <paramref name="x"/>, <paramref name="weight"/> or <paramref name="bias"/> do not fit.</summary>
    public static Tensor Forward(Tape tape, Tensor x, Tensor weight, Tensor? bias)
    {
        int batch = x.Rows, inputs = x.RowLength, outputs = weight.Rows;
        if (weight.Rank != 2 || weight.RowLength != inputs)
            throw new ShapeException($"linear: input {x.Describe()} does not fit weight {weight.Describe()} (expected [out, {inputs}])");
        if (bias is not null && bias.Length != outputs)
            throw new ShapeException($"linear: bias {bias.Describe()} does not fit weight {weight.Describe()}");
        var y = tape.Workspace(batch, outputs);
        float beta = 0f;
        if (bias is not null)
        {
            Kernels.BroadcastRows(bias.Span, y.Span, batch);
            beta = 1f;
        }
        Blas.Sgemm(false, true, batch, outputs, inputs, 1f, x.Span, inputs, weight.Span, inputs, beta, y.Span, outputs);
        if (tape.Tracks(x, weight) || (bias is not null && tape.Tracks(bias)))
            tape.Record(new TapeEntry { Op = Instance, Output = y, A = x, B = weight, C = bias });
        return y;
    }

    /// <inheritdoc/>
    public override void Backward(Tape tape, in TapeEntry e)
    {
        Tensor x = e.A!, w = e.B!, g = e.Output.Grad!;
        int batch = x.Rows, inputs = x.RowLength, outputs = w.Rows;
        if (w.RequiresGrad)
        {
            var dw = GradTarget.For(w); // dW (+)= gᵀ·x
            Blas.Sgemm(true, false, outputs, inputs, batch, 1f, g.Span, outputs, x.Span, inputs, dw.Beta, dw.Span, inputs);
        }
        if (e.C is { RequiresGrad: true } b)
        {
            var db = GradTarget.For(b);
            Kernels.ColumnSums(g.Span, batch, outputs, db.Span, db.Accumulate);
        }
        if (x.RequiresGrad)
        {
            var dx = GradTarget.For(x); // dx (+)= g·W
            Blas.Sgemm(false, false, batch, inputs, outputs, 1f, g.Span, outputs, w.Span, inputs, dx.Beta, dx.Span, inputs);
        }
    }
}

/// <summary>C = A·B for 2-D A [m, k], B [k, n].</summary>
public sealed class MatMulOp : Op
{
    private static readonly MatMulOp Instance = new();

    /// <summary>C [m, n]; throws a <see cref="ShapeException"/> unless both are 2-D with matching inner dimensions.</summary>
    public static Tensor Forward(Tape tape, Tensor a, Tensor b)
    {
        if (a.Rank != 2 || b.Rank != 2 || a.Dim(1) != b.Dim(0))
            throw new ShapeException($"matmul: {a.Describe()} · {b.Describe()} (inner dimensions must agree)");
        int m = a.Dim(0), k = a.Dim(1), n = b.Dim(1);
        var c = tape.Workspace(m, n);
        Blas.Sgemm(false, false, m, n, k, 1f, a.Span, k, b.Span, n, 0f, c.Span, n);
        if (tape.Tracks(a, b))
            tape.Record(new TapeEntry { Op = Instance, Output = c, A = a, B = b });
        return c;
    }

    /// <inheritdoc/>
    public override void Backward(Tape tape, in TapeEntry e)
    {
        Tensor a = e.A!, b = e.B!, g = e.Output.Grad!;
        int m = a.Dim(0), k = a.Dim(1), n = b.Dim(1);
        if (a.RequiresGrad)
        {
            var da = GradTarget.For(a); // dA (+)= g·Bᵀ
            Blas.Sgemm(false, true, m, k, n, 1f, g.Span, n, b.Span, n, da.Beta, da.Span, k);
        }
        if (b.RequiresGrad)
        {
            var db = GradTarget.For(b); // dB (+)= Aᵀ·g
            Blas.Sgemm(true, false, k, n, m, 1f, a.Span, k, g.Span, n, db.Beta, db.Span, n);
        }
    }
}
