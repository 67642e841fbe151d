using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace LabelNoiseLab.Tensors;

/// <summary>
/// Element-wise and row-wise kernels the ops need beyond TensorPrimitives: span in, span out,
/// lengths checked up front, one vectorised loop plus a scalar tail. Tests run each one at
/// every length 1..300 against a plain loop.
/// </summary>
public static class Kernels
{
    /// <summary>dx = g where y &gt; 0 else 0 (or dx += that when <paramref name="accumulate"/>); in parallel on long spans.</summary>
    public static void ReluBackward(ReadOnlySpan<float> y, ReadOnlySpan<float> g, Span<float> dx, bool accumulate)
    {
        CheckSame(y.Length, g.Length, dx.Length);
        Parallel(accumulate ? Elementwise.ReluBackwardAdd : Elementwise.ReluBackward, y, g, dx, 0f);
    }

    /// <summary>y = max(x, 0), in parallel on long spans.</summary>
    internal static void Relu(ReadOnlySpan<float> x, Span<float> y)
    {
        CheckSame(x.Length, x.Length, y.Length);
        Parallel(Elementwise.Relu, x, x, y, 0f);
    }

    /// <summary>dst = a + b, in parallel on long spans.</summary>
    internal static void Add(ReadOnlySpan<float> a, ReadOnlySpan<float> b, Span<float> dst)
    {
        CheckSame(a.Length, b.Length, dst.Length);
        Parallel(Elementwise.Add, a, b, dst, 0f);
    }

    /// <summary>dst = a, in parallel on long spans.</summary>
    internal static void Copy(ReadOnlySpan<float> a, Span<float> dst)
    {
        CheckSame(a.Length, a.Length, dst.Length);
        Parallel(Elementwise.Copy, a, a, dst, 0f);
    }

    /// <summary>y = x where x &gt; 0, else slope·x (leaky ReLU), in parallel on long spans.</summary>
    internal static void LeakyRelu(ReadOnlySpan<float> x, float slope, Span<float> y)
    {
        CheckSame(x.Length, x.Length, y.Length);
        Parallel(Elementwise.LeakyRelu, x, x, y, slope);
    }

    /// <summary>dx (+)= g where x &gt; 0, else slope·g (leaky ReLU's backward), in parallel on long spans.</summary>
    internal static void LeakyReluBackward(ReadOnlySpan<float> x, ReadOnlySpan<float> g, float slope, Span<float> dx, bool accumulate)
    {
        CheckSame(x.Length, g.Length, dx.Length);
        Parallel(accumulate ? Elementwise.LeakyReluBackwardAdd : Elementwise.LeakyReluBackward, x, g, dx, slope);
    }

    private enum Elementwise { Relu, ReluBackward, ReluBackwardAdd, Add, Copy, LeakyRelu, LeakyReluBackward, LeakyReluBackwardAdd }

    private static unsafe void Parallel(Elementwise kind, ReadOnlySpan<float> a, ReadOnlySpan<float> b, Span<float> dst, float scalar)
    {
        fixed (float* pa = a, pb = b, pd = dst)
        {
            var body = new ElementwiseBody(kind, pa, pb, pd, scalar);
            ParallelRange.For(dst.Length, dst.Length, ref body);
        }
    }

    /// <summary>One element-wise kernel on elements [start, end) of its spans.</summary>
    private readonly unsafe struct ElementwiseBody(Elementwise kind, float* a, float* b, float* dst, float scalar) : IRangeBody
    {
        public void Run(int start, int end)
        {
            int n = end - start;
            var x = new ReadOnlySpan<float>(a + start, n);
            var y = new ReadOnlySpan<float>(b + start, n);
            var d = new Span<float>(dst + start, n);
            switch (kind)
            {
                case Elementwise.Relu: TensorPrimitives.Max(x, 0f, d); break;
                case Elementwise.ReluBackward: ReluBackwardSerial(x, y, d, false); break;
                case Elementwise.ReluBackwardAdd: ReluBackwardSerial(x, y, d, true); break;
                case Elementwise.Add: TensorPrimitives.Add(x, y, d); break;
                case Elementwise.Copy: x.CopyTo(d); break;
                case Elementwise.LeakyRelu: LeakyReluBackwardSerial(x, x, scalar, d, false); break; // y = x·(x > 0 ? 1 : slope)
                case Elementwise.LeakyReluBackward: LeakyReluBackwardSerial(x, y, scalar, d, false); break;
                case Elementwise.LeakyReluBackwardAdd: LeakyReluBackwardSerial(x, y, scalar, d, true); break;
            }
        }
    }

