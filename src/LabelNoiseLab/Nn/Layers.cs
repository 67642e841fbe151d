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
}

/// <summary>An element-wise activation as a layer (no parameters).</summary>
public sealed class Activation(ActivationKind kind) : Module
{
    public ActivationKind Kind { get; } = kind;

    protected override Tensor ForwardCore(Tape tape, Tensor x) => Kind switch
    {
        ActivationKind.Identity => x,
        ActivationKind.Relu => ReluOp.Instance.Forward(tape, x),
        ActivationKind.Gelu => GeluOp.Instance.Forward(tape, x),
        ActivationKind.Tanh => TanhOp.Instance.Forward(tape, x),
        ActivationKind.Erf => ErfOp.Instance.Forward(tape, x),
        ActivationKind.Sigmoid => SigmoidOp.Instance.Forward(tape, x),
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

/// <summary>Inverted dropout, active only while <see cref="Module.Training"/>.</summary>
public sealed class Dropout(float p, Tensors.Rng rng) : Module
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
    protected override Tensor ForwardCore(Tape tape, Tensor x) => MaxPool2dOp.Forward(tape, x, kernel, stride);
}

public sealed class AvgPool2d(int kernel, int stride) : Module
{
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
