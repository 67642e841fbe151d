using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace LabelNoiseLab.Tensors;

/// <summary>Which register-blocked micro-kernel the managed GEMM uses.</summary>
internal enum GemmKernel
{
    /// <summary>The widest the hardware accelerates.</summary>
    Auto,

    /// <summary>8×32 tile, 16 Vector512 accumulators.</summary>
    V512,

    /// <summary>6×16 tile, 12 Vector256 accumulators.</summary>
    V256,

    /// <summary>4×4 tile, plain scalar code (for hardware without SIMD, and as a reference).</summary>
    Scalar,
}

/// <summary>
/// A micro-kernel and its blocking. The kernel multiplies a packed MR×kc sliver of A (for each
/// p, MR consecutive values) by a packed kc×NR sliver of B (for each p, NR consecutive values)
/// and writes the MR×NR tile of C: C = acc + beta·C (beta == 0: C = acc, old C ignored).
/// </summary>
internal sealed unsafe class GemmKernelInfo
{
    public required GemmKernel Kind { get; init; }
    public required int MR { get; init; }
    public required int NR { get; init; }

    /// <summary>Depth of a packed panel: a kc×NR sliver of B stays in L1 across the A slivers.</summary>
    public required int KC { get; init; }

    /// <summary>Largest row block of A packed at once (MC×KC stays in L2).</summary>
    public required int MC { get; init; }

    /// <summary>Largest column block of B packed at once (KC×NC, shared by the threads).</summary>
    public required int NC { get; init; }

    /// <summary>(kc, packedA, packedB, c, ldc, beta).</summary>
    public required delegate*<int, float*, float*, float*, nint, float, void> Tile { get; init; }

    public static readonly GemmKernelInfo V512 = new()
    {
        Kind = GemmKernel.V512, MR = 8, NR = 32, KC = 256, MC = 128, NC = 4096,
        Tile = &GemmKernels.Tile8x32,
    };

    public static readonly GemmKernelInfo V256 = new()
    {
        Kind = GemmKernel.V256, MR = 6, NR = 16, KC = 256, MC = 120, NC = 4096,
        Tile = &GemmKernels.Tile6x16,
    };

    public static readonly GemmKernelInfo Scalar = new()
    {
        Kind = GemmKernel.Scalar, MR = 4, NR = 4, KC = 256, MC = 64, NC = 4096,
        Tile = &GemmKernels.Tile4x4,
    };

    public static GemmKernelInfo For(GemmKernel kind) => kind switch
    {
        GemmKernel.Auto => Vector512.IsHardwareAccelerated ? V512
            : Vector256.IsHardwareAccelerated ? V256 : Scalar,
        GemmKernel.V512 => V512,
        GemmKernel.V256 => V256,
        GemmKernel.Scalar => Scalar,
        _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, "unknown GEMM kernel"),
    };
}

