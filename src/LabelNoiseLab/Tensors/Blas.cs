namespace LabelNoiseLab.Tensors;

/// <summary>
/// Matrix products for the whole engine. C = alpha·op(A)·op(B) + beta·C, row-major; op(A) is
/// m×k, op(B) is k×n, C is m×n; when beta == 0, C's old contents are ignored (even NaN).
/// <para>
/// Backend: OpenBLAS when it loads (see <see cref="OpenBlasLibrary.CandidatePaths"/>; env
/// <c>LNLAB_OPENBLAS</c> names a file to try first), else the managed GEMM with one notice on
/// stderr. Env <c>LNLAB_BLAS=managed|openblas</c> forces one. Tests and benchmarks call a
/// backend explicitly through the internal <see cref="Managed"/> and <see cref="OpenBlas"/>.
/// </para>
/// </summary>
public static class Blas
{
    /// <summary>Environment variable forcing the GEMM backend: <c>managed</c> or <c>openblas</c>.</summary>
    internal const string BackendEnvVar = "LNLAB_BLAS";
    /// <summary>Environment variable naming an OpenBLAS library file to try first.</summary>
    internal const string OpenBlasPathEnvVar = "LNLAB_OPENBLAS";

    private static readonly Lazy<OpenBlasProbe> s_openBlas = new(LoadOpenBlas);
    private static readonly Lazy<IGemmBackend> s_selected = new(SelectFromEnvironment);
    private static int s_threads = Environment.ProcessorCount;

    /// <summary>Sgemm on the selected backend (<see cref="Selected"/>).</summary>
    public static void Sgemm(bool transA, bool transB, int m, int n, int k,
        float alpha, ReadOnlySpan<float> a, int lda, ReadOnlySpan<float> b, int ldb,
        float beta, Span<float> c, int ldc)
        => Selected.Sgemm(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);

    /// <summary>The backend every <see cref="Sgemm"/> call uses (chosen once, on first use).</summary>
    internal static IGemmBackend Selected => Override ?? s_selected.Value;

    /// <summary>
    /// When set, the backend <see cref="Sgemm"/> uses instead of the selected one (the benchmarks
    /// wrap the selected backend to record the calls of one training step). Null by default.
    /// </summary>
    internal static IGemmBackend? Override { get; set; }

    /// <summary>Which backend <see cref="Sgemm"/> uses.</summary>
    public static BlasBackend Backend => Selected.Kind;

    /// <summary>The managed GEMM; always available.</summary>
    internal static ManagedGemm Managed => ManagedGemm.Instance;

    /// <summary>OpenBLAS's GEMM, or null when no OpenBLAS could be loaded.</summary>
    internal static OpenBlasGemm? OpenBlas => s_openBlas.Value.Gemm;

    /// <summary>Each path tried for OpenBLAS and what happened (for messages and diagnostics).</summary>
    public static IReadOnlyList<string> OpenBlasPathsTried => s_openBlas.Value.Tried;

    /// <summary>
    /// Threads for matrix products and the engine's parallel kernels (<see cref="ParallelRange"/>):
    /// the managed GEMM's parallelism, and the threads OpenBLAS products are split over (OpenBLAS
    /// itself runs single-threaded, see <see cref="OpenBlasGemm"/>). Default <see cref="Environment.ProcessorCount"/>.
    /// </summary>
    public static int Threads
    {
        get => Volatile.Read(ref s_threads);
        set
        {
            ArgumentOutOfRangeException.ThrowIfLessThan(value, 1, nameof(Threads));
            Volatile.Write(ref s_threads, value);
        }
    }

    /// <summary>
    /// The backend for a value of <c>LNLAB_BLAS</c>: null or blank → OpenBLAS if
    /// <paramref name="probe"/> finds it, else managed with a one-line <paramref name="notice"/>;
    /// "managed" / "openblas" (any case) force one. Throws an <see cref="InputException"/> for
    /// any other value, or for "openblas" when it cannot be loaded (naming every path tried).
    /// <paramref name="probe"/> is only called when OpenBLAS may be used.
    /// </summary>
    internal static BlasBackend Select(string? env, Func<(bool Loaded, IReadOnlyList<string> Tried)> probe, out string? notice)
    {
        notice = null;
        string value = env?.Trim() ?? "";
        if (value.Length == 0)
        {
            var (loaded, tried) = probe();
            if (loaded) return BlasBackend.OpenBlas;
            notice = $"lnlab: OpenBLAS not found (tried {string.Join(", ", tried)}); using the managed GEMM (slower)";
            return BlasBackend.Managed;
        }
        if (value.Equals("managed", StringComparison.OrdinalIgnoreCase)) return BlasBackend.Managed;
        if (value.Equals("openblas", StringComparison.OrdinalIgnoreCase))
        {
            var (loaded, tried) = probe();
            if (loaded) return BlasBackend.OpenBlas;
            throw new InputException(
                $"{BackendEnvVar}=openblas but OpenBLAS could not be loaded; tried {string.Join(", ", tried)} (set {OpenBlasPathEnvVar} to the library file, or install libopenblas0-pthread)");
        }
        throw new InputException(
            $"{BackendEnvVar}='{env}' is not a BLAS backend; expected 'managed' or 'openblas' (or unset for automatic choice)");
    }

    private static IGemmBackend SelectFromEnvironment()
    {
        BlasBackend kind = Select(Environment.GetEnvironmentVariable(BackendEnvVar),
            () => (s_openBlas.Value.Gemm != null, s_openBlas.Value.Tried), out string? notice);
        if (notice != null) Console.Error.WriteLine(notice);
        return kind == BlasBackend.OpenBlas ? s_openBlas.Value.Gemm! : ManagedGemm.Instance;
    }

    private sealed record OpenBlasProbe(OpenBlasGemm? Gemm, IReadOnlyList<string> Tried);

    private static OpenBlasProbe LoadOpenBlas()
    {
        var tried = new List<string>();
        OpenBlasLibrary? lib = OpenBlasLibrary.TryLoad(
            OpenBlasLibrary.CandidatePaths(Environment.GetEnvironmentVariable(OpenBlasPathEnvVar)), tried);
        OpenBlasGemm? gemm = lib == null ? null : new OpenBlasGemm(lib);
        // One OpenBLAS thread: the engine splits products over its own threads (OpenBlasGemm), so
        // no OpenBLAS worker spins between calls while the other kernels want the cores.
        if (gemm != null) SetSingleThreaded(gemm);
        return new OpenBlasProbe(gemm, tried);
    }

    private static unsafe void SetSingleThreaded(OpenBlasGemm gemm) => gemm.Library.SetNumThreads(1);
}
