using LabelNoiseLab.Tensors;

namespace LabelNoiseLab.Probes;

/// <summary>A symmetric linear map v ↦ A·v (a Hessian–vector product).</summary>
public delegate void SymmetricProduct(ReadOnlySpan<float> v, Span<float> av);

/// <summary>One node of a stochastic-Lanczos-quadrature density: probe vector, Ritz value, weight (the weights of one vector sum to 1).</summary>
public readonly record struct QuadratureNode(int Vector, double Node, double Weight);

/// <summary>
/// The Lanczos method with full reorthogonalisation for a symmetric map known only through its
/// products: the top eigenvalues (Ritz values of an m-step run) and the spectral density by
/// stochastic Lanczos quadrature (Ubaru, Chen and Saad 2017; PyHessian's method, Yao et al. 2020):
/// for each Rademacher probe vector v, m Lanczos steps from v/‖v‖ give a tridiagonal T = UΘUᵀ,
/// and the density is approximated by Σⱼ U₀ⱼ² δ(λ − θⱼ), averaged over the vectors.
/// The vectors are float, dot products and T in double; T is diagonalised by LAPACK's dstev (or MathNet).
/// </summary>
public static class Lanczos
{
    /// <summary>The <paramref name="k"/> largest Ritz values of an <paramref name="steps"/>-step run from a Gaussian start, descending (exact once steps ≥ the dimension).</summary>
    public static double[] TopEigenvalues(SymmetricProduct product, int dimension, int k, int steps, Rng rng)
    {
        ArgumentNullException.ThrowIfNull(product);
        ArgumentNullException.ThrowIfNull(rng);
        if (k < 1 || steps < 1 || dimension < 1)
            throw new ArgumentOutOfRangeException(nameof(k), $"k {k}, steps {steps}, dimension {dimension} must be positive");
        var start = new float[dimension];
        for (int i = 0; i < dimension; i++)
            start[i] = (float)rng.NextNormal();
        var (alpha, beta) = Run(product, start, Math.Min(Math.Max(steps, k), dimension));
        var (values, _) = Tridiagonal(alpha, beta);
        return [.. values.OrderDescending().Take(k)];
    }

    /// <summary>Stochastic Lanczos quadrature with <paramref name="vectors"/> Rademacher probe vectors of <paramref name="steps"/> steps each.</summary>
    public static List<QuadratureNode> Density(SymmetricProduct product, int dimension, int vectors, int steps, Rng rng)
    {
        ArgumentNullException.ThrowIfNull(product);
        ArgumentNullException.ThrowIfNull(rng);
        if (vectors < 1 || steps < 1 || dimension < 1)
            throw new ArgumentOutOfRangeException(nameof(vectors), $"vectors {vectors}, steps {steps}, dimension {dimension} must be positive");
        var nodes = new List<QuadratureNode>();
        var start = new float[dimension];
        for (int v = 0; v < vectors; v++)
        {
            for (int i = 0; i < dimension; i++)
                start[i] = (rng.NextUInt64() >> 63) == 0 ? -1f : 1f;
            var (alpha, beta) = Run(product, start, Math.Min(steps, dimension));
            var (values, first) = Tridiagonal(alpha, beta);
            for (int j = 0; j < values.Length; j++)
                nodes.Add(new QuadratureNode(v, values[j], first[j] * first[j]));
        }
        return nodes;
    }

    /// <summary>The trace estimate of a density: dimension × the mean over vectors of Σ weight·node.</summary>
    public static double Trace(IReadOnlyList<QuadratureNode> nodes, int dimension)
    {
        ArgumentNullException.ThrowIfNull(nodes);
        int vectors = nodes.Select(n => n.Vector).Distinct().Count();
        return vectors == 0 ? double.NaN : dimension * nodes.Sum(n => n.Weight * n.Node) / vectors;
    }

    /// <summary>m Lanczos steps from <paramref name="start"/> (normalised here), full reorthogonalisation; stops early on an invariant subspace.</summary>
    public static (double[] Alpha, double[] Beta) Run(SymmetricProduct product, ReadOnlySpan<float> start, int steps)
    {
        ArgumentNullException.ThrowIfNull(product);
        int n = start.Length;
        var basis = new List<float[]>();
        var alpha = new List<double>();
        var beta = new List<double>();
        var q = start.ToArray();
        double norm = Math.Sqrt(Dot(q, q));
        if (norm == 0)
            throw new ArgumentException("the start vector is zero", nameof(start));
        Scale(q, 1 / norm);
        var w = new float[n];
        for (int j = 0; j < steps; j++)
        {
            basis.Add(q);
            product(q, w);
            double a = Dot(w, q);
            alpha.Add(a);
            // Full reorthogonalisation (twice, "twice is enough") against every basis vector.
            for (int pass = 0; pass < 2; pass++)
            {
                foreach (var b in basis)
                {
                    double c = Dot(w, b);
                    System.Numerics.Tensors.TensorPrimitives.MultiplyAdd(b, (float)-c, w, w);
                }
            }
            double bnorm = Math.Sqrt(Dot(w, w));
            if (j == steps - 1 || bnorm <= 1e-10 * Math.Max(1, Math.Abs(a)))
                break;
            beta.Add(bnorm);
            var next = new float[n];
            for (int i = 0; i < n; i++)
                next[i] = (float)(w[i] / bnorm);
            q = next;
        }
        return ([.. alpha], [.. beta]);
    }

    /// <summary>Eigenvalues of the symmetric tridiagonal (α, β), ascending, and the first component of each unit eigenvector (<see cref="Lapack.TridiagonalEigen"/>, double precision).</summary>
    public static (double[] Values, double[] First) Tridiagonal(IReadOnlyList<double> alpha, IReadOnlyList<double> beta)
    {
        ArgumentNullException.ThrowIfNull(alpha);
        ArgumentNullException.ThrowIfNull(beta);
        int m = alpha.Count;
        var (values, vectors) = Lapack.TridiagonalEigen([.. alpha], [.. beta.Take(Math.Max(m - 1, 0))]);
        var first = new double[m];
        for (int j = 0; j < m; j++)
            first[j] = vectors[j * m];
        return (values, first);
    }

    private static double Dot(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        double s = 0;
        for (int i = 0; i < a.Length; i++)
            s += (double)a[i] * b[i];
        return s;
    }

    private static void Scale(Span<float> v, double s)
    {
        for (int i = 0; i < v.Length; i++)
            v[i] = (float)(v[i] * s);
    }
}
