using System.Numerics.Tensors;
using LabelNoiseLab.Autograd;
using LabelNoiseLab.Losses;
using LabelNoiseLab.Nn;
using LabelNoiseLab.Tensors;

namespace LabelNoiseLab.Robust;

/// <summary>How the per-sample weight-gradient norm of a convolution or of a Linear layer applied to token sequences is computed.</summary>
public enum ConvNormMethod
{
    /// <summary>The cheaper of the two for the layer's size (flop count).</summary>
    Auto,

    /// <summary>‖∇W ℓᵢ‖² = ⟨GᵢᵀGᵢ, AᵢᵀAᵢ⟩ over output positions or tokens (two P×P Grams per sample).</summary>
    Gram,

    /// <summary>Gᵢ·Aᵢᵀ formed per sample in one reused buffer, then its squared sum.</summary>
    Materialise,
}

/// <summary>
/// Per-sample gradient norms ‖∇θ ℓᵢ‖ for every parameter of a model whose samples do not interact
/// (no BatchNorm in training), computed inside the ordinary backward from each layer's input
/// (forward hook) and output gradient (backward hook); no full per-sample gradient is formed:
/// <list type="bullet">
/// <item><see cref="Linear"/> on [N, in]: ‖∇W ℓᵢ‖² = ‖gᵢ‖²‖aᵢ‖², ‖∇b ℓᵢ‖² = ‖gᵢ‖².</item>
/// <item><see cref="Linear"/> on sequences [N·T, in] (attention, transformer MLP) and the
/// <see cref="PatchEmbed"/> projection: ∇W ℓᵢ = Σₜ gₜaₜᵀ, so ‖∇W ℓᵢ‖² = Σₜₛ (aₜ·aₛ)(gₜ·gₛ), the
/// dot product of two T×T Grams (or Gᵢᵀ·Aᵢ formed in one reused buffer when that is cheaper),
/// ‖∇b ℓᵢ‖² = ‖Σₜ gₜ‖².</item>
/// <item><see cref="Conv2d"/>: the same over output positions (<see cref="ConvNormMethod"/>).</item>
/// <item><see cref="LayerNorm"/> (over the tokens of a sample) and <see cref="GroupNorm"/> (over
/// the positions of a channel): ∇γ ℓᵢ = Σ g⊙x̂, ∇β ℓᵢ = Σ g, vectors of the layer's width, kept per sample.</item>
/// <item>The <see cref="TokenEmbedding"/> of a <see cref="VisionTransformer"/>: ∇pos ℓᵢ = gᵢ [T', D]
/// (the gradient of the sample's assembled tokens), ∇cls ℓᵢ = gᵢ's first token.</item>
/// </list>
/// Distinct parameters are disjoint coordinates, so the squared norms add. The output gradient
/// the backward sees is that of the batch mean, gᵢ/B, so everything is scaled by
/// <see cref="LossScale"/> (the batch size).
/// <para>
/// It also keeps what is needed to redo only the parameter-gradient GEMMs with per-sample
/// weights (<see cref="DeferParameterGradients"/>, <see cref="ApplySampleWeights"/>): every
/// sample's gradient is linear in its own output gradient and samples do not interact (no batch
/// norm), so Σ wᵢ∇ℓᵢ/B for a layer is Gᵀdiag(w)A with the G and A of the unweighted pass.
/// </para>
/// </summary>
public sealed class PerSampleGradients
{
    private readonly List<Layer> _layers = [];
    private readonly Module _model;
    private double[] _squared = new double[1];
    private float[] _norms = new float[1];
    private int _batch;
    private bool _stale = true;
    private bool _deferred;
    private float[] _buffer = [];
    private float[] _buffer2 = [];

