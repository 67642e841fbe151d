using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace LabelNoiseLab.Tensors;

/// <summary>
/// Managed SGEMM: blocked and packed in the BLIS/Goto style.
/// <code>
/// for jc over n in NC blocks            B panel (KC×NC) packed once, shared by the threads
///   for pc over k in KC blocks
///     pack B[pc.., jc..]                 (transB handled here)
///     parallel for (row block, column chunk):
///       pack alpha·A[ic.., pc..]         (transA handled here), per-thread buffer
///       for jr over NR slivers, ir over MR slivers: micro-kernel → C tile
/// </code>
/// Partial tiles are zero-padded in the packed buffers, computed into a scratch tile and
/// merged. Packing buffers are per thread and reused, so steady-state calls do not allocate
/// buffers. Small products run on the calling thread.
/// </summary>
internal sealed unsafe class ManagedGemm : IGemmBackend
{
    /// <summary>Below this m·n·k the product runs on one thread (fork/join costs more than it saves).</summary>
    internal const long ParallelThreshold = 1L << 20; // ≈ 40 µs of work at 50 GFLOP/s

    internal static readonly ManagedGemm Instance = new();

    private ManagedGemm() { }

    /// <inheritdoc/>
    public BlasBackend Kind => BlasBackend.Managed;

    /// <summary>The micro-kernel in use on this machine (e.g. "V512 8x32").</summary>
    public static string KernelName
    {
        get
        {
            GemmKernelInfo k = GemmKernelInfo.For(GemmKernel.Auto);
            return $"{k.Kind} {k.MR}x{k.NR}";
        }
    }

    /// <inheritdoc/>
    public void Sgemm(bool transA, bool transB, int m, int n, int k,
        float alpha, ReadOnlySpan<float> a, int lda, ReadOnlySpan<float> b, int ldb,
        float beta, Span<float> c, int ldc)
        => Sgemm(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, GemmKernel.Auto, Blas.Threads);

    /// <summary>
    /// Same, with an explicit micro-kernel, thread count and the m·n·k from which threads are
    /// used (tests use it to run every kernel and the parallel split at small sizes).
    /// </summary>
    internal static void Sgemm(bool transA, bool transB, int m, int n, int k,
        float alpha, ReadOnlySpan<float> a, int lda, ReadOnlySpan<float> b, int ldb,
        float beta, Span<float> c, int ldc, GemmKernel kernel, int threads,
        long parallelThreshold = ParallelThreshold)
    {
        GemmArgs.Validate(transA, transB, m, n, k, a.Length, lda, b.Length, ldb, c.Length, ldc);
        ArgumentOutOfRangeException.ThrowIfLessThan(threads, 1);
        if (m == 0 || n == 0) return;
        if (k == 0 || alpha == 0)
        {
            GemmScale.ScaleC(m, n, beta, c, ldc);
            return;
        }
        GemmKernelInfo info = GemmKernelInfo.For(kernel);
        fixed (float* pa = a)
        fixed (float* pb = b)
        fixed (float* pc = c)
        {
            GemmJob job = GemmJob.Rent();
            try
            {
                job.Run(info, transA, transB, m, n, k, alpha, pa, lda, pb, ldb, beta, pc, ldc,
                    (long)m * n * k >= parallelThreshold ? threads : 1);
            }
            finally
            {
                GemmJob.Return(job);
            }
        }
    }

    /// <summary>
    /// One product in flight: its arguments, the shared packed B panel, and the work split.
    /// One job per calling thread is cached and reused (a re-entrant call gets a fresh one).
    /// </summary>
    private sealed class GemmJob
    {
        [ThreadStatic] private static GemmJob? t_cached;
        [ThreadStatic] private static AlignedBuffer? t_packA;

        private readonly AlignedBuffer _packB = new();
        private readonly Action<int> _item;

        private GemmKernelInfo _info = GemmKernelInfo.Scalar;
        private bool _transA, _transB;
        private int _m, _k, _lda, _ldb, _ldc;
        private float _alpha, _betaNow;
        private float* _a, _b, _c;
        private int _jc, _nc, _pc, _kc;
        private int _mcBlock, _rowBlocks, _colChunks, _colChunk;
        private float* _bp;

