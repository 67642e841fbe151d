using LabelNoiseLab.Losses;
using LabelNoiseLab.Training;

namespace LabelNoiseLab.Robust;

/// <summary>The forget-rate schedule of small-loss selection: τ·min((epoch − 1)/T_k, 1), so the first epoch keeps everything.</summary>
public sealed record ForgetSchedule(double Rate, int Epochs)
{
    /// <summary>The forget rate at (1-based) <paramref name="epoch"/>: the fraction of each batch dropped.</summary>
    public double At(int epoch) => Rate * Math.Min(1.0, (epoch - 1) / (double)Epochs);

    /// <summary>Samples to drop from a batch of <paramref name="n"/> at <paramref name="epoch"/>.</summary>
    public int Drop(int epoch, int n) => (int)Math.Round(At(epoch) * n);
}

/// <summary>
/// Small-loss selection (<c>select</c>, kind small_loss): keeps the (1 − r) fraction of each batch
/// with the smallest loss under the current robust loss, r rising to τ over T_k epochs; the kept
/// samples' mean is trained (weights n/kept, as Co-teaching's reference code does).
/// <see cref="ITrainingComponent.Acted"/> counts the steps that dropped at least one sample.
/// </summary>
public sealed class SmallLossSelection(ForgetSchedule schedule, RobustLoss loss, int batchSize) : ISampleWeighting
{
    private readonly SmallLossMask _mask = new(batchSize);

    /// <inheritdoc/>
    public string Name => "select";

    /// <inheritdoc/>
    public long Acted { get; private set; }

    /// <inheritdoc/>
    public void Weigh(Tensor output, StepContext step)
    {
        ArgumentNullException.ThrowIfNull(output);
        ArgumentNullException.ThrowIfNull(step);
        int drop = schedule.Drop(step.Batch.Epoch, step.Length);
        step.Weighted = true;
        if (drop == 0)
            return;
        Acted++;
        _mask.Apply(output, step.Labels.AsSpan(0, step.Length), loss.Spec, drop, step.Weights);
        step.WeightScale = SmallLossMask.KeptScale(step.Weights);
    }

    /// <inheritdoc/>
    public ComponentState SaveState() => new ComponentState().Set("acted", Acted);

    /// <inheritdoc/>
    public void RestoreState(ComponentState state)
    {
        ArgumentNullException.ThrowIfNull(state);
        Acted = state.Long("acted");
    }
}

/// <summary>Zeroes the weights of the <c>drop</c> samples with the largest loss (ties: the later in the batch); allocation-free.</summary>
internal sealed class SmallLossMask(int batchSize)
{
    private readonly float[] _losses = new float[batchSize];
    private readonly int[] _order = new int[batchSize];
    private float[] _dz = [];

    public void Apply(Tensor output, ReadOnlySpan<int> labels, RobustLossSpec spec, int drop, Span<float> weights)
    {
        ArgumentNullException.ThrowIfNull(output);
        ArgumentNullException.ThrowIfNull(spec);
        int n = labels.Length, k = output.RowLength;
        if (_dz.Length < k)
            _dz = new float[k];
        for (int i = 0; i < n; i++)
            _losses[i] = RobustLossOp.Row(output.Span.Slice(i * k, k), labels[i], spec, _dz.AsSpan(0, k));
        for (int i = 0; i < n; i++)
            _order[i] = i;
        Array.Sort(_losses, _order, 0, n);
        for (int r = n - drop; r < n; r++)
            weights[_order[r]] = 0f;
    }

    /// <summary>n/kept for 0/1 weights (1 when nothing is kept): the kept samples' mean is trained.</summary>
    public static float KeptScale(ReadOnlySpan<float> weights)
    {
        int kept = 0;
        foreach (float v in weights)
            kept += v > 0 ? 1 : 0;
        return kept > 0 ? (float)weights.Length / kept : 1f;
    }
}