    /// <summary>
    /// Attaches per-sample gradient hooks to every layer of <paramref name="model"/>;
    /// <paramref name="conv"/> chooses how convolution and token-Linear norms are computed.
    /// </summary>
    public PerSampleGradients(Module model, ConvNormMethod conv = ConvNormMethod.Auto)
    {
        _model = model;
        ConvMethod = conv;
        var covered = new HashSet<Tensor>(ReferenceEqualityComparer.Instance);
        var modules = model.NamedModules().ToList();
        if (model is VisionTransformer vit)
            modules.Add(("token_embedding", vit.TokenEmbedding)); // not a registered child (its parameters are the model's)
        // A patch embedding runs its projection as patch extraction + GEMM, never through proj's own forward.
        var projections = modules.Where(m => m.Module is PatchEmbed).Select(m => (Module)((PatchEmbed)m.Module).Proj)
            .ToHashSet(ReferenceEqualityComparer.Instance);
        foreach (var (name, module) in modules)
        {
            if (module is BatchNorm)
                throw new ArgumentException($"per-sample gradients: {name} is a BatchNorm, which mixes the samples of a batch (use GroupNorm)");
            if (module is not (Linear or Conv2d or PatchEmbed or LayerNorm or GroupNorm or TokenEmbedding) || projections.Contains(module))
                continue;
            var layer = new Layer(name, module);
            _layers.Add(layer);
            module.AddForwardHook((_, x, _) => OnForward(layer, x));
            module.AddBackwardHook((_, g) => OnBackward(layer, g));
            covered.Add(layer.Weight);
            if (layer.Bias is not null)
                covered.Add(layer.Bias);
        }
        foreach (var (name, p) in model.NamedParameters())
            if (!covered.Contains(p))
                throw new ArgumentException($"per-sample gradients: parameter {name} belongs to a layer other than Linear, Conv2d, LayerNorm, GroupNorm or a patch/token embedding");
        // Runs after the whole forward (after every layer's hook): the batch is the model input's first dimension.
        model.AddForwardHook((_, x, _) => OnModelForward(x));
    }

    /// <summary>How convolution and token-Linear norms are computed.</summary>
    public ConvNormMethod ConvMethod { get; set; }

    /// <summary>When false the hooks do nothing (evaluation, the naive loop).</summary>
    public bool Enabled { get; set; } = true;

    /// <summary>When false the backward only keeps inputs and output gradients (for weighting), no norms.</summary>
    public bool ComputeNorms { get; set; } = true;

    /// <summary>Factor from the back-propagated loss to one sample's loss; 0 = the batch size (mean reduction).</summary>
    public float LossScale { get; set; }

    /// <summary>Samples in the last backward.</summary>
    public int Batch => _batch;

    /// <summary>‖∇θ ℓᵢ‖ for the last backward, one per sample (valid after the backward).</summary>
    public ReadOnlySpan<float> Norms
    {
        get
        {
            for (int i = 0; i < _batch; i++)
                _norms[i] = (float)Math.Sqrt(_squared[i]);
            return _norms.AsSpan(0, _batch);
        }
    }

    private void OnForward(Layer layer, Tensor x)
    {
        if (!Enabled)
            return;
        layer.Input = x;
        layer.OutputGradient = null;
        _stale = true;
    }

    private void OnModelForward(Tensor x)
    {
        if (!Enabled)
            return;
        int batch = x.Rows;
        if (_squared.Length < batch)
        {
            _squared = new double[batch];
            _norms = new float[batch];
        }
        _batch = batch;
        _stale = true;
    }