/// <summary>The register-blocked micro-kernels. Accumulators are locals so the JIT keeps them in registers.</summary>
internal static unsafe class GemmKernels
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Fma512(Vector512<float> a, Vector512<float> b, Vector512<float> c)
        => Vector512.FusedMultiplyAdd(a, b, c);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> Fma256(Vector256<float> a, Vector256<float> b, Vector256<float> c)
        => Fma.IsSupported ? Fma.MultiplyAdd(a, b, c) : a * b + c;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Store512(float* c, float beta, Vector512<float> acc)
    {
        if (beta != 0f) acc = Fma512(Vector512.Create(beta), Vector512.Load(c), acc);
        Vector512.Store(acc, c);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Store256(float* c, float beta, Vector256<float> acc)
    {
        if (beta != 0f) acc = Fma256(Vector256.Create(beta), Vector256.Load(c), acc);
        Vector256.Store(acc, c);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Tile8x32(int kc, float* a, float* b, float* c, nint ldc, float beta)
    {
        Vector512<float> c00 = default, c01 = default, c10 = default, c11 = default;
        Vector512<float> c20 = default, c21 = default, c30 = default, c31 = default;
        Vector512<float> c40 = default, c41 = default, c50 = default, c51 = default;
        Vector512<float> c60 = default, c61 = default, c70 = default, c71 = default;
        for (int p = 0; p < kc; p++)
        {
            Vector512<float> b0 = Vector512.Load(b), b1 = Vector512.Load(b + 16);
            Vector512<float> av = Vector512.Create(a[0]);
            c00 = Fma512(av, b0, c00); c01 = Fma512(av, b1, c01);
            av = Vector512.Create(a[1]);
            c10 = Fma512(av, b0, c10); c11 = Fma512(av, b1, c11);
            av = Vector512.Create(a[2]);
            c20 = Fma512(av, b0, c20); c21 = Fma512(av, b1, c21);
            av = Vector512.Create(a[3]);
            c30 = Fma512(av, b0, c30); c31 = Fma512(av, b1, c31);
            av = Vector512.Create(a[4]);
            c40 = Fma512(av, b0, c40); c41 = Fma512(av, b1, c41);
            av = Vector512.Create(a[5]);
            c50 = Fma512(av, b0, c50); c51 = Fma512(av, b1, c51);
            av = Vector512.Create(a[6]);
            c60 = Fma512(av, b0, c60); c61 = Fma512(av, b1, c61);
            av = Vector512.Create(a[7]);
            c70 = Fma512(av, b0, c70); c71 = Fma512(av, b1, c71);
            a += 8;
            b += 32;
        }
        Store512(c, beta, c00); Store512(c + 16, beta, c01); c += ldc;
        Store512(c, beta, c10); Store512(c + 16, beta, c11); c += ldc;
        Store512(c, beta, c20); Store512(c + 16, beta, c21); c += ldc;
        Store512(c, beta, c30); Store512(c + 16, beta, c31); c += ldc;
        Store512(c, beta, c40); Store512(c + 16, beta, c41); c += ldc;
        Store512(c, beta, c50); Store512(c + 16, beta, c51); c += ldc;
        Store512(c, beta, c60); Store512(c + 16, beta, c61); c += ldc;
        Store512(c, beta, c70); Store512(c + 16, beta, c71);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Tile6x16(int kc, float* a, float* b, float* c, nint ldc, float beta)
    {
        Vector256<float> c00 = default, c01 = default, c10 = default, c11 = default;
        Vector256<float> c20 = default, c21 = default, c30 = default, c31 = default;
        Vector256<float> c40 = default, c41 = default, c50 = default, c51 = default;
        for (int p = 0; p < kc; p++)
        {
            Vector256<float> b0 = Vector256.Load(b), b1 = Vector256.Load(b + 8);
            Vector256<float> av = Vector256.Create(a[0]);
            c00 = Fma256(av, b0, c00); c01 = Fma256(av, b1, c01);
            av = Vector256.Create(a[1]);
            c10 = Fma256(av, b0, c10); c11 = Fma256(av, b1, c11);
            av = Vector256.Create(a[2]);
            c20 = Fma256(av, b0, c20); c21 = Fma256(av, b1, c21);
            av = Vector256.Create(a[3]);
            c30 = Fma256(av, b0, c30); c31 = Fma256(av, b1, c31);
            av = Vector256.Create(a[4]);
            c40 = Fma256(av, b0, c40); c41 = Fma256(av, b1, c41);
            av = Vector256.Create(a[5]);
            c50 = Fma256(av, b0, c50); c51 = Fma256(av, b1, c51);
            a += 6;
            b += 16;
        }
        Store256(c, beta, c00); Store256(c + 8, beta, c01); c += ldc;
        Store256(c, beta, c10); Store256(c + 8, beta, c11); c += ldc;
        Store256(c, beta, c20); Store256(c + 8, beta, c21); c += ldc;
        Store256(c, beta, c30); Store256(c + 8, beta, c31); c += ldc;
        Store256(c, beta, c40); Store256(c + 8, beta, c41); c += ldc;
        Store256(c, beta, c50); Store256(c + 8, beta, c51);
    }

    public static void Tile4x4(int kc, float* a, float* b, float* c, nint ldc, float beta)
    {
        float* acc = stackalloc float[16];
        new Span<float>(acc, 16).Clear();
        for (int p = 0; p < kc; p++)
        {
            for (int i = 0; i < 4; i++)
            {
                float ai = a[i];
                for (int j = 0; j < 4; j++) acc[i * 4 + j] = MathF.FusedMultiplyAdd(ai, b[j], acc[i * 4 + j]);
            }
            a += 4;
            b += 4;
        }
        for (int i = 0; i < 4; i++)
        for (int j = 0; j < 4; j++)
            c[i * ldc + j] = beta == 0f ? acc[i * 4 + j] : MathF.FusedMultiplyAdd(beta, c[i * ldc + j], acc[i * 4 + j]);
    }
}
