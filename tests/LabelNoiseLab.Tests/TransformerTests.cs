using System.Globalization;
using LabelNoiseLab.Autograd;
using LabelNoiseLab.Nn;
using LabelNoiseLab.RunFiles;
using LabelNoiseLab.Tensors;

namespace LabelNoiseLab.Tests;

/// <summary>
/// The vision transformer's layers (layer norm, patch extraction, token assembly, multi-head
/// self-attention, token pooling) against central differences; the model's PyTorch names; and
/// its logits against the same module tree built in PyTorch from our saved weights.
/// </summary>
[Collection(ProcessWideSettings.Name)]
public sealed class TransformerTests(ITestOutputHelper output) : IDisposable
{
    private const double Tolerance = 1e-3;
    private readonly Rng _rng = new(23);
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    private void AssertGradients(string name, Func<Tape, Tensor> f, Tensor[] inputs, double h = 1e-2)
    {
        double err = GradCheck.MaxRelativeError(f, inputs, h);
        output.WriteLine($"{name}: relative error {err:E2}");
        Assert.True(err < Tolerance, $"{name}: relative gradient error {err:E3} ≥ {Tolerance}");
    }

    private Tensor R(params int[] shape) => GradCheck.Random(_rng, shape);

    [Fact]
    public void Layer_norm()
    {
        Tensor CheckGradients(int rows, int d)
        {
            var x = R(rows, d);
            var w = GradCheck.Random(_rng, [d], 0.3f);
            var b = GradCheck.Random(_rng, [d], 0.3f);
            for (int i = 0; i < d; i++)
                w[i] += 1f;
            AssertGradients($"layernorm D={d}", t => LayerNormOp.Forward(t, x, w, b, 1e-5f), [x, w, b]);
            return x;
        }
        var x = CheckGradients(6, 5);
        CheckGradients(4, 19); // rows of 19: two eight-lane blocks and a scalar tail
        // Each row has mean β and variance γ² after the norm (here γ = 1, β = 0).
        var y = LayerNormOp.Forward(new Tape(false), x, Tensor.FromArray([1, 1, 1, 1, 1], 5), new Tensor(5), 1e-5f);
        for (int r = 0; r < 6; r++)
        {
            var row = y.Span.Slice(r * 5, 5).ToArray();
            Assert.Equal(0, row.Average(), 5);
            Assert.Equal(1, row.Select(v => v * v).Average(), 3);
        }
    }

    [Fact]
    public void Gelu_kernel_matches_the_double_precision_formula()
    {
        // 1003 values (eight-lane blocks and a scalar tail) from −10 to 10, GELU and its
        // derivative against ½x(1 + erf(x/√2)) and Φ(x) + x·φ(x) in double precision. Bound:
        // the float erf's 1.5e-7 (Abramowitz–Stegun 7.1.26) halved in Φ, times |x|, plus float
        // rounding: 3e-7 per unit of max(1, |x|).
        const int count = 1003;
        var x = new float[count];
        var g = new float[count];
        for (int i = 0; i < count; i++)
        {
            x[i] = -10f + 20f * i / (count - 1);
            g[i] = (float)_rng.NextNormal();
        }
        var xt = Tensor.FromArray(x, count);
        xt.RequiresGrad = true;
        var tape = new Tape();
        var y = GeluOp.Instance.Forward(tape, xt);
        var loss = SumOp.Forward(tape, MulOp.Forward(tape, y, Tensor.FromArray(g, count)));
        tape.Backward(loss);
        var dx = xt.GradSpan().ToArray();
        double worstY = 0, worstD = 0;
        for (int i = 0; i < count; i++)
        {
            double xi = x[i], cdf = 0.5 * (1 + Kernels.Erf(xi / Math.Sqrt(2)));
            double pdf = Math.Exp(-0.5 * xi * xi) / Math.Sqrt(2 * Math.PI);
            double scale = Math.Max(1, Math.Abs(xi));
            worstY = Math.Max(worstY, Math.Abs(y[i] - xi * cdf) / scale);
            worstD = Math.Max(worstD, Math.Abs(dx[i] - g[i] * (cdf + xi * pdf)) / scale / Math.Max(1, Math.Abs(g[i])));
        }
        output.WriteLine($"gelu: worst error {worstY:E2}, derivative {worstD:E2} (per unit of max(1, |x|))");
        Assert.True(worstY < 3e-7, $"gelu forward error {worstY:E3}");
        Assert.True(worstD < 3e-7, $"gelu derivative error {worstD:E3}");
    }

