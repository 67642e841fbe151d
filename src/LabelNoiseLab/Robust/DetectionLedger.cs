using LabelNoiseLab.Data;
using LabelNoiseLab.Training;
using Parquet;
using Parquet.Schema;

namespace LabelNoiseLab.Robust;

/// <summary>
/// <c>ledger.parquet</c>: one row per training sample per detection record (each evaluation after
/// training began): <c>sample, epoch, step, loss, margin, grad_norm, weight, aum, forgetting,
/// given_label, true_label, is_noisy</c>. loss, margin (z_given − max_{j≠given} z_j, not
/// negated), grad_norm and weight are the values of the sample's latest training step before the
/// record (NaN before its first; grad_norm NaN when not measured); aum and forgetting are
/// <see cref="TrainingDynamics"/>'s as of the record. One row group per record, PLAIN encoding, no
/// compression (any Parquet reader decodes it; the tests also read it with a reader of their own).
/// The rows are kept in memory and in every checkpoint (6 floats per sample per record) and the
/// file is written once, at the end.
/// </summary>
internal sealed class DetectionLedger
{
    public const string FileName = "ledger.parquet";

    private static readonly DataField<int> SampleField = new("sample");
    private static readonly DataField<int> EpochField = new("epoch");
    private static readonly DataField<long> StepField = new("step");
    private static readonly DataField<float> LossField = new("loss");
    private static readonly DataField<float> MarginField = new("margin");
    private static readonly DataField<float> GradNormField = new("grad_norm");
    private static readonly DataField<float> WeightField = new("weight");
    private static readonly DataField<float> AumField = new("aum");
    private static readonly DataField<float> ForgettingField = new("forgetting");
    private static readonly DataField<int> GivenField = new("given_label");
    private static readonly DataField<int> TrueField = new("true_label");
    private static readonly DataField<bool> NoisyField = new("is_noisy");

    /// <summary>The columns in file order.</summary>
    public static readonly ParquetSchema Schema = new(SampleField, EpochField, StepField, LossField, MarginField, GradNormField, WeightField, AumField, ForgettingField, GivenField, TrueField, NoisyField);

    private static readonly string[] Measured = ["loss", "margin", "grad_norm", "weight", "aum", "forgetting"];

    private readonly int[] _given;
    private readonly int[] _true;
    private readonly bool[] _noisy;
    private readonly int[] _samples;
    private List<(int Epoch, long Step)> _records = [];
    // Per measured column, one array of per-sample values per record.
    private readonly List<float[]>[] _columns = [[], [], [], [], [], []];

    public DetectionLedger(IReadOnlyList<int> given, IReadOnlyList<int> trueLabels, IReadOnlyList<bool> noisy)
    {
        ArgumentNullException.ThrowIfNull(given);
        ArgumentNullException.ThrowIfNull(trueLabels);
        ArgumentNullException.ThrowIfNull(noisy);
        (_given, _true, _noisy) = ([.. given], [.. trueLabels], [.. noisy]);
        _samples = [.. Enumerable.Range(0, _given.Length)];
    }

    public DetectionLedger(Dataset train)
        : this((train ?? throw new ArgumentNullException(nameof(train))).Labels, train.TrueLabels, train.NoiseMask)
    {
    }

    /// <summary>Records so far.</summary>
    public int Count => _records.Count;

    /// <summary>One record: each sample's latest loss, margin, gradient norm and weight, its AUM and forgetting score (arrays of the training set's size, taken over).</summary>
    public void Add(int epoch, long step, float[] loss, float[] margin, float[] gradNorm, float[] weight, float[] aum, float[] forgetting)
    {
        float[][] values = [loss, margin, gradNorm, weight, aum, forgetting];
        for (int c = 0; c < values.Length; c++)
        {
            if (values[c].Length != _given.Length)
                throw new ArgumentException($"{Measured[c]} has {values[c].Length} values for a training set of {_given.Length}");
            _columns[c].Add(values[c]);
        }
        _records.Add((epoch, step));
    }

    /// <summary>The file: one row group per record.</summary>
    public void Write(Stream output, CompressionMethod compression = CompressionMethod.None)
    {
        ArgumentNullException.ThrowIfNull(output);
        WriteAsync(output, compression).GetAwaiter().GetResult();
    }

    private async Task WriteAsync(Stream output, CompressionMethod compression)
    {
        await using var writer = await ParquetWriter.CreateAsync(Schema, output, new ParquetOptions { CompressionMethod = compression }).ConfigureAwait(false);
        int n = _given.Length;
        for (int r = 0; r < _records.Count; r++)
        {
            using var group = writer.CreateRowGroup();
            await group.WriteAsync<int>(SampleField, _samples).ConfigureAwait(false);
            await group.WriteAsync<int>(EpochField, Enumerable.Repeat(_records[r].Epoch, n).ToArray()).ConfigureAwait(false);
            await group.WriteAsync<long>(StepField, Enumerable.Repeat(_records[r].Step, n).ToArray()).ConfigureAwait(false);
            await group.WriteAsync<float>(LossField, _columns[0][r]).ConfigureAwait(false);
            await group.WriteAsync<float>(MarginField, _columns[1][r]).ConfigureAwait(false);
            await group.WriteAsync<float>(GradNormField, _columns[2][r]).ConfigureAwait(false);
            await group.WriteAsync<float>(WeightField, _columns[3][r]).ConfigureAwait(false);
            await group.WriteAsync<float>(AumField, _columns[4][r]).ConfigureAwait(false);
            await group.WriteAsync<float>(ForgettingField, _columns[5][r]).ConfigureAwait(false);
            await group.WriteAsync<int>(GivenField, _given).ConfigureAwait(false);
            await group.WriteAsync<int>(TrueField, _true).ConfigureAwait(false);
            await group.WriteAsync<bool>(NoisyField, _noisy).ConfigureAwait(false);
        }
    }

    /// <summary>The records (epoch, step) as JSON and each measured column as one array (state tensors; none while empty).</summary>
    public void Save(ComponentState state, string prefix)
    {
        ArgumentNullException.ThrowIfNull(state);
        state.SetJson(prefix + "records", _records.Select(r => new[] { r.Epoch, r.Step }).ToList());
        if (_records.Count == 0)
            return;
        for (int c = 0; c < Measured.Length; c++)
            state.SetArray(prefix + Measured[c], [.. _columns[c].SelectMany(v => v)]);
    }

    public void Restore(ComponentState state, string prefix)
    {
        ArgumentNullException.ThrowIfNull(state);
        var records = state.Json<List<long[]>>(prefix + "records");
        if (records.Any(r => r.Length != 2 || r[0] < 0 || r[0] > int.MaxValue))
            throw new InvalidDataException($"{prefix}records: expected [epoch, step] pairs");
        _records = [.. records.Select(r => ((int)r[0], r[1]))];
        int n = _given.Length;
        for (int c = 0; c < Measured.Length; c++)
        {
            _columns[c].Clear();
            if (_records.Count == 0)
                continue;
            var all = state.Array(prefix + Measured[c]);
            if (all.Length != (long)n * _records.Count)
                throw new InvalidDataException($"{prefix}{Measured[c]} has {all.Length} values, expected {_records.Count} records of {n} samples");
            for (int r = 0; r < _records.Count; r++)
                _columns[c].Add(all.AsSpan(r * n, n).ToArray());
        }
    }
}
