using LabelNoiseLab.RunFiles;
using LabelNoiseLab.Training;

namespace LabelNoiseLab.Probes;

/// <summary>
/// What <see cref="PhaseDetector.Detect"/> found on a curve; indices into the curve, null when
/// there is no such point. <see cref="Rise"/> = (max − first min) / first min,
/// <see cref="Fall"/> = (max − later min) / max.
/// </summary>
public sealed record Phases(int FirstMin, int? Max, int? LaterMin, bool DoubleDescent, double Rise, double Fall);

/// <summary>
/// Epoch-wise double descent on a test-loss (or test-error) curve, read left to right:
/// <list type="number">
/// <item>the first minimum: the running minimum at the moment the curve first rises more than
/// <c>rise</c> (relative) above it; if it never does, the global minimum and no descent;</item>
/// <item>the following maximum: the largest value after that minimum;</item>
/// <item>the later minimum: the smallest value after that maximum.</item>
/// </list>
/// <c>double_descent</c> is true when the later minimum lies more than <c>fall</c> (relative)
/// below the maximum. Taking the maximum over the whole rest of the curve means a dip inside a
/// continuing ascent (Adam's loss spikes while the noisy labels are memorised) is not a second
/// descent; a curve that descends a second time and then climbs above its first peak is not
/// counted either (conservative). Thresholds are relative so the same settings read a
/// cross-entropy and an error curve. Test-loss curves under label noise jitter by several
/// percent from epoch to epoch, so the hook smooths them first (<see cref="Smooth"/>) and the
/// default thresholds are 10%.
/// </summary>
public static class PhaseDetector
{
    /// <summary>Centred moving average over <paramref name="window"/> points (odd), the window shrinking at the ends.</summary>
    public static double[] Smooth(ReadOnlySpan<double> curve, int window)
    {
        if (window < 1 || window % 2 == 0)
            throw new ArgumentOutOfRangeException(nameof(window), window, "window must be odd and ≥ 1");
        int half = window / 2, n = curve.Length;
        var result = new double[n];
        for (int i = 0; i < n; i++)
        {
            int lo = Math.Max(0, i - half), hi = Math.Min(n - 1, i + half);
            double sum = 0;
            for (int j = lo; j <= hi; j++)
                sum += curve[j];
            result[i] = sum / (hi - lo + 1);
        }
        return result;
    }

    /// <summary>
    /// Finds the first minimum, the following maximum and the later minimum of <paramref name="curve"/>,
    /// with relative thresholds <paramref name="rise"/> and <paramref name="fall"/> (e.g. 0.1); throws
    /// <see cref="ArgumentException"/> for an empty curve.
    /// </summary>
    public static Phases Detect(ReadOnlySpan<double> curve, double rise, double fall)
    {
        int n = curve.Length;
        if (n == 0)
            throw new ArgumentException("empty curve", nameof(curve));
        int min = 0, riseAt = -1;
        for (int i = 1; i < n; i++)
        {
            if (curve[i] < curve[min])
                min = i;
            else if (curve[i] > curve[min] * (1 + rise))
            {
                riseAt = i;
                break;
            }
        }
        if (riseAt < 0)
            return new Phases(min, null, null, false, 0, 0);
        int max = riseAt;
        for (int i = riseAt + 1; i < n; i++)
            max = curve[i] > curve[max] ? i : max;
        int? later = null;
        for (int i = max + 1; i < n; i++)
            later = later is null || curve[i] < curve[later.Value] ? i : later;
        double riseBy = (curve[max] - curve[min]) / curve[min];
        double fallBy = later is null ? 0 : (curve[max] - curve[later.Value]) / curve[max];
        return new Phases(min, max, later, fallBy > fall, riseBy, fallBy);
    }
}

/// <summary>
/// <c>probe.phases</c>: at the end of a run, reads the metrics rows and writes a <c>phases</c>
/// block to <c>summary.json</c>: the double-descent points of the test loss (and of the test
/// error), and the epochs at which clean and noisy training samples are fitted (accuracy on their
/// given label ≥ 0.5 and ≥ 0.99), so "noisy samples are learned after clean ones" can be read off.
/// </summary>
public sealed class PhaseDetectionHook(double rise, double fall, int smooth) : ITrainingCallback
{
    /// <inheritdoc/>
    public string Name => "probe.phases";

