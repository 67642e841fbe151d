using LabelNoiseLab.Autograd;

namespace LabelNoiseLab.Nn;

/// <summary>y = x·Wᵀ + b with W [out, in] (PyTorch's layout and names: weight, bias).</summary>
public sealed class Linear : Module
{
    /// <summary>A zero-initialised layer (see <see cref="Init.Apply"/>) from <paramref name="inputs"/> to <paramref name="outputs"/> features; throws an <see cref="ArgumentOutOfRangeException"/> for a size ≤ 0.</summary>
    public Linear(int inputs, int outputs, bool bias = true)
    {
        if (inputs <= 0 || outputs <= 0)
            throw new ArgumentOutOfRangeException(nameof(inputs), $"linear layer {inputs}→{outputs}: sizes must be positive");
        Inputs = inputs;
        Outputs = outputs;
        Weight = RegisterParameter("weight", new Tensor(outputs, inputs));
        Bias = bias ? RegisterParameter("bias", new Tensor(outputs)) : null;
    }

    /// <summary>Input features (in).</summary>
    public int Inputs { get; }
    /// <summary>Output features (out).</summary>
    public int Outputs { get; }
    /// <summary>W [out, in] (<c>weight</c>).</summary>
    public Tensor Weight { get; }
    /// <summary>b [out] (<c>bias</c>), or null without bias.</summary>
    public Tensor? Bias { get; }

    /// <summary>[B, in] → [B, out].</summary>
    protected override Tensor ForwardCore(Tape tape, Tensor x) => LinearOp.Forward(tape, x, Weight, Bias);
}

/// <summary>The element-wise activations a model can name.</summary>
public enum ActivationKind
{
    /// <summary>y = x.</summary>
    Identity,
    /// <summary>max(x, 0).</summary>
    Relu,
    /// <summary>Exact GELU, x·Φ(x).</summary>
    Gelu,
    /// <summary>tanh(x).</summary>
    Tanh,
    /// <summary>erf(x).</summary>
    Erf,
    /// <summary>1/(1 + e^−x).</summary>
    Sigmoid,
    /// <summary>Leaky ReLU with PyTorch's default slope 0.01 (cnn9); not a <c>model.activation</c> choice.</summary>
    LeakyRelu,
}

/// <summary>
/// An element-wise activation as a layer (no parameters). Models put one where a probe should read
/// (the activation probe reads every <see cref="Activation"/> module's output): the hidden
/// activations of an MLP, each residual block's output of a ResNet, each conv unit of cnn9, and an
/// identity at each transformer block's output.
/// </summary>
public sealed class Activation(ActivationKind kind) : Module
{
    private static readonly LeakyReluOp LeakyReluDefault = new(0.01f);

    /// <summary>The function applied.</summary>
    public ActivationKind Kind { get; } = kind;

    /// <inheritdoc/>
    protected override Tensor ForwardCore(Tape tape, Tensor x) => Kind switch
    {
        ActivationKind.Identity => x,
        ActivationKind.Relu => ReluOp.Instance.Forward(tape, x),
        ActivationKind.Gelu => GeluOp.Instance.Forward(tape, x),
        ActivationKind.Tanh => TanhOp.Instance.Forward(tape, x),
        ActivationKind.Erf => ErfOp.Instance.Forward(tape, x),
        ActivationKind.Sigmoid => SigmoidOp.Instance.Forward(tape, x),
        ActivationKind.LeakyRelu => LeakyReluDefault.Forward(tape, x),
        _ => throw new InvalidOperationException($"unknown activation {Kind}"),
    };

    /// <summary>The activation a <c>model.activation</c> value names (case-insensitive; identity, linear and none mean <see cref="ActivationKind.Identity"/>); throws an <see cref="ArgumentException"/> for any other name.</summary>
    internal static ActivationKind Parse(string name) => name.ToLowerInvariant() switch
    {
        "identity" or "linear" or "none" => ActivationKind.Identity,
        "relu" => ActivationKind.Relu,
        "gelu" => ActivationKind.Gelu,
        "tanh" => ActivationKind.Tanh,
        "erf" => ActivationKind.Erf,
        "sigmoid" => ActivationKind.Sigmoid,
        _ => throw new ArgumentException($"unknown activation '{name}' (expected relu, gelu, tanh, erf, sigmoid or identity)"),
    };
}

