using System.Runtime.InteropServices;

namespace LabelNoiseLab.Tensors;

/// <summary>
/// OpenBLAS, loaded at run time with <see cref="NativeLibrary"/>; exports bound to unmanaged
/// function pointers. Nothing here checks arguments: callers (<see cref="OpenBlasGemm"/>,
/// <see cref="OpenBlasLapack"/>) validate first.
/// </summary>
internal sealed unsafe class OpenBlasLibrary
{
    /// <summary>The Debian <c>libopenblas0-pthread</c> location.</summary>
    public const string DebianPthreadPath = "/usr/lib/x86_64-linux-gnu/openblas-pthread/libopenblas.so.0";

    // CBLAS enum values (cblas.h).
    public const int CblasRowMajor = 101, CblasNoTrans = 111, CblasTrans = 112;

    private OpenBlasLibrary(string path, nint handle) { Path = path; Handle = handle; }

    /// <summary>The path that loaded.</summary>
    public string Path { get; }

    public nint Handle { get; }

    /// <summary>cblas_sgemm(order, transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc).</summary>
    public delegate* unmanaged<int, int, int, int, int, int, float, float*, int, float*, int, float, float*, int, void> Sgemm { get; private set; }

    public delegate* unmanaged<int, void> SetNumThreads { get; private set; }

    public delegate* unmanaged<int> GetNumThreads { get; private set; }

    /// <summary>Optional (null if absent): the kernel family OpenBLAS picked for this CPU.</summary>
    public delegate* unmanaged<byte*> GetCorename { get; private set; }

    /// <summary><c>openblas_get_config</c>: version and build options (null when the library lacks it).</summary>
    public delegate* unmanaged<byte*> GetConfig { get; private set; }

    /// <summary>
    /// ssyevd_(jobz, uplo, n, a, lda, w, work, lwork, iwork, liwork, info, len(jobz), len(uplo)):
    /// Fortran ABI, everything by pointer, hidden string lengths last (gfortran passes size_t).
    /// Null when the library has no LAPACK.
    /// </summary>
    public delegate* unmanaged<byte*, byte*, int*, float*, int*, float*, float*, int*, int*, int*, int*, nuint, nuint, void> Ssyevd { get; private set; }

    /// <summary>
    /// sgesdd_(jobz, m, n, a, lda, s, u, ldu, vt, ldvt, work, lwork, iwork, info, len(jobz)).
    /// Null when the library has no LAPACK.
    /// </summary>
    public delegate* unmanaged<byte*, int*, int*, float*, int*, float*, float*, int*, float*, int*, float*, int*, int*, int*, nuint, void> Sgesdd { get; private set; }

    public bool HasLapack => Ssyevd != null && Sgesdd != null;

    /// <summary>dstev_(jobz, n, d, e, z, ldz, work, info, len(jobz)), double precision; null when absent.</summary>
    public delegate* unmanaged<byte*, int*, double*, double*, double*, int*, double*, int*, nuint, void> Dstev { get; private set; }

    /// <summary>OpenBLAS's name for the kernels it chose (e.g. "Haswell", "SkylakeX"), or "unknown".</summary>
    public string Corename => GetCorename == null ? "unknown" : Marshal.PtrToStringUTF8((nint)GetCorename()) ?? "unknown";

    /// <summary>The library's own version and build line (<c>OpenBLAS 0.3.21 NO_AFFINITY ...</c>), or "unknown".</summary>
    public string Config => GetConfig == null ? "unknown" : Marshal.PtrToStringUTF8((nint)GetConfig())?.Trim() ?? "unknown";

    /// <summary>The paths tried, in order: <c>LNLAB_OPENBLAS</c> if set, the Debian path, then the loader's search.</summary>
    public static IReadOnlyList<string> CandidatePaths(string? envPath)
    {
        var paths = new List<string>(4);
        if (!string.IsNullOrWhiteSpace(envPath)) paths.Add(envPath.Trim());
        paths.Add(DebianPthreadPath);
        paths.Add("libopenblas.so.0");
        paths.Add("libopenblas.so");
        return paths;
    }

    /// <summary>
    /// Tries each path in order; returns the first that loads and exports the GEMM entry points.
    /// <paramref name="tried"/> gets one entry per path: the path and why it was not used.
    /// </summary>
    public static OpenBlasLibrary? TryLoad(IReadOnlyList<string> paths, List<string> tried)
    {
        foreach (string path in paths)
        {
            if (!NativeLibrary.TryLoad(path, out nint handle))
            {
                tried.Add($"{path} (not loadable)");
                continue;
            }
            var lib = new OpenBlasLibrary(path, handle);
            if (!NativeLibrary.TryGetExport(handle, "cblas_sgemm", out nint sgemm)
                || !NativeLibrary.TryGetExport(handle, "openblas_set_num_threads", out nint setThreads)
                || !NativeLibrary.TryGetExport(handle, "openblas_get_num_threads", out nint getThreads))
            {
                tried.Add($"{path} (loaded, but no cblas_sgemm/openblas_set_num_threads/openblas_get_num_threads)");
                NativeLibrary.Free(handle);
                continue;
            }
            lib.Sgemm = (delegate* unmanaged<int, int, int, int, int, int, float, float*, int, float*, int, float, float*, int, void>)sgemm;
            lib.SetNumThreads = (delegate* unmanaged<int, void>)setThreads;
            lib.GetNumThreads = (delegate* unmanaged<int>)getThreads;
            if (NativeLibrary.TryGetExport(handle, "openblas_get_corename", out nint corename))
                lib.GetCorename = (delegate* unmanaged<byte*>)corename;
            if (NativeLibrary.TryGetExport(handle, "openblas_get_config", out nint config))
                lib.GetConfig = (delegate* unmanaged<byte*>)config;
            if (NativeLibrary.TryGetExport(handle, "ssyevd_", out nint syevd)
                && NativeLibrary.TryGetExport(handle, "sgesdd_", out nint gesdd))
            {
                lib.Ssyevd = (delegate* unmanaged<byte*, byte*, int*, float*, int*, float*, float*, int*, int*, int*, int*, nuint, nuint, void>)syevd;
                lib.Sgesdd = (delegate* unmanaged<byte*, int*, int*, float*, int*, float*, float*, int*, float*, int*, float*, int*, int*, int*, nuint, void>)gesdd;
            }
            if (NativeLibrary.TryGetExport(handle, "dstev_", out nint stev))
                lib.Dstev = (delegate* unmanaged<byte*, int*, double*, double*, double*, int*, double*, int*, nuint, void>)stev;
            tried.Add($"{path} (loaded)");
            return lib;
        }
        return null;
    }
}
