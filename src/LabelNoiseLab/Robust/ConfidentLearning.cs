namespace LabelNoiseLab.Robust;

/// <summary>Which samples confident learning flags (Northcutt, Jiang and Chuang, JAIR 2021, §3.2 and cleanlab's names).</summary>
public enum CleanFilter
{
    /// <summary>Per given class i and other class j: the round(n·Q[i][j]) samples labelled i with the largest margin p_j − p_i.</summary>
    PruneByNoiseRate,

    /// <summary>Per given class i: the round(n·Σ_{j≠i} Q[i][j]) samples labelled i with the lowest self-confidence p_i.</summary>
    PruneByClass,

    /// <summary>Flagged by both rules.</summary>
    Both,

    /// <summary>The samples counted off the diagonal of the confident joint (C_confusion).</summary>
    OffDiagonal,
}

/// <summary>The label-quality score of label_issues.csv, oriented so that high = more likely wrong.</summary>
public enum IssueRank
{
    /// <summary>1 − p_given.</summary>
    SelfConfidence,

    /// <summary>1 − (p_given − max_{j≠given} p_j + 1)/2: cleanlab's normalised margin turned into a suspicion.</summary>
    NormalizedMargin,

    /// <summary>The entropy of p divided by log K (the prediction's uncertainty).</summary>
    Entropy,
}

/// <summary>What confident learning estimated and flagged.</summary>
public sealed class ConfidentLearningResult
{
    /// <summary>Per-class thresholds t_j: the mean p_j over the samples labelled j (+∞ for a class nobody has).</summary>
    public required double[] Thresholds { get; init; }

    /// <summary>The confident joint C[given][true] (counts).</summary>
    public required long[,] ConfidentJoint { get; init; }

    /// <summary>The calibrated joint Q[given][true] = C̃/ΣC̃, rows of C̃ summing to the given-label counts.</summary>
    public required double[,] Joint { get; init; }

    /// <summary>Estimated fraction of wrong labels: 1 − trace(Q).</summary>
    public required double NoiseRate { get; init; }

    /// <summary>Estimated prior of the true labels p(y = j) = Σ_i Q[i][j].</summary>
    public required double[] Prior { get; init; }

    /// <summary>Estimated transition T[true][given] = p(s = given | y = true) = Q[given][true] / prior[true] (the convention of summary.json's realised matrix).</summary>
    public required double[,] Transition { get; init; }

    /// <summary>Per sample: whether confident learning flags its given label as an issue.</summary>
    public required bool[] IsIssue { get; init; }

    /// <summary>The score of <see cref="IssueRank"/>, high = suspicious.</summary>
    public required double[] Score { get; init; }

    /// <summary>argmax_j p_j: the label a relabelling would use.</summary>
    public required int[] Suggested { get; init; }
}

