namespace LabelNoiseLab.Probes;

/// <summary>
/// The knee of a falling curve by Kneedle (Satopää, Albrecht, Irwin and Raghavan 2011), offline
/// form: x and y are scaled to [0, 1]; for a decreasing curve the difference curve is
/// d = (1 − x̂) − ŷ, the height of the chord from the first to the last point above the curve,
/// and the knee is where d is largest — the point after which the curve has bent from its fall
/// to its floor. Used for the end of phase I on the smoothed log neuron-norm curve, where the
/// arg-min falls late because the norms keep creeping down after the bend.
/// </summary>
public static class Kneedle
{
    /// <summary>
    /// Index of the knee of a decreasing (first &gt; last) curve, or null when the curve does not
    /// fall, has fewer than 3 points, or lies nowhere below its chord (by more than 1e-9 of the scaled range).
    /// </summary>
    public static int? Knee(IReadOnlyList<double> x, IReadOnlyList<double> y)
    {
        ArgumentNullException.ThrowIfNull(x);
        ArgumentNullException.ThrowIfNull(y);
        if (x.Count != y.Count)
            throw new ArgumentException($"x has {x.Count} points, y {y.Count}");
        int n = x.Count;
        if (n < 3 || !(y[0] > y[n - 1]) || !(x[n - 1] > x[0]) || x.Any(v => !double.IsFinite(v)) || y.Any(v => !double.IsFinite(v)))
            return null;
        double yMin = y.Min(), yMax = y.Max();
        if (!(yMax > yMin))
            return null;
        int best = -1;
        double bestD = 1e-9; // a straight line (d = 0 up to rounding) has no knee
        for (int i = 0; i < n; i++)
        {
            double xs = (x[i] - x[0]) / (x[n - 1] - x[0]);
            double ys = (y[i] - yMin) / (yMax - yMin);
            double d = 1 - xs - ys;
            if (d > bestD)
                (bestD, best) = (d, i);
        }
        return best < 0 ? null : best;
    }

    /// <summary>Centred moving average over <paramref name="window"/> points (odd; shrunk at the ends; 1 = unchanged): <see cref="PhaseDetector.Smooth"/>.</summary>
    public static double[] Smooth(IReadOnlyList<double> y, int window)
    {
        ArgumentNullException.ThrowIfNull(y);
        return PhaseDetector.Smooth([.. y], window);
    }

    /// <summary>The knee of log(y) after smoothing (y &gt; 0): the x at it, or null.</summary>
    public static double? KneeOfLog(IReadOnlyList<double> x, IReadOnlyList<double> y, int window)
    {
        ArgumentNullException.ThrowIfNull(x);
        ArgumentNullException.ThrowIfNull(y);
        if (y.Any(v => !(v > 0)))
            return null;
        var smooth = Smooth([.. y.Select(v => Math.Log(v))], window);
        return Knee(x, smooth) is { } i ? x[i] : null;
    }
}
