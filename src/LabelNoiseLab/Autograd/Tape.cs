using LabelNoiseLab.Tensors;

namespace LabelNoiseLab.Autograd;

/// <summary>
/// One recorded operation: which op, its output, up to three inputs, and whatever the op saved
/// for its backward. A struct in a reused array, so recording allocates nothing.
/// </summary>
public struct TapeEntry
{
    /// <summary>The op whose <see cref="Autograd.Op.Backward"/> this entry feeds.</summary>
    public Op Op;
    /// <summary>The op's output; its gradient is complete when the backward runs.</summary>
    public Tensor Output;
    /// <summary>First input (null when unused).</summary>
    public Tensor? A;
    /// <summary>Second input (null when unused).</summary>
    public Tensor? B;
    /// <summary>Third input (null when unused).</summary>
    public Tensor? C;
    /// <summary>A workspace the forward filled for the backward (softmax, dropout mask, max-pool argmax...).</summary>
    public Tensor? Saved;
    /// <summary>Non-tensor state: labels, layer geometry, a hook.</summary>
    public object? State;
    /// <summary>A float the op saved (a scale, a dropout rate, eps...).</summary>
    public float Scalar;
    /// <summary>An integer the op saved (a stride, a group count, a token count...).</summary>
    public int Int0;
    /// <summary>A second integer the op saved.</summary>
    public int Int1;
}

/// <summary>An operation: its static forward records a <see cref="TapeEntry"/>, its backward reads it.</summary>
public abstract class Op
{
    /// <summary>
    /// Propagates <paramref name="e"/>'s output gradient to the gradients of its inputs that require one
    /// (writing or accumulating through <see cref="GradTarget"/>).
    /// </summary>
    public abstract void Backward(Tape tape, in TapeEntry e);
}

/// <summary>
/// Reverse-mode autograd tape. A training step is <c>Reset(); forward...; Backward(loss)</c>.
/// Every tensor an op creates comes from <see cref="Workspace(int)"/> (and its overloads), a pool indexed by call order,
/// so for a fixed batch shape the k-th op of a step gets the same buffer every step and a step
/// allocates nothing once warm. Consequence: a tensor returned by an op is valid only until the
/// same tape is reset and run again; copy what must outlive the step.
/// </summary>
public sealed class Tape
{
    private TapeEntry[] _entries = new TapeEntry[64];
    private int _count;
    private readonly List<Tensor> _pool = [];
    private int _cursor;
    // Views live in their own pool: their storage belongs to another tensor, so a view slot
    // must never be handed out as a workspace that gets written.
    private readonly List<Tensor> _views = [];
    private int _viewCursor;
    private readonly float[][] _scratch = [[], [], [], []];

    /// <param name="recording">False for evaluation: ops run, nothing is recorded, no gradients.</param>
    public Tape(bool recording = true) => IsRecording = recording;

    /// <summary>Whether ops record themselves for a backward (false: evaluation, no gradients).</summary>
    public bool IsRecording { get; set; }

    /// <summary>Number of recorded operations since the last <see cref="Reset"/>.</summary>
    public int Count => _count;

    /// <summary>The operations recorded since the last <see cref="Reset"/>, in forward order.</summary>
    public ReadOnlySpan<TapeEntry> Entries => _entries.AsSpan(0, _count);

    /// <summary>Starts a new step: forgets recorded ops and rewinds the workspace pool.</summary>
    public void Reset()
    {
        _count = 0;
        _cursor = 0;
        _viewCursor = 0;
    }

    /// <summary>The next pooled buffer, reshaped; contents unspecified.</summary>
    public Tensor Workspace(ReadOnlySpan<int> shape)
    {
        Tensor t;
        if (_cursor < _pool.Count)
        {
            t = _pool[_cursor];
            t.Resize(shape);
        }
        else
        {
            t = new Tensor(shape.ToArray());
            _pool.Add(t);
        }
        _cursor++;
        t.RequiresGrad = false;
        t.GradIsZero = true;
        return t;
    }

    /// <summary>The next pooled buffer of shape [<paramref name="d0"/>]; contents unspecified.</summary>
    public Tensor Workspace(int d0) => Workspace([d0]);

