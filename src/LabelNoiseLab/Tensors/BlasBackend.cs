namespace LabelNoiseLab.Tensors;

/// <summary>Which implementation runs the matrix products (and LAPACK).</summary>
public enum BlasBackend
{
    /// <summary>The managed, packed, SIMD GEMM in <see cref="ManagedGemm"/>; LAPACK through MathNet.Numerics.</summary>
    Managed,

    /// <summary>OpenBLAS loaded at run time (<c>cblas_sgemm</c>, <c>ssyevd_</c>, <c>sgesdd_</c>).</summary>
    OpenBlas,
}

/// <summary>
/// One single-precision GEMM implementation. Row-major: C = alpha·op(A)·op(B) + beta·C with
/// op(A) m×k, op(B) k×n, C m×n. When beta == 0, C's old contents are ignored (even NaN).
/// Arguments are validated up front (<see cref="GemmArgs.Validate"/>).
/// </summary>
internal interface IGemmBackend
{
    /// <summary>Which implementation this is.</summary>
    BlasBackend Kind { get; }

    /// <summary>C = alpha·op(A)·op(B) + beta·C, row-major with leading dimensions <paramref name="lda"/>, <paramref name="ldb"/>, <paramref name="ldc"/>; throws an <see cref="ArgumentException"/> for negative sizes, too-small leading dimensions or too-short spans.</summary>
    void Sgemm(bool transA, bool transB, int m, int n, int k,
        float alpha, ReadOnlySpan<float> a, int lda, ReadOnlySpan<float> b, int ldb,
        float beta, Span<float> c, int ldc);
}

/// <summary>Argument checks shared by every GEMM backend.</summary>
internal static class GemmArgs
{
    /// <summary>
    /// Throws an <see cref="ArgumentException"/> naming the argument and the sizes for negative
    /// sizes, leading dimensions smaller than the stored row length, or spans too short.
    /// </summary>
    public static void Validate(bool transA, bool transB, int m, int n, int k,
        int aLength, int lda, int bLength, int ldb, int cLength, int ldc)
    {
        if (m < 0) throw new ArgumentOutOfRangeException(nameof(m), m, $"sgemm: m = {m} must be >= 0");
        if (n < 0) throw new ArgumentOutOfRangeException(nameof(n), n, $"sgemm: n = {n} must be >= 0");
        if (k < 0) throw new ArgumentOutOfRangeException(nameof(k), k, $"sgemm: k = {k} must be >= 0");

        // Stored shapes (row-major): A is m×k, or k×m when transA; B is k×n, or n×k when transB.
        int aRows = transA ? k : m, aCols = transA ? m : k;
        int bRows = transB ? n : k, bCols = transB ? k : n;
        CheckMatrix("a", "lda", "A", transA, aRows, aCols, aLength, lda, m, n, k);
        CheckMatrix("b", "ldb", "B", transB, bRows, bCols, bLength, ldb, m, n, k);
        CheckMatrix("c", "ldc", "C", false, m, n, cLength, ldc, m, n, k);
    }

    private static void CheckMatrix(string span, string ld, string name, bool trans,
        int rows, int cols, int length, int leading, int m, int n, int k)
    {
        string Shape() => $"(m = {m}, n = {n}, k = {k}{(name == "C" ? "" : $", trans{name} = {trans}")})";
        if (leading < Math.Max(1, cols))
            throw new ArgumentException(
                $"sgemm: {ld} = {leading} is smaller than the {cols} columns of the stored {rows}×{cols} {name} {Shape()}; it must be >= max(1, {cols})",
                ld);
        long needed = rows == 0 || cols == 0 ? 0 : (long)(rows - 1) * leading + cols;
        if (length < needed)
            throw new ArgumentException(
                $"sgemm: {span} has {length} elements but the stored {rows}×{cols} {name} with {ld} = {leading} needs {needed} {Shape()}",
                span);
    }
}
