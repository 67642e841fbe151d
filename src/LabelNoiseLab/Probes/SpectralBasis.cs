using LabelNoiseLab.Tensors;

namespace LabelNoiseLab.Probes;

/// <summary>
/// The principal basis of a feature matrix F (n×D, row-major): the mean, and the eigen-
/// decomposition of the covariance C = (F − mean)ᵀ(F − mean) / n (one GEMM, one <c>ssyevd</c>).
/// Column j of <see cref="Vectors"/> is v_j; eigenvalues descend. The singular values of the
/// centred F are σ_j = √(n·λ_j).
/// </summary>
public sealed class SpectralBasis
{
    private SpectralBasis(int dim, int count, float[] mean, float[] eigenvalues, float[] vectors)
    {
        Dim = dim;
        Count = count;
        Mean = mean;
        Eigenvalues = eigenvalues;
        Vectors = vectors;
        SingularValues = eigenvalues.Select(l => Math.Sqrt((double)count * l)).ToArray();
    }

    /// <summary>D, the feature dimension.</summary>
    public int Dim { get; }

    /// <summary>n, the number of samples the basis was fitted on.</summary>
    public int Count { get; }

    /// <summary>The per-feature mean (length D) subtracted before the decomposition.</summary>
    public float[] Mean { get; }

    /// <summary>Covariance eigenvalues, descending, clamped at 0 (float rounding makes tiny ones negative).</summary>
    public float[] Eigenvalues { get; }

    /// <summary>D×D row-major; column j is the unit eigenvector of <see cref="Eigenvalues"/>[j].</summary>
    public float[] Vectors { get; }

    /// <summary>Singular values of the centred features, descending.</summary>
    public double[] SingularValues { get; }

    /// <summary>Roy–Vetterli effective rank of <see cref="SingularValues"/> (see <see cref="EffectiveRankOf"/>).</summary>
    public double EffectiveRank => EffectiveRankOf(SingularValues);

    /// <summary>Stable rank of <see cref="SingularValues"/> (see <see cref="StableRankOf"/>).</summary>
    public double StableRank => StableRankOf(SingularValues);

    /// <summary>
    /// Fits the basis on n×D features. The centred copy is kept in <paramref name="centred"/>
    /// when the caller passes a buffer (length ≥ n·D) so that coordinates need no second pass.
    /// </summary>
    public static SpectralBasis Fit(ReadOnlySpan<float> features, int n, int dim, Span<float> centred = default)
    {
        if (n < 1 || dim < 1)
            throw new ArgumentOutOfRangeException(nameof(n), $"spectral basis of {n}×{dim} features: both must be positive");
        if (features.Length < (long)n * dim)
            throw new ArgumentException($"{features.Length} feature values for {n}×{dim}", nameof(features));
        var mean = ColumnMeans(features, n, dim);
        var z = centred.Length >= n * dim ? centred[..(n * dim)] : new float[n * dim];
        Centre(features, n, dim, mean, z);
        var cov = new float[dim * dim];
        Blas.Sgemm(true, false, dim, dim, n, 1f / n, z, dim, z, dim, 0f, cov, dim);
        var eigenvalues = new float[dim];
        var vectors = new float[dim * dim];
        Lapack.SymmetricEigen(cov, dim, eigenvalues, vectors);
        for (int j = 0; j < dim; j++)
            eigenvalues[j] = Math.Max(eigenvalues[j], 0f);
        return new SpectralBasis(dim, n, mean, eigenvalues, vectors);
    }

    /// <summary>Coordinates (f − mean)·V of m samples (m×D), written to <paramref name="coords"/> (m×D).</summary>
    public void Coordinates(ReadOnlySpan<float> features, int m, Span<float> coords, Span<float> scratch = default)
    {
        var z = scratch.Length >= m * Dim ? scratch[..(m * Dim)] : new float[m * Dim];
        Centre(features, m, Dim, Mean, z);
        CoordinatesOfCentred(z, m, coords);
    }

    /// <summary>Coordinates of already centred samples: Z·V.</summary>
    public void CoordinatesOfCentred(ReadOnlySpan<float> centred, int m, Span<float> coords) =>
        Blas.Sgemm(false, false, m, Dim, Dim, 1f, centred, Dim, Vectors, Dim, 0f, coords, Dim);

    /// <summary>
    /// Replaces each of the m rows f of <paramref name="features"/> by mean + V_d V_dᵀ(f − mean),
    /// in place (used on a layer's output through a forward hook). <paramref name="scratch"/> holds m×d.
    /// </summary>
    public void ProjectInPlace(Span<float> features, int m, int d, Span<float> scratch = default)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(d, 0);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(d, Dim);
        Centre(features, m, Dim, Mean, features);
        var c = scratch.Length >= m * d ? scratch[..(m * d)] : new float[m * d];
        // c = Z·V_d (V_d: the first d columns of V, leading dimension D), then f = c·V_dᵀ + mean.
        Blas.Sgemm(false, false, m, d, Dim, 1f, features, Dim, Vectors, Dim, 0f, c, Math.Max(d, 1));
        for (int i = 0; i < m; i++)
            Mean.CopyTo(features.Slice(i * Dim, Dim));
        Blas.Sgemm(false, true, m, Dim, d, 1f, c, Math.Max(d, 1), Vectors, Dim, 1f, features, Dim);
    }

    /// <summary>Roy–Vetterli effective rank exp(−Σ p_i log p_i), p_i = σ_i / Σσ; 0 for an all-zero spectrum.</summary>
    public static double EffectiveRankOf(IReadOnlyList<double> singularValues)
    {
        double sum = singularValues.Sum();
        if (!(sum > 0))
            return 0;
        double entropy = 0;
        foreach (double s in singularValues)
        {
            double p = s / sum;
            if (p > 0)
                entropy -= p * Math.Log(p);
        }
        return Math.Exp(entropy);
    }

    /// <summary>Stable rank Σσ² / σ_max²; 0 for an all-zero spectrum.</summary>
    public static double StableRankOf(IReadOnlyList<double> singularValues)
    {
        double max = singularValues.Count == 0 ? 0 : singularValues.Max();
        return max > 0 ? singularValues.Sum(s => s * s) / (max * max) : 0;
    }

    private static float[] ColumnMeans(ReadOnlySpan<float> features, int n, int dim)
    {
        // Double accumulation: float sums over 60,000 rows lose digits the centring needs.
        var sums = new double[dim];
        for (int i = 0; i < n; i++)
        {
            var row = features.Slice(i * dim, dim);
            for (int j = 0; j < dim; j++)
                sums[j] += row[j];
        }
        return sums.Select(s => (float)(s / n)).ToArray();
    }

    private static void Centre(ReadOnlySpan<float> features, int n, int dim, ReadOnlySpan<float> mean, Span<float> dst)
    {
        for (int i = 0; i < n; i++)
            System.Numerics.Tensors.TensorPrimitives.Subtract(features.Slice(i * dim, dim), mean, dst.Slice(i * dim, dim));
    }
}