/// <summary>[N, ...] → [N, rest].</summary>
public sealed class Flatten : Module
{
    /// <inheritdoc/>
    protected override Tensor ForwardCore(Tape tape, Tensor x) => ReshapeOp.Flatten(tape, x);
}

/// <summary>A layer that draws random numbers (dropout masks); checkpoints store its generator's state.</summary>
public interface IRandomLayer
{
    /// <summary>The generator the layer draws from.</summary>
    Tensors.Rng Generator { get; }
}

/// <summary>Inverted dropout, active only while <see cref="Module.Training"/>.</summary>
public sealed class Dropout(float p, Tensors.Rng rng) : Module, IRandomLayer
{
    /// <summary>Probability of dropping an element, in [0, 1) (the constructor throws an <see cref="ArgumentOutOfRangeException"/> otherwise).</summary>
    public float P { get; } = p is >= 0f and < 1f ? p : throw new ArgumentOutOfRangeException(nameof(p), p, "dropout must be in [0, 1)");

    /// <summary>The mask generator (shared by a model's dropout layers); checkpoints store its state.</summary>
    public Tensors.Rng Generator => rng;

    /// <inheritdoc/>
    protected override Tensor ForwardCore(Tape tape, Tensor x) =>
        Training && P > 0f ? DropoutOp.Forward(tape, x, P, rng) : x;
}

/// <summary>2-D convolution, weight [Co, C, K, K], bias [Co].</summary>
public sealed class Conv2d : Module
{
    /// <summary>A zero-initialised K×K convolution (see <see cref="Init.Apply"/>); throws an <see cref="ArgumentOutOfRangeException"/> for non-positive channels, kernel or stride, or negative padding.</summary>
    public Conv2d(int inChannels, int outChannels, int kernel, int stride = 1, int padding = 0, bool bias = true)
    {
        if (inChannels <= 0 || outChannels <= 0 || kernel <= 0 || stride <= 0 || padding < 0)
            throw new ArgumentOutOfRangeException(nameof(kernel), $"conv2d {inChannels}→{outChannels}, kernel {kernel}, stride {stride}, padding {padding}: invalid");
        Stride = stride;
        Padding = padding;
        Weight = RegisterParameter("weight", new Tensor(outChannels, inChannels, kernel, kernel));
        Bias = bias ? RegisterParameter("bias", new Tensor(outChannels)) : null;
    }

    /// <summary>Step between windows, in pixels.</summary>
    public int Stride { get; }
    /// <summary>Zero padding on each side, in pixels.</summary>
    public int Padding { get; }
    /// <summary>[Co, C, K, K] (<c>weight</c>).</summary>
    public Tensor Weight { get; }
    /// <summary>[Co] (<c>bias</c>), or null without bias.</summary>
    public Tensor? Bias { get; }

    /// <summary>[N, C, H, W] → [N, Co, OH, OW] (see <see cref="Conv2dOp.Forward"/>).</summary>
    protected override Tensor ForwardCore(Tape tape, Tensor x) => Conv2dOp.Forward(tape, x, Weight, Bias, Stride, Padding);
}

/// <summary>Max pooling over <paramref name="kernel"/>×<paramref name="kernel"/> windows moved by <paramref name="stride"/>, no padding, on [N, C, H, W].</summary>
public sealed class MaxPool2d(int kernel, int stride) : Module
{
    /// <summary>Window side, in pixels.</summary>
    public int Kernel => kernel;

    /// <summary>Step between windows, in pixels.</summary>
    public int Stride => stride;

    /// <inheritdoc/>
    protected override Tensor ForwardCore(Tape tape, Tensor x) => MaxPool2dOp.Forward(tape, x, kernel, stride);
}

/// <summary>Average pooling over <paramref name="kernel"/>×<paramref name="kernel"/> windows moved by <paramref name="stride"/>, no padding, on [N, C, H, W].</summary>
public sealed class AvgPool2d(int kernel, int stride) : Module
{
    /// <summary>Window side, in pixels.</summary>
    public int Kernel => kernel;

    /// <summary>Step between windows, in pixels.</summary>
    public int Stride => stride;

    /// <inheritdoc/>
    protected override Tensor ForwardCore(Tape tape, Tensor x) => AvgPool2dOp.Forward(tape, x, kernel, stride);
}

/// <summary>Modules applied in order, named 0, 1, 2, ... as in PyTorch's nn.Sequential.</summary>
public sealed class Sequential : Module
{
    private readonly List<Module> _layers = [];

