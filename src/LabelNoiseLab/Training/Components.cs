using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;
using LabelNoiseLab.Autograd;
using LabelNoiseLab.Data;

namespace LabelNoiseLab.Training;

/// <summary>
/// What a training component carries from one step to the next, as saved in a checkpoint: named
/// text values (numbers written so they read back bit-identical) and named float arrays (stored
/// as tensors <c>state.&lt;component&gt;.&lt;name&gt;</c> in the checkpoint file, e.g. a peer network).
/// </summary>
public sealed class ComponentState
{
    private static readonly JsonSerializerOptions JsonOptions = new()
    {
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
    };

    /// <summary>The state of a component that keeps nothing between steps: say so explicitly.</summary>
    public static ComponentState Empty => new();

    /// <summary>Named text values.</summary>
    public Dictionary<string, string> Values { get; init; } = [];

    /// <summary>Named float arrays (checkpoint tensors <c>state.&lt;component&gt;.&lt;name&gt;</c>).</summary>
    public Dictionary<string, float[]> Arrays { get; init; } = [];

    /// <summary>Stores a double exactly (round-trip format); returns this state.</summary>
    public ComponentState Set(string key, double value) => Put(key, value.ToString("R", CultureInfo.InvariantCulture));

    /// <summary>Stores a long; returns this state.</summary>
    public ComponentState Set(string key, long value) => Put(key, value.ToString(CultureInfo.InvariantCulture));

    /// <summary>Stores a text value; returns this state.</summary>
    public ComponentState Set(string key, string value) => Put(key, value);

    /// <summary>Stores unsigned longs (e.g. a generator's state); returns this state.</summary>
    public ComponentState Set(string key, ulong[] values) =>
        Put(key, string.Join(",", values.Select(v => v.ToString(CultureInfo.InvariantCulture))));

    /// <summary>Doubles stored exactly (their bytes, base64).</summary>
    public ComponentState Set(string key, double[] values)
    {
        ArgumentNullException.ThrowIfNull(values);
        var bytes = new byte[values.Length * sizeof(double)];
        Buffer.BlockCopy(values, 0, bytes, 0, bytes.Length);
        return Put(key, Convert.ToBase64String(bytes));
    }

    /// <summary>Stores ints exactly (their bytes, base64); returns this state.</summary>
    public ComponentState Set(string key, int[] values)
    {
        ArgumentNullException.ThrowIfNull(values);
        var bytes = new byte[values.Length * sizeof(int)];
        Buffer.BlockCopy(values, 0, bytes, 0, bytes.Length);
        return Put(key, Convert.ToBase64String(bytes));
    }

    /// <summary>Any JSON-serialisable value (records, lists); non-finite numbers allowed.</summary>
    public ComponentState SetJson<T>(string key, T value) => Put(key, JsonSerializer.Serialize(value, JsonOptions));

    /// <summary>Stores a float array as a checkpoint tensor; returns this state.</summary>
    public ComponentState SetArray(string key, float[] values)
    {
        Arrays[key] = values;
        return this;
    }

    /// <summary>The text value <paramref name="key"/>; <see cref="InvalidDataException"/> when absent.</summary>
    public string Text(string key) => Values.TryGetValue(key, out var v) ? v
        : throw new InvalidDataException($"component state has no '{key}'");

    /// <summary>The double <paramref name="key"/>, as stored.</summary>
    public double Double(string key) => double.Parse(Text(key), NumberStyles.Float, CultureInfo.InvariantCulture);

    /// <summary>The long <paramref name="key"/>.</summary>
    public long Long(string key) => long.Parse(Text(key), NumberStyles.Integer, CultureInfo.InvariantCulture);

    /// <summary>The unsigned longs <paramref name="key"/>.</summary>
    public ulong[] ULongs(string key)
    {
        string text = Text(key);
        return text.Length == 0 ? [] : [.. text.Split(',').Select(p => ulong.Parse(p, CultureInfo.InvariantCulture))];
    }

    /// <summary>The doubles <paramref name="key"/>, bit-identical to those stored.</summary>
    public double[] Doubles(string key)
    {
        var bytes = Convert.FromBase64String(Text(key));
        var values = new double[bytes.Length / sizeof(double)];
        Buffer.BlockCopy(bytes, 0, values, 0, bytes.Length);
        return values;
    }

    /// <summary>The ints <paramref name="key"/>.</summary>
    public int[] Ints(string key)
    {
        var bytes = Convert.FromBase64String(Text(key));
        var values = new int[bytes.Length / sizeof(int)];
        Buffer.BlockCopy(bytes, 0, values, 0, bytes.Length);
        return values;
    }