    [Theory]
    [InlineData(1, 1, 1)]
    [InlineData(17, 17, 16)]
    [InlineData(17, 16, 17)]
    [InlineData(5, 23, 3)]
    [InlineData(3, 8, 0)]
    [InlineData(9, 33, 7)]
    public void Small_matmul_matches_the_naive_loop(int m, int n, int k)
    {
        // Strided operands (row strides larger than the rows), written and accumulated.
        int lda = k + 3, ldb = n + 2, ldc = n + 5;
        var a = GradCheck.Random(_rng, [Math.Max(1, m * lda)]).ToArray();
        var b = GradCheck.Random(_rng, [Math.Max(1, k * ldb)]).ToArray();
        var c = GradCheck.Random(_rng, [m * ldc]).ToArray();
        foreach (bool accumulate in new[] { false, true })
        {
            var expected = (float[])c.Clone();
            for (int i = 0; i < m; i++)
                for (int j = 0; j < n; j++)
                {
                    double sum = accumulate ? c[i * ldc + j] : 0;
                    for (int kk = 0; kk < k; kk++)
                        sum += a[i * lda + kk] * (double)b[kk * ldb + j];
                    expected[i * ldc + j] = (float)sum;
                }
            var actual = (float[])c.Clone();
            SmallMatMul.Multiply(a, lda, b, ldb, actual, ldc, m, n, k, accumulate);
            for (int i = 0; i < actual.Length; i++)
                Assert.Equal(expected[i], actual[i], 1e-5f * (1 + Math.Abs(expected[i])));
        }
        var transposed = new float[n * (m + 1)];
        SmallMatMul.Transpose(c, ldc, transposed, m + 1, m, n);
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++)
                Assert.Equal(c[i * ldc + j], transposed[j * (m + 1) + i]);
    }

    private sealed class MarkRows(int[] hits, int throwAt) : IRowBody
    {
        public void Run(int start, int end)
        {
            for (int r = start; r < end; r++)
            {
                if (r == throwAt)
                    throw new InvalidOperationException($"row {r}");
                Interlocked.Increment(ref hits[r]);
            }
        }
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(8)]
    public void Row_parallel_runs_every_row_once_and_rethrows(int threads)
    {
        int saved = Blas.Threads;
        try
        {
            Blas.Threads = threads;
            foreach (int count in new[] { 0, 1, 7, 1000 })
                for (int repeat = 0; repeat < 20; repeat++)
                {
                    var hits = new int[count];
                    RowParallel.For(count, 2, new MarkRows(hits, -1));
                    Assert.All(hits, h => Assert.Equal(1, h));
                }
            var error = Assert.Throws<InvalidOperationException>(() => RowParallel.For(1000, 2, new MarkRows(new int[1000], 999)));
            Assert.Equal("row 999", error.Message);
        }
        finally
        {
            Blas.Threads = saved;
        }
    }

    [Fact]
    public void Gelu_layer_norm_and_attention_give_the_same_values_on_one_thread_and_several()
    {
        // Batch large enough for each op to split: 64 samples of 17 tokens, D = 32, MLP 4·D.
        var x = GradCheck.Random(_rng, [64 * 17, 32]);
        var qkv = GradCheck.Random(_rng, [64 * 17, 96]);
        var wide = GradCheck.Random(_rng, [64 * 17, 128]);
        var w = GradCheck.Random(_rng, [32]);
        var b = GradCheck.Random(_rng, [32]);
        float[][] Run()
        {
            foreach (var t in new[] { x, qkv, wide, w, b })
            {
                t.RequiresGrad = true;
                t.ZeroGrad();
            }
            var tape = new Tape();
            var outputs = new[]
            {
                LayerNormOp.Forward(tape, x, w, b, 1e-5f), SelfAttentionOp.Forward(tape, qkv, 17, 4), GeluOp.Instance.Forward(tape, wide),
            };
            var loss = SumOp.Forward(tape, AddOp.Forward(tape, AddOp.Forward(tape, SumOp.Forward(tape, MulOp.Forward(tape, outputs[0], outputs[0])),
                SumOp.Forward(tape, MulOp.Forward(tape, outputs[1], outputs[1]))), SumOp.Forward(tape, MulOp.Forward(tape, outputs[2], outputs[2]))));
            tape.Backward(loss);
            return [.. outputs.Select(o => o.ToArray()), x.GradSpan().ToArray(), qkv.GradSpan().ToArray(), wide.GradSpan().ToArray(), w.GradSpan().ToArray()];
        }
        int saved = Blas.Threads;
        try
        {
            Blas.Threads = 1;
            var serial = Run();
            Blas.Threads = 3;
            var parallel = Run();
            for (int i = 0; i < serial.Length; i++)
                Assert.Equal(serial[i], parallel[i]);
        }
        finally
        {
            Blas.Threads = saved;
        }
    }

    [Fact]
    public void Patchify_and_patch_embedding_equal_the_strided_convolution()
    {
        var x = R(2, 3, 4, 4);
        AssertGradients("patchify", t => PatchifyOp.Forward(t, x, 2), [x]);
        var embed = new PatchEmbed(3, 5, 2);
        Init.Apply(embed, InitKind.Default, new Rng(3));
        var tape = new Tape(false);
        var tokens = embed.Forward(tape, x); // [2·4, 5]
        var conv = Conv2dOp.Forward(tape, x, embed.Proj.Weight, embed.Proj.Bias, 2, 0); // [2, 5, 2, 2]
        Assert.Equal([8, 5], tokens.Shape.ToArray());
        for (int n = 0; n < 2; n++)
            for (int d = 0; d < 5; d++)
                for (int p = 0; p < 4; p++)
                    Assert.Equal(conv[(n * 5 + d) * 4 + p], tokens[(n * 4 + p) * 5 + d], 5);
        var w = embed.Proj.Weight;
        var b = embed.Proj.Bias!;
        AssertGradients("patch embedding", t => embed.Forward(t, x), [x, w, b]);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void Token_embedding_and_pooling(bool classToken)
    {
        int n = 2, tokens = 3, d = 4, total = tokens + (classToken ? 1 : 0);
        var patches = R(n * tokens, d);
        var cls = classToken ? R(1, 1, d) : null;
        var pos = R(1, total, d);
        Tensor[] inputs = cls is null ? [patches, pos] : [patches, pos, cls];
        AssertGradients($"token embedding cls={classToken}", t => TokenEmbedOp.Forward(t, patches, tokens, cls, pos), inputs);
        var x = R(n * total, d);
        AssertGradients("token pooling first", t => TokenPoolOp.Forward(t, x, total, first: true), [x]);
        AssertGradients("token pooling mean", t => TokenPoolOp.Forward(t, x, total, first: false), [x]);
    }

    [Theory]
    [InlineData(1, 3, 4)]
    [InlineData(2, 3, 4)]
    [InlineData(4, 3, 4)]
    [InlineData(2, 17, 32)] // heads of 16: the eight-lane paths and a scalar tail of T
    public void Self_attention(int heads, int tokens, int dim)
    {
        var qkv = GradCheck.Random(_rng, [2 * tokens, 3 * dim], 1.5f);
        AssertGradients($"attention heads={heads} T={tokens} D={dim}", t => SelfAttentionOp.Forward(t, qkv, tokens, heads), [qkv]);
        // Large logits: the row maximum is subtracted before exponentiating, nothing overflows.
        var big = GradCheck.Random(_rng, [tokens, 3 * dim], 200f);
        var y = SelfAttentionOp.Forward(new Tape(false), big, tokens, heads);
        Assert.All(y.ToArray(), v => Assert.True(float.IsFinite(v)));
    }

    [Fact]
    public void Heads_must_divide_the_dimension()
    {
        Assert.Throws<ShapeException>(() => SelfAttentionOp.Forward(new Tape(false), R(3, 3 * 6), 3, 4));
        Assert.Throws<ArgumentOutOfRangeException>(() => new VisionTransformer(1, 28, 10, patch: 7, dim: 6, heads: 4));
        Assert.Throws<ArgumentOutOfRangeException>(() => new VisionTransformer(1, 28, 10, patch: 5));
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void The_whole_model_back_propagates(bool classToken)
    {
        var model = new VisionTransformer(1, 4, 3, patch: 2, dim: 4, depth: 1, heads: 2, mlpRatio: 2, classToken: classToken);
        Init.Apply(model, InitKind.Default, new Rng(5));
        foreach (var (_, p) in model.NamedParameters())
            if (p.Rank == 3) // embeddings larger than 0.02, so their gradient shows
                for (int i = 0; i < p.Length; i++)
                    p[i] = (float)_rng.NextNormal();
        var x = R(2, 16);
        var parameters = model.Parameters().ToArray();
        AssertGradients($"vit cls={classToken}", t => model.Forward(t, x), [x, .. parameters]);
    }

    [Fact]
    public void Vit_is_named_like_timm()
    {
        var vit = new VisionTransformer(1, 28, 10, patch: 7, dim: 64, depth: 2, heads: 4, mlpRatio: 4);
        var names = vit.NamedState().Select(s => s.Name).ToList();
        Assert.Equal(["cls_token", "pos_embed", "patch_embed.proj.weight", "patch_embed.proj.bias",
            "blocks.0.norm1.weight", "blocks.0.norm1.bias", "blocks.0.attn.qkv.weight", "blocks.0.attn.qkv.bias",
            "blocks.0.attn.proj.weight", "blocks.0.attn.proj.bias", "blocks.0.norm2.weight", "blocks.0.norm2.bias",
            "blocks.0.mlp.fc1.weight", "blocks.0.mlp.fc1.bias", "blocks.0.mlp.fc2.weight", "blocks.0.mlp.fc2.bias"], names.Take(16));
        Assert.Equal(["norm.weight", "norm.bias", "head.weight", "head.bias"], names.TakeLast(4));
        Assert.Equal([1, 17, 64], vit.PosEmbed.Shape.ToArray());
        Assert.Equal([64, 1, 7, 7], vit.NamedParameters().First(p => p.Name == "patch_embed.proj.weight").Tensor.Shape.ToArray());
        // 64 + 17·64 + (49·64 + 64) + 2·(4·64 + 64·192 + 192 + 64·64 + 64 + 64·256 + 256 + 256·64 + 64) + 2·64 + 64·10 + 10
        Assert.Equal(64 + 17 * 64 + 49 * 64 + 64 + 2 * (4 * 64 + 64 * 192 + 192 + 64 * 64 + 64 + 64 * 256 + 256 + 256 * 64 + 64) + 2 * 64 + 650,
            vit.ParameterCount());
    }

    private const string Script = """
        import json, math, struct, sys, numpy as np, torch, torch.nn as nn
        path, channels, size, classes, patch, dim, depth, heads, hidden, pool = sys.argv[1:11]
        channels, size, classes, patch, dim, depth, heads, hidden = map(int, (channels, size, classes, patch, dim, depth, heads, hidden))
        raw = open(path, 'rb').read()
        (n,) = struct.unpack('<Q', raw[:8])
        header = json.loads(raw[8:8 + n])
        data = raw[8 + n:]
        tensors = {}
        for name, e in header.items():
            if name == '__metadata__':
                continue
            begin, end = e['data_offsets']
            tensors[name] = torch.from_numpy(np.frombuffer(data[begin:end], dtype='<f4').reshape(e['shape']).copy())

        class PatchEmbed(nn.Module):
            def __init__(self):
                super().__init__()
                self.proj = nn.Conv2d(channels, dim, patch, patch)
            def forward(self, x):
                return self.proj(x).flatten(2).transpose(1, 2)

        class Attention(nn.Module):
            def __init__(self):
                super().__init__()
                self.qkv = nn.Linear(dim, 3 * dim)
                self.proj = nn.Linear(dim, dim)
            def forward(self, x):
                B, T, D = x.shape
                qkv = self.qkv(x).reshape(B, T, 3, heads, D // heads).permute(2, 0, 3, 1, 4)
                q, k, v = qkv[0], qkv[1], qkv[2]
                a = (q @ k.transpose(-2, -1)) / math.sqrt(D // heads)
                a = a.softmax(dim=-1)
                return self.proj((a @ v).transpose(1, 2).reshape(B, T, D))

        class Mlp(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc1 = nn.Linear(dim, hidden)
                self.act = nn.GELU()  # exact (erf)
                self.fc2 = nn.Linear(hidden, dim)
            def forward(self, x):
                return self.fc2(self.act(self.fc1(x)))

        class Block(nn.Module):
            def __init__(self):
                super().__init__()
                self.norm1 = nn.LayerNorm(dim)
                self.attn = Attention()
                self.norm2 = nn.LayerNorm(dim)
                self.mlp = Mlp()
            def forward(self, x):
                x = x + self.attn(self.norm1(x))
                return x + self.mlp(self.norm2(x))

        class ViT(nn.Module):
            def __init__(self):
                super().__init__()
                t = (size // patch) ** 2
                if pool == 'cls':
                    self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
                    t += 1
                self.pos_embed = nn.Parameter(torch.zeros(1, t, dim))
                self.patch_embed = PatchEmbed()
                self.blocks = nn.Sequential(*[Block() for _ in range(depth)])
                self.norm = nn.LayerNorm(dim)
                self.head = nn.Linear(dim, classes)
            def forward(self, x):
                x = self.patch_embed(x)
                if pool == 'cls':
                    x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1)
                x = self.norm(self.blocks(x + self.pos_embed))
                return self.head(x[:, 0] if pool == 'cls' else x.mean(dim=1))

        model = ViT()
        model.load_state_dict({k: v for k, v in tensors.items() if not k.startswith('test.')}, strict=True)
        x = tensors['test.x'].reshape(-1, channels, size, size)
        with torch.no_grad():
            model.eval()
            print('eval', float((model(x) - tensors['test.logits']).abs().max()), float(tensors['test.logits'].abs().max()))
        """;

    [Theory]
    [InlineData(1, 28, 7, 32, 2, 4, 4.0, "cls")]
    [InlineData(3, 32, 4, 24, 1, 3, 2.0, "mean")]
    public void Logits_match_the_same_architecture_in_pytorch(int channels, int size, int patch, int dim, int depth, int heads, double mlpRatio, string pool)
    {
        MachineTools.RequirePythonWithTorch();
        const int classes = 10, batch = 4;
        var rng = new Rng(31);
        var model = new VisionTransformer(channels, size, classes, patch, dim, depth, heads, mlpRatio, classToken: pool == "cls");
        Init.Apply(model, InitKind.Default, rng);
        // Norm parameters away from 1 and 0, embeddings large enough to matter.
        foreach (var (name, p) in model.NamedParameters())
            if (name.Contains("norm", StringComparison.Ordinal) || p.Rank == 3)
                for (int i = 0; i < p.Length; i++)
                    p[i] = (name.EndsWith("norm1.weight", StringComparison.Ordinal) || name.EndsWith("norm2.weight", StringComparison.Ordinal) || name == "norm.weight" ? 1f : 0f)
                        + 0.3f * (float)rng.NextNormal();
        var x = GradCheck.Random(rng, [batch, channels * size * size]);
        model.SetTraining(false);
        var logits = model.Forward(new Tape(recording: false), x).Clone();
        var tensors = model.NamedState().Select(s => (s.Name, s.Tensor.Clone())).ToList();
        tensors.Add(("test.x", x));
        tensors.Add(("test.logits", logits));
        string path = Path.Combine(_dir.Path, "vit.safetensors");
        Safetensors.Save(path, tensors);
        int hidden = (int)Math.Round(dim * mlpRatio, MidpointRounding.AwayFromZero);
        string[] args = ["-c", Script, path, .. new object[] { channels, size, classes, patch, dim, depth, heads, hidden }.Select(v => Convert.ToString(v, CultureInfo.InvariantCulture)!), pool];
        Assert.True(MachineTools.RunPython(args, out string result), result);
        output.WriteLine($"vit {channels}×{size}×{size} patch {patch} dim {dim} depth {depth} heads {heads} mlp {hidden} pool {pool} — max |ours − pytorch| (max |logit|):");
        output.WriteLine(result.TrimEnd());
        var parts = result.Trim().Split(' ');
        double diff = double.Parse(parts[1], CultureInfo.InvariantCulture);
        Assert.True(diff < 1e-4, $"vit logits differ from PyTorch's by {diff:E2}");
    }
}