    /// <summary>A sequence of <paramref name="layers"/>, registered as children 0, 1, 2, ...</summary>
    public Sequential(params Module[] layers)
    {
        foreach (var layer in layers)
            Add(layer);
    }

    /// <summary>The modules, in order.</summary>
    public IReadOnlyList<Module> Layers => _layers;

    /// <summary>Appends <paramref name="layer"/> as the next numbered child.</summary>
    public void Add(Module layer) => _layers.Add(RegisterModule(_layers.Count.ToString(System.Globalization.CultureInfo.InvariantCulture), layer));

    /// <inheritdoc/>
    protected override Tensor ForwardCore(Tape tape, Tensor x)
    {
        foreach (var layer in _layers)
            x = layer.Forward(tape, x);
        return x;
    }
}

/// <summary>
/// Channel dropout (PyTorch's Dropout2d): zeroes whole channels of [N, C, H, W], active only
/// while <see cref="Module.Training"/>; its own seeded generator, stored in checkpoints.
/// </summary>
public sealed class Dropout2d(float p, Tensors.Rng rng) : Module, IRandomLayer
{
    /// <summary>Probability of dropping a channel, in [0, 1) (the constructor throws an <see cref="ArgumentOutOfRangeException"/> otherwise).</summary>
    public float P { get; } = p is >= 0f and < 1f ? p : throw new ArgumentOutOfRangeException(nameof(p), p, "dropout must be in [0, 1)");

    /// <summary>The mask generator; checkpoints store its state.</summary>
    public Tensors.Rng Generator => rng;

    /// <inheritdoc/>
    protected override Tensor ForwardCore(Tape tape, Tensor x) =>
        Training && P > 0f ? Dropout2dOp.Forward(tape, x, P, rng) : x;
}

/// <summary>Leaky ReLU with PyTorch's negative_slope (0.01 by default).</summary>
public sealed class LeakyRelu(float slope = 0.01f) : Module
{
    private readonly LeakyReluOp _op = new(slope);

    /// <summary>The slope for x ≤ 0.</summary>
    public float Slope => _op.Slope;

    /// <inheritdoc/>
    protected override Tensor ForwardCore(Tape tape, Tensor x) => _op.Forward(tape, x);
}

/// <summary>Global average pooling: [N, C, H, W] → [N, C].</summary>
public sealed class GlobalAvgPool2d : Module
{
    /// <inheritdoc/>
    protected override Tensor ForwardCore(Tape tape, Tensor x) => GlobalAvgPool2dOp.Forward(tape, x);
}

/// <summary>
/// Batch normalisation as PyTorch's BatchNorm1d/2d: affine weight (1) and bias (0), ε = 1e-5;
/// in training the batch statistics normalise and the running ones are updated with momentum
/// 0.1 (running_var from the unbiased batch variance), in evaluation the running ones
/// normalise. Buffers running_mean, running_var, num_batches_tracked (a float here).
/// </summary>
public abstract class BatchNorm : Module
{
    /// <summary>ε added to the variance (1e-5).</summary>
    public const float Eps = 1e-5f;
    /// <summary>Weight of the batch statistics in the running averages' update (0.1).</summary>
    public const float Momentum = 0.1f;
    private readonly float[] _batchMean;
    private readonly float[] _batchVariance;

    /// <summary>Normalisation of <paramref name="channels"/> channels; throws an <see cref="ArgumentOutOfRangeException"/> when it is not positive.</summary>
    protected BatchNorm(int channels)
    {
        if (channels <= 0)
            throw new ArgumentOutOfRangeException(nameof(channels), channels, "batch norm needs a positive channel count");
        Weight = RegisterParameter("weight", new Tensor(channels));
        Bias = RegisterParameter("bias", new Tensor(channels));
        Weight.Span.Fill(1f);
        RunningMean = RegisterBuffer("running_mean", new Tensor(channels));
        RunningVariance = RegisterBuffer("running_var", new Tensor(channels));
        RunningVariance.Span.Fill(1f);
        BatchesTracked = RegisterBuffer("num_batches_tracked", new Tensor(1));
        _batchMean = new float[channels];
        _batchVariance = new float[channels];
    }

