using LabelNoiseLab.Autograd;
using LabelNoiseLab.Tensors;

namespace LabelNoiseLab.Nn;

/// <summary>
/// A network split into a feature extractor and a linear head, so probes can read the
/// penultimate features and re-apply the head to transformed features.
/// </summary>
public abstract class Model : Module
{
    /// <summary>The penultimate representation (the head's input).</summary>
    public abstract Tensor Features(Tape tape, Tensor x);

    /// <summary>The final linear layer, features → class scores.</summary>
    public abstract Linear Head { get; }

    /// <summary>Class scores [N, classes]: <see cref="Head"/> applied to <see cref="Features"/>.</summary>
    protected override Tensor ForwardCore(Tape tape, Tensor x) => Head.Forward(tape, Features(tape, x));
}

/// <summary>
/// Fully connected network: inputs → hidden[0] → ... → outputs with an activation after every
/// hidden layer (and optional dropout). Parameters are named like PyTorch's nn.Sequential:
/// <c>layers.0.weight</c>, <c>layers.2.weight</c>, ...
/// </summary>
public sealed class Mlp : Model
{
    private readonly Sequential _layers;

    /// <summary>
    /// An MLP (zero weights until <see cref="Init.Apply"/>); images [N, ...] are flattened to [N, inputs].
    /// Throws an <see cref="ArgumentNullException"/> when <paramref name="dropout"/> &gt; 0 without <paramref name="dropoutRng"/>.
    /// </summary>
    /// <param name="hidden">Widths of the hidden layers (empty: a linear model).</param>
    /// <param name="dropout">Dropout rate after each hidden activation (0: none).</param>
    public Mlp(int inputs, IReadOnlyList<int> hidden, int outputs, ActivationKind activation = ActivationKind.Relu,
        float dropout = 0f, Rng? dropoutRng = null, bool bias = true)
    {
        ArgumentNullException.ThrowIfNull(hidden);
        _layers = RegisterModule("layers", new Sequential());
        int width = inputs;
        foreach (int h in hidden)
        {
            _layers.Add(new Linear(width, h, bias));
            _layers.Add(new Activation(activation));
            if (dropout > 0f)
                _layers.Add(new Dropout(dropout, dropoutRng ?? throw new ArgumentNullException(nameof(dropoutRng), "dropout needs a generator")));
            width = h;
        }
        _layers.Add(new Linear(width, outputs, bias));
        Hidden = [.. hidden];
    }

    /// <summary>Widths of the hidden layers.</summary>
    public IReadOnlyList<int> Hidden { get; }

    /// <summary>The layers in order (Linear, Activation, optional Dropout, ..., the head last).</summary>
    public IReadOnlyList<Module> Layers => _layers.Layers;

    /// <inheritdoc/>
    public override Linear Head => (Linear)_layers.Layers[^1];

    /// <inheritdoc/>
    public override Tensor Features(Tape tape, Tensor x)
    {
        if (x.Rank > 2)
            x = ReshapeOp.Flatten(tape, x);
        var layers = _layers.Layers;
        for (int i = 0; i < layers.Count - 1; i++)
            x = layers[i].Forward(tape, x);
        return x;
    }
}

/// <summary>
/// f(x) = aᵀWx: W [m, d] (<c>first.weight</c>), a stored as the [1, m] weight of the head
/// (<c>second.weight</c>); no bias, no activation. NTK-style init W ~ N(0, scale²/d),
/// a ~ N(0, scale²/m).
/// </summary>
public sealed class TwoLayerLinear : Model
{
    private readonly Linear _first;
    private readonly Linear _second;

    /// <summary>The model with W [<paramref name="width"/>, <paramref name="inputs"/>] and a [<paramref name="outputs"/>, <paramref name="width"/>] (zero until <see cref="Init.Apply"/>).</summary>
    public TwoLayerLinear(int inputs, int width, int outputs = 1)
    {
        _first = RegisterModule("first", new Linear(inputs, width, bias: false));
        _second = RegisterModule("second", new Linear(width, outputs, bias: false));
    }

