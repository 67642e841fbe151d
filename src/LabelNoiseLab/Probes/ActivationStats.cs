using System.Numerics.Tensors;

namespace LabelNoiseLab.Probes;

/// <summary>The largest |activation| of a layer on a probe set and how it compares with the rest.</summary>
/// <param name="MaxAbs">Largest |a| over every sample and unit.</param>
/// <param name="Sample">Row (probe sample) where it occurs.</param>
/// <param name="Unit">Unit (column) where it occurs.</param>
/// <param name="MedianAbs">Median |a| over the layer's nonzero entries (a ReLU layer is mostly exact zeros, whose median is 0).</param>
/// <param name="Ratio">MaxAbs / MedianAbs: the "massive activation" measure; NaN when every entry is 0.</param>
public readonly record struct MassiveActivation(double MaxAbs, int Sample, int Unit, double MedianAbs, double Ratio);

/// <summary>
/// The measures of the activation probe on one layer's activations, a row-major [samples, units]
/// block: clean/noisy separation (cosine of class means), the largest activation and its ratio to
/// the median, and Pearson correlations. Plain span-in functions so tests can check them on
/// hand-made numbers; scratch buffers come from the caller.
/// </summary>
public static class ActivationStats
{
    /// <summary>
    /// For each class c: cosine similarity between the mean activation of the clean samples in
    /// group c and the mean of the noisy samples in group c (<paramref name="groups"/> = given or
    /// true labels); averaged over the classes where both groups exist and both means are
    /// nonzero. NaN when no class qualifies (no noisy samples, or all-zero means).
    /// </summary>
    /// <param name="scratch">At least 2 · classes · units floats (float sums: vectorised, and exact enough for a few thousand samples).</param>
    public static double CleanNoisyCosine(ReadOnlySpan<float> acts, int units, ReadOnlySpan<int> groups,
        ReadOnlySpan<bool> noisy, int classes, Span<float> scratch, Span<int> counts)
    {
        int n = groups.Length;
        if (acts.Length != n * units || noisy.Length != n)
            throw new ArgumentException($"activations [{acts.Length}] do not match {n} samples × {units} units");
        if (scratch.Length < 2 * classes * units || counts.Length < 2 * classes)
            throw new ArgumentException("scratch buffers are too small", nameof(scratch));
        var sums = scratch[..(2 * classes * units)];
        sums.Clear();
        counts[..(2 * classes)].Clear();
        for (int i = 0; i < n; i++)
        {
            int cell = 2 * groups[i] + (noisy[i] ? 1 : 0);
            counts[cell]++;
            var sum = sums.Slice(cell * units, units);
            TensorPrimitives.Add(sum, acts.Slice(i * units, units), sum);
        }
        // The cosine of two means is the cosine of the two sums: the counts cancel.
        double total = 0;
        int used = 0;
        for (int c = 0; c < classes; c++)
        {
            if (counts[2 * c] == 0 || counts[2 * c + 1] == 0)
                continue;
            double cos = Cosine(sums.Slice(2 * c * units, units), sums.Slice((2 * c + 1) * units, units));
            if (double.IsNaN(cos))
                continue;
            total += cos;
            used++;
        }
        return used == 0 ? double.NaN : total / used;
    }

    /// <summary>Cosine similarity (in double); NaN when either vector is zero.</summary>
    public static double Cosine(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        double dot = 0, na = 0, nb = 0;
        for (int i = 0; i < a.Length; i++)
        {
            double x = a[i], y = b[i];
            dot += x * y;
            na += x * x;
            nb += y * y;
        }
        return na == 0 || nb == 0 ? double.NaN : dot / Math.Sqrt(na * nb);
    }

    /// <summary>The largest |activation|, where it is, the median |activation| of the nonzero entries and their ratio.</summary>
    /// <param name="scratch">At least <c>acts.Length</c> floats (overwritten).</param>
    public static MassiveActivation Massive(ReadOnlySpan<float> acts, int units, Span<float> scratch)
    {
        if (units <= 0 || acts.Length % units != 0)
            throw new ArgumentException($"{acts.Length} activations are not a whole number of rows of {units} units");
        if (scratch.Length < acts.Length)
            throw new ArgumentException("scratch buffer is too small", nameof(scratch));
        if (acts.Length == 0)
            return new MassiveActivation(double.NaN, -1, -1, double.NaN, double.NaN);
        int at = TensorPrimitives.IndexOfMaxMagnitude(acts);
        float max = Math.Abs(acts[at]);
        int nonzero = 0;
        foreach (float v in acts)
        {
            if (v != 0f)
                scratch[nonzero++] = Math.Abs(v);
        }
        double median = nonzero == 0 ? 0 : Median(scratch[..nonzero]);
        double ratio = median == 0 ? double.NaN : max / median;
        return new MassiveActivation(max, at / units, at % units, median, ratio);
    }

