using LabelNoiseLab.Autograd;

namespace LabelNoiseLab.Nn;

/// <summary>PyTorch's nn.LayerNorm(D): over the last dimension, affine weight (1) and bias (0), ε = 1e-5.</summary>
public sealed class LayerNorm : Module
{
    public const float Eps = 1e-5f;

    public LayerNorm(int dim)
    {
        if (dim <= 0)
            throw new ArgumentOutOfRangeException(nameof(dim), dim, "layer norm needs a positive dimension");
        Weight = RegisterParameter("weight", new Tensor(dim));
        Bias = RegisterParameter("bias", new Tensor(dim));
        Weight.Span.Fill(1f);
    }

    public Tensor Weight { get; }
    public Tensor Bias { get; }

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

    public PatchEmbed(int channels, int dim, int patch)
    {
        Patch = patch;
        _proj = RegisterModule("proj", new Conv2d(channels, dim, patch, patch));
    }

    public int Patch { get; }

    public Conv2d Proj => _proj;

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
    public Tensor? Cls { get; } = cls;
    public Tensor Pos { get; } = pos;

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

    public MultiHeadAttention(int dim, int heads, int tokens)
    {
        if (heads <= 0 || dim % heads != 0)
            throw new ArgumentOutOfRangeException(nameof(heads), heads, $"the number of heads must divide the dimension {dim}");
        Heads = heads;
        Tokens = tokens;
        _qkv = RegisterModule("qkv", new Linear(dim, 3 * dim));
        _proj = RegisterModule("proj", new Linear(dim, dim));
    }

    public int Heads { get; }
    public int Tokens { get; }

    protected override Tensor ForwardCore(Tape tape, Tensor x) =>
        _proj.Forward(tape, SelfAttentionOp.Forward(tape, _qkv.Forward(tape, x), Tokens, Heads));
}

/// <summary>The transformer MLP: <c>fc1</c> Linear(D, hidden), exact (erf) GELU, <c>fc2</c> Linear(hidden, D).</summary>
public sealed class TransformerMlp : Module
{
    private readonly Linear _fc1;
    private readonly Linear _fc2;

    public TransformerMlp(int dim, int hidden)
    {
        _fc1 = RegisterModule("fc1", new Linear(dim, hidden));
        _fc2 = RegisterModule("fc2", new Linear(hidden, dim));
    }

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

    public TransformerBlock(int dim, int heads, int hidden, int tokens)
    {
        Tokens = tokens;
        _norm1 = RegisterModule("norm1", new LayerNorm(dim));
        _attn = RegisterModule("attn", new MultiHeadAttention(dim, heads, tokens));
        _norm2 = RegisterModule("norm2", new LayerNorm(dim));
        _mlp = RegisterModule("mlp", new TransformerMlp(dim, hidden));
        _out = RegisterModule("out", new Activation(ActivationKind.Identity));
    }

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
    public const float EmbeddingStd = 0.02f;
    private readonly Tensor? _clsToken;
    private readonly Tensor _posEmbed;
    private readonly TokenEmbedding _tokenEmbed;
    private readonly PatchEmbed _patchEmbed;
    private readonly Sequential _blocks;
    private readonly LayerNorm _norm;
    private readonly Linear _head;

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

    public int Channels { get; }
    public int ImageSize { get; }
    /// <summary>Patches per image, T = (side / patch)².</summary>
    public int Patches { get; }
    /// <summary>Tokens per image: the patches and the class token if any.</summary>
    public int Tokens { get; }
    /// <summary>Whether a class token is prepended and pooled (else mean pooling over the patches).</summary>
    public bool ClassToken { get; }
    public Tensor? ClsToken => _clsToken;
    public Tensor PosEmbed => _posEmbed;
    /// <summary>The token assembly (class token, position embeddings): not a registered child, see <see cref="Nn.TokenEmbedding"/>.</summary>
    public TokenEmbedding TokenEmbedding => _tokenEmbed;
    public PatchEmbed PatchEmbed => _patchEmbed;

    public override Linear Head => _head;

    public override Tensor Features(Tape tape, Tensor x)
    {
        x = Norms.AsImages(tape, x, Channels, ImageSize, ImageSize);
        var h = _tokenEmbed.Forward(tape, _patchEmbed.Forward(tape, x));
        h = _norm.Forward(tape, _blocks.Forward(tape, h));
        return TokenPoolOp.Forward(tape, h, Tokens, first: ClassToken);
    }
}
