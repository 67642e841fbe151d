using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace LabelNoiseLab.Tensors;

/// <summary>
/// Element functions on eight float lanes, inlined into the kernels that use them (GELU), so
/// they run optimised from the first call instead of waiting for the runtime to recompile a
/// library method.
/// </summary>
internal static class VectorMath
{
    /// <summary>
    /// e^x lane-wise (Cephes' expf: x = k·ln 2 + r with |r| ≤ ½ln 2, a degree-7 polynomial for
    /// e^r, 2^k put in the exponent bits; relative error about 1e-7). Inputs below −87.3 give
    /// e^−87.3 ≈ 1.2e-38 (no subnormals); inputs above 88.7 overflow to garbage, so callers pass
    /// x ≤ 0.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Exp(Vector256<float> x)
    {
        x = Vector256.Max(x, Vector256.Create(-87.3f));
        var k = Vector256.Round(x * Vector256.Create(1.44269504088896341f));
        var r = Vector256.FusedMultiplyAdd(k, Vector256.Create(-0.693359375f), x);
        r = Vector256.FusedMultiplyAdd(k, Vector256.Create(2.12194440e-4f), r);
        var p = Vector256.Create(1.9875691500e-4f);
        p = Vector256.FusedMultiplyAdd(p, r, Vector256.Create(1.3981999507e-3f));
        p = Vector256.FusedMultiplyAdd(p, r, Vector256.Create(8.3334519073e-3f));
        p = Vector256.FusedMultiplyAdd(p, r, Vector256.Create(4.1665795894e-2f));
        p = Vector256.FusedMultiplyAdd(p, r, Vector256.Create(1.6666665459e-1f));
        p = Vector256.FusedMultiplyAdd(p, r, Vector256.Create(5.0000001201e-1f));
        p = Vector256.FusedMultiplyAdd(p, r * r, r + Vector256<float>.One);
        var scale = (Vector256.ConvertToInt32(k) + Vector256.Create(127)) << 23;
        return p * scale.AsSingle();
    }
}