    /// <summary>Median of the values (reordered in place): Hoare's selection, O(n) on average.</summary>
    public static double Median(Span<float> values)
    {
        int n = values.Length;
        if (n == 0)
            return double.NaN;
        int k = n / 2;
        float upper = Select(values, k);
        if (n % 2 == 1)
            return upper;
        // Even count: after selection everything left of k is ≤ values[k]; the lower middle is their maximum.
        float lower = float.NegativeInfinity;
        foreach (float v in values[..k])
            lower = Math.Max(lower, v);
        return 0.5 * ((double)lower + upper);
    }

    /// <summary>Puts the k-th smallest value at index k (smaller before, larger after) and returns it.</summary>
    private static float Select(Span<float> v, int k)
    {
        int lo = 0, hi = v.Length - 1;
        while (lo < hi)
        {
            float pivot = v[lo + (hi - lo) / 2];
            int i = lo, j = hi;
            while (i <= j)
            {
                while (v[i] < pivot)
                    i++;
                while (v[j] > pivot)
                    j--;
                if (i <= j)
                {
                    (v[i], v[j]) = (v[j], v[i]);
                    i++;
                    j--;
                }
            }
            if (k <= j)
                hi = j;
            else if (k >= i)
                lo = i;
            else
                break;
        }
        return v[k];
    }

    /// <summary>Pearson correlation; NaN when either side is constant.</summary>
    public static double Pearson(ReadOnlySpan<double> a, ReadOnlySpan<double> b)
    {
        if (a.Length != b.Length)
            throw new ArgumentException($"lengths differ: {a.Length} and {b.Length}");
        int n = a.Length;
        if (n < 2)
            return double.NaN;
        double ma = 0, mb = 0;
        for (int i = 0; i < n; i++)
        {
            ma += a[i];
            mb += b[i];
        }
        ma /= n;
        mb /= n;
        double sab = 0, saa = 0, sbb = 0;
        for (int i = 0; i < n; i++)
        {
            double da = a[i] - ma, db = b[i] - mb;
            sab += da * db;
            saa += da * da;
            sbb += db * db;
        }
        return saa == 0 || sbb == 0 ? double.NaN : sab / Math.Sqrt(saa * sbb);
    }

    /// <summary>Logit of the predicted (largest) class minus the second largest.</summary>
    public static double LogitMargin(ReadOnlySpan<float> logits)
    {
        float best = float.NegativeInfinity, second = float.NegativeInfinity;
        foreach (float z in logits)
        {
            if (z > best)
            {
                second = best;
                best = z;
            }
            else if (z > second)
            {
                second = z;
            }
        }
        return logits.Length < 2 ? double.NaN : (double)best - second;
    }

    /// <summary>
    /// The <paramref name="k"/> largest |activation| entries (descending; ties: lower flat index
    /// first) as flat indices sample · units + unit into <paramref name="result"/>; returns how many
    /// (fewer when there are fewer entries). One pass with a small insertion-sorted buffer.
    /// </summary>
    public static int TopK(ReadOnlySpan<float> acts, int k, Span<int> result)
    {
        if (k < 0 || result.Length < k)
            throw new ArgumentException($"result buffer of {result.Length} for top {k}", nameof(result));
        int count = 0;
        for (int i = 0; i < acts.Length; i++)
        {
            float v = Math.Abs(acts[i]);
            if (count == k && !(v > Math.Abs(acts[result[count - 1]])))
                continue;
            int pos = count < k ? count++ : count - 1;
            while (pos > 0 && v > Math.Abs(acts[result[pos - 1]]))
            {
                result[pos] = result[pos - 1];
                pos--;
            }
            result[pos] = i;
        }
        return count;
    }

