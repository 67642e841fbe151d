namespace LabelNoiseLab.Tensors;

/// <summary>
/// Dense symmetric eigen-decomposition and thin SVD, row-major float32. OpenBLAS's LAPACK
/// (<c>ssyevd_</c>, <c>sgesdd_</c>) when <see cref="Blas.Backend"/> is OpenBLAS, else the
/// managed fallback through MathNet.Numerics (computed in double precision).
/// Tests and benchmarks call a backend explicitly through the internal <see cref="Managed"/> and
/// <see cref="OpenBlas"/>.
/// </summary>
public static class Lapack
{
    private static readonly Lazy<OpenBlasLapack?> s_openBlas = new(() =>
        Blas.OpenBlas is { Library.HasLapack: true } gemm ? new OpenBlasLapack(gemm.Library) : null);

    /// <summary>The backend <see cref="SymmetricEigen"/> and <see cref="Svd"/> use: follows <see cref="Blas.Backend"/>.</summary>
    internal static ILapackBackend Selected =>
        Blas.Backend == BlasBackend.OpenBlas && OpenBlas is { } native ? native : Managed;

    /// <summary>MathNet.Numerics (managed, double precision inside); always available.</summary>
    internal static ILapackBackend Managed => ManagedLapack.Instance;

    /// <summary>OpenBLAS's LAPACK, or null when OpenBLAS (or its LAPACK part) is not available.</summary>
    internal static ILapackBackend? OpenBlas => s_openBlas.Value;

    /// <inheritdoc cref="ILapackBackend.SymmetricEigen"/>
    public static void SymmetricEigen(ReadOnlySpan<float> a, int n, Span<float> eigenvalues, Span<float> eigenvectors)
        => Selected.SymmetricEigen(a, n, eigenvalues, eigenvectors);

    /// <summary>
    /// The symmetric tridiagonal matrix with <paramref name="diagonal"/> (n) and
    /// <paramref name="offDiagonal"/> (n − 1), in double precision: eigenvalues ascending and unit
    /// eigenvectors, vector j at [j·n, (j + 1)·n). OpenBLAS's <c>dstev_</c> when <see cref="Selected"/>
    /// is OpenBLAS and has it, else MathNet.Numerics.
    /// </summary>
    internal static (double[] Values, double[] Vectors) TridiagonalEigen(ReadOnlySpan<double> diagonal, ReadOnlySpan<double> offDiagonal)
        => Selected is OpenBlasLapack { HasTridiagonal: true } native
            ? native.TridiagonalEigen(diagonal, offDiagonal)
            : ManagedLapack.TridiagonalEigen(diagonal, offDiagonal);

    /// <inheritdoc cref="ILapackBackend.Svd"/>
    public static void Svd(ReadOnlySpan<float> a, int m, int n, Span<float> s, Span<float> u, Span<float> vt)
        => Selected.Svd(a, m, n, s, u, vt);
}

/// <summary>One implementation of the dense decompositions <see cref="Lapack"/> offers.</summary>
internal interface ILapackBackend
{
    /// <summary>Which implementation this is.</summary>
    BlasBackend Kind { get; }

    /// <summary>
    /// Eigen-decomposition of the symmetric n×n row-major <paramref name="a"/> (its symmetric
    /// part (A + Aᵀ)/2 is used). <paramref name="eigenvalues"/> (length ≥ n) in descending
    /// order; <paramref name="eigenvectors"/> row-major n×n, column j the unit eigenvector of
    /// eigenvalues[j] (its sign is arbitrary).
    /// </summary>
    void SymmetricEigen(ReadOnlySpan<float> a, int n, Span<float> eigenvalues, Span<float> eigenvectors);

    /// <summary>
    /// Thin SVD A = U·diag(s)·Vt of the m×n row-major <paramref name="a"/>; r = min(m, n).
    /// <paramref name="s"/> (length ≥ r) descending; <paramref name="u"/> row-major m×r with
    /// orthonormal columns; <paramref name="vt"/> row-major r×n with orthonormal rows.
    /// </summary>
    void Svd(ReadOnlySpan<float> a, int m, int n, Span<float> s, Span<float> u, Span<float> vt);
}

/// <summary>Argument checks shared by the LAPACK backends.</summary>
internal static class LapackArgs
{
    public static void ValidateEigen(ReadOnlySpan<float> a, int n, int eigenvaluesLength, int eigenvectorsLength)
    {
        if (n < 0) throw new ArgumentOutOfRangeException(nameof(n), n, $"SymmetricEigen: n = {n} must be >= 0");
        long nn = (long)n * n;
        if (a.Length < nn)
            throw new ArgumentException($"SymmetricEigen: a has {a.Length} elements; an {n}×{n} matrix needs {nn}", nameof(a));
        if (eigenvaluesLength < n)
            throw new ArgumentException($"SymmetricEigen: eigenvalues has {eigenvaluesLength} elements; n = {n} needs {n}", "eigenvalues");
        if (eigenvectorsLength < nn)
            throw new ArgumentException($"SymmetricEigen: eigenvectors has {eigenvectorsLength} elements; an {n}×{n} matrix needs {nn}", "eigenvectors");
        CheckFinite(a[..(int)nn], "SymmetricEigen");
    }

    public static void ValidateTridiagonal(ReadOnlySpan<double> diagonal, ReadOnlySpan<double> offDiagonal)
    {
        if (offDiagonal.Length != Math.Max(diagonal.Length - 1, 0))
            throw new ArgumentException($"TridiagonalEigen: {offDiagonal.Length} off-diagonal values for a diagonal of {diagonal.Length}", nameof(offDiagonal));
        foreach (double v in diagonal)
            if (!double.IsFinite(v)) throw new ArgumentException("TridiagonalEigen: the diagonal has a non-finite value", nameof(diagonal));
        foreach (double v in offDiagonal)
            if (!double.IsFinite(v)) throw new ArgumentException("TridiagonalEigen: the off-diagonal has a non-finite value", nameof(offDiagonal));
    }

    public static void ValidateSvd(ReadOnlySpan<float> a, int m, int n, int sLength, int uLength, int vtLength)
    {
        if (m < 0) throw new ArgumentOutOfRangeException(nameof(m), m, $"Svd: m = {m} must be >= 0");
        if (n < 0) throw new ArgumentOutOfRangeException(nameof(n), n, $"Svd: n = {n} must be >= 0");
        int r = Math.Min(m, n);
        long mn = (long)m * n;
        if (a.Length < mn)
            throw new ArgumentException($"Svd: a has {a.Length} elements; an {m}×{n} matrix needs {mn}", nameof(a));
        if (sLength < r)
            throw new ArgumentException($"Svd: s has {sLength} elements; min(m, n) = {r} needed", "s");
        if (uLength < (long)m * r)
            throw new ArgumentException($"Svd: u has {uLength} elements; U is {m}×{r} and needs {(long)m * r}", "u");
        if (vtLength < (long)r * n)
            throw new ArgumentException($"Svd: vt has {vtLength} elements; Vt is {r}×{n} and needs {(long)r * n}", "vt");
        CheckFinite(a[..(int)mn], "Svd");
    }

    private static void CheckFinite(ReadOnlySpan<float> a, string op)
    {
        for (int i = 0; i < a.Length; i++)
            if (!float.IsFinite(a[i]))
                throw new ArgumentException($"{op}: a[{i}] = {a[i]}; the matrix must be finite", nameof(a));
    }
}
