using LabelNoiseLab.Autograd;

namespace LabelNoiseLab.Nn;

/// <summary>PyTorch's nn.LayerNorm(D): over the last dimension, affine weight (1) and bias (0), ε = 1e-5.</summary>
public sealed class LayerNorm : Module
{
    /// <summary>ε added to the variance (1e-5).</summary>
    public const float Eps = 1e-5f;

    /// <summary>Normalisation over a last dimension of size <paramref name="dim"/>; throws an <see cref="ArgumentOutOfRangeException"/> when it is not positive.</summary>
    public LayerNorm(int dim)
    {
        if (dim <= 0)
            throw new ArgumentOutOfRangeException(nameof(dim), dim, "layer norm needs a positive dimension");
        Weight = RegisterParameter("weight", new Tensor(dim));
        Bias = RegisterParameter("bias", new Tensor(dim));
        Weight.Span.Fill(1f);
    }

    /// <summary>γ [D] (<c>weight</c>), starts at 1.</summary>
    public Tensor Weight { get; }
    /// <summary>β [D] (<c>bias</c>), starts at 0.</summary>
    public Tensor Bias { get; }

    /// <inheritdoc/>
    protected override Tensor ForwardCore(Tape tape, Tensor x) => LayerNormOp.Forward(tape, x, Weight, Bias, Eps);
}

/// <summary>
/// Patch embedding: images [N, C, H, W] → tokens [N·T, D] by a convolution with kernel = stride
/// = patch (<c>proj</c>, a Conv2d with weight [D, C, p, p] and bias [D], so the checkpoint is
/// PyTorch's <c>patch_embed.proj.weight</c>), computed as patch extraction and one GEMM.
/// </summary>
public sealed class PatchEmbed : Module
{
    private readonly Conv2d _proj;

    /// <summary>Embeds <paramref name="patch"/>×<paramref name="patch"/> patches of <paramref name="channels"/>-channel images into <paramref name="dim"/> features.</summary>
    public PatchEmbed(int channels, int dim, int patch)
    {
        Patch = patch;
        _proj = RegisterModule("proj", new Conv2d(channels, dim, patch, patch));
    }

    /// <summary>Patch side p, in pixels.</summary>
    public int Patch { get; }

    /// <summary>The projection, a Conv2d with weight [D, C, p, p] and bias [D].</summary>
    public Conv2d Proj => _proj;

    /// <summary>[N, C, H, W] → [N·T, D]; throws a <see cref="Tensors.ShapeException"/> unless H and W are divisible by p.</summary>
    protected override Tensor ForwardCore(Tape tape, Tensor x)
    {
        var patches = PatchifyOp.Forward(tape, x, Patch);
        var weight = ReshapeOp.Forward(tape, _proj.Weight, [_proj.Weight.Dim(0), _proj.Weight.RowLength]);
        return LinearOp.Forward(tape, patches, weight, _proj.Bias);
    }
}

/// <summary>
/// Token assembly (<see cref="TokenEmbedOp"/>) as a hookable module: the class token and position
/// embeddings are the <see cref="VisionTransformer"/>'s own parameters (timm's names
/// <c>cls_token</c>, <c>pos_embed</c>), so this module is not registered as a child; it exists so
/// that hooks (per-sample gradients) see the gradient of the assembled tokens [N·T', D].
/// </summary>
public sealed class TokenEmbedding(int patches, Tensor? cls, Tensor pos) : Module
{
    /// <summary>Patch tokens per image (without the class token).</summary>
    public int Patches { get; } = patches;
    /// <summary>The class token [1, 1, D], or null without one.</summary>
    public Tensor? Cls { get; } = cls;
    /// <summary>The position embeddings [1, T', D].</summary>
    public Tensor Pos { get; } = pos;

    /// <summary>Patch embeddings [N·T, D] → tokens [N·T', D] (see <see cref="TokenEmbedOp"/>).</summary>
    protected override Tensor ForwardCore(Tape tape, Tensor x) => TokenEmbedOp.Forward(tape, x, Patches, Cls, Pos);
}

/// <summary>
/// Multi-head self-attention on tokens [N·T, D]: <c>qkv</c> Linear(D, 3D), scaled dot-product
/// attention per head (<see cref="SelfAttentionOp"/>), <c>proj</c> Linear(D, D).
/// </summary>
public sealed class MultiHeadAttention : Module
{
    private readonly Linear _qkv;
    private readonly Linear _proj;

    /// <summary>Attention over <paramref name="tokens"/> tokens of dimension <paramref name="dim"/> in <paramref name="heads"/> heads; throws an <see cref="ArgumentOutOfRangeException"/> unless the heads divide the dimension.</summary>
    public MultiHeadAttention(int dim, int heads, int tokens)
    {
        if (heads <= 0 || dim % heads != 0)
            throw new ArgumentOutOfRangeException(nameof(heads), heads, $"the number of heads must divide the dimension {dim}");
        Heads = heads;
        Tokens = tokens;
        _qkv = RegisterModule("qkv", new Linear(dim, 3 * dim));
        _proj = RegisterModule("proj", new Linear(dim, dim));
    }