    /// <summary>dx (+)= g where x &gt; 0, else slope·g; with g = x, the forward.</summary>
    private static void LeakyReluBackwardSerial(ReadOnlySpan<float> x, ReadOnlySpan<float> g, float slope, Span<float> dx, bool accumulate)
    {
        ref float xr = ref System.Runtime.InteropServices.MemoryMarshal.GetReference(x);
        ref float gr = ref System.Runtime.InteropServices.MemoryMarshal.GetReference(g);
        ref float dr = ref System.Runtime.InteropServices.MemoryMarshal.GetReference(dx);
        int i = 0, n = x.Length;
        if (Vector256.IsHardwareAccelerated)
        {
            var s = Vector256.Create(slope);
            for (; i <= n - Vector256<float>.Count; i += Vector256<float>.Count)
            {
                var gv = Vector256.LoadUnsafe(ref gr, (nuint)i);
                var v = Vector256.ConditionalSelect(Vector256.GreaterThan(Vector256.LoadUnsafe(ref xr, (nuint)i), Vector256<float>.Zero), gv, s * gv);
                if (accumulate)
                    v += Vector256.LoadUnsafe(ref dr, (nuint)i);
                v.StoreUnsafe(ref dr, (nuint)i);
            }
        }
        for (; i < n; i++)
        {
            float gv = Unsafe.Add(ref gr, i);
            float v = Unsafe.Add(ref xr, i) > 0f ? gv : slope * gv;
            Unsafe.Add(ref dr, i) = accumulate ? Unsafe.Add(ref dr, i) + v : v;
        }
    }

    private static void ReluBackwardSerial(ReadOnlySpan<float> y, ReadOnlySpan<float> g, Span<float> dx, bool accumulate)
    {
        ref float yr = ref System.Runtime.InteropServices.MemoryMarshal.GetReference(y);
        ref float gr = ref System.Runtime.InteropServices.MemoryMarshal.GetReference(g);
        ref float dr = ref System.Runtime.InteropServices.MemoryMarshal.GetReference(dx);
        int i = 0, n = y.Length;
        if (Vector256.IsHardwareAccelerated)
        {
            for (; i <= n - Vector256<float>.Count; i += Vector256<float>.Count)
            {
                var yv = Vector256.LoadUnsafe(ref yr, (nuint)i);
                var gv = Vector256.LoadUnsafe(ref gr, (nuint)i);
                var v = Vector256.ConditionalSelect(Vector256.GreaterThan(yv, Vector256<float>.Zero), gv, Vector256<float>.Zero);
                if (accumulate)
                    v += Vector256.LoadUnsafe(ref dr, (nuint)i);
                v.StoreUnsafe(ref dr, (nuint)i);
            }
        }
        for (; i < n; i++)
        {
            float v = Unsafe.Add(ref yr, i) > 0 ? Unsafe.Add(ref gr, i) : 0f;
            Unsafe.Add(ref dr, i) = accumulate ? Unsafe.Add(ref dr, i) + v : v;
        }
    }

    /// <summary>dst (+)= a ⊙ b.</summary>
    public static void MultiplyInto(ReadOnlySpan<float> a, ReadOnlySpan<float> b, Span<float> dst, bool accumulate)
    {
        CheckSame(a.Length, b.Length, dst.Length);
        if (accumulate)
            TensorPrimitives.FusedMultiplyAdd(a, b, dst, dst);
        else
            TensorPrimitives.Multiply(a, b, dst);
    }