    /// <summary>The next pooled buffer of shape [<paramref name="d0"/>, <paramref name="d1"/>]; contents unspecified.</summary>
    public Tensor Workspace(int d0, int d1) => Workspace([d0, d1]);

    /// <summary>The next pooled buffer of shape [d0, d1, d2, d3]; contents unspecified.</summary>
    public Tensor Workspace(int d0, int d1, int d2, int d3) => Workspace([d0, d1, d2, d3]);

    /// <summary>
    /// A transient buffer of at least <paramref name="length"/> floats, one per
    /// <paramref name="slot"/> (0 to 3), shared by every op of this tape: valid only inside the
    /// op's own forward or backward call (the next op that asks for the same slot overwrites it),
    /// never saved for a backward. Grown, never shrunk, so a warm step allocates nothing. Large
    /// per-op intermediates (a convolution's unfolded input and its gradient) live here instead of
    /// in the workspace pool, which would keep one per layer for the whole step.
    /// </summary>
    public Span<float> Scratch(int slot, int length)
    {
        ref var buffer = ref _scratch[slot];
        if (buffer.Length < length)
            buffer = new float[length];
        return buffer.AsSpan(0, length);
    }

    /// <summary>
    /// Floats of unfolded input a convolution processes at once on one thread (<see cref="Conv2dOp"/>
    /// cuts the batch into blocks of samples at most this size, so a block stays in cache; each
    /// thread has its own such scratch). Default 2^20 (4 MB).
    /// </summary>
    internal int ConvChunkFloats { get; set; } = 1 << 20;

    /// <summary>Whether stride-1 convolutions use the direct kernel (<see cref="DirectConv"/>) where the CPU has it; off, they unfold (im2col). Tests compare the two.</summary>
    internal bool DirectConvolution { get; set; } = true;

    /// <summary>A pooled tensor object that shares <paramref name="source"/>'s storage under another shape.</summary>
    public Tensor View(Tensor source, ReadOnlySpan<int> shape)
    {
        Tensor t;
        if (_viewCursor < _views.Count)
        {
            t = _views[_viewCursor];
        }
        else
        {
            t = new Tensor(0);
            _views.Add(t);
        }
        _viewCursor++;
        t.Rebind(source.Data, shape);
        t.RequiresGrad = false;
        t.GradIsZero = true;
        if (t.Length != source.Length)
            throw new ShapeException($"cannot view {source.Describe()} as [{string.Join(", ", shape.ToArray())}]");
        return t;
    }

    /// <summary>Whether an op consuming <paramref name="input"/> must record itself.</summary>
    public bool Tracks(Tensor input) => IsRecording && input.RequiresGrad;

    /// <summary>Whether an op consuming <paramref name="a"/> and <paramref name="b"/> must record itself.</summary>
    public bool Tracks(Tensor a, Tensor? b) => IsRecording && (a.RequiresGrad || (b?.RequiresGrad ?? false));

    /// <summary>Appends <paramref name="entry"/> to the tape and marks its output as requiring a gradient.</summary>
    public void Record(in TapeEntry entry)
    {
        if (_count == _entries.Length)
            Array.Resize(ref _entries, _entries.Length * 2);
        _entries[_count++] = entry;
        entry.Output.RequiresGrad = true;
    }

    /// <summary>
    /// Back-propagates from a scalar <paramref name="loss"/>: parameter gradients accumulate
    /// into their <see cref="Tensor.Grad"/> (an optimizer's ZeroGrad resets them lazily).
    /// </summary>
    public void Backward(Tensor loss)
    {
        if (loss.Length != 1)
            throw new ShapeException($"backward needs a scalar loss, got {loss.Describe()}");
        if (!IsRecording)
            throw new InvalidOperationException("backward on a tape that does not record (evaluation tape)");
        for (int i = 0; i < _count; i++)
            _entries[i].Output.GradIsZero = true;
        loss.EnsureGrad().Span[0] = 1f;
        loss.GradIsZero = false;
        for (int i = _count - 1; i >= 0; i--)
        {
            ref readonly var e = ref _entries[i];
            // Nothing flowed into this output: its contribution to every input is zero.
            if (e.Output.GradIsZero)
                continue;
            e.Op.Backward(this, in e);
        }
    }
}
