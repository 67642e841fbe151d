namespace LabelNoiseLab.Autograd;

/// <summary>
/// Where a backward writes an input's gradient: the span, and whether to add to it (something
/// already flowed in) or overwrite it (first contribution since the gradient was reset).
/// </summary>
public readonly ref struct GradTarget
{
    /// <summary>The gradient buffer, the input's length.</summary>
    public readonly Span<float> Span;
    /// <summary>True: add to <see cref="Span"/>; false: overwrite it.</summary>
    public readonly bool Accumulate;

    private GradTarget(Span<float> span, bool accumulate)
    {
        Span = span;
        Accumulate = accumulate;
    }

    /// <summary>GEMM beta for writing into this target.</summary>
    public float Beta => Accumulate ? 1f : 0f;

    /// <summary>The target for <paramref name="t"/>'s gradient (created if needed), and marks that gradient as written: the first call since the gradient was reset overwrites, later ones accumulate.</summary>
    public static GradTarget For(Tensor t)
    {
        var g = t.EnsureGrad();
        bool accumulate = !t.GradIsZero;
        t.GradIsZero = false;
        return new GradTarget(g.Span, accumulate);
    }

    /// <summary>Adds (or writes) <paramref name="value"/> into the target.</summary>
    public void Add(ReadOnlySpan<float> value)
    {
        if (Accumulate)
            Tensors.Kernels.Add(Span, value, Span);
        else
            Tensors.Kernels.Copy(value, Span);
    }
}
