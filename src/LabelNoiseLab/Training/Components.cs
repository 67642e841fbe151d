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

    public Dictionary<string, string> Values { get; init; } = [];

    public Dictionary<string, float[]> Arrays { get; init; } = [];

    public ComponentState Set(string key, double value) => Put(key, value.ToString("R", CultureInfo.InvariantCulture));

    public ComponentState Set(string key, long value) => Put(key, value.ToString(CultureInfo.InvariantCulture));

    public ComponentState Set(string key, string value) => Put(key, value);

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

    public ComponentState Set(string key, int[] values)
    {
        ArgumentNullException.ThrowIfNull(values);
        var bytes = new byte[values.Length * sizeof(int)];
        Buffer.BlockCopy(values, 0, bytes, 0, bytes.Length);
        return Put(key, Convert.ToBase64String(bytes));
    }

    /// <summary>Any JSON-serialisable value (records, lists); non-finite numbers allowed.</summary>
    public ComponentState SetJson<T>(string key, T value) => Put(key, JsonSerializer.Serialize(value, JsonOptions));

    public ComponentState SetArray(string key, float[] values)
    {
        Arrays[key] = values;
        return this;
    }

    public string Text(string key) => Values.TryGetValue(key, out var v) ? v
        : throw new InvalidDataException($"component state has no '{key}'");

    public double Double(string key) => double.Parse(Text(key), NumberStyles.Float, CultureInfo.InvariantCulture);

    public long Long(string key) => long.Parse(Text(key), NumberStyles.Integer, CultureInfo.InvariantCulture);

    public ulong[] ULongs(string key)
    {
        string text = Text(key);
        return text.Length == 0 ? [] : [.. text.Split(',').Select(p => ulong.Parse(p, CultureInfo.InvariantCulture))];
    }

    public double[] Doubles(string key)
    {
        var bytes = Convert.FromBase64String(Text(key));
        var values = new double[bytes.Length / sizeof(double)];
        Buffer.BlockCopy(bytes, 0, values, 0, bytes.Length);
        return values;
    }

    public int[] Ints(string key)
    {
        var bytes = Convert.FromBase64String(Text(key));
        var values = new int[bytes.Length / sizeof(int)];
        Buffer.BlockCopy(bytes, 0, values, 0, bytes.Length);
        return values;
    }

    public T Json<T>(string key) => JsonSerializer.Deserialize<T>(Text(key), JsonOptions)
        ?? throw new InvalidDataException($"component state '{key}' is null");

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

    ComponentState SaveState();

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

    public StepContext(Batcher batch)
    {
        ArgumentNullException.ThrowIfNull(batch);
        Batch = batch;
        Labels = new int[batch.BatchSize];
        _weights = new float[batch.BatchSize];
        _final = new float[batch.BatchSize];
        WeightTensor = new Tensor(_final, batch.BatchSize);
    }

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
    void Apply(StepContext step);
}

/// <summary>The loss of a step against <see cref="StepContext.Labels"/> (or its targets), weighted when <see cref="StepContext.Weighted"/> and the weights are not applied after the backward. One per run.</summary>
public interface ILossStep : ITrainingComponent
{
    Tensor Loss(Tape tape, Tensor output, StepContext step);

    /// <summary>Before a step's first forward (e.g. estimate a transition matrix at an epoch boundary).</summary>
    void BeforeStep(StepContext step);
}

/// <summary>Per-sample weights from the step's output, before the loss (small-loss selection, co-teaching). First pass only.</summary>
public interface ISampleWeighting : ITrainingComponent
{
    void Weigh(Tensor output, StepContext step);
}

/// <summary>
/// Per-sample weights from per-sample gradients (gradient pruning): <see cref="BeforeLoss"/> runs
/// before the loss of every pass, <see cref="AfterBackward"/> after its backward, before the update.
/// </summary>
public interface IGradientWeighting : ITrainingComponent
{
    void BeforeLoss(Tensor output, StepContext step);

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