    private void OnBackward(Layer layer, Tensor g)
    {
        if (!Enabled || layer.Input is null)
            return;
        if (_stale)
        {
            Array.Clear(_squared, 0, _batch);
            _stale = false;
        }
        layer.OutputGradient = g;
        switch (layer.Kind)
        {
            case LayerKind.Conv:
                var geo = Conv2dOp.Geometry.Of(layer.Input, layer.Conv!.Weight, layer.Conv.Stride, layer.Conv.Padding);
                int positions = geo.N * geo.OutPlane;
                Grow(ref layer.Columns, geo.Patch * positions);
                Conv2dOp.Im2Col(layer.Input.Span, layer.Columns.AsSpan(0, geo.Patch * positions), geo);
                if (ComputeNorms)
                    ConvNorms(layer, geo, g.Span);
                break;
            case LayerKind.Patch:
                var x = layer.Input;
                int patch = ((PatchEmbed)layer.Module).Patch, len = x.Dim(1) * patch * patch;
                Grow(ref layer.Columns, g.Rows * len);
                PatchifyOp.Map(x.Span, layer.Columns.AsSpan(0, g.Rows * len), x.Dim(0), x.Dim(1), x.Dim(2), x.Dim(3), patch, toPatches: true, accumulate: false);
                if (ComputeNorms)
                    SequenceNorms(layer, layer.Columns.AsSpan(0, g.Rows * len), len, g);
                break;
            case LayerKind.Linear:
                if (ComputeNorms)
                    SequenceNorms(layer, layer.Input.Span, layer.Input.RowLength, g);
                break;
            case LayerKind.LayerNorm:
            case LayerKind.GroupNorm:
                AffineVectors(layer, g);
                break;
            case LayerKind.Tokens:
                if (ComputeNorms)
                    TokenNorms(layer, g);
                break;
        }
    }

    private float Scale2()
    {
        float s = LossScale > 0 ? LossScale : _batch;
        return s * s;
    }

    /// <summary>Rows per sample of a [rows, ·] tensor: 1 for ordinary inputs, T for token sequences.</summary>
    private int RowsPerSample(Layer layer, int rows)
    {
        if (_batch <= 0 || rows % _batch != 0)
            throw new InvalidOperationException($"per-sample gradients: {layer.Name} sees {rows} rows for a batch of {_batch}");
        return rows / _batch;
    }

    /// <summary>Linear layers, applied once per sample (T = 1) or to each of a sample's T tokens.</summary>
    private void SequenceNorms(Layer layer, ReadOnlySpan<float> a, int inputs, Tensor g)
    {
        int rows = g.Rows, outputs = g.RowLength, t = RowsPerSample(layer, rows);
        double s2 = Scale2();
        bool bias = layer.Bias is not null;
        var gs = g.Span;
        if (t == 1)
        {
            for (int i = 0; i < _batch; i++)
            {
                double gg = TensorPrimitives.SumOfSquares(gs.Slice(i * outputs, outputs));
                double aa = TensorPrimitives.SumOfSquares(a.Slice(i * inputs, inputs));
                _squared[i] += s2 * (gg * aa + (bias ? gg : 0));
            }
            return;
        }
        bool gram = ConvMethod == ConvNormMethod.Gram
            || (ConvMethod == ConvNormMethod.Auto && (long)t * t * (outputs + inputs) < (long)t * outputs * inputs);
        Grow(ref _buffer, gram ? t * t : outputs * inputs);
        if (gram)
            Grow(ref _buffer2, t * t);
        if (bias)
            Grow(ref layer.Vectors, outputs);
        for (int i = 0; i < _batch; i++)
        {
            var gi = gs.Slice(i * t * outputs, t * outputs); // [T, out]
            var ai = a.Slice(i * t * inputs, t * inputs);    // [T, in]
            double w2;
            if (gram)
            {
                var gg = _buffer.AsSpan(0, t * t);
                var aa = _buffer2.AsSpan(0, t * t);
                Blas.Sgemm(false, true, t, t, outputs, 1f, gi, outputs, gi, outputs, 0f, gg, t);
                Blas.Sgemm(false, true, t, t, inputs, 1f, ai, inputs, ai, inputs, 0f, aa, t);
                w2 = TensorPrimitives.Dot(gg, aa);
            }
            else
            {
                var gw = _buffer.AsSpan(0, outputs * inputs);
                Blas.Sgemm(true, false, outputs, inputs, t, 1f, gi, outputs, ai, inputs, 0f, gw, inputs);
                w2 = TensorPrimitives.SumOfSquares(gw);
            }
            if (bias)
            {
                var sum = layer.Vectors.AsSpan(0, outputs);
                gi[..outputs].CopyTo(sum);
                for (int r = 1; r < t; r++)
                    TensorPrimitives.Add(sum, gi.Slice(r * outputs, outputs), sum);
                w2 += TensorPrimitives.SumOfSquares(sum);
            }
            _squared[i] += s2 * w2;
        }
    }

