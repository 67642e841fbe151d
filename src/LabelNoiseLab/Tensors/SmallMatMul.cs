using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace LabelNoiseLab.Tensors;

/// <summary>
/// C (+)= A·B for the small strided matrices of attention heads (T×T scores, T×D/H heads),
/// where a BLAS call costs more than the product: each row of C is built sixteen or eight
/// columns at a time in registers, adding A[i, k]·B[k, ·] over k, then stored once.
/// </summary>
internal static class SmallMatMul
{
    /// <summary>
    /// C (+)= A·B with A m×k (row stride <paramref name="lda"/>), B k×n (row stride
    /// <paramref name="ldb"/>), C m×n (row stride <paramref name="ldc"/>); C is overwritten
    /// unless <paramref name="accumulate"/>. Throws an <see cref="ArgumentException"/> when a span
    /// is too short for its shape and stride.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Multiply(ReadOnlySpan<float> a, int lda, ReadOnlySpan<float> b, int ldb, Span<float> c, int ldc,
        int m, int n, int k, bool accumulate)
    {
        if (m <= 0 || n <= 0)
            return;
        if (k < 0 || a.Length < (m - 1) * lda + k || b.Length < (k == 0 ? 0 : (k - 1) * ldb + n) || c.Length < (m - 1) * ldc + n
            || lda < k || ldb < n || ldc < n)
            throw new ArgumentException($"small matmul: spans of {a.Length}, {b.Length}, {c.Length} do not hold {m}×{k} (stride {lda}) · {k}×{n} (stride {ldb}) → stride {ldc}");
        ref float a0 = ref MemoryMarshal.GetReference(a);
        ref float b0 = ref MemoryMarshal.GetReference(b);
        ref float c0 = ref MemoryMarshal.GetReference(c);
        const int W = 8;
        for (int i = 0; i < m; i++)
        {
            ref float ai = ref Unsafe.Add(ref a0, i * lda);
            ref float ci = ref Unsafe.Add(ref c0, i * ldc);
            int col = 0;
            if (Vector256.IsHardwareAccelerated)
            {
                for (; col <= n - 2 * W; col += 2 * W)
                {
                    var acc0 = accumulate ? Vector256.LoadUnsafe(ref ci, (nuint)col) : Vector256<float>.Zero;
                    var acc1 = accumulate ? Vector256.LoadUnsafe(ref ci, (nuint)(col + W)) : Vector256<float>.Zero;
                    for (int kk = 0; kk < k; kk++)
                    {
                        var s = Vector256.Create(Unsafe.Add(ref ai, kk));
                        ref float bk = ref Unsafe.Add(ref b0, kk * ldb + col);
                        acc0 = Vector256.FusedMultiplyAdd(s, Vector256.LoadUnsafe(ref bk), acc0);
                        acc1 = Vector256.FusedMultiplyAdd(s, Vector256.LoadUnsafe(ref bk, W), acc1);
                    }
                    acc0.StoreUnsafe(ref ci, (nuint)col);
                    acc1.StoreUnsafe(ref ci, (nuint)(col + W));
                }
                for (; col <= n - W; col += W)
                {
                    var acc = accumulate ? Vector256.LoadUnsafe(ref ci, (nuint)col) : Vector256<float>.Zero;
                    for (int kk = 0; kk < k; kk++)
                        acc = Vector256.FusedMultiplyAdd(Vector256.Create(Unsafe.Add(ref ai, kk)), Vector256.LoadUnsafe(ref b0, (nuint)(kk * ldb + col)), acc);
                    acc.StoreUnsafe(ref ci, (nuint)col);
                }
            }
            for (; col < n; col++)
            {
                float sum = accumulate ? Unsafe.Add(ref ci, col) : 0f;
                for (int kk = 0; kk < k; kk++)
                    sum += Unsafe.Add(ref ai, kk) * Unsafe.Add(ref b0, kk * ldb + col);
                Unsafe.Add(ref ci, col) = sum;
            }
        }
    }

    /// <summary>dst [cols, rows] (row stride <paramref name="ldd"/>) = srcᵀ for src [rows, cols] (row stride <paramref name="lds"/>).</summary>
    public static void Transpose(ReadOnlySpan<float> src, int lds, Span<float> dst, int ldd, int rows, int cols)
    {
        for (int r = 0; r < rows; r++)
        {
            var row = src.Slice(r * lds, cols);
            for (int c = 0; c < cols; c++)
                dst[c * ldd + r] = row[c];
        }
    }
}
