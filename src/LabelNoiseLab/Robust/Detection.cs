namespace LabelNoiseLab.Robust;

/// <summary>Ranking metrics of a suspicion score (higher = more likely mislabelled) against the noise mask.</summary>
public static class Detection
{
    /// <summary>AUROC by the Mann–Whitney statistic, ties counted half; NaN without both classes.</summary>
    public static double Auroc(ReadOnlySpan<double> scores, ReadOnlySpan<bool> positive)
    {
        int n = scores.Length;
        var order = Order(scores);
        long pos = 0;
        double rankSum = 0;
        for (int i = 0; i < n;)
        {
            int j = i;
            while (j + 1 < n && scores[order[j + 1]] == scores[order[i]])
                j++;
            double midRank = (i + j) / 2.0 + 1; // ascending ranks, ties averaged
            for (int t = i; t <= j; t++)
                if (positive[order[t]])
                {
                    rankSum += midRank;
                    pos++;
                }
            i = j + 1;
        }
        long neg = n - pos;
        if (pos == 0 || neg == 0)
            return double.NaN;
        return (rankSum - pos * (pos + 1) / 2.0) / ((double)pos * neg);
    }

    /// <summary>Average precision: mean over positives of the precision at their rank (descending score).</summary>
    public static double AveragePrecision(ReadOnlySpan<double> scores, ReadOnlySpan<bool> positive)
    {
        var order = Order(scores);
        int hits = 0, total = 0;
        foreach (bool p in positive)
            total += p ? 1 : 0;
        if (total == 0)
            return double.NaN;
        double sum = 0;
        for (int r = 0; r < order.Length; r++)
        {
            if (!positive[order[order.Length - 1 - r]])
                continue;
            hits++;
            sum += (double)hits / (r + 1);
        }
        return sum / total;
    }

    /// <summary>
    /// The ROC and precision–recall curves of a score: one point per distinct threshold (descending,
    /// ties taken together), thinned to at most <paramref name="maxPoints"/> points, the first and
    /// last kept. Each point: false-positive rate, true-positive rate (= recall), precision. Empty
    /// without both classes.
    /// </summary>
    public static List<(double Fpr, double Tpr, double Precision)> Curve(ReadOnlySpan<double> scores, ReadOnlySpan<bool> positive, int maxPoints = 200)
    {
        var order = Order(scores);
        int n = order.Length, pos = 0;
        foreach (bool p in positive)
            pos += p ? 1 : 0;
        int neg = n - pos;
        var points = new List<(double, double, double)>();
        if (pos == 0 || neg == 0)
            return points;
        points.Add((0, 0, 1));
        int tp = 0, fp = 0;
        for (int r = n - 1; r >= 0;)
        {
            int q = r;
            while (q - 1 >= 0 && scores[order[q - 1]] == scores[order[r]])
                q--;
            for (int t = q; t <= r; t++)
            {
                if (positive[order[t]])
                    tp++;
                else
                    fp++;
            }
            points.Add(((double)fp / neg, (double)tp / pos, (double)tp / (tp + fp)));
            r = q - 1;
        }
        if (points.Count <= maxPoints)
            return points;
        double stride = (points.Count - 1) / (double)(maxPoints - 1);
        return [.. Enumerable.Range(0, maxPoints).Select(i => points[(int)Math.Round(i * stride)])];
    }

    private static int[] Order(ReadOnlySpan<double> scores)
    {
        var keys = scores.ToArray();
        var order = Enumerable.Range(0, keys.Length).ToArray();
        Array.Sort(keys, order);
        return order;
    }
}
