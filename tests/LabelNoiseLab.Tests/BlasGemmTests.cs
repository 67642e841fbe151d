using LabelNoiseLab.Tensors;

namespace LabelNoiseLab.Tests;

/// <summary>Every GEMM backend against a double-precision loop, plus argument checks and backend selection.</summary>
[Collection(ProcessWideSettings.Name)]
public class BlasGemmTests
{
    private delegate void SgemmFn(bool transA, bool transB, int m, int n, int k,
        float alpha, ReadOnlySpan<float> a, int lda, ReadOnlySpan<float> b, int ldb,
        float beta, Span<float> c, int ldc);

    public static TheoryData<string> Backends =>
        ["managed", "managed-v512-t1", "managed-v512-t2-split", "managed-v256-t1", "managed-v256-t2-split", "managed-scalar-t2-split", "openblas"];

    /// <summary>The named backend, or null when it is OpenBLAS and OpenBLAS is absent here.</summary>
    private static SgemmFn? Backend(string name) => name switch
    {
        "managed" => Blas.Managed.Sgemm,
        "managed-v512-t1" => Kernel(GemmKernel.V512, 1),
        "managed-v512-t2-split" => Kernel(GemmKernel.V512, 2),
        "managed-v256-t1" => Kernel(GemmKernel.V256, 1),
        "managed-v256-t2-split" => Kernel(GemmKernel.V256, 2),
        "managed-scalar-t2-split" => Kernel(GemmKernel.Scalar, 2),
        "openblas" => Blas.OpenBlas is { } o ? o.Sgemm : null,
        _ => throw new ArgumentException(name),
    };

