using LabelNoiseLab.Tensors;

namespace LabelNoiseLab.Tests;

/// <summary>SymmetricEigen and Svd of each LAPACK backend, checked by their defining identities.</summary>
public class LapackTests
{
    public static TheoryData<string> Backends => ["managed", "openblas"];

    private static ILapackBackend? Backend(string name) => name switch
    {
        "managed" => Lapack.Managed,
        "openblas" => Lapack.OpenBlas, // null when OpenBLAS is not installed here
        _ => throw new ArgumentException(name),
    };

    private static float[] RandomMatrix(Random rng, int m, int n)
    {
        var x = new float[m * n];
        for (int i = 0; i < x.Length; i++) x[i] = (float)(rng.NextDouble() * 2 - 1);
        return x;
    }

    private static float[] RandomSymmetric(Random rng, int n)
    {
        float[] x = RandomMatrix(rng, n, n);
        for (int i = 0; i < n; i++)
        for (int j = 0; j < i; j++) x[i * n + j] = x[j * n + i];
        return x;
    }

    private static double MaxAbs(ReadOnlySpan<float> x)
    {
        double mx = 0;
        foreach (float v in x) mx = Math.Max(mx, Math.Abs(v));
        return mx;
    }

    /// <summary>Max |Gram(columns of x) − I| for row-major rows×cols x.</summary>
    private static double OrthonormalColumnsError(float[] x, int rows, int cols)
    {
        double err = 0;
        for (int p = 0; p < cols; p++)
        for (int q = 0; q < cols; q++)
        {
            double s = 0;
            for (int i = 0; i < rows; i++) s += (double)x[i * cols + p] * x[i * cols + q];
            err = Math.Max(err, Math.Abs(s - (p == q ? 1 : 0)));
        }
        return err;
    }

    private static float[] Transpose(float[] x, int rows, int cols)
    {
        var t = new float[x.Length];
        for (int i = 0; i < rows; i++)
        for (int j = 0; j < cols; j++) t[j * rows + i] = x[i * cols + j];
        return t;
    }