    /// <summary>
    /// η² of <paramref name="values"/> grouped by <paramref name="groups"/> (0..classes−1): the
    /// between-group sum of squares over the total sum of squares, the share of the variance the
    /// grouping explains. NaN when the values are constant.
    /// </summary>
    public static double EtaSquared(ReadOnlySpan<double> values, ReadOnlySpan<int> groups, int classes)
    {
        if (values.Length != groups.Length)
            throw new ArgumentException($"lengths differ: {values.Length} and {groups.Length}");
        int n = values.Length;
        if (n == 0)
            return double.NaN;
        var sums = new double[classes];
        var counts = new int[classes];
        double mean = 0;
        for (int i = 0; i < n; i++)
        {
            sums[groups[i]] += values[i];
            counts[groups[i]]++;
            mean += values[i];
        }
        mean /= n;
        double total = 0;
        for (int i = 0; i < n; i++)
            total += (values[i] - mean) * (values[i] - mean);
        double between = 0;
        for (int c = 0; c < classes; c++)
        {
            if (counts[c] > 0)
            {
                double m = sums[c] / counts[c] - mean;
                between += counts[c] * m * m;
            }
        }
        return total == 0 ? double.NaN : Math.Min(1, between / total);
    }

    /// <summary>
    /// R² of the least-squares fit of <paramref name="y"/> on an intercept and the p columns of
    /// <paramref name="x"/> (row-major n×p): 1 − residual / total sum of squares, by the normal
    /// equations on centred columns in double (Gaussian elimination with partial pivoting; a
    /// column with no variance left after the others is dropped). NaN when y is constant.
    /// </summary>
    public static double RSquared(ReadOnlySpan<double> y, ReadOnlySpan<double> x, int p)
    {
        int n = y.Length;
        if (x.Length != n * p)
            throw new ArgumentException($"{x.Length} regressor values for {n} samples × {p}");
        double my = 0;
        for (int i = 0; i < n; i++)
            my += y[i];
        my /= Math.Max(1, n);
        var mx = new double[p];
        for (int i = 0; i < n; i++)
            for (int j = 0; j < p; j++)
                mx[j] += x[i * p + j];
        for (int j = 0; j < p; j++)
            mx[j] /= Math.Max(1, n);
        // Augmented normal equations [XᵀX | Xᵀy] on centred data.
        var a = new double[p, p + 1];
        double syy = 0;
        for (int i = 0; i < n; i++)
        {
            double dy = y[i] - my;
            syy += dy * dy;
            for (int j = 0; j < p; j++)
            {
                double dj = x[i * p + j] - mx[j];
                a[j, p] += dj * dy;
                for (int l = 0; l <= j; l++)
                    a[j, l] += dj * (x[i * p + l] - mx[l]);
            }
        }
        if (syy == 0)
            return double.NaN;
        for (int j = 0; j < p; j++)
            for (int l = j + 1; l < p; l++)
                a[j, l] = a[l, j];
        var diag = new double[p];
        for (int j = 0; j < p; j++)
            diag[j] = a[j, j];
        var beta = new double[p];
        var used = new bool[p];
        var rhs = new double[p];
        for (int j = 0; j < p; j++)
            rhs[j] = a[j, p];
        // Elimination with partial pivoting; a pivot below 1e-10 of its column's scale means collinear: dropped (β = 0).
        var rows = Enumerable.Range(0, p).ToArray();
        for (int col = 0; col < p; col++)
        {
            int best = -1;
            double bestAbs = 0;
            for (int r = col; r < p; r++)
            {
                double v = Math.Abs(a[rows[r], col]);
                if (v > bestAbs)
                    (best, bestAbs) = (r, v);
            }
            if (best < 0 || bestAbs <= 1e-10 * Math.Max(diag[col], double.Epsilon))
                continue;
            (rows[col], rows[best]) = (rows[best], rows[col]);
            used[col] = true;
            int pr = rows[col];
            for (int r = 0; r < p; r++)
            {
                if (r == col)
                    continue;
                int rr = rows[r];
                double f = a[rr, col] / a[pr, col];
                if (f == 0)
                    continue;
                for (int c = col; c <= p; c++)
                    a[rr, c] -= f * a[pr, c];
            }
        }
        for (int col = 0; col < p; col++)
            beta[col] = used[col] ? a[rows[col], p] / a[rows[col], col] : 0;
        // Explained sum of squares of the fit: βᵀXᵀy (centred).
        double explained = 0;
        for (int j = 0; j < p; j++)
            explained += beta[j] * rhs[j];
        return Math.Clamp(explained / syy, 0, 1);
    }
}
