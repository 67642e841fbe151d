using LabelNoiseLab.Tensors;

namespace LabelNoiseLab.Tests;

/// <summary>Each element-wise kernel against a plain scalar loop at every length 1..300 (every tail path).</summary>
public class KernelTests
{
    private static float[] Random(Rng rng, int n) => Enumerable.Range(0, n).Select(_ => (float)rng.NextNormal()).ToArray();

    [Fact]
    public void Element_wise_kernels_match_scalar_loops_at_every_length()
    {
        var rng = new Rng(9);
        for (int n = 1; n <= 300; n++)
        {
            var y = Random(rng, n);
            var g = Random(rng, n);
            var d0 = Random(rng, n);
            foreach (bool acc in new[] { false, true })
            {
                var d = (float[])d0.Clone();
                Kernels.ReluBackward(y, g, d, acc);
                for (int i = 0; i < n; i++)
                    Assert.Equal((acc ? d0[i] : 0f) + (y[i] > 0 ? g[i] : 0f), d[i]);

                d = (float[])d0.Clone();
                Kernels.MultiplyInto(y, g, d, acc);
                for (int i = 0; i < n; i++)
                    Close((acc ? d0[i] : 0f) + y[i] * g[i], d[i]);

                d = (float[])d0.Clone();
                Kernels.ScaleInto(y, 1.5f, d, acc);
                for (int i = 0; i < n; i++)
                    Close((acc ? d0[i] : 0f) + y[i] * 1.5f, d[i]);

                d = (float[])d0.Clone();
                Kernels.AffineCombine(y, g, 0.7f, -1.3f, 0.25f, d, acc);
                for (int i = 0; i < n; i++)
                    Close((acc ? d0[i] : 0f) + 0.7 * y[i] - 1.3 * g[i] + 0.25, d[i], 1e-5);
            }
            double ssd = 0, sg = 0, sgx = 0;
            for (int i = 0; i < n; i++)
            {
                ssd += (y[i] - 0.3) * (y[i] - 0.3);
                sg += g[i];
                sgx += g[i] * (y[i] - 0.3);
            }
            Close(ssd, Kernels.SumSquaredDeviations(y, 0.3f), 1e-4);
            var (sumG, sumGx) = Kernels.SumAndCenteredDot(g, y, 0.3f);
            Close(sg, sumG, 1e-4);
            Close(sgx, sumGx, 1e-4);
        }
    }

    /// <summary>Equal up to float32 rounding (fused and unfused multiply-add differ in the last bit).</summary>
    private static void Close(double expected, double actual, double rel = 1e-6) =>
        Assert.True(Math.Abs(expected - actual) <= rel * (Math.Abs(expected) + 1), $"expected {expected:R}, got {actual:R}");

    [Fact]
    public void Row_kernels_match_loops()
    {
        var rng = new Rng(10);
        foreach (var (rows, cols) in new[] { (1, 1), (3, 17), (7, 64), (5, 300) })
        {
            var m = Random(rng, rows * cols);
            var sums = new float[cols];
            Kernels.ColumnSums(m, rows, cols, sums, accumulate: false);
            for (int c = 0; c < cols; c++)
                Close(Enumerable.Range(0, rows).Sum(r => (double)m[r * cols + c]), sums[c], 1e-5 * rows);
            var row = Random(rng, cols);
            var dst = new float[rows * cols];
            Kernels.BroadcastRows(row, dst, rows);
            for (int r = 0; r < rows; r++)
                Assert.Equal(row, dst.AsSpan(r * cols, cols).ToArray());
        }
    }

    [Theory]
    [InlineData(0.0, 0.0)]
    [InlineData(0.01, 0.011283415555849618)]
    [InlineData(0.5, 0.5204998778130465)]
    [InlineData(1.0, 0.8427007929497149)]
    [InlineData(2.0, 0.9953222650189527)]
    [InlineData(2.6, 0.9997639655834707)]
    [InlineData(3.0, 0.9999779095030014)]
    [InlineData(-1.5, -0.9661051464753108)]
    [InlineData(7.0, 1.0)]
    public void Erf_matches_reference_values(double x, double expected)
    {
        Assert.Equal(expected, Kernels.Erf(x), 13);
    }

    [Fact]
    public void ErfSingle_is_the_rounded_Erf_to_the_last_bit()
    {
        // Every 293rd float from 1e-20 to 6.5 and its negation, plus the edges.
        int from = BitConverter.SingleToInt32Bits(1e-20f), to = BitConverter.SingleToInt32Bits(6.5f);
        var xs = new List<float> { 0f, -0f, 6f, -6f, 5.999999f, 7f, float.Epsilon, float.NaN, float.PositiveInfinity, float.NegativeInfinity };
        for (int bits = from; bits < to; bits += 293)
            xs.Add(BitConverter.Int32BitsToSingle(bits));
        foreach (float x in xs)
            foreach (float v in new[] { x, -x })
                Assert.True(BitConverter.SingleToInt32Bits((float)Kernels.Erf(v)) == BitConverter.SingleToInt32Bits(Kernels.ErfSingle(v)),
                    $"erf({v:R}): {(float)Kernels.Erf(v):R} vs {Kernels.ErfSingle(v):R}");
    }

    [Fact]
    public void Erf_Taylor_table_agrees_with_Erf_far_inside_the_guard()
    {
        // ErfSingle trusts the table's value to 1e-12 relative; it should hold to 1e-13 everywhere.
        double worst = 0;
        for (int i = 1; i < 1_000_000; i++)
        {
            double x = i * (6.0 / 1_000_000) - 1e-9 * (i % 7);
            double exact = Kernels.Erf(x);
            worst = Math.Max(worst, Math.Abs(Kernels.ErfTaylor.Value(x) - exact) / exact);
        }
        Assert.True(worst < 1e-13, $"largest relative difference {worst:G3}");
    }

    [Fact]
    public void Length_mismatch_is_an_error()
    {
        Assert.Throws<ArgumentException>(() => Kernels.ReluBackward(new float[3], new float[4], new float[3], false));
    }

    /// <summary>The one-pass normalisation kernels give the bits of the passes they fuse, at every length (vector body and tail).</summary>
    [Fact]
    public void Fused_normalisation_kernels_match_their_passes_bit_for_bit()
    {
        var rng = new Rng(11);
        for (int n = 0; n <= 37; n++)
        {
            var g = GradCheck.Random(rng, [n]).Span.ToArray();
            var x = GradCheck.Random(rng, [n]).Span.ToArray();
            var prior = GradCheck.Random(rng, [n]).Span.ToArray();
            float a = 0.37f, b = -1.3f, c = 0.071f;
            foreach (bool accumulate in new[] { false, true })
            {
                var fused = prior.ToArray();
                var passes = prior.ToArray();
                Kernels.AffineCombine(g, x, a, b, c, fused, accumulate);
                Kernels.AffineCombineReference(g, x, a, b, c, passes, accumulate);
                Assert.Equal(passes, fused);
            }
            var y = new float[n];
            var expected = new float[n];
            Kernels.Affine(x, a, b, y);
            System.Numerics.Tensors.TensorPrimitives.Multiply(x, a, expected);
            System.Numerics.Tensors.TensorPrimitives.Add(expected, b, expected);
            Assert.Equal(expected, y);
        }
    }
}