    /// <summary>dst (+)= a · s.</summary>
    public static void ScaleInto(ReadOnlySpan<float> a, float s, Span<float> dst, bool accumulate)
    {
        CheckSame(a.Length, a.Length, dst.Length);
        if (accumulate)
            TensorPrimitives.FusedMultiplyAdd(a, s, dst, dst);
        else
            TensorPrimitives.Multiply(a, s, dst);
    }

    /// <summary>Σ (x − mean)² (the normalisations' variance pass).</summary>
    public static float SumSquaredDeviations(ReadOnlySpan<float> x, float mean)
    {
        ref float xr = ref System.Runtime.InteropServices.MemoryMarshal.GetReference(x);
        int i = 0, n = x.Length;
        float s = 0;
        if (Vector256.IsHardwareAccelerated && n >= Vector256<float>.Count)
        {
            var m = Vector256.Create(mean);
            var acc = Vector256<float>.Zero;
            for (; i <= n - Vector256<float>.Count; i += Vector256<float>.Count)
            {
                var d = Vector256.LoadUnsafe(ref xr, (nuint)i) - m;
                acc += d * d;
            }
            s = Vector256.Sum(acc);
        }
        for (; i < n; i++)
        {
            float d = Unsafe.Add(ref xr, i) - mean;
            s += d * d;
        }
        return s;
    }

    /// <summary>Σ g and Σ g·(x − mean) in one pass (a normalisation's backward statistics).</summary>
    public static (float SumG, float SumGCentered) SumAndCenteredDot(ReadOnlySpan<float> g, ReadOnlySpan<float> x, float mean)
    {
        CheckSame(g.Length, x.Length, x.Length);
        ref float gr = ref System.Runtime.InteropServices.MemoryMarshal.GetReference(g);
        ref float xr = ref System.Runtime.InteropServices.MemoryMarshal.GetReference(x);
        int i = 0, n = g.Length;
        float sg = 0, sgx = 0;
        if (Vector256.IsHardwareAccelerated && n >= Vector256<float>.Count)
        {
            var m = Vector256.Create(mean);
            Vector256<float> accG = Vector256<float>.Zero, accGx = Vector256<float>.Zero;
            for (; i <= n - Vector256<float>.Count; i += Vector256<float>.Count)
            {
                var gv = Vector256.LoadUnsafe(ref gr, (nuint)i);
                accG += gv;
                accGx += gv * (Vector256.LoadUnsafe(ref xr, (nuint)i) - m);
            }
            sg = Vector256.Sum(accG);
            sgx = Vector256.Sum(accGx);
        }
        for (; i < n; i++)
        {
            float gv = Unsafe.Add(ref gr, i);
            sg += gv;
            sgx += gv * (Unsafe.Add(ref xr, i) - mean);
        }
        return (sg, sgx);
    }

    /// <summary>
    /// dst (+)= a·g + b·x + c (a normalisation's input gradient, per channel), in one pass:
    /// t = g·a (or fma(g, a, dst)), then fma(x, b, t), then + c, each element rounded exactly as
    /// <see cref="AffineCombineReference"/> rounds it.
    /// </summary>
    public static void AffineCombine(ReadOnlySpan<float> g, ReadOnlySpan<float> x, float a, float b, float c, Span<float> dst, bool accumulate)
    {
        CheckSame(g.Length, x.Length, dst.Length);
        ref float gr = ref System.Runtime.InteropServices.MemoryMarshal.GetReference(g);
        ref float xr = ref System.Runtime.InteropServices.MemoryMarshal.GetReference(x);
        ref float dr = ref System.Runtime.InteropServices.MemoryMarshal.GetReference(dst);
        int i = 0, n = g.Length;
        if (Vector256.IsHardwareAccelerated && n >= Vector256<float>.Count)
        {
            Vector256<float> va = Vector256.Create(a), vb = Vector256.Create(b), vc = Vector256.Create(c);
            for (; i <= n - Vector256<float>.Count; i += Vector256<float>.Count)
            {
                var gv = Vector256.LoadUnsafe(ref gr, (nuint)i);
                var t = accumulate ? Vector256.FusedMultiplyAdd(gv, va, Vector256.LoadUnsafe(ref dr, (nuint)i)) : gv * va;
                t = Vector256.FusedMultiplyAdd(Vector256.LoadUnsafe(ref xr, (nuint)i), vb, t);
                (t + vc).StoreUnsafe(ref dr, (nuint)i);
            }
        }
        for (; i < n; i++)
        {
            float gv = Unsafe.Add(ref gr, i);
            ref float d = ref Unsafe.Add(ref dr, i);
            float t = accumulate ? MathF.FusedMultiplyAdd(gv, a, d) : gv * a;
            d = MathF.FusedMultiplyAdd(Unsafe.Add(ref xr, i), b, t) + c;
        }
    }