    /// <summary>
    /// LayerNorm [N·T, D] and GroupNorm [N, C, (H, W)]: each sample's ∇γ = Σ g⊙x̂ and ∇β = Σ g
    /// (kept in <see cref="Layer.Vectors"/>, [N, 2C], for the weighted pass), x̂ recomputed from the
    /// saved input as the op computes it.
    /// </summary>
    private void AffineVectors(Layer layer, Tensor g)
    {
        Tensor x = layer.Input!;
        var xs = x.Span;
        var gs = g.Span;
        int c = layer.Weight.Length, n = _batch;
        Grow(ref layer.Vectors, n * 2 * c);
        var v = layer.Vectors.AsSpan(0, n * 2 * c);
        v.Clear();
        if (layer.Kind == LayerKind.LayerNorm)
        {
            int rows = x.Length / c, t = RowsPerSample(layer, rows);
            float eps = LayerNorm.Eps;
            for (int r = 0; r < rows; r++)
            {
                var row = xs.Slice(r * c, c);
                double mean = BatchNormOp.Sum(row) / c, var2 = 0;
                foreach (float value in row)
                    var2 += (value - mean) * (value - mean);
                float inv = (float)(1.0 / Math.Sqrt(var2 / c + eps)), m = (float)mean;
                var dg = v.Slice(r / t * 2 * c, c);
                var db = v.Slice(r / t * 2 * c + c, c);
                for (int k = 0; k < c; k++)
                {
                    float gk = gs[r * c + k];
                    dg[k] += gk * ((row[k] - m) * inv);
                    db[k] += gk;
                }
            }
        }
        else
        {
            int groups = ((GroupNorm)layer.Module).Groups, perChannel = x.Length / (n * c), perGroup = c / groups * perChannel;
            if (x.Dim(0) != n)
                throw new InvalidOperationException($"per-sample gradients: {layer.Name} sees {x.Dim(0)} samples for a batch of {n}");
            for (int ng = 0; ng < n * groups; ng++)
            {
                var values = xs.Slice(ng * perGroup, perGroup);
                double mean = BatchNormOp.Sum(values) / perGroup, var2 = 0;
                foreach (float value in values)
                    var2 += (value - mean) * (value - mean);
                float inv = (float)(1.0 / Math.Sqrt(var2 / perGroup + GroupNorm.Eps)), m = (float)mean;
                int i = ng / groups, firstChannel = ng % groups * (c / groups);
                for (int k = 0; k < perGroup; k++)
                {
                    int ch = firstChannel + k / perChannel, idx = ng * perGroup + k;
                    v[i * 2 * c + ch] += gs[idx] * ((xs[idx] - m) * inv);
                    v[i * 2 * c + c + ch] += gs[idx];
                }
            }
        }
        if (!ComputeNorms)
            return;
        double s2 = Scale2();
        for (int i = 0; i < n; i++)
            _squared[i] += s2 * TensorPrimitives.SumOfSquares(v.Slice(i * 2 * c, 2 * c));
    }

    /// <summary>Position embeddings [T', D] receive each sample's token gradient whole, the class token its first row.</summary>
    private void TokenNorms(Layer layer, Tensor g)
    {
        var gs = g.Span;
        int d = g.RowLength, t = RowsPerSample(layer, g.Rows);
        double s2 = Scale2();
        bool cls = layer.Bias is not null;
        for (int i = 0; i < _batch; i++)
        {
            var gi = gs.Slice(i * t * d, t * d);
            double w2 = TensorPrimitives.SumOfSquares(gi);
            if (cls)
                w2 += TensorPrimitives.SumOfSquares(gi[..d]);
            _squared[i] += s2 * w2;
        }
    }