    /// <summary>Number of channels C.</summary>
    public int Channels => Weight.Length;
    /// <summary>γ [C] (<c>weight</c>), starts at 1.</summary>
    public Tensor Weight { get; }
    /// <summary>β [C] (<c>bias</c>), starts at 0.</summary>
    public Tensor Bias { get; }
    /// <summary>Running mean [C] (<c>running_mean</c>), starts at 0.</summary>
    public Tensor RunningMean { get; }
    /// <summary>Running unbiased variance [C] (<c>running_var</c>), starts at 1.</summary>
    public Tensor RunningVariance { get; }
    /// <summary>Training batches seen [1] (<c>num_batches_tracked</c>).</summary>
    public Tensor BatchesTracked { get; }

    /// <summary>The rank the input must have (2 or 4).</summary>
    protected abstract int InputRank { get; }

    /// <summary>Normalises <paramref name="x"/> (and in training updates the running statistics); throws a <see cref="Tensors.ShapeException"/> when its rank is not <see cref="InputRank"/>.</summary>
    protected override Tensor ForwardCore(Tape tape, Tensor x)
    {
        if (x.Rank != InputRank)
            throw new Tensors.ShapeException($"{GetType().Name}: input {x.Describe()} must have rank {InputRank}");
        if (!Training)
            return BatchNormOp.Forward(tape, x, Weight, Bias, Eps, default, default, RunningMean.Span, RunningVariance.Span);
        var y = BatchNormOp.Forward(tape, x, Weight, Bias, Eps, _batchMean, _batchVariance);
        int count = x.Length / Channels;
        var rm = RunningMean.Span;
        var rv = RunningVariance.Span;
        for (int c = 0; c < Channels; c++)
        {
            rm[c] = (1f - Momentum) * rm[c] + Momentum * _batchMean[c];
            rv[c] = (1f - Momentum) * rv[c] + Momentum * (float)(_batchVariance[c] * (double)count / (count - 1));
        }
        BatchesTracked.Span[0] += 1f;
        return y;
    }
}

/// <summary>Batch norm over [N, C] (PyTorch's BatchNorm1d without a length dimension).</summary>
public sealed class BatchNorm1d(int channels) : BatchNorm(channels)
{
    /// <inheritdoc/>
    protected override int InputRank => 2;
}

/// <summary>Batch norm over [N, C, H, W] (PyTorch's BatchNorm2d).</summary>
public sealed class BatchNorm2d(int channels) : BatchNorm(channels)
{
    /// <inheritdoc/>
    protected override int InputRank => 4;
}

/// <summary>Group normalisation as PyTorch's GroupNorm(groups, channels): affine weight (1) and bias (0), ε = 1e-5; no running statistics, the same in training and evaluation.</summary>
public sealed class GroupNorm : Module
{
    /// <summary>ε added to the variance (1e-5).</summary>
    public const float Eps = 1e-5f;

    /// <summary>Normalisation of <paramref name="channels"/> channels in <paramref name="groups"/> groups; throws an <see cref="ArgumentOutOfRangeException"/> unless both are positive and the groups divide the channels.</summary>
    public GroupNorm(int groups, int channels)
    {
        if (groups <= 0 || channels <= 0 || channels % groups != 0)
            throw new ArgumentOutOfRangeException(nameof(groups), $"group norm: {groups} groups must divide {channels} channels");
        Groups = groups;
        Weight = RegisterParameter("weight", new Tensor(channels));
        Bias = RegisterParameter("bias", new Tensor(channels));
        Weight.Span.Fill(1f);
    }

    /// <summary>Number of groups G.</summary>
    public int Groups { get; }
    /// <summary>γ [C] (<c>weight</c>), starts at 1.</summary>
    public Tensor Weight { get; }
    /// <summary>β [C] (<c>bias</c>), starts at 0.</summary>
    public Tensor Bias { get; }

    /// <summary>
    /// The group count lnlab's models use for C channels: the largest divisor of C that is at most
    /// 32 and at most C/2 (so a group always holds two channels or more): 16 → 8, 32 → 16, 64 and up → 32.
    /// </summary>
    public static int DefaultGroups(int channels)
    {
        int limit = Math.Max(1, Math.Min(32, channels / 2));
        for (int g = limit; g > 1; g--)
            if (channels % g == 0)
                return g;
        return 1;
    }

    /// <inheritdoc/>
    protected override Tensor ForwardCore(Tape tape, Tensor x) => GroupNormOp.Forward(tape, x, Weight, Bias, Groups, Eps);
}
