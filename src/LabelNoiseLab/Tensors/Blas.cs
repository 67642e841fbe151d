namespace LabelNoiseLab.Tensors;

/// <summary>
/// Matrix products for the whole engine. PLACEHOLDER: a naive loop until the OpenBLAS and
/// managed SIMD backends land (see issue 2); the signature is the contract.
/// C = alpha * op(A) * op(B) + beta * C, row-major; op(A) is m×k, op(B) is k×n, C is m×n.
/// </summary>
public static class Blas
{
    public static void Sgemm(bool transA, bool transB, int m, int n, int k,
        float alpha, ReadOnlySpan<float> a, int lda, ReadOnlySpan<float> b, int ldb,
        float beta, Span<float> c, int ldc)
    {
        for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++)
        {
            double s = 0;
            for (int p = 0; p < k; p++)
                s += a[transA ? p * lda + i : i * lda + p] * b[transB ? j * ldb + p : p * ldb + j];
            c[i * ldc + j] = (float)(alpha * s + (beta == 0 ? 0 : beta * c[i * ldc + j]));
        }
    }
}
