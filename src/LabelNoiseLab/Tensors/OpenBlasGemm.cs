namespace LabelNoiseLab.Tensors;

/// <summary>
/// GEMM through OpenBLAS's <c>cblas_sgemm</c> (row-major CBLAS interface). OpenBLAS itself runs on
/// one thread (<see cref="Blas"/> sets it so); a product of at least <see cref="SplitMinWork"/>
/// multiply-adds is cut along its longer output side into blocks of <see cref="BlockSize"/> rows
/// or columns, one <c>cblas_sgemm</c> call each, spread over <see cref="ParallelRange"/>'s threads.
/// The blocks do not depend on the thread count, so neither do the results' bits; and no OpenBLAS
/// worker spins between products while the engine's own kernels want the cores.
/// </summary>
internal sealed unsafe class OpenBlasGemm : IGemmBackend
{
    /// <summary>Rows or columns of C per <c>cblas_sgemm</c> call when a product is split.</summary>
    internal const int BlockSize = 128;

    /// <summary>Multiply-adds (m·n·k) from which a product is split into blocks.</summary>
    internal const long SplitMinWork = 1L << 18;

    internal OpenBlasGemm(OpenBlasLibrary library) => Library = library;

    internal OpenBlasLibrary Library { get; }

    /// <inheritdoc/>
    public BlasBackend Kind => BlasBackend.OpenBlas;

    /// <summary>The path OpenBLAS was loaded from.</summary>
    public string Path => Library.Path;

    /// <summary>OpenBLAS's version and build options.</summary>
    public string Config => Library.Config;

    /// <summary>OpenBLAS's name for the kernels it chose for this CPU.</summary>
    public string Corename => Library.Corename;

    /// <inheritdoc/>
    public void Sgemm(bool transA, bool transB, int m, int n, int k,
        float alpha, ReadOnlySpan<float> a, int lda, ReadOnlySpan<float> b, int ldb,
        float beta, Span<float> c, int ldc)
    {
        GemmArgs.Validate(transA, transB, m, n, k, a.Length, lda, b.Length, ldb, c.Length, ldc);
        if (m == 0 || n == 0) return;
        if (k == 0 || alpha == 0)
        {
            // Handled here rather than trusting every OpenBLAS version's corner cases.
            GemmScale.ScaleC(m, n, beta, c, ldc);
            return;
        }
        bool splitColumns = n >= m;
        int blocks = ((splitColumns ? n : m) + BlockSize - 1) / BlockSize;
        long work = (long)m * n * k;
        fixed (float* pa = a)
        fixed (float* pb = b)
        fixed (float* pc = c)
        {
            var body = new BlockBody(Library, new Product(transA, transB, m, n, k, alpha, pa, lda, pb, ldb, beta, pc, ldc), splitColumns);
            if (blocks < 2 || work < SplitMinWork)
                body.Product.Run(Library);
            else
                ParallelRange.For(blocks, work, ref body);
        }
    }

    /// <summary>One row-major product with raw pointers (pinned by the caller).</summary>
    private readonly struct Product(bool transA, bool transB, int m, int n, int k, float alpha,
        float* a, int lda, float* b, int ldb, float beta, float* c, int ldc)
    {
        public int M => m;
        public int N => n;

        public void Run(OpenBlasLibrary library) =>
            library.Sgemm(OpenBlasLibrary.CblasRowMajor,
                transA ? OpenBlasLibrary.CblasTrans : OpenBlasLibrary.CblasNoTrans,
                transB ? OpenBlasLibrary.CblasTrans : OpenBlasLibrary.CblasNoTrans,
                m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);

        /// <summary>Columns [lo, hi) of C: the same columns of op(B).</summary>
        public Product Columns(int lo, int hi) =>
            new(transA, transB, m, hi - lo, k, alpha, a, lda, b + (transB ? (long)lo * ldb : lo), ldb, beta, c + lo, ldc);

        /// <summary>Rows [lo, hi) of C: the same rows of op(A).</summary>
        public Product Rows(int lo, int hi) =>
            new(transA, transB, hi - lo, n, k, alpha, a + (transA ? lo : (long)lo * lda), lda, b, ldb, beta, c + (long)lo * ldc, ldc);
    }

    /// <summary>Blocks [start, end) of a split product, each its own OpenBLAS call.</summary>
    private readonly struct BlockBody(OpenBlasLibrary library, Product product, bool splitColumns) : IRangeBody
    {
        public Product Product => product;

        public void Run(int start, int end)
        {
            int size = splitColumns ? product.N : product.M;
            for (int block = start; block < end; block++)
            {
                int lo = block * BlockSize, hi = Math.Min(size, lo + BlockSize);
                (splitColumns ? product.Columns(lo, hi) : product.Rows(lo, hi)).Run(library);
            }
        }
    }
}

/// <summary>C = beta·C over an m×n row-major block (beta == 0 writes zeros, ignoring NaN).</summary>
internal static class GemmScale
{
    public static void ScaleC(int m, int n, float beta, Span<float> c, int ldc)
    {
        if (beta == 1f) return;
        for (int i = 0; i < m; i++)
        {
            Span<float> row = c.Slice(i * ldc, n);
            if (beta == 0f) row.Clear();
            else System.Numerics.Tensors.TensorPrimitives.Multiply(row, beta, row);
        }
    }
}