/// <summary>
/// Confident learning on out-of-sample predicted probabilities (Northcutt et al. 2021): per-class
/// thresholds, the confident joint, its calibration to the label counts, the estimated joint,
/// noise rate, prior and transition matrix, the flagged set and a ranking score. Reads only the
/// given labels and the probabilities.
/// </summary>
public static class ConfidentLearning
{
    /// <param name="probs">n × K row-major probabilities, out of sample.</param>
    /// <param name="given">The given labels, 0..K-1.</param>
    public static ConfidentLearningResult Run(ReadOnlySpan<float> probs, ReadOnlySpan<int> given, int classes, CleanFilter filter, IssueRank rank)
    {
        int n = given.Length, k = classes;
        if (probs.Length != (long)n * k)
            throw new ArgumentException($"{probs.Length} probabilities for {n} samples × {k} classes", nameof(probs));
        var p = probs.ToArray();
        var s = given.ToArray();
        var counts = new long[k];
        foreach (int y in s)
        {
            if ((uint)y >= (uint)k)
                throw new ArgumentOutOfRangeException(nameof(given), y, $"a label outside 0..{k - 1}");
            counts[y]++;
        }

        // Thresholds: the expected self-confidence of each class.
        var thresholds = new double[k];
        var sums = new double[k];
        for (int i = 0; i < n; i++)
            sums[s[i]] += p[i * k + s[i]];
        for (int j = 0; j < k; j++)
            thresholds[j] = counts[j] > 0 ? sums[j] / counts[j] : double.PositiveInfinity;

        // Confident joint: a sample labelled i counts in column j*, the most probable class among
        // those whose probability reaches their threshold (nowhere if none does).
        var joint = new long[k, k];
        var confident = new int[n];
        for (int i = 0; i < n; i++)
        {
            int best = -1;
            double bestP = double.NegativeInfinity;
            for (int j = 0; j < k; j++)
            {
                double v = p[i * k + j];
                if (v >= thresholds[j] && v > bestP)
                    (best, bestP) = (j, v);
            }
            confident[i] = best;
            if (best >= 0)
                joint[s[i], best]++;
        }

        // Calibration: each row rescaled to its label count, then normalised to a joint distribution.
        var q = new double[k, k];
        double total = 0;
        for (int i = 0; i < k; i++)
        {
            long row = 0;
            for (int j = 0; j < k; j++)
                row += joint[i, j];
            for (int j = 0; j < k; j++)
            {
                q[i, j] = (double)joint[i, j] / Math.Max(row, 1) * counts[i];
                total += q[i, j];
            }
        }
        double trace = 0;
        var prior = new double[k];
        for (int i = 0; i < k; i++)
        {
            for (int j = 0; j < k; j++)
            {
                q[i, j] = total > 0 ? q[i, j] / total : 0;
                prior[j] += q[i, j];
            }
            trace += q[i, i];
        }
        var transition = new double[k, k];
        for (int t = 0; t < k; t++)
            for (int g = 0; g < k; g++)
                transition[t, g] = prior[t] > 0 ? q[g, t] / prior[t] : (t == g ? 1 : 0);

        bool[] byNoiseRate = filter is CleanFilter.PruneByNoiseRate or CleanFilter.Both ? PruneByNoiseRate(p, s, k, q) : [];
        bool[] byClass = filter is CleanFilter.PruneByClass or CleanFilter.Both ? PruneByClass(p, s, k, q) : [];
        var issue = new bool[n];
        for (int i = 0; i < n; i++)
        {
            issue[i] = filter switch
            {
                CleanFilter.PruneByNoiseRate => byNoiseRate[i],
                CleanFilter.PruneByClass => byClass[i],
                CleanFilter.Both => byNoiseRate[i] && byClass[i],
                _ => confident[i] >= 0 && confident[i] != s[i],
            };
        }

        var score = new double[n];
        var suggested = new int[n];
        for (int i = 0; i < n; i++)
        {
            var row = p.AsSpan(i * k, k);
            int arg = 0;
            for (int j = 1; j < k; j++)
                if (row[j] > row[arg])
                    arg = j;
            suggested[i] = arg;
            score[i] = rank switch
            {
                IssueRank.SelfConfidence => 1 - row[s[i]],
                IssueRank.NormalizedMargin => 1 - (row[s[i]] - MaxOther(row, s[i]) + 1) / 2,
                _ => Entropy(row) / Math.Log(k),
            };
        }
        return new ConfidentLearningResult
        {
            Thresholds = thresholds,
            ConfidentJoint = joint,
            Joint = q,
            NoiseRate = 1 - trace,
            Prior = prior,
            Transition = transition,
            IsIssue = issue,
            Score = score,
            Suggested = suggested,
        };
    }

    /// <summary>Per (i, j ≠ i): the round(n·Q[i][j]) samples labelled i with the largest p_j − p_i (ties: lower index first).</summary>
    private static bool[] PruneByNoiseRate(float[] p, int[] s, int k, double[,] q)
    {
        int n = s.Length;
        var flagged = new bool[n];
        var rows = ByClass(s, k);
        for (int i = 0; i < k; i++)
        {
            for (int j = 0; j < k; j++)
            {
                if (j == i)
                    continue;
                int num = (int)Math.Round(n * q[i, j], MidpointRounding.ToEven);
                if (num == 0)
                    continue;
                var members = rows[i];
                var margin = members.Select(x => (double)p[x * k + j] - p[x * k + i]).ToArray();
                foreach (int t in TopIndices(margin, num))
                    flagged[members[t]] = true;
            }
        }
        return flagged;
    }

    /// <summary>Per class i: the round(n·Σ_{j≠i} Q[i][j]) samples labelled i with the lowest p_i.</summary>
    private static bool[] PruneByClass(float[] p, int[] s, int k, double[,] q)
    {
        int n = s.Length;
        var flagged = new bool[n];
        var rows = ByClass(s, k);
        for (int i = 0; i < k; i++)
        {
            double off = 0;
            for (int j = 0; j < k; j++)
                off += j == i ? 0 : q[i, j];
            int num = (int)Math.Round(n * off, MidpointRounding.ToEven);
            var members = rows[i];
            var doubt = members.Select(x => 1.0 - p[x * k + i]).ToArray();
            foreach (int t in TopIndices(doubt, Math.Min(num, members.Count)))
                flagged[members[t]] = true;
        }
        return flagged;
    }

    private static List<int>[] ByClass(int[] s, int k)
    {
        var rows = new List<int>[k];
        for (int c = 0; c < k; c++)
            rows[c] = [];
        for (int i = 0; i < s.Length; i++)
            rows[s[i]].Add(i);
        return rows;
    }

    /// <summary>Positions of the <paramref name="count"/> largest values (a stable sort: equal values keep their order).</summary>
    private static IEnumerable<int> TopIndices(double[] values, int count) =>
        Enumerable.Range(0, values.Length).OrderByDescending(t => values[t]).Take(count);

    private static double MaxOther(ReadOnlySpan<float> row, int except)
    {
        double m = double.NegativeInfinity;
        for (int j = 0; j < row.Length; j++)
            if (j != except && row[j] > m)
                m = row[j];
        return m;
    }

    private static double Entropy(ReadOnlySpan<float> row)
    {
        double h = 0;
        foreach (float v in row)
            if (v > 0)
                h -= v * Math.Log(v);
        return h;
    }
}