    private void ConvNorms(Layer layer, in Conv2dOp.Geometry geo, ReadOnlySpan<float> g)
    {
        int p = geo.OutPlane, positions = geo.N * p, co = geo.Co, patch = geo.Patch;
        bool gram = ConvMethod == ConvNormMethod.Gram
            || (ConvMethod == ConvNormMethod.Auto && (long)p * (co + patch) < (long)co * patch);
        Grow(ref _buffer, gram ? p * p : co * patch);
        if (gram)
            Grow(ref _buffer2, p * p);
        double s2 = Scale2();
        var cols = layer.Columns.AsSpan(0, patch * positions);
        for (int i = 0; i < geo.N; i++)
        {
            var gi = g.Slice(i * co * p, co * p); // sample i's output gradient, [Co, P]
            var ai = cols[(i * p)..];              // its unfolded input, [Patch, P] with stride N·P
            double w2;
            if (gram)
            {
                var gg = _buffer.AsSpan(0, p * p);
                var aa = _buffer2.AsSpan(0, p * p);
                Blas.Sgemm(true, false, p, p, co, 1f, gi, p, gi, p, 0f, gg, p);
                Blas.Sgemm(true, false, p, p, patch, 1f, ai, positions, ai, positions, 0f, aa, p);
                w2 = TensorPrimitives.Dot(gg, aa);
            }
            else
            {
                var gw = _buffer.AsSpan(0, co * patch);
                Blas.Sgemm(false, true, co, patch, p, 1f, gi, p, ai, positions, 0f, gw, patch);
                w2 = TensorPrimitives.SumOfSquares(gw);
            }
            if (layer.Bias is not null)
                for (int c = 0; c < co; c++)
                {
                    double sc = TensorPrimitives.Sum(gi.Slice(c * p, p));
                    w2 += sc * sc;
                }
            _squared[i] += s2 * w2;
        }
    }

    /// <summary>
    /// Call after the forward and before the backward: the backward then computes only input
    /// gradients and the hooks' norms, and <see cref="ApplySampleWeights"/> writes the parameter
    /// gradients. Saves the parameter GEMMs of the unweighted pass.
    /// </summary>
    public void DeferParameterGradients()
    {
        foreach (var layer in _layers)
        {
            layer.Weight.RequiresGrad = false;
            if (layer.Bias is not null)
                layer.Bias.RequiresGrad = false;
        }
        _deferred = true;
    }

    /// <summary>
    /// Writes (or adds to) every layer's parameter gradients Σᵢ wᵢ·∇ℓᵢ / B from the saved inputs and
    /// output gradients of the last backward, and restores the parameters' RequiresGrad.
    /// </summary>
    public void ApplySampleWeights(ReadOnlySpan<float> weights)
    {
        if (weights.Length != _batch)
            throw new ArgumentException($"per-sample weights: {weights.Length} weights for a batch of {_batch}", nameof(weights));
        RestoreRequiresGrad();
        foreach (var layer in _layers)
        {
            if (layer.OutputGradient is not { } g || layer.Input is not { } a)
                continue; // no gradient reached this layer
            switch (layer.Kind)
            {
                case LayerKind.Conv:
                    WeightedConv(layer, layer.Conv!, a, g, weights);
                    break;
                case LayerKind.Linear:
                    WeightedLinear(layer, a.Span, a.RowLength, g, weights);
                    break;
                case LayerKind.Patch:
                    int len = layer.Weight.RowLength;
                    WeightedLinear(layer, layer.Columns.AsSpan(0, g.Rows * len), len, g, weights);
                    break;
                case LayerKind.LayerNorm:
                case LayerKind.GroupNorm:
                    WeightedAffine(layer, weights);
                    break;
                case LayerKind.Tokens:
                    WeightedTokens(layer, g, weights);
                    break;
            }
            layer.OutputGradient = null;
        }
    }

