using MathNet.Numerics.LinearAlgebra;
using MathNet.Numerics.LinearAlgebra.Factorization;

namespace LabelNoiseLab.Tensors;

/// <summary>
/// <see cref="ILapackBackend"/> through MathNet.Numerics' managed provider, in double
/// precision (slower than OpenBLAS, but more accurate than float32 LAPACK).
/// </summary>
internal sealed class ManagedLapack : ILapackBackend
{
    public static readonly ManagedLapack Instance = new();

    private ManagedLapack() { }

    public BlasBackend Kind => BlasBackend.Managed;

    /// <inheritdoc cref="Lapack.TridiagonalEigen"/>
    public static (double[] Values, double[] Vectors) TridiagonalEigen(ReadOnlySpan<double> diagonal, ReadOnlySpan<double> offDiagonal)
    {
        LapackArgs.ValidateTridiagonal(diagonal, offDiagonal);
        int n = diagonal.Length;
        if (n == 0) return ([], []);
        var t = Matrix<double>.Build.Dense(n, n);
        for (int i = 0; i < n; i++)
        {
            t[i, i] = diagonal[i];
            if (i + 1 < n)
                t[i, i + 1] = t[i + 1, i] = offDiagonal[i];
        }
        Evd<double> evd = t.Evd(Symmetricity.Symmetric);
        int[] order = [.. Enumerable.Range(0, n).OrderBy(j => evd.EigenValues[j].Real)];
        var values = new double[n];
        var vectors = new double[n * n];
        for (int j = 0; j < n; j++)
        {
            values[j] = evd.EigenValues[order[j]].Real;
            for (int i = 0; i < n; i++) vectors[j * n + i] = evd.EigenVectors[i, order[j]];
        }
        return (values, vectors);
    }

    public void SymmetricEigen(ReadOnlySpan<float> a, int n, Span<float> eigenvalues, Span<float> eigenvectors)
    {
        LapackArgs.ValidateEigen(a, n, eigenvalues.Length, eigenvectors.Length);
        if (n == 0) return;
        var sym = new double[n * n];
        for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++)
            sym[i * n + j] = 0.5 * ((double)a[i * n + j] + a[j * n + i]); // symmetric: layout-free
        Evd<double> evd = Matrix<double>.Build.Dense(n, n, sym).Evd(Symmetricity.Symmetric);

        var values = new double[n];
        for (int j = 0; j < n; j++) values[j] = evd.EigenValues[j].Real;
        int[] order = Enumerable.Range(0, n).ToArray();
        Array.Sort(order, (x, y) => values[y].CompareTo(values[x])); // descending
        Matrix<double> vectors = evd.EigenVectors;
        for (int j = 0; j < n; j++)
        {
            int src = order[j];
            eigenvalues[j] = (float)values[src];
            for (int i = 0; i < n; i++) eigenvectors[i * n + j] = (float)vectors[i, src];
        }
    }

    public void Svd(ReadOnlySpan<float> a, int m, int n, Span<float> s, Span<float> u, Span<float> vt)
    {
        LapackArgs.ValidateSvd(a, m, n, s.Length, u.Length, vt.Length);
        int r = Math.Min(m, n);
        if (r == 0) return;
        bool wide = m < n;
        // Work on the tall one of A and Aᵀ (rows ≥ cols): tall = Q·R (thin), R = Ur·S·Vt,
        // so tall = (Q·Ur)·S·Vt. For a wide A, A = (tall)ᵀ = V·S·(Q·Ur)ᵀ.
        int rows = wide ? n : m, cols = r;
        Matrix<double> tall = Matrix<double>.Build.Dense(rows, cols);
        for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++)
        {
            if (wide) tall[j, i] = a[i * n + j];
            else tall[i, j] = a[i * n + j];
        }
        Matrix<double> left, right; // tall = left · diag(sv) · right, left rows×r, right r×r
        MathNet.Numerics.LinearAlgebra.Vector<double> sv;
        if (rows == cols)
        {
            Svd<double> svd = tall.Svd(computeVectors: true);
            left = svd.U; sv = svd.S; right = svd.VT;
        }
        else
        {
            QR<double> qr = tall.QR(QRMethod.Thin);
            Svd<double> svd = qr.R.Svd(computeVectors: true);
            left = qr.Q * svd.U; sv = svd.S; right = svd.VT;
        }

        for (int j = 0; j < r; j++) s[j] = (float)sv[j];
        if (!wide)
        {
            for (int i = 0; i < m; i++)
            for (int j = 0; j < r; j++) u[i * r + j] = (float)left[i, j];
            for (int i = 0; i < r; i++)
            for (int j = 0; j < n; j++) vt[i * n + j] = (float)right[i, j];
        }
        else
        {
            // A = rightᵀ · S · leftᵀ: U = rightᵀ (m×r, r = m), Vt = leftᵀ (r×n).
            for (int i = 0; i < m; i++)
            for (int j = 0; j < r; j++) u[i * r + j] = (float)right[j, i];
            for (int i = 0; i < r; i++)
            for (int j = 0; j < n; j++) vt[i * n + j] = (float)left[j, i];
        }
    }
}
