using LabelNoiseLab.Tensors;

namespace LabelNoiseLab.Data;

/// <summary>Where a <see cref="Batcher"/> stands, for checkpoints: enough to resume mid-epoch bit-identically.</summary>
/// <param name="RngStateAtEpochStart">The shuffling generator's state just before this epoch's shuffle.</param>
/// <param name="Epoch">Epochs started so far (1 during the first epoch).</param>
/// <param name="Position">Samples of the current epoch already handed out.</param>
public sealed record BatcherState(ulong[] RngStateAtEpochStart, int Epoch, int Position);

/// <summary>
/// Minibatches over a data set. Each epoch starts from the identity order and, when shuffling,
/// permutes it with the batcher's own generator, so an epoch's order is a function of the
/// generator's state alone. Every sample is visited once per epoch; the last batch may be
/// shorter (<see cref="Length"/>) unless <c>dropLast</c>. Batches are copied into buffers that
/// the batcher owns and reuses: reading a batch allocates nothing. A batch's contents are valid
/// until the next call to <see cref="Next"/>.
/// </summary>
public sealed class Batcher
{
    private readonly Dataset _data;
    private readonly Rng _rng;
    private readonly bool _shuffle;
    private readonly bool _dropLast;
    private readonly int[] _order;
    private ulong[] _rngAtEpochStart;
    private int _position;

    /// <summary>
    /// Batches of <paramref name="batchSize"/> samples of <paramref name="data"/>, shuffled each epoch from
    /// <paramref name="rng"/> when <paramref name="shuffle"/>; throws
    /// <see cref="ArgumentOutOfRangeException"/> for a batch size below 1.
    /// </summary>
    public Batcher(Dataset data, int batchSize, Rng rng, bool shuffle = true, bool dropLast = false)
    {
        ArgumentNullException.ThrowIfNull(data);
        ArgumentNullException.ThrowIfNull(rng);
        if (batchSize < 1)
            throw new ArgumentOutOfRangeException(nameof(batchSize), $"batch size {batchSize}; expected at least 1");
        _data = data;
        _rng = rng;
        _shuffle = shuffle;
        _dropLast = dropLast;
        BatchSize = batchSize;
        _order = new int[data.Count];
        FeatureBuffer = new float[(long)batchSize * data.FeatureLength];
        LabelBuffer = new int[batchSize];
        TrueLabelBuffer = new int[batchSize];
        IndexBuffer = new int[batchSize];
        TargetBuffer = data.Targets is null ? null : new float[(long)batchSize * data.TargetLength];
        _rngAtEpochStart = rng.GetState();
        _position = data.Count; // no epoch started yet
    }

    /// <summary>The data set batched over.</summary>
    public Dataset Data => _data;

    /// <summary>The largest batch (the last batch of an epoch may be shorter).</summary>
    public int BatchSize { get; }

    /// <summary>Batches per epoch (counting a last partial batch unless dropLast).</summary>
    public int BatchesPerEpoch => _dropLast ? _data.Count / BatchSize : (_data.Count + BatchSize - 1) / BatchSize;

    /// <summary>Epochs started so far.</summary>
    public int Epoch { get; private set; }

    /// <summary>Samples in the current batch.</summary>
    public int Length { get; private set; }

    /// <summary>Backing buffers, BatchSize long; only the first <see cref="Length"/> rows are the batch.</summary>
    public float[] FeatureBuffer { get; }

    /// <summary>Backing buffer of the given labels (see <see cref="FeatureBuffer"/>).</summary>
    public int[] LabelBuffer { get; }

    /// <summary>Backing buffer of the true labels (see <see cref="FeatureBuffer"/>).</summary>
    public int[] TrueLabelBuffer { get; }

    /// <summary>Backing buffer of the sample indices (see <see cref="FeatureBuffer"/>).</summary>
    public int[] IndexBuffer { get; }

    /// <summary>Backing buffer of the regression targets, BatchSize × TargetLength; null for classification.</summary>
    public float[]? TargetBuffer { get; }