    /// <summary>The three passes <see cref="AffineCombine"/> fuses (the reference its test compares bits against).</summary>
    internal static void AffineCombineReference(ReadOnlySpan<float> g, ReadOnlySpan<float> x, float a, float b, float c, Span<float> dst, bool accumulate)
    {
        CheckSame(g.Length, x.Length, dst.Length);
        ScaleInto(g, a, dst, accumulate);
        TensorPrimitives.FusedMultiplyAdd(x, b, dst, dst);
        TensorPrimitives.Add(dst, c, dst);
    }

    /// <summary>dst = x·a + b in one pass, rounded as a multiply then an add (a normalisation's forward, per channel).</summary>
    internal static void Affine(ReadOnlySpan<float> x, float a, float b, Span<float> dst)
    {
        CheckSame(x.Length, x.Length, dst.Length);
        ref float xr = ref System.Runtime.InteropServices.MemoryMarshal.GetReference(x);
        ref float dr = ref System.Runtime.InteropServices.MemoryMarshal.GetReference(dst);
        int i = 0, n = x.Length;
        if (Vector256.IsHardwareAccelerated && n >= Vector256<float>.Count)
        {
            Vector256<float> va = Vector256.Create(a), vb = Vector256.Create(b);
            for (; i <= n - Vector256<float>.Count; i += Vector256<float>.Count)
                (Vector256.LoadUnsafe(ref xr, (nuint)i) * va + vb).StoreUnsafe(ref dr, (nuint)i);
        }
        for (; i < n; i++)
            Unsafe.Add(ref dr, i) = Unsafe.Add(ref xr, i) * a + b;
    }

    /// <summary>Copies <paramref name="row"/> into every row of the rows×row.Length matrix <paramref name="dst"/>.</summary>
    public static void BroadcastRows(ReadOnlySpan<float> row, Span<float> dst, int rows)
    {
        if (dst.Length < rows * row.Length)
            throw new ArgumentException($"destination holds {dst.Length} values, {rows}×{row.Length} needed");
        for (int r = 0; r < rows; r++)
            row.CopyTo(dst.Slice(r * row.Length, row.Length));
    }

    /// <summary>sums (+)= column sums of the rows×cols matrix <paramref name="m"/>.</summary>
    public static void ColumnSums(ReadOnlySpan<float> m, int rows, int cols, Span<float> sums, bool accumulate)
    {
        if (m.Length < rows * cols || sums.Length != cols)
            throw new ArgumentException($"column sums of {rows}×{cols} into {sums.Length} values from {m.Length}");
        if (!accumulate)
            sums.Clear();
        for (int r = 0; r < rows; r++)
            TensorPrimitives.Add(sums, m.Slice(r * cols, cols), sums);
    }

    /// <summary>Error function in double precision (relative error ~1e-15), used by erf and GELU.</summary>
    public static double Erf(double x)
    {
        double ax = Math.Abs(x);
        double r;
        if (ax <= 2.5)
        {
            // Maclaurin series: at |x| <= 2.5 the largest term is ~30, so double keeps ~14 digits.
            double x2 = ax * ax, term = ax, sum = ax;
            for (int n = 1; n < 80; n++)
            {
                term *= -x2 / n;
                double add = term / (2 * n + 1);
                sum += add;
                if (Math.Abs(add) < 1e-17 * Math.Abs(sum))
                    break;
            }
            r = 2.0 / Math.Sqrt(Math.PI) * sum;
        }
        else if (ax < 6.0)
        {
            r = 1.0 - Erfc(ax);
        }
        else
        {
            r = 1.0;
        }
        return x < 0 ? -r : r;
    }

