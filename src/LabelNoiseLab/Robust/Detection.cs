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

    private static int[] Order(ReadOnlySpan<double> scores)
    {
        var keys = scores.ToArray();
        var order = Enumerable.Range(0, keys.Length).ToArray();
        Array.Sort(keys, order);
        return order;
    }
}