    /// <summary>Number of heads H.</summary>
    public int Heads { get; }
    /// <summary>Tokens per sample T (the input has N·T rows).</summary>
    public int Tokens { get; }

    /// <summary>[N·T, D] → [N·T, D].</summary>
    protected override Tensor ForwardCore(Tape tape, Tensor x) =>
        _proj.Forward(tape, SelfAttentionOp.Forward(tape, _qkv.Forward(tape, x), Tokens, Heads));
}

/// <summary>The transformer MLP: <c>fc1</c> Linear(D, hidden), exact (erf) GELU, <c>fc2</c> Linear(hidden, D).</summary>
public sealed class TransformerMlp : Module
{
    private readonly Linear _fc1;
    private readonly Linear _fc2;

    /// <summary>An MLP D → <paramref name="hidden"/> → D for D = <paramref name="dim"/>.</summary>
    public TransformerMlp(int dim, int hidden)
    {
        _fc1 = RegisterModule("fc1", new Linear(dim, hidden));
        _fc2 = RegisterModule("fc2", new Linear(hidden, dim));
    }

    /// <summary>[R, D] → [R, D].</summary>
    protected override Tensor ForwardCore(Tape tape, Tensor x) =>
        _fc2.Forward(tape, GeluOp.Instance.Forward(tape, _fc1.Forward(tape, x)));
}

/// <summary>A pre-norm transformer block: x + attn(norm1(x)), then x + mlp(norm2(x)).</summary>
public sealed class TransformerBlock : Module
{
    private readonly LayerNorm _norm1;
    private readonly MultiHeadAttention _attn;
    private readonly LayerNorm _norm2;
    private readonly TransformerMlp _mlp;
    private readonly Activation _out;

    /// <summary>A block on <paramref name="tokens"/> tokens of dimension <paramref name="dim"/>, with <paramref name="heads"/> attention heads and an MLP of width <paramref name="hidden"/>.</summary>
    public TransformerBlock(int dim, int heads, int hidden, int tokens)
    {
        Tokens = tokens;
        _norm1 = RegisterModule("norm1", new LayerNorm(dim));
        _attn = RegisterModule("attn", new MultiHeadAttention(dim, heads, tokens));
        _norm2 = RegisterModule("norm2", new LayerNorm(dim));
        _mlp = RegisterModule("mlp", new TransformerMlp(dim, hidden));
        _out = RegisterModule("out", new Activation(ActivationKind.Identity));
    }

    /// <summary>Tokens per sample T (the input has N·T rows).</summary>
    public int Tokens { get; }

    /// <summary>
    /// The residual stream after the block. It passes through <c>out</c>, an identity, as one row
    /// per sample [N, T·D] (views, no copy), so hooks on it (the activation probe) see a sample's
    /// tokens as one row.
    /// </summary>
    protected override Tensor ForwardCore(Tape tape, Tensor x)
    {
        x = AddOp.Forward(tape, x, _attn.Forward(tape, _norm1.Forward(tape, x)));
        x = AddOp.Forward(tape, x, _mlp.Forward(tape, _norm2.Forward(tape, x)));
        int d = x.RowLength, n = x.Rows / Tokens;
        var perSample = _out.Forward(tape, ReshapeOp.Forward(tape, x, [n, Tokens * d]));
        return ReshapeOp.Forward(tape, perSample, [n * Tokens, d]);
    }
}

/// <summary>
/// A small Vision Transformer (Dosovitskiy et al. 2021) for square images: p×p patches embedded
/// to D, an optional class token, learned position embeddings, <c>depth</c> pre-norm blocks
/// (LayerNorm, multi-head self-attention, LayerNorm, GELU MLP), a final LayerNorm, pooling
/// (the class token or the mean over tokens) and a linear head. No dropout. Names as timm's
/// VisionTransformer: <c>cls_token</c> [1, 1, D], <c>pos_embed</c> [1, T, D],
/// <c>patch_embed.proj.weight</c> [D, C, p, p], <c>blocks.0.norm1.weight</c>,
/// <c>blocks.0.attn.qkv.weight</c> [3D, D], <c>blocks.0.attn.proj.weight</c>,
/// <c>blocks.0.norm2.weight</c>, <c>blocks.0.mlp.fc1.weight</c>, <c>blocks.0.mlp.fc2.weight</c>,
/// <c>norm.weight</c>, <c>head.weight</c>. cls_token and pos_embed start as N(0, 0.02²)
/// (<see cref="Init.Apply"/>).
/// </summary>
public sealed class VisionTransformer : Model
{
    /// <summary>Standard deviation of the class token's and position embeddings' initial values (0.02).</summary>
    public const float EmbeddingStd = 0.02f;
    private readonly Tensor? _clsToken;
    private readonly Tensor _posEmbed;
    private readonly TokenEmbedding _tokenEmbed;
    private readonly PatchEmbed _patchEmbed;
    private readonly Sequential _blocks;
    private readonly LayerNorm _norm;
    private readonly Linear _head;