    /// <summary>Undoes <see cref="DeferParameterGradients"/> without writing gradients (a skipped step).</summary>
    public void RestoreRequiresGrad()
    {
        if (!_deferred)
            return;
        foreach (var layer in _layers)
        {
            layer.Weight.RequiresGrad = true;
            if (layer.Bias is not null)
                layer.Bias.RequiresGrad = true;
        }
        _deferred = false;
    }

    private void WeightedLinear(Layer layer, ReadOnlySpan<float> a, int inputs, Tensor g, ReadOnlySpan<float> w)
    {
        int rows = g.Rows, outputs = g.RowLength, t = RowsPerSample(layer, rows);
        Grow(ref _buffer, rows * outputs);
        var gs = _buffer.AsSpan(0, rows * outputs); // diag(w)·G, each of a sample's T rows scaled by its weight
        for (int r = 0; r < rows; r++)
            TensorPrimitives.Multiply(g.Span.Slice(r * outputs, outputs), w[r / t], gs.Slice(r * outputs, outputs));
        var dw = GradTarget.For(layer.Weight);
        Blas.Sgemm(true, false, outputs, inputs, rows, 1f, gs, outputs, a, inputs, dw.Beta, dw.Span, inputs);
        if (layer.Bias is not null)
        {
            var db = GradTarget.For(layer.Bias);
            Kernels.ColumnSums(gs, rows, outputs, db.Span, db.Accumulate);
        }
    }

    private void WeightedAffine(Layer layer, ReadOnlySpan<float> w)
    {
        int c = layer.Weight.Length;
        var v = layer.Vectors.AsSpan(0, _batch * 2 * c);
        var dg = GradTarget.For(layer.Weight);
        if (!dg.Accumulate)
            dg.Span.Clear();
        for (int i = 0; i < _batch; i++)
            TensorPrimitives.MultiplyAdd(v.Slice(i * 2 * c, c), w[i], dg.Span, dg.Span);
        var db = GradTarget.For(layer.Bias!);
        if (!db.Accumulate)
            db.Span.Clear();
        for (int i = 0; i < _batch; i++)
            TensorPrimitives.MultiplyAdd(v.Slice(i * 2 * c + c, c), w[i], db.Span, db.Span);
    }

    private void WeightedTokens(Layer layer, Tensor g, ReadOnlySpan<float> w)
    {
        int d = g.RowLength, t = RowsPerSample(layer, g.Rows);
        var gs = g.Span;
        var dp = GradTarget.For(layer.Weight);
        if (!dp.Accumulate)
            dp.Span.Clear();
        for (int i = 0; i < _batch; i++)
            TensorPrimitives.MultiplyAdd(gs.Slice(i * t * d, t * d), w[i], dp.Span, dp.Span);
        if (layer.Bias is null)
            return;
        var dc = GradTarget.For(layer.Bias);
        if (!dc.Accumulate)
            dc.Span.Clear();
        for (int i = 0; i < _batch; i++)
            TensorPrimitives.MultiplyAdd(gs.Slice(i * t * d, d), w[i], dc.Span, dc.Span);
    }

    private void WeightedConv(Layer layer, Conv2d conv, Tensor x, Tensor g, ReadOnlySpan<float> w)
    {
        var geo = Conv2dOp.Geometry.Of(x, conv.Weight, conv.Stride, conv.Padding);
        int p = geo.OutPlane, positions = geo.N * p;
        Grow(ref _buffer, geo.Co * positions);
        var gt = _buffer.AsSpan(0, geo.Co * positions); // channel-major G with sample i scaled by wᵢ
        for (int i = 0; i < geo.N; i++)
            for (int c = 0; c < geo.Co; c++)
                TensorPrimitives.Multiply(g.Span.Slice((i * geo.Co + c) * p, p), w[i], gt.Slice(c * positions + i * p, p));
        var dw = GradTarget.For(conv.Weight);
        Blas.Sgemm(false, true, geo.Co, geo.Patch, positions, 1f, gt, positions, layer.Columns.AsSpan(0, geo.Patch * positions), positions,
            dw.Beta, dw.Span, geo.Patch);
        if (conv.Bias is not null)
        {
            var db = GradTarget.For(conv.Bias);
            for (int c = 0; c < geo.Co; c++)
            {
                float s = TensorPrimitives.Sum(gt.Slice(c * positions, positions));
                db.Span[c] = db.Accumulate ? db.Span[c] + s : s;
            }
        }
    }

