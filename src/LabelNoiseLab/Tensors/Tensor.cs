namespace LabelNoiseLab.Tensors;

/// <summary>
/// A float32, row-major, dense tensor. <see cref="Data"/> may be longer than <see cref="Length"/>
/// when the tensor is a pooled workspace re-used for a smaller batch; always read through
/// <see cref="Span"/>.
/// </summary>
public sealed class Tensor
{
    private int[] _shape;

    /// <summary>A zero-filled tensor of the given shape (no dimensions: a scalar). Throws a <see cref="ShapeException"/> for a negative dimension or more than 2^31 elements.</summary>
    public Tensor(params int[] shape)
    {
        ArgumentNullException.ThrowIfNull(shape);
        _shape = (int[])shape.Clone();
        Length = CheckedLength(shape);
        Data = new float[Length];
    }

    /// <summary>
    /// A tensor over <paramref name="data"/> (not copied; it may be longer than the shape needs).
    /// Throws an <see cref="ArgumentException"/> when <paramref name="data"/> is shorter than the shape's element count.
    /// </summary>
    public Tensor(float[] data, params int[] shape)
    {
        ArgumentNullException.ThrowIfNull(data);
        ArgumentNullException.ThrowIfNull(shape);
        _shape = (int[])shape.Clone();
        Length = CheckedLength(shape);
        if (data.Length < Length)
            throw new ArgumentException($"data has {data.Length} elements, shape [{string.Join(", ", shape)}] needs {Length}");
        Data = data;
    }

    /// <summary>Backing store; may be longer than <see cref="Length"/>.</summary>
    public float[] Data { get; private set; }

    /// <summary>Number of elements: the product of the dimensions.</summary>
    public int Length { get; private set; }

    /// <summary>The dimensions, outermost first (row-major).</summary>
    public ReadOnlySpan<int> Shape => _shape;

    /// <summary>Number of dimensions.</summary>
    public int Rank => _shape.Length;

    /// <summary>Optional name, used for parameters (<c>layers.0.weight</c>) and in error messages.</summary>
    public string? Name { get; set; }

    /// <summary>Whether backward should produce a gradient for this tensor.</summary>
    public bool RequiresGrad { get; set; }

    /// <summary>Gradient buffer, same shape, created on demand by <see cref="EnsureGrad"/>.</summary>
    public Tensor? Grad { get; private set; }

    /// <summary>
    /// True while <see cref="Grad"/> holds nothing yet: the next backward writes it instead of
    /// accumulating into it, which saves zero-filling every gradient every step.
    /// </summary>
    public bool GradIsZero { get; set; } = true;

    /// <summary>The elements, row-major (the first <see cref="Length"/> values of <see cref="Data"/>).</summary>
    public Span<float> Span => Data.AsSpan(0, Length);

    /// <summary>Size of dimension 0 (the batch dimension for activations).</summary>
    public int Rows => _shape.Length == 0 ? 1 : _shape[0];

    /// <summary>Elements per row: the product of all dimensions after the first.</summary>
    public int RowLength => _shape.Length == 0 ? 1 : (_shape[0] == 0 ? 0 : Length / _shape[0]);

    /// <summary>Size of dimension <paramref name="axis"/>; a negative axis counts from the end (-1 is the last).</summary>
    public int Dim(int axis) => _shape[axis < 0 ? _shape.Length + axis : axis];

    /// <summary>Element <paramref name="i"/> in row-major order.</summary>
    public float this[int i]
    {
        get => Span[i];
        set => Span[i] = value;
    }

    /// <summary>Element (<paramref name="row"/>, <paramref name="col"/>) of the tensor seen as [<see cref="Rows"/>, <see cref="RowLength"/>].</summary>
    public float this[int row, int col]
    {
        get => Span[row * RowLength + col];
        set => Span[row * RowLength + col] = value;
    }