    [Theory]
    [MemberData(nameof(Backends))]
    public void SymmetricEigen_satisfies_AV_equals_VLambda_with_orthonormal_V(string name)
    {
        ILapackBackend? lapack = Backend(name);
        if (lapack == null) Assert.Skip(MachineTools.NoOpenBlasLapack);
        var rng = new Random(10);
        foreach (int n in new[] { 1, 2, 5, 17, 40 })
        {
            float[] a = RandomSymmetric(rng, n);
            var w = new float[n];
            var v = new float[n * n];
            lapack.SymmetricEigen(a, n, w, v);

            double tol = 1e-5 * n * Math.Max(1, MaxAbs(a));
            for (int j = 1; j < n; j++) Assert.True(w[j - 1] >= w[j], $"n={n}: eigenvalues not descending at {j}: {w[j - 1]} < {w[j]}");
            for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++)
            {
                double av = 0;
                for (int p = 0; p < n; p++) av += (double)a[i * n + p] * v[p * n + j];
                double vl = (double)v[i * n + j] * w[j];
                Assert.True(Math.Abs(av - vl) <= tol, $"{name} n={n}: (AV - VΛ)[{i},{j}] = {av - vl:E2}");
            }
            double orth = OrthonormalColumnsError(v, n, n);
            Assert.True(orth <= 1e-5 * n, $"{name} n={n}: |VᵀV - I| = {orth:E2}");
        }
    }

    [Theory]
    [MemberData(nameof(Backends))]
    public void SymmetricEigen_recovers_a_known_spectrum(string name)
    {
        ILapackBackend? lapack = Backend(name);
        if (lapack == null) Assert.Skip(MachineTools.NoOpenBlasLapack);
        // A = Q·diag(λ)·Qᵀ with Q = I − 2hhᵀ/|h|² (a Householder reflection: orthogonal).
        double[] lambda = [-3, 7.5, 0.25, 2, -0.5, 4];
        int n = lambda.Length;
        double[] h = [1, -2, 0.5, 3, 1, -1];
        double hh = h.Sum(x => x * x);
        double Q(int i, int j) => (i == j ? 1 : 0) - 2 * h[i] * h[j] / hh;
        var a = new float[n * n];
        for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++)
        {
            double s = 0;
            for (int p = 0; p < n; p++) s += Q(i, p) * lambda[p] * Q(j, p);
            a[i * n + j] = (float)s;
        }
        var w = new float[n];
        var v = new float[n * n];
        lapack.SymmetricEigen(a, n, w, v);

        double[] sorted = lambda.OrderByDescending(x => x).ToArray();
        for (int j = 0; j < n; j++)
            Assert.True(Math.Abs(w[j] - sorted[j]) <= 1e-5 * 7.5, $"{name}: eigenvalue {j} = {w[j]}, expected {sorted[j]}");
        // Each eigenvector is ± the matching column of Q.
        for (int j = 0; j < n; j++)
        {
            int p = Array.IndexOf(lambda, sorted[j]);
            double dot = 0;
            for (int i = 0; i < n; i++) dot += v[i * n + j] * Q(i, p);
            Assert.True(Math.Abs(Math.Abs(dot) - 1) <= 1e-5, $"{name}: eigenvector {j}·q = {dot}");
        }
    }

    public static TheoryData<string, int, int> SvdCases()
    {
        var data = new TheoryData<string, int, int>();
        foreach (string b in new[] { "managed", "openblas" })
        foreach (var (m, n) in new[] { (1, 1), (1, 5), (5, 1), (7, 3), (3, 7), (20, 20), (40, 13), (13, 40) })
            data.Add(b, m, n);
        return data;
    }

    [Theory]
    [MemberData(nameof(SvdCases))]
    public void Svd_reconstructs_with_orthonormal_factors_and_matches_eigen_of_AtA(string name, int m, int n)
    {
        ILapackBackend? lapack = Backend(name);
        if (lapack == null) Assert.Skip(MachineTools.NoOpenBlasLapack);
        var rng = new Random(100 * m + n);
        float[] a = RandomMatrix(rng, m, n);
        int r = Math.Min(m, n);
        var s = new float[r];
        var u = new float[m * r];
        var vt = new float[r * n];
        lapack.Svd(a, m, n, s, u, vt);

        for (int j = 0; j < r; j++) Assert.True(s[j] >= 0, $"s[{j}] = {s[j]} < 0");
        for (int j = 1; j < r; j++) Assert.True(s[j - 1] >= s[j], $"singular values not descending at {j}");

        double tol = 1e-5 * Math.Max(m, n) * Math.Max(1, s[0]);
        for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++)
        {
            double x = 0;
            for (int p = 0; p < r; p++) x += (double)u[i * r + p] * s[p] * vt[p * n + j];
            Assert.True(Math.Abs(x - a[i * n + j]) <= tol, $"{name} {m}×{n}: (U·S·Vt − A)[{i},{j}] = {x - a[i * n + j]:E2}");
        }
        double ou = OrthonormalColumnsError(u, m, r);
        double ov = OrthonormalColumnsError(Transpose(vt, r, n), n, r);
        Assert.True(ou <= 1e-5 * Math.Max(m, n), $"{name} {m}×{n}: |UᵀU − I| = {ou:E2}");
        Assert.True(ov <= 1e-5 * Math.Max(m, n), $"{name} {m}×{n}: |Vt·Vtᵀ − I| = {ov:E2}");

        // s² are the top r eigenvalues of AᵀA (computed in double, decomposed by the same backend).
        var ata = new float[n * n];
        for (int p = 0; p < n; p++)
        for (int q = 0; q < n; q++)
        {
            double x = 0;
            for (int i = 0; i < m; i++) x += (double)a[i * n + p] * a[i * n + q];
            ata[p * n + q] = (float)x;
        }
        var w = new float[n];
        lapack.SymmetricEigen(ata, n, w, new float[n * n]);
        double tolEig = 1e-5 * n * Math.Max(1, s[0] * s[0]);
        for (int j = 0; j < r; j++)
            Assert.True(Math.Abs((double)s[j] * s[j] - w[j]) <= tolEig, $"{name} {m}×{n}: s[{j}]² = {s[j] * s[j]}, eig(AᵀA)[{j}] = {w[j]}");
    }

    [Fact]
    public void Backends_agree()
    {
        ILapackBackend? native = Lapack.OpenBlas;
        if (native == null) Assert.Skip(MachineTools.NoOpenBlasLapack);
        ILapackBackend managed = Lapack.Managed;
        var rng = new Random(7);

        const int n = 30;
        float[] sym = RandomSymmetric(rng, n);
        float[] w1 = new float[n], w2 = new float[n], v1 = new float[n * n], v2 = new float[n * n];
        managed.SymmetricEigen(sym, n, w1, v1);
        native.SymmetricEigen(sym, n, w2, v2);
        for (int j = 0; j < n; j++)
        {
            Assert.True(Math.Abs(w1[j] - w2[j]) <= 1e-4, $"eigenvalue {j}: managed {w1[j]} vs openblas {w2[j]}");
            double dot = 0;
            for (int i = 0; i < n; i++) dot += (double)v1[i * n + j] * v2[i * n + j];
            Assert.True(Math.Abs(Math.Abs(dot) - 1) <= 1e-3, $"eigenvector {j}: |v_managed·v_openblas| = {Math.Abs(dot)}");
        }

        foreach (var (m, k) in new[] { (25, 11), (11, 25) })
        {
            float[] a = RandomMatrix(rng, m, k);
            int r = Math.Min(m, k);
            float[] s1 = new float[r], s2 = new float[r], u1 = new float[m * r], u2 = new float[m * r];
            float[] vt1 = new float[r * k], vt2 = new float[r * k];
            managed.Svd(a, m, k, s1, u1, vt1);
            native.Svd(a, m, k, s2, u2, vt2);
            for (int j = 0; j < r; j++)
            {
                Assert.True(Math.Abs(s1[j] - s2[j]) <= 1e-4 * (1 + s2[0]), $"{m}×{k}: s[{j}] managed {s1[j]} vs openblas {s2[j]}");
                double dot = 0;
                for (int i = 0; i < m; i++) dot += (double)u1[i * r + j] * u2[i * r + j];
                Assert.True(Math.Abs(Math.Abs(dot) - 1) <= 1e-3, $"{m}×{k}: left vector {j}: |dot| = {Math.Abs(dot)}");
            }
        }
    }

    [Theory]
    [MemberData(nameof(Backends))]
    public void Bad_arguments_throw_with_clear_messages(string name)
    {
        ILapackBackend? lapack = Backend(name);
        if (lapack == null) Assert.Skip(MachineTools.NoOpenBlasLapack);
        float[] buf = new float[16];

        Assert.Equal("n", Assert.Throws<ArgumentOutOfRangeException>(() => lapack.SymmetricEigen(buf, -1, buf, buf)).ParamName);
        var e = Assert.Throws<ArgumentException>(() => lapack.SymmetricEigen(buf.AsSpan(0, 8), 3, new float[3], new float[9]));
        Assert.Equal("a", e.ParamName);
        Assert.Contains("3×3", e.Message, StringComparison.Ordinal);
        Assert.Equal("eigenvalues", Assert.Throws<ArgumentException>(() => lapack.SymmetricEigen(buf, 3, new float[2], new float[9])).ParamName);
        Assert.Equal("eigenvectors", Assert.Throws<ArgumentException>(() => lapack.SymmetricEigen(buf, 3, new float[3], new float[8])).ParamName);
        float[] withNan = new float[9];
        withNan[4] = float.NaN;
        Assert.Contains("finite", Assert.Throws<ArgumentException>(() => lapack.SymmetricEigen(withNan, 3, new float[3], new float[9])).Message, StringComparison.Ordinal);

        Assert.Equal("m", Assert.Throws<ArgumentOutOfRangeException>(() => lapack.Svd(buf, -2, 3, buf, buf, buf)).ParamName);
        // 4×3: r = 3, U 4×3 = 12, Vt 3×3 = 9.
        Assert.Equal("s", Assert.Throws<ArgumentException>(() => lapack.Svd(buf, 4, 3, new float[2], new float[12], new float[9])).ParamName);
        var eu = Assert.Throws<ArgumentException>(() => lapack.Svd(buf, 4, 3, new float[3], new float[11], new float[9]));
        Assert.Equal("u", eu.ParamName);
        Assert.Contains("4×3", eu.Message, StringComparison.Ordinal);
        Assert.Equal("vt", Assert.Throws<ArgumentException>(() => lapack.Svd(buf, 4, 3, new float[3], new float[12], new float[8])).ParamName);
        Assert.Equal("a", Assert.Throws<ArgumentException>(() => lapack.Svd(buf.AsSpan(0, 11), 4, 3, new float[3], new float[12], new float[9])).ParamName);

        // Empty matrices are fine and do nothing.
        lapack.SymmetricEigen([], 0, [], []);
        lapack.Svd([], 0, 5, [], [], []);
    }

    [Fact]
    public void Selected_backend_follows_blas()
    {
        Assert.Equal(Blas.Backend == BlasBackend.OpenBlas && Lapack.OpenBlas != null ? BlasBackend.OpenBlas : BlasBackend.Managed,
            Lapack.Selected.Kind);
        var w = new float[2];
        var v = new float[4];
        Lapack.SymmetricEigen([2, 1, 1, 2], 2, w, v);
        Assert.Equal(3f, w[0], 5);
        Assert.Equal(1f, w[1], 5);
    }
}