    /// <summary>
    /// The reference: one forward and one backward per sample (batch of one, cross-entropy
    /// against <paramref name="labels"/>), the norm of the full parameter gradient each time.
    /// Leaves the parameters' gradients zero (lazily), so a training step can follow.
    /// </summary>
    public void NaiveNorms(Tensor x, ReadOnlySpan<int> labels, Span<float> norms, Tape? tape = null)
    {
        tape ??= new Tape();
        int batch = x.Rows, d = x.RowLength;
        var shape = x.Shape.ToArray();
        shape[0] = 1;
        var xi = new Tensor(shape);
        var label = new int[1];
        var parameters = _model.Parameters();
        bool enabled = Enabled;
        Enabled = false;
        try
        {
            for (int i = 0; i < batch; i++)
            {
                x.Span.Slice(i * d, d).CopyTo(xi.Span);
                label[0] = labels[i];
                tape.Reset();
                foreach (var p in parameters)
                    p.ZeroGrad();
                var loss = SoftmaxCrossEntropyOp.Forward(tape, _model.Forward(tape, xi), label).Mean;
                tape.Backward(loss);
                double sq = 0;
                foreach (var p in parameters)
                    if (!p.GradIsZero)
                        sq += TensorPrimitives.SumOfSquares(p.Grad!.Span);
                norms[i] = (float)Math.Sqrt(sq);
            }
        }
        finally
        {
            Enabled = enabled;
            foreach (var p in parameters)
                p.ZeroGrad();
        }
    }

    private static void Grow(ref float[] buffer, int length)
    {
        if (buffer.Length < length)
            buffer = new float[length];
    }

    private enum LayerKind
    {
        Linear,
        Conv,
        Patch,
        LayerNorm,
        GroupNorm,
        Tokens,
    }

    private sealed class Layer
    {
        public Layer(string name, Module module)
        {
            Name = name;
            Module = module;
            (Kind, Weight, Bias) = module switch
            {
                Linear l => (LayerKind.Linear, l.Weight, l.Bias),
                Conv2d c => (LayerKind.Conv, c.Weight, c.Bias),
                PatchEmbed p => (LayerKind.Patch, p.Proj.Weight, p.Proj.Bias),
                LayerNorm n => (LayerKind.LayerNorm, n.Weight, (Tensor?)n.Bias),
                GroupNorm n => (LayerKind.GroupNorm, n.Weight, (Tensor?)n.Bias),
                TokenEmbedding e => (LayerKind.Tokens, e.Pos, e.Cls), // Bias: the class token, if any
                _ => throw new ArgumentException($"per-sample gradients: no rule for {module.GetType().Name}"),
            };
        }

        public string Name { get; }
        public Module Module { get; }
        public LayerKind Kind { get; }
        public Conv2d? Conv => Module as Conv2d;
        public Tensor Weight { get; }
        public Tensor? Bias { get; }
        public Tensor? Input;
        public Tensor? OutputGradient;
        /// <summary>Unfolded input: im2col of a convolution, the patches of a patch embedding.</summary>
        public float[] Columns = [];
        /// <summary>Per-sample ∇γ and ∇β of a norm layer ([N, 2C]); a bias sum of a sequence layer.</summary>
        public float[] Vectors = [];
    }
}