    // Threshold 0: even tiny products take the parallel split (row blocks and column chunks).
    private static SgemmFn Kernel(GemmKernel kernel, int threads) =>
        (bool ta, bool tb, int m, int n, int k, float alpha, ReadOnlySpan<float> a, int lda, ReadOnlySpan<float> b, int ldb, float beta, Span<float> c, int ldc) =>
            ManagedGemm.Sgemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, kernel, threads, parallelThreshold: threads > 1 ? 0 : ManagedGemm.ParallelThreshold);

    private static readonly (int M, int N, int K)[] Sizes =
    [
        (1, 1, 1), (2, 3, 1), (3, 2, 7), (7, 15, 16), (16, 17, 15), (17, 16, 33), (31, 33, 17),
        (33, 31, 64), (64, 65, 7), (65, 64, 70), (70, 3, 65), (1, 70, 33), (70, 1, 31), (15, 64, 2),
        (9, 40, 300),   // k spans two KC blocks: beta must apply once
        (3, 4100, 5),   // n spans two NC blocks
    ];

    [Theory]
    [MemberData(nameof(Backends))]
    public void Matches_double_loop_for_all_transposes_sizes_and_scalars(string name)
    {
        SgemmFn? gemm = Backend(name);
        if (gemm == null) Assert.Skip(MachineTools.NoOpenBlas);
        var rng = new Random(1);
        int variant = 0;
        foreach (var (m, n, k) in Sizes)
        foreach (bool transA in new[] { false, true })
        foreach (bool transB in new[] { false, true })
        {
            // Alternate scalars and padding so each size sees both over the transposes.
            (float alpha, float beta, int pad) = (variant++ % 3) switch
            {
                0 => (1f, 0f, 0),
                1 => (-0.75f, 1.5f, 3),
                _ => (2f, 0f, 1),
            };
            CheckOne(gemm, rng, transA, transB, m, n, k, alpha, beta, pad, $"{name} m={m} n={n} k={k} tA={transA} tB={transB} alpha={alpha} beta={beta} pad={pad}");
        }
    }

    [Theory]
    [MemberData(nameof(Backends))]
    public void Beta_one_accumulates_and_beta_zero_ignores_nan(string name)
    {
        SgemmFn? gemm = Backend(name);
        if (gemm == null) Assert.Skip(MachineTools.NoOpenBlas);
        var rng = new Random(2);
        CheckOne(gemm, rng, false, true, 33, 17, 40, 1f, 1f, 2, name + " beta=1");
        CheckOne(gemm, rng, true, false, 17, 33, 40, 0.5f, 0f, 2, name + " beta=0 (C is NaN)");
    }

    /// <summary>
    /// One product against the double loop. Padding columns of A and B are NaN (must never be
    /// read); padding of C holds a sentinel (must never be written); with beta == 0, C is NaN.
    /// </summary>
    private static void CheckOne(SgemmFn gemm, Random rng, bool transA, bool transB, int m, int n, int k,
        float alpha, float beta, int pad, string what)
    {
        int aRows = transA ? k : m, aCols = transA ? m : k;
        int bRows = transB ? n : k, bCols = transB ? k : n;
        int lda = aCols + pad, ldb = bCols + pad, ldc = n + pad;
        float[] a = Filled(rng, aRows, aCols, lda, float.NaN);
        float[] b = Filled(rng, bRows, bCols, ldb, float.NaN);
        float[] c = Filled(rng, m, n, ldc, 12345f);
        if (beta == 0f)
            for (int i = 0; i < m; i++) c.AsSpan(i * ldc, n).Fill(float.NaN);
        float[] c0 = (float[])c.Clone();

        gemm(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);

        const double u = 1.0 / (1 << 24); // float32 unit roundoff
        for (int i = 0; i < m; i++)
        {
            for (int j = 0; j < n; j++)
            {
                double s = 0, sAbs = 0;
                for (int p = 0; p < k; p++)
                {
                    double prod = (double)a[transA ? p * lda + i : i * lda + p] * b[transB ? j * ldb + p : p * ldb + j];
                    s += prod;
                    sAbs += Math.Abs(prod);
                }
                double old = beta == 0f ? 0 : c0[i * ldc + j];
                double expected = alpha * s + beta * old;
                double scale = Math.Abs(alpha) * sAbs + Math.Abs(beta * old);
                double tol = 2 * (k + 3) * u * scale + 1e-30;
                double got = c[i * ldc + j];
                if (!(Math.Abs(got - expected) <= tol))
                    Assert.Fail($"{what}: C[{i},{j}] = {got}, expected {expected} (tolerance {tol:E2})");
            }
            for (int j = n; j < ldc && i * ldc + j < c.Length; j++)
                if (c[i * ldc + j] != 12345f) Assert.Fail($"{what}: padding C[{i},{j}] was overwritten");
        }
    }

    /// <summary>rows×cols random values in [-1, 1) with leading dimension ld; padding set to <paramref name="padValue"/>.</summary>
    private static float[] Filled(Random rng, int rows, int cols, int ld, float padValue)
    {
        var x = new float[Math.Max(0, (rows - 1) * ld + cols)];
        Array.Fill(x, padValue);
        for (int i = 0; i < rows; i++)
        for (int j = 0; j < cols; j++)
            x[i * ld + j] = (float)(rng.NextDouble() * 2 - 1);
        return x;
    }

    [Theory]
    [MemberData(nameof(Backends))]
    public void Empty_dimensions_and_zero_alpha(string name)
    {
        SgemmFn? gemm = Backend(name);
        if (gemm == null) Assert.Skip(MachineTools.NoOpenBlas);
        float[] a = [1, 2, 3, 4, 5, 6], b = [1, 2, 3, 4, 5, 6];

        // k == 0: C = beta·C; beta == 0 clears even NaN.
        float[] c = [1, 2, 3, 4];
        gemm(false, false, 2, 2, 0, 1f, [], 1, [], 2, 3f, c, 2);
        Assert.Equal([3f, 6f, 9f, 12f], c);
        c = [float.NaN, 1, 2, float.NaN];
        gemm(false, false, 2, 2, 0, 1f, [], 1, [], 2, 0f, c, 2);
        Assert.Equal([0f, 0f, 0f, 0f], c);

        // m == 0 or n == 0: nothing happens.
        c = [7, 7, 7, 7];
        gemm(false, false, 0, 2, 3, 1f, [], 3, b, 2, 0f, c, 2);
        gemm(false, false, 2, 0, 3, 1f, a, 3, [], 1, 0f, c, 1);
        Assert.Equal([7f, 7f, 7f, 7f], c);

        // alpha == 0: A and B are not read (NaN there does not leak); C = beta·C.
        float[] nanA = [float.NaN, float.NaN, float.NaN, float.NaN, float.NaN, float.NaN];
        c = [1, 2, 3, 4];
        gemm(false, false, 2, 2, 3, 0f, nanA, 3, b, 2, -1f, c, 2);
        Assert.Equal([-1f, -2f, -3f, -4f], c);
    }

    [Theory]
    [MemberData(nameof(Backends))]
    public void Bad_arguments_throw_naming_the_argument_and_sizes(string name)
    {
        SgemmFn? gemm = Backend(name);
        if (gemm == null) Assert.Skip(MachineTools.NoOpenBlas);
        float[] a = new float[12], b = new float[12], c = new float[12];

        var e = Assert.Throws<ArgumentOutOfRangeException>(() => gemm(false, false, -1, 3, 4, 1f, a, 4, b, 3, 0f, c, 3));
        Assert.Equal("m", e.ParamName);
        Assert.Contains("-1", e.Message, StringComparison.Ordinal);
        Assert.Throws<ArgumentOutOfRangeException>(() => gemm(false, false, 3, -2, 4, 1f, a, 4, b, 3, 0f, c, 3));
        Assert.Throws<ArgumentOutOfRangeException>(() => gemm(false, false, 3, 3, -4, 1f, a, 4, b, 3, 0f, c, 3));

        // A is 3×4 stored; lda = 3 is too small.
        var lda = Assert.Throws<ArgumentException>(() => gemm(false, false, 3, 3, 4, 1f, a, 3, b, 3, 0f, c, 3));
        Assert.Equal("lda", lda.ParamName);
        Assert.Contains("lda = 3", lda.Message, StringComparison.Ordinal);
        Assert.Contains("4 columns", lda.Message, StringComparison.Ordinal);
        // transA: stored A is 4×3, so lda = 3 is fine but 2 is not.
        gemm(true, false, 3, 3, 4, 1f, a, 3, b, 3, 0f, c, 3);
        Assert.Equal("lda", Assert.Throws<ArgumentException>(() => gemm(true, false, 3, 3, 4, 1f, a, 2, b, 3, 0f, c, 3)).ParamName);
        Assert.Equal("ldb", Assert.Throws<ArgumentException>(() => gemm(false, true, 3, 3, 4, 1f, a, 4, b, 3, 0f, c, 3)).ParamName);
        Assert.Equal("ldc", Assert.Throws<ArgumentException>(() => gemm(false, false, 3, 3, 4, 1f, a, 4, b, 3, 0f, c, 2)).ParamName);

        // Spans too short.
        var sa = Assert.Throws<ArgumentException>(() => gemm(false, false, 3, 3, 4, 1f, a.AsSpan(0, 11), 4, b, 3, 0f, c, 3));
        Assert.Equal("a", sa.ParamName);
        Assert.Contains("11", sa.Message, StringComparison.Ordinal);
        Assert.Contains("12", sa.Message, StringComparison.Ordinal);
        Assert.Equal("b", Assert.Throws<ArgumentException>(() => gemm(false, false, 3, 3, 4, 1f, a, 4, b.AsSpan(0, 11), 3, 0f, c, 3)).ParamName);
        // C with ldc = 4: (3-1)·4 + 3 = 11 needed; 10 given.
        var sc = Assert.Throws<ArgumentException>(() => gemm(false, false, 3, 3, 4, 1f, a, 4, b, 3, 0f, c.AsSpan(0, 10), 4));
        Assert.Equal("c", sc.ParamName);
        // Exactly enough is fine.
        gemm(false, false, 3, 3, 4, 1f, a, 4, b, 3, 0f, c.AsSpan(0, 11), 4);
    }

    [Fact]
    public void Backends_agree_on_a_larger_product()
    {
        OpenBlasGemm? openBlas = Blas.OpenBlas;
        if (openBlas == null) Assert.Skip(MachineTools.NoOpenBlas);
        const int m = 130, n = 97, k = 300;
        var rng = new Random(3);
        float[] a = Filled(rng, k, m, m, 0), b = Filled(rng, k, n, n, 0);
        float[] c1 = new float[m * n], c2 = new float[m * n];
        Blas.Managed.Sgemm(true, false, m, n, k, 1f, a, m, b, n, 0f, c1, n);
        openBlas.Sgemm(true, false, m, n, k, 1f, a, m, b, n, 0f, c2, n);
        for (int i = 0; i < c1.Length; i++)
            Assert.True(Math.Abs(c1[i] - c2[i]) <= 1e-4f * (1 + Math.Abs(c2[i])), $"element {i}: managed {c1[i]} vs openblas {c2[i]}");
    }

    [Fact]
    public void Managed_is_safe_to_call_from_many_threads_at_once()
    {
        // Packing buffers are per thread; concurrent (and nested-parallel) calls must not share them.
        SgemmFn gemm = Kernel(GemmKernel.Auto, 2);
        Parallel.For(0, 8, new ParallelOptions { MaxDegreeOfParallelism = 4 }, w =>
        {
            var rng = new Random(50 + w);
            for (int rep = 0; rep < 3; rep++)
                CheckOne(gemm, rng, w % 2 == 1, w % 3 == 1, 20 + 7 * w, 33 + w, 40 + 5 * rep, 1f, 0f, 1, $"worker {w} rep {rep}");
        });
    }

    [Fact]
    public void Managed_single_threaded_steady_state_does_not_allocate()
    {
        const int n = 48;
        float[] a = new float[n * n], b = new float[n * n], c = new float[n * n];
        a.AsSpan().Fill(1f);
        b.AsSpan().Fill(2f);
        void Call() => ManagedGemm.Sgemm(false, true, n, n, n, 1f, a, n, b, n, 0f, c, n, GemmKernel.Auto, threads: 1);
        for (int i = 0; i < 200; i++) Call();
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 10; i++) Call();
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.Equal(2f * n, c[0]);
        Assert.True(allocated == 0, $"allocated {allocated} bytes in 10 steady-state calls");
    }

    // --- Backend selection (pure function of the env value and a probe; no env mutation) ---

    private static readonly string[] TriedPaths = ["/custom/libopenblas.so (not loadable)", "libopenblas.so.0 (not loadable)"];

    private static (bool, IReadOnlyList<string>) Found() => (true, ["x (loaded)"]);

    private static (bool, IReadOnlyList<string>) Missing() => (false, TriedPaths);

    private static (bool, IReadOnlyList<string>) MustNotProbe() => throw new InvalidOperationException("probed");

    [Fact]
    public void Select_unset_prefers_openblas_and_falls_back_with_one_notice()
    {
        Assert.Equal(BlasBackend.OpenBlas, Blas.Select(null, Found, out string? notice));
        Assert.Null(notice);
        Assert.Equal(BlasBackend.Managed, Blas.Select("  ", Missing, out notice));
        Assert.NotNull(notice);
        Assert.DoesNotContain('\n', notice);
        Assert.StartsWith("lnlab: OpenBLAS not found", notice, StringComparison.Ordinal);
        foreach (string p in TriedPaths) Assert.Contains(p, notice, StringComparison.Ordinal);
    }

    [Fact]
    public void Select_forced_values()
    {
        Assert.Equal(BlasBackend.Managed, Blas.Select("managed", MustNotProbe, out string? notice));
        Assert.Null(notice);
        Assert.Equal(BlasBackend.Managed, Blas.Select("MANAGED", MustNotProbe, out _));
        Assert.Equal(BlasBackend.OpenBlas, Blas.Select("openblas", Found, out notice));
        Assert.Null(notice);

        var e = Assert.Throws<InputException>(() => Blas.Select("openblas", Missing, out _));
        Assert.Contains("LNLAB_BLAS=openblas", e.Message, StringComparison.Ordinal);
        foreach (string p in TriedPaths) Assert.Contains(p, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Select_bad_value_names_the_variable_and_the_allowed_values()
    {
        // An environment variable, not a config key: an input error that names the variable.
        var e = Assert.Throws<InputException>(() => Blas.Select("cuda", MustNotProbe, out _));
        Assert.IsNotType<ConfigException>(e);
        Assert.Contains("LNLAB_BLAS", e.Message, StringComparison.Ordinal);
        Assert.Contains("'cuda'", e.Message, StringComparison.Ordinal);
        Assert.Contains("managed", e.Message, StringComparison.Ordinal);
        Assert.Contains("openblas", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void OpenBlas_paths_are_tried_in_order_and_reported()
    {
        Assert.Equal(
            ["/opt/x/libopenblas.so", OpenBlasLibrary.DebianPthreadPath, "libopenblas.so.0", "libopenblas.so"],
            OpenBlasLibrary.CandidatePaths("/opt/x/libopenblas.so"));
        Assert.Equal(3, OpenBlasLibrary.CandidatePaths(null).Count);

        var tried = new List<string>();
        Assert.Null(OpenBlasLibrary.TryLoad(["/nonexistent/libopenblas.so", "/nonexistent/other.so"], tried));
        Assert.Equal(["/nonexistent/libopenblas.so (not loadable)", "/nonexistent/other.so (not loadable)"], tried);
    }

    [Fact]
    public void Openblas_runs_single_threaded_whatever_the_thread_setting_and_zero_is_rejected()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => Blas.Threads = 0);
        OpenBlasGemm? openBlas = Blas.OpenBlas;
        if (openBlas == null) Assert.Skip(MachineTools.NoOpenBlas);
        int saved = Blas.Threads;
        try
        {
            foreach (int threads in new[] { 1, 3 })
            {
                Blas.Threads = threads;
                Assert.Equal(1, GetOpenBlasThreads(openBlas));
            }
        }
        finally
        {
            Blas.Threads = saved;
        }
    }

    /// <summary>
    /// Products large enough to be split into OpenBLAS calls of <see cref="OpenBlasGemm.BlockSize"/>
    /// rows or columns, over every transpose and with padding: right against the double loop at 2
    /// threads, and the same bits at 1, 2 and 3 threads (the blocks do not depend on the thread count).
    /// </summary>
    [Fact]
    public void Openblas_split_products_match_the_double_loop_and_do_not_depend_on_the_thread_count()
    {
        OpenBlasGemm? openBlas = Blas.OpenBlas;
        if (openBlas == null) Assert.Skip(MachineTools.NoOpenBlas);
        int saved = Blas.Threads;
        long savedMinWork = ParallelRange.MinWork;
        try
        {
            ParallelRange.MinWork = 0;
            // Split by columns (n ≥ m, a ragged last block) and by rows (m > n).
            foreach (var (m, n, k) in new[] { (40, 300, 37), (333, 129, 20) })
            foreach (bool transA in new[] { false, true })
            foreach (bool transB in new[] { false, true })
            {
                Assert.True((long)m * n * k >= OpenBlasGemm.SplitMinWork);
                Blas.Threads = 2;
                CheckOne(openBlas.Sgemm, new Random(m + n), transA, transB, m, n, k, 0.5f, 1.25f, 2, $"split m={m} n={n} k={k} tA={transA} tB={transB}");
                float[]? first = null;
                foreach (int threads in new[] { 1, 2, 3 })
                {
                    Blas.Threads = threads;
                    var rng = new Random(7);
                    float[] a = Filled(rng, transA ? k : m, transA ? m : k, transA ? m : k, 0f);
                    float[] b = Filled(rng, transB ? n : k, transB ? k : n, transB ? k : n, 0f);
                    var c = new float[m * n];
                    openBlas.Sgemm(transA, transB, m, n, k, 1f, a, transA ? m : k, b, transB ? k : n, 0f, c, n);
                    if (first == null)
                        first = c;
                    else
                        Assert.True(first.AsSpan().SequenceEqual(c), $"m={m} n={n} k={k} tA={transA} tB={transB}: {threads} threads changed the bits");
                }
            }
        }
        finally
        {
            Blas.Threads = saved;
            ParallelRange.MinWork = savedMinWork;
        }
    }

    private static unsafe int GetOpenBlasThreads(OpenBlasGemm gemm) => gemm.Library.GetNumThreads();

    [Fact]
    public void Default_entry_point_uses_the_selected_backend()
    {
        // The test process does not set LNLAB_BLAS; with OpenBLAS installed it must be chosen.
        string? env = Environment.GetEnvironmentVariable(Blas.BackendEnvVar);
        if (string.IsNullOrWhiteSpace(env))
            Assert.Equal(Blas.OpenBlas != null ? BlasBackend.OpenBlas : BlasBackend.Managed, Blas.Backend);
        float[] a = [1, 2, 3, 4], b = [5, 6, 7, 8], c = new float[4];
        Blas.Sgemm(false, false, 2, 2, 2, 1f, a, 2, b, 2, 0f, c, 2);
        Assert.Equal([19f, 22f, 43f, 50f], c);
    }
}
