using LabelNoiseLab.Autograd;

namespace LabelNoiseLab.Nn;

/// <summary>y = x·Wᵀ + b with W [out, in] (PyTorch's layout and names: weight, bias).</summary>
public sealed class Linear : Module
{
    public Linear(int inputs, int outputs, bool bias = true)
    {
        if (inputs <= 0 || outputs <= 0)
            throw new ArgumentOutOfRangeException(nameof(inputs), $"linear layer {inputs}→{outputs}: sizes must be positive");
        Inputs = inputs;
        Outputs = outputs;
        Weight = RegisterParameter("weight", new Tensor(outputs, inputs));
        Bias = bias ? RegisterParameter("bias", new Tensor(outputs)) : null;
    }

    public int Inputs { get; }
    public int Outputs { get; }
    public Tensor Weight { get; }
    public Tensor? Bias { get; }

    protected override Tensor ForwardCore(Tape tape, Tensor x) => LinearOp.Forward(tape, x, Weight, Bias);
}

/// <summary>The element-wise activations a model can name.</summary>
public enum ActivationKind
{
    Identity,
    Relu,
    Gelu,
    Tanh,
    Erf,
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

    public ActivationKind Kind { get; } = kind;

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

    public static ActivationKind Parse(string name) => name.ToLowerInvariant() switch
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
    protected override Tensor ForwardCore(Tape tape, Tensor x) => ReshapeOp.Flatten(tape, x);
}

/// <summary>A layer that draws random numbers (dropout masks); checkpoints store its generator's state.</summary>
public interface IRandomLayer
{
    Tensors.Rng Generator { get; }
}

/// <summary>Inverted dropout, active only while <see cref="Module.Training"/>.</summary>
public sealed class Dropout(float p, Tensors.Rng rng) : Module, IRandomLayer
{
    public float P { get; } = p is >= 0f and < 1f ? p : throw new ArgumentOutOfRangeException(nameof(p), p, "dropout must be in [0, 1)");

    /// <summary>The mask generator (shared by a model's dropout layers); checkpoints store its state.</summary>
    public Tensors.Rng Generator => rng;

    protected override Tensor ForwardCore(Tape tape, Tensor x) =>
        Training && P > 0f ? DropoutOp.Forward(tape, x, P, rng) : x;
}

/// <summary>2-D convolution, weight [Co, C, K, K], bias [Co].</summary>
public sealed class Conv2d : Module
{
    public Conv2d(int inChannels, int outChannels, int kernel, int stride = 1, int padding = 0, bool bias = true)
    {
        if (inChannels <= 0 || outChannels <= 0 || kernel <= 0 || stride <= 0 || padding < 0)
            throw new ArgumentOutOfRangeException(nameof(kernel), $"conv2d {inChannels}→{outChannels}, kernel {kernel}, stride {stride}, padding {padding}: invalid");
        Stride = stride;
        Padding = padding;
        Weight = RegisterParameter("weight", new Tensor(outChannels, inChannels, kernel, kernel));
        Bias = bias ? RegisterParameter("bias", new Tensor(outChannels)) : null;
    }

    public int Stride { get; }
    public int Padding { get; }
    public Tensor Weight { get; }
    public Tensor? Bias { get; }

    protected override Tensor ForwardCore(Tape tape, Tensor x) => Conv2dOp.Forward(tape, x, Weight, Bias, Stride, Padding);
}

public sealed class MaxPool2d(int kernel, int stride) : Module
{
    public int Kernel => kernel;

    public int Stride => stride;

    protected override Tensor ForwardCore(Tape tape, Tensor x) => MaxPool2dOp.Forward(tape, x, kernel, stride);
}

public sealed class AvgPool2d(int kernel, int stride) : Module
{
    public int Kernel => kernel;

    public int Stride => stride;

    protected override Tensor ForwardCore(Tape tape, Tensor x) => AvgPool2dOp.Forward(tape, x, kernel, stride);
}

/// <summary>Modules applied in order, named 0, 1, 2, ... as in PyTorch's nn.Sequential.</summary>
public sealed class Sequential : Module
{
    private readonly List<Module> _layers = [];

    public Sequential(params Module[] layers)
    {
        foreach (var layer in layers)
            Add(layer);
    }

    public IReadOnlyList<Module> Layers => _layers;

    public void Add(Module layer) => _layers.Add(RegisterModule(_layers.Count.ToString(System.Globalization.CultureInfo.InvariantCulture), layer));

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
    public float P { get; } = p is >= 0f and < 1f ? p : throw new ArgumentOutOfRangeException(nameof(p), p, "dropout must be in [0, 1)");

    public Tensors.Rng Generator => rng;

    protected override Tensor ForwardCore(Tape tape, Tensor x) =>
        Training && P > 0f ? Dropout2dOp.Forward(tape, x, P, rng) : x;
}

/// <summary>Leaky ReLU with PyTorch's negative_slope (0.01 by default).</summary>
public sealed class LeakyRelu(float slope = 0.01f) : Module
{
    private readonly LeakyReluOp _op = new(slope);

    public float Slope => _op.Slope;

    protected override Tensor ForwardCore(Tape tape, Tensor x) => _op.Forward(tape, x);
}

/// <summary>Global average pooling: [N, C, H, W] → [N, C].</summary>
public sealed class GlobalAvgPool2d : Module
{
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
    public const float Eps = 1e-5f;
    public const float Momentum = 0.1f;
    private readonly float[] _batchMean;
    private readonly float[] _batchVariance;

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

    public int Channels => Weight.Length;
    public Tensor Weight { get; }
    public Tensor Bias { get; }
    public Tensor RunningMean { get; }
    public Tensor RunningVariance { get; }
    public Tensor BatchesTracked { get; }

    protected abstract int InputRank { get; }

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
    protected override int InputRank => 2;
}

/// <summary>Batch norm over [N, C, H, W] (PyTorch's BatchNorm2d).</summary>
public sealed class BatchNorm2d(int channels) : BatchNorm(channels)
{
    protected override int InputRank => 4;
}

/// <summary>Group normalisation as PyTorch's GroupNorm(groups, channels): affine weight (1) and bias (0), ε = 1e-5; no running statistics, the same in training and evaluation.</summary>
public sealed class GroupNorm : Module
{
    public const float Eps = 1e-5f;

    public GroupNorm(int groups, int channels)
    {
        if (groups <= 0 || channels <= 0 || channels % groups != 0)
            throw new ArgumentOutOfRangeException(nameof(groups), $"group norm: {groups} groups must divide {channels} channels");
        Groups = groups;
        Weight = RegisterParameter("weight", new Tensor(channels));
        Bias = RegisterParameter("bias", new Tensor(channels));
        Weight.Span.Fill(1f);
    }

    public int Groups { get; }
    public Tensor Weight { get; }
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

    protected override Tensor ForwardCore(Tape tape, Tensor x) => GroupNormOp.Forward(tape, x, Weight, Bias, Groups, Eps);
}