    /// <summary>
    /// The network for <paramref name="channels"/>×<paramref name="imageSize"/>² images (linear, convolution and embedding weights zero until <see cref="Init.Apply"/>);
    /// throws an <see cref="ArgumentOutOfRangeException"/> when the patch does not divide the image side, the dimension or depth is not
    /// positive, the heads do not divide the dimension, or <paramref name="mlpRatio"/> gives no hidden unit.
    /// </summary>
    /// <param name="patch">Patch side p, in pixels.</param>
    /// <param name="dim">Token dimension D.</param>
    /// <param name="depth">Number of transformer blocks.</param>
    /// <param name="mlpRatio">Hidden width of each block's MLP, as a multiple of D.</param>
    /// <param name="classToken">Prepend a class token and pool it (false: mean over the patch tokens).</param>
    public VisionTransformer(int channels, int imageSize, int classes, int patch = 7, int dim = 64, int depth = 4,
        int heads = 4, double mlpRatio = 4.0, bool classToken = true)
    {
        if (patch <= 0 || imageSize % patch != 0)
            throw new ArgumentOutOfRangeException(nameof(patch), patch, $"the patch size must divide the image side {imageSize}");
        if (dim <= 0 || depth <= 0)
            throw new ArgumentOutOfRangeException(nameof(dim), $"dimension {dim} and depth {depth} must be positive");
        if (heads <= 0 || dim % heads != 0)
            throw new ArgumentOutOfRangeException(nameof(heads), heads, $"the number of heads must divide the dimension {dim}");
        int hidden = (int)Math.Round(dim * mlpRatio, MidpointRounding.AwayFromZero);
        if (hidden <= 0)
            throw new ArgumentOutOfRangeException(nameof(mlpRatio), mlpRatio, "the MLP ratio must give a positive hidden width");
        Channels = channels;
        ImageSize = imageSize;
        Patches = imageSize / patch * (imageSize / patch);
        ClassToken = classToken;
        Tokens = Patches + (classToken ? 1 : 0);
        if (classToken)
            _clsToken = RegisterParameter("cls_token", new Tensor(1, 1, dim));
        _posEmbed = RegisterParameter("pos_embed", new Tensor(1, Tokens, dim));
        _tokenEmbed = new TokenEmbedding(Patches, _clsToken, _posEmbed);
        _patchEmbed = RegisterModule("patch_embed", new PatchEmbed(channels, dim, patch));
        _blocks = RegisterModule("blocks", new Sequential());
        for (int i = 0; i < depth; i++)
            _blocks.Add(new TransformerBlock(dim, heads, hidden, Tokens));
        _norm = RegisterModule("norm", new LayerNorm(dim));
        _head = RegisterModule("head", new Linear(dim, classes));
    }

    /// <summary>Input image channels.</summary>
    public int Channels { get; }
    /// <summary>Input image side, in pixels.</summary>
    public int ImageSize { get; }
    /// <summary>Patches per image, T = (side / patch)².</summary>
    public int Patches { get; }
    /// <summary>Tokens per image: the patches and the class token if any.</summary>
    public int Tokens { get; }
    /// <summary>Whether a class token is prepended and pooled (else mean pooling over the patches).</summary>
    public bool ClassToken { get; }
    /// <summary>The class token [1, 1, D] (<c>cls_token</c>), or null without one.</summary>
    public Tensor? ClsToken => _clsToken;
    /// <summary>The position embeddings [1, T, D] (<c>pos_embed</c>).</summary>
    public Tensor PosEmbed => _posEmbed;
    /// <summary>The token assembly (class token, position embeddings): not a registered child, see <see cref="Nn.TokenEmbedding"/>.</summary>
    public TokenEmbedding TokenEmbedding => _tokenEmbed;
    /// <summary>The patch embedding (<c>patch_embed</c>).</summary>
    public PatchEmbed PatchEmbed => _patchEmbed;

    /// <inheritdoc/>
    public override Linear Head => _head;

    /// <summary>Pooled features [N, D] of images [N, C, H, W] or flattened [N, C·H·W].</summary>
    public override Tensor Features(Tape tape, Tensor x)
    {
        x = Norms.AsImages(tape, x, Channels, ImageSize, ImageSize);
        var h = _tokenEmbed.Forward(tape, _patchEmbed.Forward(tape, x));
        h = _norm.Forward(tape, _blocks.Forward(tape, h));
        return TokenPoolOp.Forward(tape, h, Tokens, first: ClassToken);
    }
}
