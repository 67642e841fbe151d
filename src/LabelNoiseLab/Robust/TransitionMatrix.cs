namespace LabelNoiseLab.Robust;

/// <summary>Noise transition matrices T[true][given] for loss correction.</summary>
public static class TransitionMatrix
{
    /// <summary>
    /// Anchor-point estimate (Patrini et al. 2017): for each class i the sample whose p(i|x) is at
    /// the <paramref name="percentile"/>-th percentile stands in for a perfect example of i, and
    /// row i of T is its predicted distribution p(·|x̄ᵢ). <paramref name="probs"/> is [N, K].
    /// </summary>
    public static float[] EstimateFromAnchors(ReadOnlySpan<float> probs, int classes, double percentile = 97)
    {
        int n = probs.Length / classes;
        var t = new float[classes * classes];
        var column = new float[n];
        var index = new int[n];
        for (int i = 0; i < classes; i++)
        {
            for (int s = 0; s < n; s++)
            {
                column[s] = probs[s * classes + i];
                index[s] = s;
            }
            Array.Sort(column, index);
            int anchor = index[Math.Clamp((int)Math.Round(percentile / 100 * (n - 1)), 0, n - 1)];
            probs.Slice(anchor * classes, classes).CopyTo(t.AsSpan(i * classes, classes));
        }
        return t;
    }

    /// <summary>T⁻¹ by Gauss–Jordan with partial pivoting in double; null when T is (numerically) singular.</summary>
    public static float[]? Inverse(ReadOnlySpan<float> t, int k)
    {
        var a = new double[k, 2 * k];
        for (int i = 0; i < k; i++)
        {
            for (int j = 0; j < k; j++)
                a[i, j] = t[i * k + j];
            a[i, k + i] = 1;
        }
        for (int c = 0; c < k; c++)
        {
            int piv = c;
            for (int r = c + 1; r < k; r++)
                if (Math.Abs(a[r, c]) > Math.Abs(a[piv, c]))
                    piv = r;
            if (Math.Abs(a[piv, c]) < 1e-8)
                return null;
            for (int j = 0; j < 2 * k; j++)
                (a[c, j], a[piv, j]) = (a[piv, j], a[c, j]);
            double d = a[c, c];
            for (int j = 0; j < 2 * k; j++)
                a[c, j] /= d;
            for (int r = 0; r < k; r++)
            {
                if (r == c || a[r, c] == 0)
                    continue;
                double f = a[r, c];
                for (int j = 0; j < 2 * k; j++)
                    a[r, j] -= f * a[c, j];
            }
        }
        var inv = new float[k * k];
        for (int i = 0; i < k; i++)
            for (int j = 0; j < k; j++)
                inv[i * k + j] = (float)a[i, k + j];
        return inv;
    }
}