    /// <summary>The current batch's features, Length × FeatureLength.</summary>
    public Span<float> Features => FeatureBuffer.AsSpan(0, Length * _data.FeatureLength);

    /// <summary>The current batch's given (possibly noisy) labels.</summary>
    public Span<int> Labels => LabelBuffer.AsSpan(0, Length);

    /// <summary>The current batch's true labels.</summary>
    public Span<int> TrueLabels => TrueLabelBuffer.AsSpan(0, Length);

    /// <summary>Each batch row's index in the data set (to look up the noise mask or per-sample state).</summary>
    public Span<int> Indices => IndexBuffer.AsSpan(0, Length);

    /// <summary>The current batch's regression targets, Length × TargetLength; empty for classification.</summary>
    public Span<float> Targets => TargetBuffer is null ? [] : TargetBuffer.AsSpan(0, Length * _data.TargetLength);

    /// <summary>Whether the current epoch has no batch left.</summary>
    public bool EpochDone => _dropLast ? _data.Count - _position < BatchSize : _position >= _data.Count;

    /// <summary>Starts a new epoch: identity order, shuffled when shuffling.</summary>
    public void StartEpoch()
    {
        _rngAtEpochStart = _rng.GetState();
        ResetOrder();
        _position = 0;
        Epoch++;
    }

    /// <summary>
    /// Fills the buffers with the next batch of the current epoch; false (and Length 0) when the
    /// epoch is over. Call <see cref="StartEpoch"/> to begin each epoch.
    /// </summary>
    public bool Next()
    {
        if (EpochDone)
        {
            Length = 0;
            return false;
        }
        int b = Math.Min(BatchSize, _data.Count - _position);
        int d = _data.FeatureLength;
        int t = _data.TargetLength;
        var features = _data.Features;
        for (int r = 0; r < b; r++)
        {
            int i = _order[_position + r];
            IndexBuffer[r] = i;
            LabelBuffer[r] = _data.Labels[i];
            TrueLabelBuffer[r] = _data.TrueLabels[i];
            Array.Copy(features, (long)i * d, FeatureBuffer, (long)r * d, d);
            if (TargetBuffer is not null)
                Array.Copy(_data.Targets!, (long)i * t, TargetBuffer, (long)r * t, t);
        }
        _position += b;
        Length = b;
        return true;
    }

    /// <summary>The state to store in a checkpoint.</summary>
    public BatcherState GetState() => new(_rngAtEpochStart, Epoch, Math.Min(_position, _data.Count));

    /// <summary>
    /// Restores a stored state: the generator goes back to the stored epoch's start, the epoch's
    /// order is re-derived and the next batch continues at the stored position. The generator
    /// ends where it was after that epoch's shuffle, so later epochs match too.
    /// </summary>
    public void SetState(BatcherState state)
    {
        ArgumentNullException.ThrowIfNull(state);
        if (state.Position < 0 || state.Position > _data.Count)
            throw new ArgumentException($"batcher position {state.Position} outside 0..{_data.Count}");
        _rng.SetState(state.RngStateAtEpochStart);
        _rngAtEpochStart = (ulong[])state.RngStateAtEpochStart.Clone();
        Epoch = state.Epoch;
        if (state.Epoch == 0)
        {
            _position = _data.Count;
            return;
        }
        ResetOrder();
        _position = state.Position;
    }

    /// <summary>The shuffling generator's current state (also part of <see cref="GetState"/>).</summary>
    public ulong[] GetRngState() => _rng.GetState();

    /// <summary>Restores the shuffling generator's state from <see cref="GetRngState"/>.</summary>
    public void SetRngState(ReadOnlySpan<ulong> state) => _rng.SetState(state);

    private void ResetOrder()
    {
        for (int i = 0; i < _order.Length; i++)
            _order[i] = i;
        if (_shuffle)
            _rng.Shuffle(_order);
    }
}