        private GemmJob() => _item = DoItem;

        public static GemmJob Rent()
        {
            GemmJob? job = t_cached;
            t_cached = null;
            return job ?? new GemmJob();
        }

        public static void Return(GemmJob job)
        {
            job._a = job._b = job._c = job._bp = null;
            t_cached = job;
        }

        public void Run(GemmKernelInfo info, bool transA, bool transB, int m, int n, int k,
            float alpha, float* a, int lda, float* b, int ldb, float beta, float* c, int ldc, int threads)
        {
            _info = info;
            _transA = transA; _transB = transB;
            _m = m; _k = k; _lda = lda; _ldb = ldb; _ldc = ldc;
            _alpha = alpha; _a = a; _b = b; _c = c;
            int mr = info.MR, nr = info.NR;

            // Split rows into blocks of at most MC, a multiple of the thread count when there are
            // enough rows; otherwise also split the columns so every thread has work.
            int rowBlocks = CeilDiv(m, info.MC);
            if (threads > 1 && rowBlocks >= threads) rowBlocks = CeilDiv(rowBlocks, threads) * threads;
            _mcBlock = Math.Min(RoundUp(CeilDiv(m, rowBlocks), mr), RoundUp(info.MC, mr));
            _rowBlocks = CeilDiv(m, _mcBlock);
            int colChunksWanted = threads > 1 && _rowBlocks < threads ? CeilDiv(threads, _rowBlocks) : 1;

            int ncMax = Math.Min(info.NC, n);
            _bp = _packB.Get((long)info.KC * RoundUp(ncMax, nr));
            for (int jc = 0; jc < n; jc += info.NC)
            {
                _jc = jc;
                _nc = Math.Min(info.NC, n - jc);
                int slivers = CeilDiv(_nc, nr);
                _colChunks = Math.Min(colChunksWanted, slivers);
                _colChunk = CeilDiv(slivers, _colChunks) * nr;
                _colChunks = CeilDiv(_nc, _colChunk);
                for (int pc = 0; pc < k; pc += info.KC)
                {
                    _pc = pc;
                    _kc = Math.Min(info.KC, k - pc);
                    _betaNow = pc == 0 ? beta : 1f;
                    PackB();
                    int items = _rowBlocks * _colChunks;
                    if (threads == 1 || items == 1)
                    {
                        for (int w = 0; w < items; w++) DoItem(w);
                    }
                    else
                    {
                        Parallel.For(0, items, new ParallelOptions { MaxDegreeOfParallelism = threads }, _item);
                    }
                }
            }
        }

        /// <summary>Packs op(B)[pc..pc+kc, jc..jc+nc] as NR-wide slivers, p-major, zero-padded.</summary>
        private void PackB()
        {
            int nr = _info.NR, kc = _kc, nc = _nc;
            for (int j0 = 0; j0 < nc; j0 += nr)
            {
                float* dst = _bp + (long)j0 * kc;
                int cols = Math.Min(nr, nc - j0);
                int jAbs = _jc + j0;
                if (!_transB)
                {
                    // op(B)[p, j] = b[p*ldb + j]: each sliver row is a contiguous copy.
                    for (int p = 0; p < kc; p++)
                    {
                        float* src = _b + (long)(_pc + p) * _ldb + jAbs;
                        var d = new Span<float>(dst + (long)p * nr, nr);
                        new ReadOnlySpan<float>(src, cols).CopyTo(d);
                        if (cols < nr) d[cols..].Clear();
                    }
                }
                else
                {
                    // op(B)[p, j] = b[j*ldb + p]: read each stored row contiguously, scatter by NR.
                    for (int col = 0; col < cols; col++)
                    {
                        float* src = _b + (long)(jAbs + col) * _ldb + _pc;
                        float* d = dst + col;
                        for (int p = 0; p < kc; p++) d[(long)p * nr] = src[p];
                    }
                    for (int col = cols; col < nr; col++)
                    {
                        float* d = dst + col;
                        for (int p = 0; p < kc; p++) d[(long)p * nr] = 0f;
                    }
                }
            }
        }

