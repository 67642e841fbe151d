namespace LabelNoiseLab.Tensors;

/// <summary>
/// <see cref="ILapackBackend"/> through OpenBLAS's bundled LAPACK (Fortran ABI: column-major,
/// every argument by pointer, hidden character lengths last). A workspace query comes first.
/// </summary>
internal sealed unsafe class OpenBlasLapack(OpenBlasLibrary library) : ILapackBackend
{
    public BlasBackend Kind => BlasBackend.OpenBlas;

    public void SymmetricEigen(ReadOnlySpan<float> a, int n, Span<float> eigenvalues, Span<float> eigenvectors)
    {
        LapackArgs.ValidateEigen(a, n, eigenvalues.Length, eigenvectors.Length);
        if (n == 0) return;

        // The symmetric part is its own transpose, so the row-major layout is also the
        // column-major one and either triangle ('L' here) holds the whole matrix.
        var z = new float[n * n];
        for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++)
            z[i * n + j] = 0.5f * (a[i * n + j] + a[j * n + i]);
        var w = new float[n];

        byte jobz = (byte)'V', uplo = (byte)'L';
        int nn = n, lda = n, info = 0, lwork = -1, liwork = -1, iworkQuery = 0;
        float workQuery = 0;
        fixed (float* pz = z)
        fixed (float* pw = w)
        {
            library.Ssyevd(&jobz, &uplo, &nn, pz, &lda, pw, &workQuery, &lwork, &iworkQuery, &liwork, &info, 1, 1);
            Check(info, "ssyevd_ (workspace query)", n, n);
            lwork = WorkspaceSize(workQuery);
            liwork = Math.Max(1, iworkQuery);
            var work = new float[lwork];
            var iwork = new int[liwork];
            fixed (float* pwork = work)
            fixed (int* piwork = iwork)
                library.Ssyevd(&jobz, &uplo, &nn, pz, &lda, pw, pwork, &lwork, piwork, &liwork, &info, 1, 1);
        }
        Check(info, "ssyevd_", n, n);

        // LAPACK: ascending w, eigenvector j in column-major column j, i.e. z[j*n + i].
        // Wanted: descending, column j of the row-major result.
        for (int j = 0; j < n; j++)
        {
            int src = n - 1 - j;
            eigenvalues[j] = w[src];
            for (int i = 0; i < n; i++) eigenvectors[i * n + j] = z[src * n + i];
        }
    }

    public bool HasTridiagonal => library.Dstev != null;

    /// <inheritdoc cref="Lapack.TridiagonalEigen"/>
    public (double[] Values, double[] Vectors) TridiagonalEigen(ReadOnlySpan<double> diagonal, ReadOnlySpan<double> offDiagonal)
    {
        LapackArgs.ValidateTridiagonal(diagonal, offDiagonal);
        int n = diagonal.Length;
        var d = diagonal.ToArray();
        var e = new double[Math.Max(n, 1)];
        offDiagonal.CopyTo(e);
        var z = new double[n * n];
        var work = new double[Math.Max(1, 2 * n - 2)];
        if (n == 0) return (d, z);
        byte jobz = (byte)'V';
        int nn = n, ldz = n, info = 0;
        fixed (double* pd = d)
        fixed (double* pe = e)
        fixed (double* pz = z)
        fixed (double* pwork = work)
            library.Dstev(&jobz, &nn, pd, pe, pz, &ldz, pwork, &info, 1);
        Check(info, "dstev_", n, n);
        return (d, z); // ascending; column-major column j = vector j
    }

    public void Svd(ReadOnlySpan<float> a, int m, int n, Span<float> s, Span<float> u, Span<float> vt)
    {
        LapackArgs.ValidateSvd(a, m, n, s.Length, u.Length, vt.Length);
        int r = Math.Min(m, n);
        if (r == 0) return;

        // Row-major A (m×n) is column-major Aᵀ (n×m, lda = n). sgesdd gives Aᵀ = U'·S·V'ᵀ, so
        // A = V'·S·U'ᵀ. Column-major U' (n×r, ldu = n) has the memory of row-major Vt (r×n);
        // column-major V'ᵀ (r×m, ldvt = r) has the memory of row-major U (m×r). So sgesdd
        // writes straight into our vt and u.
        float[] acopy = a[..(m * n)].ToArray();
        byte jobz = (byte)'S';
        int mm = n, nn = m, lda = n, ldu = n, ldvt = r, info = 0, lwork = -1;
        float workQuery = 0;
        var iwork = new int[8 * r];
        fixed (float* pa = acopy)
        fixed (float* ps = s)
        fixed (float* pu = u)
        fixed (float* pvt = vt)
        fixed (int* piwork = iwork)
        {
            library.Sgesdd(&jobz, &mm, &nn, pa, &lda, ps, pvt, &ldu, pu, &ldvt, &workQuery, &lwork, piwork, &info, 1);
            Check(info, "sgesdd_ (workspace query)", m, n);
            lwork = WorkspaceSize(workQuery);
            var work = new float[lwork];
            fixed (float* pwork = work)
                library.Sgesdd(&jobz, &mm, &nn, pa, &lda, ps, pvt, &ldu, pu, &ldvt, pwork, &lwork, piwork, &info, 1);
        }
        Check(info, "sgesdd_", m, n);
    }

    /// <summary>LAPACK returns the optimal size as a float; round up with margin (float rounding of large ints).</summary>
    private static int WorkspaceSize(float query) => Math.Max(1, (int)Math.Ceiling(query * (1 + 1e-6)) + 1);

    private static void Check(int info, string routine, int m, int n)
    {
        if (info == 0) return;
        throw new InvalidOperationException(info < 0
            ? $"{routine}: argument {-info} was invalid (m = {m}, n = {n}); this is a bug in the wrapper"
            : $"{routine}: did not converge (info = {info}, m = {m}, n = {n})");
    }
}
