namespace LabelNoiseLab.Tensors;

/// <summary>A loop body over a range of rows [start, end) (an object, so it can hold tensors: spans cannot be captured).</summary>
internal interface IRowBody
{
    /// <summary>Processes rows start ≤ r &lt; end; must not touch other ranges' outputs.</summary>
    void Run(int start, int end);
}

/// <summary>
/// <see cref="ParallelRange"/> for bodies that are objects holding tensors (GELU, layer norm,
/// attention): the same persistent workers and the same rules (nested loops and loops started
/// while another runs stay serial), with the split decided by a minimum number of rows per
/// thread instead of a work estimate. Each row runs once, so a body whose rows write disjoint
/// outputs gives the same bits on any thread count.
/// </summary>
internal static class RowParallel
{
    /// <summary>
    /// body.Run over [0, <paramref name="count"/>) on up to <see cref="ParallelRange.Threads"/>
    /// threads when that leaves at least <paramref name="minRows"/> rows a thread, else inline;
    /// returns when every row is done; the first exception of a range is rethrown here.
    /// </summary>
    public static void For(int count, int minRows, IRowBody body)
    {
        if (Math.Min(ParallelRange.Threads, count / Math.Max(1, minRows)) <= 1)
        {
            body.Run(0, count);
            return;
        }
        var range = new Range(body);
        ParallelRange.For(count, long.MaxValue, ref range);
    }

    /// <summary>The object body as the struct body <see cref="ParallelRange"/> takes (a reference on the caller's stack).</summary>
    private readonly struct Range(IRowBody body) : IRangeBody
    {
        public void Run(int start, int end) => body.Run(start, end);
    }
}