        /// <summary>Packs alpha·op(A)[i0..i0+mc, pc..pc+kc] as MR-tall slivers, p-major, zero-padded.</summary>
        private void PackA(float* ap, int i0, int mc)
        {
            int mr = _info.MR, kc = _kc;
            float alpha = _alpha;
            for (int r0 = 0; r0 < mc; r0 += mr)
            {
                float* dst = ap + (long)r0 * kc;
                int rows = Math.Min(mr, mc - r0);
                int iAbs = i0 + r0;
                if (!_transA)
                {
                    // op(A)[i, p] = a[i*lda + p]: read each stored row contiguously, scatter by MR.
                    for (int r = 0; r < rows; r++)
                    {
                        float* src = _a + (long)(iAbs + r) * _lda + _pc;
                        float* d = dst + r;
                        for (int p = 0; p < kc; p++) d[(long)p * mr] = alpha * src[p];
                    }
                    for (int r = rows; r < mr; r++)
                    {
                        float* d = dst + r;
                        for (int p = 0; p < kc; p++) d[(long)p * mr] = 0f;
                    }
                }
                else
                {
                    // op(A)[i, p] = a[p*lda + i]: each sliver row is a contiguous (scaled) copy.
                    for (int p = 0; p < kc; p++)
                    {
                        float* src = _a + (long)(_pc + p) * _lda + iAbs;
                        float* d = dst + (long)p * mr;
                        for (int r = 0; r < rows; r++) d[r] = alpha * src[r];
                        for (int r = rows; r < mr; r++) d[r] = 0f;
                    }
                }
            }
        }

        /// <summary>One work item: a row block of A against a chunk of the packed B columns.</summary>
        private void DoItem(int w)
        {
            int rowBlock = w / _colChunks, colChunk = w % _colChunks;
            int i0 = rowBlock * _mcBlock;
            int mc = Math.Min(_mcBlock, _m - i0);
            int j0 = colChunk * _colChunk;
            int jEnd = Math.Min(_nc, j0 + _colChunk);
            int mr = _info.MR, nr = _info.NR, kc = _kc;
            float beta = _betaNow;
            nint ldc = _ldc;

            t_packA ??= new AlignedBuffer();
            float* ap = t_packA.Get((long)RoundUp(mc, mr) * _info.KC);
            PackA(ap, i0, mc);

            var tile = _info.Tile;
            float* scratch = stackalloc float[8 * 32];
            for (int jr = j0; jr < jEnd; jr += nr)
            {
                int cols = Math.Min(nr, jEnd - jr);
                float* bs = _bp + (long)jr * kc;
                for (int ir = 0; ir < mc; ir += mr)
                {
                    int rows = Math.Min(mr, mc - ir);
                    float* cTile = _c + (long)(i0 + ir) * ldc + _jc + jr;
                    float* as_ = ap + (long)ir * kc;
                    if (rows == mr && cols == nr)
                    {
                        tile(kc, as_, bs, cTile, ldc, beta);
                    }
                    else
                    {
                        tile(kc, as_, bs, scratch, nr, 0f);
                        for (int r = 0; r < rows; r++)
                        {
                            float* cr = cTile + r * ldc;
                            float* sr = scratch + r * nr;
                            if (beta == 0f)
                                for (int j = 0; j < cols; j++) cr[j] = sr[j];
                            else
                                for (int j = 0; j < cols; j++) cr[j] = MathF.FusedMultiplyAdd(beta, cr[j], sr[j]);
                        }
                    }
                }
            }
        }

        private static int CeilDiv(int x, int y) => (x + y - 1) / y;

        private static int RoundUp(int x, int y) => CeilDiv(x, y) * y;
    }

    /// <summary>
    /// A growable, 64-byte aligned float buffer on the pinned object heap (never moves, so its
    /// address stays valid); reused across calls.
    /// </summary>
    private sealed class AlignedBuffer
    {
        private float[]? _array;
        private float* _aligned;
        private long _capacity;

        public float* Get(long floats)
        {
            if (floats > _capacity)
            {
                long size = Math.Max(floats, _capacity * 3 / 2) + 16;
                _array = GC.AllocateUninitializedArray<float>(checked((int)size), pinned: true);
                nint start = (nint)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(_array));
                nint aligned = (start + 63) & ~(nint)63;
                _aligned = (float*)aligned;
                _capacity = size - 16;
            }
            return _aligned;
        }
    }
}