    /// <inheritdoc/>
    public long Acted { get; private set; }

    /// <summary>Reads the metrics rows at the end: nothing to keep.</summary>
    public ComponentState SaveState() => ComponentState.Empty;

    /// <inheritdoc/>
    public void RestoreState(ComponentState state)
    {
    }

    /// <summary>
    /// The accuracy on the given label at which a group of samples counts as fitted (the higher of the two
    /// levels).
    /// </summary>
    public const double FittedAccuracy = 0.99;

    /// <inheritdoc/>
    public void OnEnd(TrainingRun run, IDictionary<string, object?> summary)
    {
        var rows = run.Directory.Metrics?.Rows.Where(r => double.IsFinite(r.TestLoss)).ToList() ?? [];
        if (rows.Count == 0)
        {
            summary["phases"] = null;
            return;
        }
        Acted = 1;
        summary["phases"] = Describe(rows, rise, fall, smooth);
    }

    /// <summary>The summary block for a list of metrics rows (in order).</summary>
    public static Dictionary<string, object?> Describe(IReadOnlyList<MetricsRow> rows, double rise, double fall, int smooth = 1)
    {
        var loss = PhaseDetector.Smooth(rows.Select(r => r.TestLoss).ToArray(), smooth);
        var error = PhaseDetector.Smooth(rows.Select(r => 1 - r.TestAcc).ToArray(), smooth);
        var p = PhaseDetector.Detect(loss, rise, fall);
        var block = new Dictionary<string, object?>();
        AddPoints(block, "test_loss_", p, loss, rows);
        block["double_descent"] = p.DoubleDescent;
        block["rise"] = p.Rise;
        block["fall"] = p.Fall;
        block["rise_fraction"] = rise;
        block["fall_fraction"] = fall;
        block["smooth_window"] = smooth;
        block["final_test_loss"] = rows[^1].TestLoss;
        block["noisy_fit_epoch"] = FirstEpoch(rows, r => r.NoisyGivenAcc >= FittedAccuracy);
        block["clean_fit_epoch"] = FirstEpoch(rows, r => r.CleanAcc >= FittedAccuracy);
        block["noisy_half_epoch"] = FirstEpoch(rows, r => r.NoisyGivenAcc >= 0.5);
        block["clean_half_epoch"] = FirstEpoch(rows, r => r.CleanAcc >= 0.5);
        if (error.All(double.IsFinite) && error.All(e => e > 0))
        {
            var e = PhaseDetector.Detect(error, rise, fall);
            var err = new Dictionary<string, object?>();
            AddPoints(err, "", e, error, rows);
            err["double_descent"] = e.DoubleDescent;
            block["test_error"] = err;
        }
        block["notes"] = $"curves smoothed by a centred moving average over {smooth} evaluations first (values reported are smoothed); first minimum = running minimum when the test loss first rises by more than rise_fraction (relative); "
            + "maximum = largest value after it; later minimum = smallest value after that maximum; double_descent = later minimum more than fall_fraction below the maximum. "
            + "Epochs of metrics rows; *_fit_epoch: first epoch with accuracy on the given label ≥ 0.99 (half: ≥ 0.5).";
        return block;
    }

    private static void AddPoints(Dictionary<string, object?> block, string prefix, Phases p, double[] curve, IReadOnlyList<MetricsRow> rows)
    {
        block[prefix + "first_min_epoch"] = rows[p.FirstMin].Epoch;
        block[prefix + "first_min"] = curve[p.FirstMin];
        block[prefix + "max_epoch"] = p.Max is int max ? rows[max].Epoch : null;
        block[prefix + "max"] = p.Max is int max2 ? curve[max2] : null;
        block[prefix + "later_min_epoch"] = p.LaterMin is int later ? rows[later].Epoch : null;
        block[prefix + "later_min"] = p.LaterMin is int later2 ? curve[later2] : null;
    }

    private static int? FirstEpoch(IReadOnlyList<MetricsRow> rows, Func<MetricsRow, bool> reached) =>
        rows.FirstOrDefault(reached)?.Epoch;
}