    /// <summary>The JSON value <paramref name="key"/> read back as <typeparamref name="T"/>.</summary>
    public T Json<T>(string key) => JsonSerializer.Deserialize<T>(Text(key), JsonOptions)
        ?? throw new InvalidDataException($"component state '{key}' is null");

    /// <summary>The float array <paramref name="key"/>; <see cref="InvalidDataException"/> when absent.</summary>
    public float[] Array(string key) => Arrays.TryGetValue(key, out var v) ? v
        : throw new InvalidDataException($"component state has no array '{key}'");

    private ComponentState Put(string key, string value)
    {
        Values[key] = value;
        return this;
    }
}

/// <summary>
/// A part of a training run that may change what is trained or measure it: a step component
/// (label-noise SGD, the loss, sample weighting, SAM) or a callback (a probe). Its state is
/// saved with every checkpoint and restored on resume, so a resumed run equals an uninterrupted
/// one; there is deliberately no default: a stateless component returns <see cref="ComponentState.Empty"/>.
/// </summary>
public interface ITrainingComponent
{
    /// <summary>The component's name in <c>summary.json → components</c> and in checkpoints (<c>label_noise</c>, <c>prune</c>, <c>probe.neuron_norms</c>).</summary>
    string Name { get; }

    /// <summary>How often it acted: steps in which it changed something (labels redrawn, samples down-weighted, an ascent taken), or for a probe, the measurements taken.</summary>
    long Acted { get; }

    /// <summary>What the component carries to the next step, for a checkpoint (<see cref="ComponentState.Empty"/> when nothing).</summary>
    ComponentState SaveState();

    /// <summary>Restores what <see cref="SaveState"/> returned, on resume.</summary>
    void RestoreState(ComponentState state);
}

/// <summary>
/// One training step as the step components see it: the batch, the labels (or regression
/// targets) the loss is taken against, and the per-sample weights. Filled once per step; under
/// SAM the second pass (<see cref="Pass"/> 1) reuses the first pass's labels and weights.
/// </summary>
public sealed class StepContext
{
    private readonly float[] _weights;
    private readonly float[] _final;

    /// <summary>A context over <paramref name="batch"/>'s buffers (the trainer makes one per run).</summary>
    public StepContext(Batcher batch)
    {
        ArgumentNullException.ThrowIfNull(batch);
        Batch = batch;
        Labels = new int[batch.BatchSize];
        _weights = new float[batch.BatchSize];
        _final = new float[batch.BatchSize];
        WeightTensor = new Tensor(_final, batch.BatchSize);
    }

    /// <summary>The batcher holding the step's samples, given labels, true labels and indices.</summary>
    public Batcher Batch { get; }

    /// <summary>The global step (0-based, before the update).</summary>
    public long Step { get; private set; }

    /// <summary>0: the step's forward/backward; 1: SAM's second pass at the perturbed weights.</summary>
    public int Pass { get; internal set; }

    /// <summary>Samples in this batch.</summary>
    public int Length => Batch.Length;

    /// <summary>The labels the loss is taken against (the given labels unless a target step redrew them); first <see cref="Length"/> entries.</summary>
    public int[] Labels { get; }

    /// <summary>Regression targets replaced by a target step (label-noise SGD on targets); null = the batch's own.</summary>
    public Tensor? Targets { get; set; }

    /// <summary>Per-sample weights (1 = kept as is, 0 = dropped), multiplied together by the weighting components.</summary>
    public Span<float> Weights => _weights.AsSpan(0, Length);

    /// <summary>
    /// A factor on every weight (selection trains on the mean over the kept samples: n/kept); the
    /// weights applied are <see cref="Weights"/> × this.
    /// </summary>
    public float WeightScale { get; set; } = 1f;

    /// <summary>The weights as applied (<see cref="Weights"/> × <see cref="WeightScale"/>), a tensor of <see cref="Length"/> entries.</summary>
    public Tensor FinalWeights()
    {
        System.Numerics.Tensors.TensorPrimitives.Multiply(Weights, WeightScale, _final.AsSpan(0, Length));
        return WeightTensor;
    }

    private Tensor WeightTensor { get; }

    /// <summary>Whether any component changed a weight in this step (the loss is then weighted).</summary>
    public bool Weighted { get; set; }

