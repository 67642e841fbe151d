namespace LabelNoiseLab.Tensors;

/// <summary>GEMM through OpenBLAS's <c>cblas_sgemm</c> (row-major CBLAS interface).</summary>
internal sealed unsafe class OpenBlasGemm : IGemmBackend
{
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
        fixed (float* pa = a)
        fixed (float* pb = b)
        fixed (float* pc = c)
        {
            Library.Sgemm(OpenBlasLibrary.CblasRowMajor,
                transA ? OpenBlasLibrary.CblasTrans : OpenBlasLibrary.CblasNoTrans,
                transB ? OpenBlasLibrary.CblasTrans : OpenBlasLibrary.CblasNoTrans,
                m, n, k, alpha, pa, lda, pb, ldb, beta, pc, ldc);
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
