using LabelNoiseLab.Training;

namespace LabelNoiseLab.Robust;

/// <summary>
/// Training-dynamics scores of each training sample, from every training step's first forward (the
/// logits of the batch as trained on, training mode), recorded each time the sample is in a batch:
/// <list type="bullet">
/// <item>the area under the margin (Pleiss et al. 2020): the mean over those visits of the margin
/// z_given − max_{j≠given} z_j of the logits; low = likely mislabelled;</item>
/// <item>forgetting events (Toneva et al. 2019): the transitions from predicted-as-given to not
/// between successive visits; a sample never predicted as its given label counts as forgotten
/// more often than any learned one (the paper's "never learned = infinitely forgettable").</item>
/// </list>
/// Both are NaN for a sample not yet seen.
/// </summary>
internal sealed class TrainingDynamics
{
    private readonly double[] _marginSum;
    private readonly int[] _visits;
    private readonly int[] _forgets;
    // Per sample: -1 never seen, 0 last visit not predicted as given, 1 last visit predicted as given.
    private readonly int[] _last;
    private readonly int[] _learned;

    public TrainingDynamics(int samples)
    {
        _marginSum = new double[samples];
        _visits = new int[samples];
        _forgets = new int[samples];
        _last = new int[samples];
        _learned = new int[samples];
        Array.Fill(_last, -1);
    }

    /// <summary>One visit of sample <paramref name="s"/>: its logit margin and whether the argmax is its given label.</summary>
    public void Record(int s, double margin, bool predictedGiven)
    {
        _marginSum[s] += margin;
        _visits[s]++;
        if (!predictedGiven && _last[s] == 1)
            _forgets[s]++;
        _last[s] = predictedGiven ? 1 : 0;
        _learned[s] |= predictedGiven ? 1 : 0;
    }

    /// <summary>The area under the margin: the mean margin over the visits so far (NaN before the first).</summary>
    public double Aum(int s) => _visits[s] == 0 ? double.NaN : _marginSum[s] / _visits[s];

    /// <summary>Forgetting events so far; +∞ for a sample seen but never predicted as its given label; NaN before the first visit.</summary>
    public double Forgetting(int s) => _visits[s] == 0 ? double.NaN : _learned[s] == 0 ? double.PositiveInfinity : _forgets[s];

    public void Save(ComponentState state, string prefix)
    {
        ArgumentNullException.ThrowIfNull(state);
        state.Set(prefix + "margin_sum", _marginSum)
            .Set(prefix + "visits", _visits)
            .Set(prefix + "forgets", _forgets)
            .Set(prefix + "last", _last)
            .Set(prefix + "learned", _learned);
    }

    public void Restore(ComponentState state, string prefix)
    {
        ArgumentNullException.ThrowIfNull(state);
        Copy(state.Doubles(prefix + "margin_sum"), _marginSum, prefix + "margin_sum");
        Copy(state.Ints(prefix + "visits"), _visits, prefix + "visits");
        Copy(state.Ints(prefix + "forgets"), _forgets, prefix + "forgets");
        Copy(state.Ints(prefix + "last"), _last, prefix + "last");
        Copy(state.Ints(prefix + "learned"), _learned, prefix + "learned");
    }

    private static void Copy<T>(T[] from, T[] to, string key)
    {
        if (from.Length != to.Length)
            throw new InvalidDataException($"{key} has {from.Length} values for a training set of {to.Length}");
        from.CopyTo(to, 0);
    }
}