    /// <summary>
    /// The weights are applied after the backward, to the parameter gradients (per-sample gradient
    /// weighting): the loss is then the unweighted mean.
    /// </summary>
    public bool WeightsAfterBackward { get; set; }

    /// <summary>The model's output of this pass (valid until the next pass).</summary>
    public Tensor? Output { get; internal set; }

    /// <summary>Per-sample gradient norms of this step, when a component computed them (else empty).</summary>
    public ReadOnlyMemory<float> Norms { get; set; }

    /// <summary>The step's loss (the first pass's).</summary>
    public float Loss { get; internal set; }

    internal void Begin(long step)
    {
        Step = step;
        Pass = 0;
        Batch.Labels.CopyTo(Labels);
        Targets = null;
        Weights.Fill(1f);
        WeightScale = 1f;
        WeightTensor.Resize([Length]);
        Weighted = false;
        WeightsAfterBackward = false;
        Norms = ReadOnlyMemory<float>.Empty;
        Output = null;
    }
}

/// <summary>Changes the labels or targets of a step before the forward (label-noise SGD). Runs once per step.</summary>
public interface ITargetStep : ITrainingComponent
{
    /// <summary>Rewrites <see cref="StepContext.Labels"/> or sets <see cref="StepContext.Targets"/> for this step.</summary>
    void Apply(StepContext step);
}

/// <summary>The loss of a step against <see cref="StepContext.Labels"/> (or its targets), weighted when <see cref="StepContext.Weighted"/> and the weights are not applied after the backward. One per run.</summary>
public interface ILossStep : ITrainingComponent
{
    /// <summary>The scalar loss to back-propagate, recorded on <paramref name="tape"/>, for the model's <paramref name="output"/>.</summary>
    Tensor Loss(Tape tape, Tensor output, StepContext step);

    /// <summary>Before a step's first forward (e.g. estimate a transition matrix at an epoch boundary).</summary>
    void BeforeStep(StepContext step);
}

/// <summary>Per-sample weights from the step's output, before the loss (small-loss selection, co-teaching). First pass only.</summary>
public interface ISampleWeighting : ITrainingComponent
{
    /// <summary>Multiplies per-sample weights into <see cref="StepContext.Weights"/> from the first pass's <paramref name="output"/>.</summary>
    void Weigh(Tensor output, StepContext step);
}

/// <summary>
/// Per-sample weights from per-sample gradients (gradient pruning): <see cref="BeforeLoss"/> runs
/// before the loss of every pass, <see cref="AfterBackward"/> after its backward, before the update.
/// </summary>
public interface IGradientWeighting : ITrainingComponent
{
    /// <summary>Before each pass's loss: prepares per-sample gradient bookkeeping on <paramref name="output"/>.</summary>
    void BeforeLoss(Tensor output, StepContext step);

    /// <summary>After each pass's backward: reweights the parameter gradients per sample.</summary>
    void AfterBackward(StepContext step);

    /// <summary>After training (restore what was changed on the model).</summary>
    void Detach();
}

/// <summary>
/// Something that runs beside training and reports: a probe writing its own CSV, extra metrics
/// columns, a block of summary.json. <see cref="Attach"/> runs whenever a run starts or resumes;
/// <see cref="OnStart"/> only when it starts afresh (a resumed run restores the state instead).
/// </summary>
public interface ITrainingCallback : ITrainingComponent
{
    /// <summary>Extra metrics.csv columns this callback fills at each evaluation.</summary>
    IReadOnlyList<string> MetricsColumns => [];

    /// <summary>Every start and resume, before the first step: set up buffers and model hooks.</summary>
    void Attach(TrainingRun run)
    {
    }

    /// <summary>A fresh start only, after <see cref="Attach"/>: measure the untrained model.</summary>
    void OnStart(TrainingRun run)
    {
    }

    /// <summary>After the first forward of a step, before its loss (<see cref="StepContext.Output"/> is set; must not allocate).</summary>
    void OnOutput(TrainingRun run, StepContext step)
    {
    }

    /// <summary>After each optimizer step (must not allocate).</summary>
    void OnStep(TrainingRun run, StepContext step)
    {
    }

    /// <summary>After each evaluation row is computed and before it is written: fill <paramref name="extra"/>.</summary>
    void OnEvaluation(TrainingRun run, int epoch, long step, IDictionary<string, double> extra)
    {
    }

    /// <summary>After training, before summary.json is written: add figures to it.</summary>
    void OnEnd(TrainingRun run, IDictionary<string, object?> summary)
    {
    }
}