    /// <summary>
    /// (float)<see cref="Erf"/>(x) to the last bit, without <see cref="Erf"/>'s series (tens of
    /// divisions) in all but a few cases in 10⁵: erf's Taylor polynomial of degree 8 about the
    /// nearest point of a 1/32 grid on [0, 6) (coefficients from erf's derivatives
    /// 2/√π·(−1)ⁿ⁻¹Hₙ₋₁(x)e^(−x²), once), which agrees with <see cref="Erf"/> to ~1e-15 relative
    /// (tested to 1e-13); when that value ± 1e-12 relative rounds to one float, so does
    /// <see cref="Erf"/>'s, else <see cref="Erf"/> decides.
    /// </summary>
    internal static float ErfSingle(double x)
    {
        double ax = Math.Abs(x);
        if (!(ax > 0 && ax < ErfTaylor.End))
            return (float)Erf(x);
        double y = ErfTaylor.Value(ax);
        double tol = 1e-12 * y;
        float lo = (float)(y - tol);
        if (lo != (float)(y + tol))
            return (float)Erf(x);
        return x < 0 ? -lo : lo;
    }

    /// <summary>erf(x₀)⁽ⁿ⁾/n! for n &lt; <see cref="Terms"/> at x₀ = j/<see cref="PerUnit"/>, j = 0 … End·PerUnit, row-major.</summary>
    internal static class ErfTaylor
    {
        public const int PerUnit = 32, Terms = 9;
        public const double End = 6.0;
        public static readonly double[] Coefficients = Build();

        /// <summary>erf(x) for 0 ≤ x &lt; <see cref="End"/> by the Taylor polynomial about the nearest grid point.</summary>
        public static double Value(double x)
        {
            int j = (int)(x * PerUnit + 0.5);
            double delta = x - j * (1.0 / PerUnit);
            var c = Coefficients.AsSpan(j * Terms, Terms);
            double y = c[Terms - 1];
            for (int n = Terms - 2; n >= 0; n--)
                y = y * delta + c[n];
            return y;
        }

        private static double[] Build()
        {
            int points = (int)(End * PerUnit) + 1;
            var c = new double[points * Terms];
            var hermite = new double[Terms];
            for (int j = 0; j < points; j++)
            {
                double x0 = j * (1.0 / PerUnit);
                hermite[0] = 1;
                hermite[1] = 2 * x0;
                for (int m = 1; m + 1 < Terms; m++)
                    hermite[m + 1] = 2 * x0 * hermite[m] - 2 * m * hermite[m - 1];
                double slope = 2 / Math.Sqrt(Math.PI) * Math.Exp(-x0 * x0), factorial = 1;
                c[j * Terms] = Erf(x0);
                for (int n = 1; n < Terms; n++)
                {
                    factorial *= n;
                    c[j * Terms + n] = ((n - 1) % 2 == 0 ? 1 : -1) * hermite[n - 1] * slope / factorial;
                }
            }
            return c;
        }
    }

    /// <summary>erfc for x &gt; 2 by its continued fraction (modified Lentz), relative error ~1e-14.</summary>
    private static double Erfc(double x)
    {
        // erfc(x) = exp(-x²)/√π · 1/(x + (1/2)/(x + 1/(x + (3/2)/(x + 2/(x + ...)))))
        const double tiny = 1e-300;
        double f = x, c = x, d = 0;
        for (int n = 1; n < 200; n++)
        {
            double an = n * 0.5;
            d = x + an * d;
            d = Math.Abs(d) < tiny ? tiny : d;
            c = x + an / c;
            c = Math.Abs(c) < tiny ? tiny : c;
            d = 1 / d;
            double delta = c * d;
            f *= delta;
            if (Math.Abs(delta - 1) < 1e-16)
                break;
        }
        return Math.Exp(-x * x) / Math.Sqrt(Math.PI) / f;
    }

    private static void CheckSame(int a, int b, int c)
    {
        if (a != b || a != c)
            throw new ArgumentException($"span lengths differ: {a}, {b}, {c}");
    }
}
