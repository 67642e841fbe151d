using System.Numerics.Tensors;

namespace LabelNoiseLab.Autograd;

/// <summary>
/// im2col and col2im for the convolutions that keep the image size (stride 1, padding
/// (K − 1)/2: the 3×3 convolutions of SmallCnn, ResNet and cnn9, and 1×1 ones). There the
/// unfolded row of kernel tap (i, j) is the input plane shifted by one offset,
/// (i − p)·W + (j − p), so each (channel, sample, tap) is one contiguous copy (or vector add)
/// of the whole plane, followed by zeroing the few columns the shift wrapped around, instead
/// of one short copy per output row. Same layout and results as
/// <see cref="Conv2dOp.Im2Col"/> and <see cref="Conv2dOp.Col2ImAdd"/> (the same additions in
/// the same order).
/// </summary>
internal static class ConvShiftKernels
{
    /// <summary>Whether the output plane equals the input plane at stride 1 (the shift form applies).</summary>
    public static bool Fits(in Conv2dOp.Geometry g) => g.Stride == 1 && g.OH == g.H && g.OW == g.W;

    /// <summary>col[(c·KH + i)·KW + j, n·H·W + k] = x[n, c, k + (i − p)·W + (j − p)] where that tap lies inside the image, else 0.</summary>
    public static void Im2Col(ReadOnlySpan<float> x, Span<float> col, in Conv2dOp.Geometry g)
    {
        int plane = g.H * g.W, positions = g.N * plane;
        for (int c = 0; c < g.C; c++)
        for (int n = 0; n < g.N; n++)
        {
            var src = x.Slice((n * g.C + c) * plane, plane);
            for (int i = 0; i < g.KH; i++)
            for (int j = 0; j < g.KW; j++)
            {
                var dst = col.Slice(((c * g.KH + i) * g.KW + j) * positions + n * plane, plane);
                var t = Tap.Of(g, i, j);
                if (t.Empty)
                {
                    dst.Clear();
                    continue;
                }
                dst[..t.KLo].Clear();
                dst[t.KHi..].Clear();
                src.Slice(t.A + t.Shift, t.B - t.A).CopyTo(dst[t.A..t.B]);
                t.ClearWrappedColumns(dst, g.W); // also the entries of [KLo, A) and [B, KHi)
            }
        }
    }

    /// <summary>
    /// The adjoint of <see cref="Im2Col"/>: dx[n, c, k + shift] += dcol[tap, n·H·W + k] over the
    /// taps inside the image. Overwrites the wrapped-around entries of <paramref name="dcol"/>
    /// with zeros (it is scratch to the callers).
    /// </summary>
    public static void Col2ImAdd(Span<float> dcol, Span<float> dx, in Conv2dOp.Geometry g)
    {
        int plane = g.H * g.W, positions = g.N * plane;
        for (int c = 0; c < g.C; c++)
        for (int n = 0; n < g.N; n++)
        {
            var dst = dx.Slice((n * g.C + c) * plane, plane);
            for (int i = 0; i < g.KH; i++)
            for (int j = 0; j < g.KW; j++)
            {
                var t = Tap.Of(g, i, j);
                if (t.Empty)
                    continue;
                var src = dcol.Slice(((c * g.KH + i) * g.KW + j) * positions + n * plane, plane);
                t.ClearWrappedColumns(src, g.W);
                var d = dst.Slice(t.A + t.Shift, t.B - t.A);
                TensorPrimitives.Add(d, src[t.A..t.B], d);
            }
        }
    }

    /// <summary>
    /// One kernel tap's shift: output rows [RowLo, RowHi) and columns [ColLo, ColHi) read inside
    /// the image; plane positions [KLo, KHi) cover the valid rows; [A, B) is the part of them
    /// whose shifted index k + Shift lies in the plane (the rest are wrapped columns).
    /// </summary>
    private readonly record struct Tap(int Shift, int RowLo, int RowHi, int ColLo, int ColHi, int KLo, int KHi, int A, int B)
    {
        public bool Empty => RowLo >= RowHi || ColLo >= ColHi;

        public static Tap Of(in Conv2dOp.Geometry g, int i, int j)
        {
            int di = i - g.Padding, dj = j - g.Padding, plane = g.H * g.W, shift = di * g.W + dj;
            int rowLo = Math.Max(0, -di), rowHi = Math.Min(g.H, g.H - di);
            int colLo = Math.Max(0, -dj), colHi = Math.Min(g.W, g.W - dj);
            int kLo = rowLo * g.W, kHi = Math.Max(kLo, rowHi * g.W);
            int a = Math.Clamp(-shift, kLo, kHi), b = Math.Clamp(plane - shift, a, kHi);
            return new Tap(shift, rowLo, rowHi, colLo, colHi, kLo, kHi, a, b);
        }

        /// <summary>Zeros the columns outside [ColLo, ColHi) of the valid rows (where the shift wrapped to the neighbouring row).</summary>
        public void ClearWrappedColumns(Span<float> values, int width)
        {
            if (ColLo == 0 && ColHi == width)
                return;
            for (int oy = RowLo; oy < RowHi; oy++)
            {
                var row = values.Slice(oy * width, width);
                row[..ColLo].Clear();
                row[ColHi..].Clear();
            }
        }
    }
}
