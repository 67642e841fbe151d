using System.Runtime.CompilerServices;

namespace LabelNoiseLab.Tensors;

/// <summary>The body of a <see cref="ParallelRange"/> loop: runs items [start, end).</summary>
internal interface IRangeBody
{
    /// <summary>Runs items <paramref name="start"/> … <paramref name="end"/> − 1.</summary>
    void Run(int start, int end);
}

/// <summary>
/// A parallel loop for the engine's element-wise and per-channel kernels that allocates nothing
/// per call: the items [0, count) are cut into contiguous blocks, which the calling thread and up
/// to <see cref="Blas.Threads"/> − 1 persistent background workers claim one at a time (so a
/// worker the OS schedules late just finds no block left). The body is a struct passed by
/// reference (a pointer to the caller's stack, valid because the caller waits for every block);
/// put pointers or arrays in it, not per-call closures. Loops smaller than
/// <see cref="MinWork"/> units of work, nested calls and calls made while another thread's loop
/// runs go serial, as one <c>Run(0, count)</c>. Each item runs exactly once, on some thread, so a
/// body whose items write disjoint outputs gives the same bits as the serial loop.
/// </summary>
internal static unsafe class ParallelRange
{
    private const int ClosedTicket = int.MaxValue;
    private static readonly Lock s_startLock = new();
    private static readonly SemaphoreSlim s_wake = new(0);
    private static int s_workers;
    private static int s_busy;

    // The job in flight. s_ticket = (generation << 32) | next block; its low half is ClosedTicket
    // while the fields are being written, so a worker woken for an older job never runs a block
    // of a job it did not read (see Claim).
    private static long s_ticket;
    private static delegate*<void*, int, int, void> s_fn;
    private static void* s_body;
    private static int s_count, s_blocks, s_done;
    private static Exception? s_error;
    [ThreadStatic] private static int t_lane;

    /// <summary>
    /// Work (in the caller's unit, e.g. floats touched) below which a loop runs serially: waking a
    /// worker costs a few microseconds. Tests lower it to exercise the parallel path on small inputs.
    /// </summary>
    internal static long MinWork { get; set; } = 1L << 15;

    /// <summary>Threads a loop may use: <see cref="ThreadsOverride"/> when positive, else <see cref="Blas.Threads"/>.</summary>
    internal static int Threads => ThreadsOverride > 0 ? ThreadsOverride : Blas.Threads;

    /// <summary>When positive, the thread count instead of <see cref="Blas.Threads"/> (tests: the parallel path on a one-core machine).</summary>
    internal static int ThreadsOverride { get; set; }

    /// <summary>
    /// The running thread's lane: 0 on any thread but the workers, 1 … on the workers. The blocks
    /// of one loop that run at the same time are on different lanes (the caller's and the
    /// workers'), so a body may index per-thread scratch of its own by it (sized by
    /// <see cref="Lanes"/>, read before the loop).
    /// </summary>
    internal static int Lane => t_lane;

    /// <summary>An upper bound on the lanes a loop started now can use (at least <see cref="Threads"/>).</summary>
    internal static int Lanes => Math.Max(Threads, 1 + Volatile.Read(ref s_workers));

    /// <summary>
    /// Runs <paramref name="body"/> over [0, <paramref name="count"/>) on up to <see cref="Threads"/>
    /// threads when <paramref name="work"/> ≥ <see cref="MinWork"/>, else serially. Returns after
    /// every item has run; rethrows the first exception a block threw.
    /// </summary>
    public static void For<TBody>(int count, long work, ref TBody body) where TBody : struct, IRangeBody
    {
        int threads = Math.Min(Threads, count);
        if (threads <= 1 || work < MinWork || Interlocked.CompareExchange(ref s_busy, 1, 0) != 0)
        {
            body.Run(0, count);
            return;
        }
        try
        {
            EnsureWorkers(threads - 1);
            // A few blocks per thread, so a thread the OS delays leaves its share to the others.
            int blocks = Math.Min(count, threads * 4);
            long generation = (Volatile.Read(ref s_ticket) >> 32) + 1;
            Interlocked.Exchange(ref s_ticket, (generation << 32) | ClosedTicket);
            s_fn = &Invoke<TBody>;
            s_body = Unsafe.AsPointer(ref body);
            s_count = count;
            s_blocks = blocks;
            s_done = 0;
            s_error = null;
            Interlocked.Exchange(ref s_ticket, generation << 32);
            s_wake.Release(threads - 1);
            while (RunOneBlock())
            {
            }
            var spin = new SpinWait();
            while (Volatile.Read(ref s_done) < blocks)
                spin.SpinOnce(sleep1Threshold: -1);
            Interlocked.Exchange(ref s_ticket, ((generation + 1) << 32) | ClosedTicket);
            s_fn = null;
            s_body = null;
            if (s_error is { } error)
            {
                s_error = null;
                System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(error).Throw();
            }
        }
        finally
        {
            Volatile.Write(ref s_busy, 0);
        }
    }

    private static void Invoke<TBody>(void* body, int start, int end) where TBody : struct, IRangeBody
        => Unsafe.AsRef<TBody>(body).Run(start, end);

    /// <summary>Claims the next block of the current job and runs it; false when none is left.</summary>
    private static bool RunOneBlock()
    {
        while (true)
        {
            long ticket = Volatile.Read(ref s_ticket);
            int next = (int)ticket;
            if (next == ClosedTicket)
                return false;
            // Read after the ticket: fields of this generation, unless the job changed since, in
            // which case the ticket changed too and the exchange below fails.
            int blocks = s_blocks, count = s_count;
            var fn = s_fn;
            void* body = s_body;
            if (next >= blocks)
                return false;
            if (Interlocked.CompareExchange(ref s_ticket, ticket + 1, ticket) != ticket)
                continue;
            int start = (int)((long)count * next / blocks), end = (int)((long)count * (next + 1) / blocks);
            try
            {
                fn(body, start, end);
            }
            catch (Exception e)
            {
                Interlocked.CompareExchange(ref s_error, e, null);
            }
            Interlocked.Increment(ref s_done);
            return true;
        }
    }

    private static void EnsureWorkers(int wanted)
    {
        if (Volatile.Read(ref s_workers) >= wanted)
            return;
        lock (s_startLock)
        {
            while (s_workers < wanted)
            {
                int lane = s_workers + 1;
                var thread = new Thread(() => WorkerLoop(lane)) { IsBackground = true, Name = $"lnlab-kernel-{lane}" };
                thread.Start();
                s_workers++;
            }
        }
    }

    private static void WorkerLoop(int lane)
    {
        t_lane = lane;
        while (true)
        {
            s_wake.Wait();
            while (RunOneBlock())
            {
            }
        }
    }
}