    /// <summary>The gradient buffer (<see cref="Grad"/>), created or re-shaped to this tensor's shape when needed; its contents are meaningful only when <see cref="GradIsZero"/> is false.</summary>
    public Tensor EnsureGrad()
    {
        if (Grad is null || Grad.Data.Length < Length)
        {
            Grad = new Tensor(_shape);
            GradIsZero = true;
        }
        else if (!Grad.Shape.SequenceEqual(_shape))
        {
            Grad.Resize(_shape);
        }
        return Grad;
    }

    /// <summary>Clears the gradient lazily (see <see cref="GradIsZero"/>).</summary>
    public void ZeroGrad() => GradIsZero = true;

    /// <summary>Reads the gradient, materialising zeros if nothing was written since the last reset.</summary>
    public Span<float> GradSpan()
    {
        var g = EnsureGrad();
        if (GradIsZero)
        {
            g.Span.Clear();
            GradIsZero = false;
        }
        return g.Span;
    }

    /// <summary>
    /// Re-shapes this tensor in place, growing the backing store only when it is too small.
    /// Used by workspace pools; contents are unspecified afterwards when the store grows.
    /// </summary>
    internal void Resize(ReadOnlySpan<int> shape)
    {
        int length = CheckedLength(shape);
        if (shape.Length != _shape.Length)
            _shape = shape.ToArray();
        else
            shape.CopyTo(_shape);
        if (Data.Length < length)
            Data = new float[length];
        Length = length;
    }

    /// <summary>Points this (pooled) tensor at another tensor's storage; used for views.</summary>
    internal void Rebind(float[] data, ReadOnlySpan<int> shape)
    {
        Data = data;
        if (shape.Length != _shape.Length)
            _shape = shape.ToArray();
        else
            shape.CopyTo(_shape);
        Length = CheckedLength(shape);
    }

    /// <summary>A tensor sharing this one's storage with another shape of the same length.</summary>
    public Tensor View(params int[] shape)
    {
        int length = CheckedLength(shape);
        if (length != Length)
            throw new ShapeException($"cannot view {Describe()} as [{string.Join(", ", shape)}]");
        return new Tensor(Data, shape) { Name = Name };
    }

    /// <summary>A copy with its own storage, the same shape and name (no gradient).</summary>
    public Tensor Clone()
    {
        var t = new Tensor(_shape) { Name = Name };
        Span.CopyTo(t.Span);
        return t;
    }

    /// <summary>The elements copied into a new array of length <see cref="Length"/>.</summary>
    public float[] ToArray() => Span.ToArray();

    /// <summary>A zero-filled tensor of the given shape.</summary>
    public static Tensor Zeros(params int[] shape) => new(shape);

    /// <summary>A tensor over <paramref name="data"/> (not copied); see <see cref="Tensor(float[], int[])"/>.</summary>
    public static Tensor FromArray(float[] data, params int[] shape) => new(data, shape);

    /// <summary>The shape as text, e.g. "[128, 784]".</summary>
    public string ShapeString => "[" + string.Join(", ", _shape) + "]";

    /// <summary>The name (or "tensor") and the shape, for error messages.</summary>
    public string Describe() => (Name is null ? "tensor " : Name + " ") + ShapeString;

    /// <inheritdoc cref="Describe"/>
    public override string ToString() => Describe();

    /// <summary>Whether <paramref name="other"/> has exactly this shape.</summary>
    public bool SameShape(Tensor other) => Shape.SequenceEqual(other.Shape);

    private static int CheckedLength(ReadOnlySpan<int> shape)
    {
        long n = 1;
        foreach (var d in shape)
        {
            if (d < 0)
                throw new ShapeException($"negative dimension in shape [{string.Join(", ", shape.ToArray())}]");
            n *= d;
        }
        if (n > int.MaxValue)
            throw new ShapeException($"shape [{string.Join(", ", shape.ToArray())}] has more than 2^31 elements");
        return (int)n;
    }
}

/// <summary>
/// Thrown when tensor shapes do not fit an operation (an <see cref="ArgumentException"/>: the
/// arguments' shapes are wrong); the message names the operation and both shapes.
/// </summary>
public sealed class ShapeException(string message) : ArgumentException(message);
