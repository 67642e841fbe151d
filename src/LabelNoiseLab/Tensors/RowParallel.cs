namespace LabelNoiseLab.Tensors;

/// <summary>A loop body over a range of rows [start, end) (an object, so it can hold tensors: spans cannot be captured).</summary>
internal interface IRowBody
{
    /// <summary>Processes rows start ≤ r &lt; end; must not touch other ranges' outputs.</summary>
    void Run(int start, int end);
}

/// <summary>
/// Fork-join over rows for the element-wise and per-sample kernels (GELU, layer norm,
/// attention), with <see cref="Blas.Threads"/> threads, allocating nothing once warm: the rows
/// are cut into one contiguous range per thread; the calling thread runs the first and queues
/// the others to the thread pool as cached work items. A range no pool thread has started by
/// the time the caller is done with its own, the caller takes back and runs itself, so on a
/// loaded machine the loop is never slower than the serial one by more than the queueing.
/// </summary>
internal static class RowParallel
{
    [ThreadStatic]
    private static Item[]? t_items;

    /// <summary>
    /// body.Run over [0, <paramref name="count"/>) in up to <see cref="Blas.Threads"/> ranges of
    /// at least <paramref name="minRows"/> rows (one range, run inline, when that leaves one);
    /// returns when every range is done; the first exception of a range is rethrown here.
    /// </summary>
    public static void For(int count, int minRows, IRowBody body)
    {
        int parts = Math.Min(Blas.Threads, count / Math.Max(1, minRows));
        if (parts <= 1)
        {
            body.Run(0, count);
            return;
        }
        var items = t_items;
        if (items is null || items.Length < parts)
        {
            items = new Item[parts];
            for (int i = 0; i < parts; i++)
                items[i] = new Item();
            t_items = items;
        }
        for (int i = 1; i < parts; i++)
        {
            items[i].Prepare(body, (int)((long)count * i / parts), (int)((long)count * (i + 1) / parts));
            ThreadPool.UnsafeQueueUserWorkItem(items[i], preferLocal: false);
        }
        Exception? error = null;
        try
        {
            body.Run(0, (int)((long)count / parts));
        }
        catch (Exception e)
        {
            error = e;
        }
        for (int i = 1; i < parts; i++)
        {
            items[i].RunIfUnclaimed();
            items[i].Wait();
            error ??= items[i].Error;
        }
        if (error is not null)
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(error).Throw();
    }

    /// <summary>One range as a reusable thread-pool work item; whoever claims it first (pool thread or caller) runs it.</summary>
    private sealed class Item : IThreadPoolWorkItem
    {
        private readonly ManualResetEventSlim _done = new(false);
        private IRowBody? _body;
        private int _start, _end, _claimed;

        public Exception? Error { get; private set; }

        public void Prepare(IRowBody body, int start, int end)
        {
            // A stale queue entry of an earlier loop that its caller took back may still run:
            // it sees the item claimed until the last line publishes the new range.
            _done.Reset();
            _body = body;
            _start = start;
            _end = end;
            Error = null;
            Volatile.Write(ref _claimed, 0);
        }

        public void Execute() => RunIfUnclaimed();

        public void RunIfUnclaimed()
        {
            if (Interlocked.Exchange(ref _claimed, 1) != 0)
                return;
            try
            {
                _body!.Run(_start, _end);
            }
            catch (Exception e)
            {
                Error = e;
            }
            finally
            {
                _body = null;
                _done.Set();
            }
        }

        public void Wait() => _done.Wait();
    }
}
