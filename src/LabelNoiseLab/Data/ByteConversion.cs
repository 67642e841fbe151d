using System.Numerics;
using System.Runtime.CompilerServices;

namespace LabelNoiseLab.Data;

/// <summary>Pixel bytes to float32 in [0, 1]: one vectorised driver and its scalar tail.</summary>
internal static class ByteConversion
{
    /// <summary>dst[i] = src[i] / 255f for every i. Lengths must match.</summary>
    // Optimised from the first call: a data set is loaded once per run, so the tier-0 version
    // of this loop would handle much of the only load there is.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void ToUnitFloats(ReadOnlySpan<byte> src, Span<float> dst)
    {
        if (dst.Length != src.Length)
            throw new ArgumentException($"destination has {dst.Length} elements, source {src.Length}");
        int i = 0;
        if (Vector.IsHardwareAccelerated)
        {
            int w = Vector<byte>.Count;
            int f = Vector<float>.Count;
            var div = new Vector<float>(255f);
            for (; i <= src.Length - w; i += w)
            {
                var b = new Vector<byte>(src[i..]);
                Vector.Widen(b, out Vector<ushort> s0, out Vector<ushort> s1);
                Vector.Widen(s0, out Vector<uint> u0, out Vector<uint> u1);
                Vector.Widen(s1, out Vector<uint> u2, out Vector<uint> u3);
                (Vector.ConvertToSingle(u0) / div).CopyTo(dst[i..]);
                (Vector.ConvertToSingle(u1) / div).CopyTo(dst[(i + f)..]);
                (Vector.ConvertToSingle(u2) / div).CopyTo(dst[(i + 2 * f)..]);
                (Vector.ConvertToSingle(u3) / div).CopyTo(dst[(i + 3 * f)..]);
            }
        }
        for (; i < src.Length; i++)
            dst[i] = src[i] / 255f;
    }
}
