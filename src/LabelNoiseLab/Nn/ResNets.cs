using LabelNoiseLab.Autograd;
using LabelNoiseLab.Tensors;

namespace LabelNoiseLab.Nn;

/// <summary>Which normalisation the convolutional models put after each convolution.</summary>
public enum NormKind
{
    /// <summary>BatchNorm2d: mixes the samples of a batch in training; running statistics in evaluation.</summary>
    Batch,

    /// <summary>GroupNorm with <see cref="GroupNorm.DefaultGroups"/> groups: per sample, the same in training and evaluation.</summary>
    Group,
}

internal static class Norms
{
    public static Module Create(NormKind kind, int channels) => kind == NormKind.Batch
        ? new BatchNorm2d(channels)
        : new GroupNorm(GroupNorm.DefaultGroups(channels), channels);

    /// <summary>max(1, round(channels · width)).</summary>
    public static int Scaled(int channels, double width) => Math.Max(1, (int)Math.Round(channels * width, MidpointRounding.AwayFromZero));

    public static Tensor AsImages(Tape tape, Tensor x, int channels, int height, int width) =>
        x.Rank == 2 ? ReshapeOp.Forward(tape, x, [x.Rows, channels, height, width]) : x;
}

/// <summary>
/// The basic residual block of He et al. (2016): conv3×3(stride s)–norm–ReLU–conv3×3–norm, plus
/// the shortcut, then ReLU. The shortcut is the identity when the shape is kept, otherwise a
/// 1×1 convolution with stride s and a norm (option B, "projection"), as torchvision-style CIFAR
/// ResNets do. Names as in PyTorch: conv1, bn1, conv2, bn2, shortcut.0 (conv), shortcut.1 (norm).
/// </summary>
public sealed class BasicBlock : Module
{
    private readonly Conv2d _conv1;
    private readonly Module _bn1;
    private readonly Conv2d _conv2;
    private readonly Module _bn2;
    private readonly Sequential _shortcut;
    private readonly Activation _relu;

    /// <summary>A block from <paramref name="inChannels"/> to <paramref name="outChannels"/> channels whose first convolution has stride <paramref name="stride"/>.</summary>
    public BasicBlock(int inChannels, int outChannels, int stride, NormKind norm)
    {
        _conv1 = RegisterModule("conv1", new Conv2d(inChannels, outChannels, 3, stride, padding: 1, bias: false));
        _bn1 = RegisterModule("bn1", Norms.Create(norm, outChannels));
        _conv2 = RegisterModule("conv2", new Conv2d(outChannels, outChannels, 3, 1, padding: 1, bias: false));
        _bn2 = RegisterModule("bn2", Norms.Create(norm, outChannels));
        _shortcut = RegisterModule("shortcut", stride != 1 || inChannels != outChannels
            ? new Sequential(new Conv2d(inChannels, outChannels, 1, stride, bias: false), Norms.Create(norm, outChannels))
            : new Sequential());
        _relu = RegisterModule("relu", new Activation(ActivationKind.Relu)); // the block's output (activation probe); no parameters
    }

    /// <inheritdoc/>
    protected override Tensor ForwardCore(Tape tape, Tensor x)
    {
        var h = ReluOp.Instance.Forward(tape, _bn1.Forward(tape, _conv1.Forward(tape, x)));
        h = _bn2.Forward(tape, _conv2.Forward(tape, h));
        return _relu.Forward(tape, AddOp.Forward(tape, h, _shortcut.Forward(tape, x)));
    }
}

/// <summary>
/// The CIFAR ResNet of He et al. (2016, §4.2): depth 6n + 2 — a 3×3 convolution to 16·width
/// channels, three stages of n basic blocks with 16, 32, 64 (× width) channels (the second and
/// third start with stride 2), global average pooling and a linear head. Works on any square
/// image (28×28×1 and 32×32×3 alike). Parameter names follow PyTorch's layout of the same tree:
/// <c>conv1.weight</c>, <c>bn1.running_mean</c>, <c>layer1.0.conv1.weight</c>,
/// <c>layer2.0.shortcut.0.weight</c>, <c>linear.weight</c>.
/// </summary>
public sealed class ResNet : Model
{
    private readonly Conv2d _conv1;
    private readonly Module _bn1;
    private readonly Sequential[] _stages;
    private readonly Linear _linear;
    private readonly Activation _relu;

    /// <summary>
    /// The network for <paramref name="channels"/>×<paramref name="imageSize"/>² images; throws an
    /// <see cref="ArgumentOutOfRangeException"/> for a depth that is not 6n + 2 (n ≥ 1) or a width that is not positive.
    /// </summary>
    /// <param name="width">Channel multiplier (rounded, at least one channel).</param>
    public ResNet(int channels, int imageSize, int classes, int depth = 20, double width = 1.0, NormKind norm = NormKind.Batch)
    {
        if (depth < 8 || (depth - 2) % 6 != 0)
            throw new ArgumentOutOfRangeException(nameof(depth), depth, "a CIFAR ResNet has depth 6n + 2 (8, 14, 20, 32, 44, 56, ...)");
        if (width <= 0)
            throw new ArgumentOutOfRangeException(nameof(width), width, "width multiplier must be positive");
        Channels = channels;
        ImageSize = imageSize;
        Depth = depth;
        int blocks = (depth - 2) / 6;
        int[] widths = [Norms.Scaled(16, width), Norms.Scaled(32, width), Norms.Scaled(64, width)];
        _conv1 = RegisterModule("conv1", new Conv2d(channels, widths[0], 3, 1, padding: 1, bias: false));
        _bn1 = RegisterModule("bn1", Norms.Create(norm, widths[0]));
        _relu = RegisterModule("relu", new Activation(ActivationKind.Relu)); // the stem's output (activation probe)
        _stages = new Sequential[3];
        int inChannels = widths[0];
        for (int s = 0; s < 3; s++)
        {
            var stage = new Sequential();
            for (int b = 0; b < blocks; b++)
            {
                stage.Add(new BasicBlock(inChannels, widths[s], b == 0 && s > 0 ? 2 : 1, norm));
                inChannels = widths[s];
            }
            _stages[s] = RegisterModule($"layer{s + 1}", stage);
        }
        _linear = RegisterModule("linear", new Linear(widths[2], classes));
    }