    /// <summary>First-layer weights W [m, d]; row i is neuron w_i.</summary>
    public Tensor W => _first.Weight;

    /// <summary>Second-layer weights a [outputs, m].</summary>
    public Tensor A => _second.Weight;

    /// <summary>Input dimension d.</summary>
    public int InputDim => _first.Inputs;

    /// <summary>Hidden width m.</summary>
    public int Width => _first.Outputs;

    /// <inheritdoc/>
    public override Linear Head => _second;

    /// <summary>Wx [N, m]; images are flattened first.</summary>
    public override Tensor Features(Tape tape, Tensor x) => _first.Forward(tape, x.Rank > 2 ? ReshapeOp.Flatten(tape, x) : x);

    /// <summary>The effective linear predictor θ = Wᵀa (length d; first output).</summary>
    public float[] EffectivePredictor()
    {
        var theta = new float[InputDim];
        Blas.Sgemm(true, false, InputDim, 1, Width, 1f, W.Span, InputDim, A.Span, 1, 0f, theta, 1);
        return theta;
    }
}

/// <summary>
/// A small convolutional network for 28×28×1 or 32×32×3 images: two conv(3×3, pad 1)–ReLU–
/// maxpool(2) blocks (16 and 32 channels), a 128-unit hidden layer, a linear head. ReLU and
/// max-pooling unless others are asked for (average pooling and a smooth activation make the
/// network differentiable everywhere).
/// </summary>
public sealed class SmallCnn : Model
{
    private readonly Sequential _features;
    private readonly Linear _head;

    /// <summary>
    /// The network for <paramref name="channels"/>×<paramref name="imageSize"/>² images (zero weights until <see cref="Init.Apply"/>);
    /// throws an <see cref="ArgumentOutOfRangeException"/> when <paramref name="imageSize"/> is not divisible by 4.
    /// </summary>
    /// <param name="width">Channels of the first convolution (the second has twice as many).</param>
    /// <param name="hidden">Units of the hidden layer (the features' width).</param>
    /// <param name="averagePooling">Average instead of max pooling.</param>
    public SmallCnn(int channels, int imageSize, int classes, int width = 16, int hidden = 128,
        ActivationKind activation = ActivationKind.Relu, bool averagePooling = false)
    {
        if (imageSize % 4 != 0)
            throw new ArgumentOutOfRangeException(nameof(imageSize), imageSize, "SmallCnn needs an image size divisible by 4 (28 or 32)");
        int pooled = imageSize / 4;
        _features = RegisterModule("features", new Sequential(
            new Conv2d(channels, width, 3, padding: 1), new Activation(activation), Pool(),
            new Conv2d(width, 2 * width, 3, padding: 1), new Activation(activation), Pool(),
            new Flatten(),
            new Linear(2 * width * pooled * pooled, hidden), new Activation(activation)));
        _head = RegisterModule("head", new Linear(hidden, classes));
        Module Pool() => averagePooling ? new AvgPool2d(2, 2) : new MaxPool2d(2, 2);
        Channels = channels;
        ImageSize = imageSize;
    }

    /// <summary>Input image channels.</summary>
    public int Channels { get; }

    /// <summary>Input image side, in pixels.</summary>
    public int ImageSize { get; }

    /// <summary>The feature extractor's layers in order (the head is not among them).</summary>
    public IReadOnlyList<Module> Layers => _features.Layers;

    /// <inheritdoc/>
    public override Linear Head => _head;

    /// <summary>Features [N, hidden] of images [N, C, H, W] or flattened [N, C·H·W].</summary>
    public override Tensor Features(Tape tape, Tensor x)
    {
        if (x.Rank == 2)
            x = ReshapeOp.Forward(tape, x, [x.Rows, Channels, ImageSize, ImageSize]);
        return _features.Forward(tape, x);
    }
}