    /// <summary>Input image channels.</summary>
    public int Channels { get; }
    /// <summary>Input image side, in pixels.</summary>
    public int ImageSize { get; }
    /// <summary>Number of weighted layers, 6n + 2.</summary>
    public int Depth { get; }

    /// <inheritdoc/>
    public override Linear Head => _linear;

    /// <summary>Pooled features [N, 64·width] of images [N, C, H, W] or flattened [N, C·H·W].</summary>
    public override Tensor Features(Tape tape, Tensor x)
    {
        x = Norms.AsImages(tape, x, Channels, ImageSize, ImageSize);
        var h = _relu.Forward(tape, _bn1.Forward(tape, _conv1.Forward(tape, x)));
        foreach (var stage in _stages)
            h = stage.Forward(tape, h);
        return GlobalAvgPool2dOp.Forward(tape, h);
    }
}

/// <summary>
/// The 9-layer CNN of the Co-teaching benchmarks (Han et al. 2018): three 3×3 convolutions of
/// 128 channels (padding 1), max-pool 2, Dropout2d 0.25; three of 256, max-pool 2, Dropout2d
/// 0.25; three 3×3 convolutions without padding to 512, 256, 128 channels; every convolution
/// followed by a norm and LeakyReLU(0.01); global average pooling and a linear head. Channel
/// counts × width. Names as the reference PyTorch code: <c>c1</c>…<c>c9</c>, <c>bn1</c>…<c>bn9</c>, <c>l_c1</c>.
/// Needs images of side 28 or more (three unpadded convolutions after two poolings).
/// </summary>
public sealed class Cnn9 : Model
{
    /// <summary>Rate of the two Dropout2d layers (0.25).</summary>
    public const float DropoutRate = 0.25f;
    private static readonly int[] BaseChannels = [128, 128, 128, 256, 256, 256, 512, 256, 128];
    private readonly Conv2d[] _convs = new Conv2d[9];
    private readonly Module[] _norms = new Module[9];
    private readonly Activation[] _acts = new Activation[9];
    private readonly MaxPool2d _pool = new(2, 2);
    private readonly Dropout2d _drop1;
    private readonly Dropout2d _drop2;
    private readonly Linear _head;

    /// <summary>
    /// The network for <paramref name="channels"/>×<paramref name="imageSize"/>² images, dropout masks from <paramref name="dropoutRng"/>;
    /// throws an <see cref="ArgumentOutOfRangeException"/> for images smaller than 28 or a width that is not positive.
    /// </summary>
    /// <param name="width">Channel multiplier (rounded, at least one channel; 1 is the paper's network).</param>
    public Cnn9(int channels, int imageSize, int classes, Rng dropoutRng, double width = 0.25, NormKind norm = NormKind.Batch)
    {
        if (imageSize / 4 < 7)
            throw new ArgumentOutOfRangeException(nameof(imageSize), imageSize, "cnn9 needs images of side 28 or more");
        if (width <= 0)
            throw new ArgumentOutOfRangeException(nameof(width), width, "width multiplier must be positive");
        Channels = channels;
        ImageSize = imageSize;
        int inChannels = channels;
        for (int i = 0; i < 9; i++)
        {
            int outChannels = Norms.Scaled(BaseChannels[i], width);
            _convs[i] = RegisterModule($"c{i + 1}", new Conv2d(inChannels, outChannels, 3, 1, padding: i < 6 ? 1 : 0));
            inChannels = outChannels;
        }
        _head = RegisterModule("l_c1", new Linear(inChannels, classes));
        for (int i = 0; i < 9; i++)
            _norms[i] = RegisterModule($"bn{i + 1}", Norms.Create(norm, _convs[i].Weight.Dim(0)));
        for (int i = 0; i < 9; i++)
            _acts[i] = RegisterModule($"act{i + 1}", new Activation(ActivationKind.LeakyRelu)); // each unit's output (activation probe)
        _drop1 = RegisterModule("dropout1", new Dropout2d(DropoutRate, dropoutRng));
        _drop2 = RegisterModule("dropout2", new Dropout2d(DropoutRate, dropoutRng));
    }

    /// <summary>Input image channels.</summary>
    public int Channels { get; }
    /// <summary>Input image side, in pixels.</summary>
    public int ImageSize { get; }

    /// <inheritdoc/>
    public override Linear Head => _head;

    /// <summary>Pooled features [N, 128·width] of images [N, C, H, W] or flattened [N, C·H·W].</summary>
    public override Tensor Features(Tape tape, Tensor x)
    {
        var h = Norms.AsImages(tape, x, Channels, ImageSize, ImageSize);
        for (int i = 0; i < 9; i++)
        {
            h = _acts[i].Forward(tape, _norms[i].Forward(tape, _convs[i].Forward(tape, h)));
            if (i == 2 || i == 5)
                h = (i == 2 ? _drop1 : _drop2).Forward(tape, _pool.Forward(tape, h));
        }
        return GlobalAvgPool2dOp.Forward(tape, h);
    }
}
