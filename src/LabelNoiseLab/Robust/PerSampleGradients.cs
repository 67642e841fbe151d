using System.Numerics.Tensors;
using LabelNoiseLab.Autograd;
using LabelNoiseLab.Losses;
using LabelNoiseLab.Nn;
using LabelNoiseLab.Tensors;

namespace LabelNoiseLab.Robust;

/// <summary>How a convolution's per-sample weight-gradient norm is computed.</summary>
public enum ConvNormMethod
{
    /// <summary>The cheaper of the two for the layer's size (flop count).</summary>
    Auto,

    /// <summary>‖∇W ℓᵢ‖² = ⟨GᵢᵀGᵢ, AᵢᵀAᵢ⟩ over output positions (two P×P Grams per sample).</summary>
    Gram,

    /// <summary>Gᵢ·Aᵢᵀ formed per sample in one reused buffer, then its squared sum.</summary>
    Materialise,
}

/// <summary>
/// Per-sample gradient norms ‖∇θ ℓᵢ‖ for every <see cref="Linear"/> and <see cref="Conv2d"/> of a
/// model, computed inside the ordinary backward from each layer's input (forward hook) and output
/// gradient (backward hook); no per-sample gradient of a Linear layer is ever formed:
/// ‖∇W ℓᵢ‖² = ‖gᵢ‖²‖aᵢ‖², ‖∇b ℓᵢ‖² = ‖gᵢ‖². The output gradient the backward sees is that of the
/// batch mean, gᵢ/B, so everything is scaled by <see cref="LossScale"/> (the batch size).
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

    public PerSampleGradients(Module model, ConvNormMethod conv = ConvNormMethod.Auto)
    {
        _model = model;
        ConvMethod = conv;
        var covered = new HashSet<Tensor>(ReferenceEqualityComparer.Instance);
        foreach (var (name, module) in model.NamedModules())
        {
            if (module is not (Linear or Conv2d))
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
                throw new ArgumentException($"per-sample gradients: parameter {name} belongs to a layer other than Linear or Conv2d");
    }

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
        int batch = x.Rows;
        if (_squared.Length < batch)
        {
            _squared = new double[batch];
            _norms = new float[batch];
        }
        _batch = batch;
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
        if (layer.Conv is { } conv)
        {
            var geo = Conv2dOp.Geometry.Of(layer.Input, conv.Weight, conv.Stride, conv.Padding);
            int positions = geo.N * geo.OutPlane;
            Grow(ref layer.Columns, geo.Patch * positions);
            Conv2dOp.Im2Col(layer.Input.Span, layer.Columns.AsSpan(0, geo.Patch * positions), geo);
            if (ComputeNorms)
                ConvNorms(layer, geo, g.Span);
        }
        else if (ComputeNorms)
        {
            LinearNorms(layer, g);
        }
    }

    private float Scale2()
    {
        float s = LossScale > 0 ? LossScale : _batch;
        return s * s;
    }

    private void LinearNorms(Layer layer, Tensor g)
    {
        Tensor a = layer.Input!;
        int outputs = g.RowLength, inputs = a.RowLength;
        double s2 = Scale2();
        bool bias = layer.Bias is not null;
        for (int i = 0; i < _batch; i++)
        {
            double gg = TensorPrimitives.SumOfSquares(g.Span.Slice(i * outputs, outputs));
            double aa = TensorPrimitives.SumOfSquares(a.Span.Slice(i * inputs, inputs));
            _squared[i] += s2 * (gg * aa + (bias ? gg : 0));
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
            if (layer.Conv is { } conv)
                WeightedConv(layer, conv, a, g, weights);
            else
                WeightedLinear(layer, a, g, weights);
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

    private void WeightedLinear(Layer layer, Tensor a, Tensor g, ReadOnlySpan<float> w)
    {
        int batch = a.Rows, inputs = a.RowLength, outputs = g.RowLength;
        Grow(ref _buffer, batch * outputs);
        var gs = _buffer.AsSpan(0, batch * outputs); // diag(w)·G
        for (int i = 0; i < batch; i++)
            TensorPrimitives.Multiply(g.Span.Slice(i * outputs, outputs), w[i], gs.Slice(i * outputs, outputs));
        var dw = GradTarget.For(layer.Weight);
        Blas.Sgemm(true, false, outputs, inputs, batch, 1f, gs, outputs, a.Span, inputs, dw.Beta, dw.Span, inputs);
        if (layer.Bias is not null)
        {
            var db = GradTarget.For(layer.Bias);
            Kernels.ColumnSums(gs, batch, outputs, db.Span, db.Accumulate);
        }
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

    private sealed class Layer(string name, Module module)
    {
        public string Name { get; } = name;
        public Conv2d? Conv { get; } = module as Conv2d;
        public Tensor Weight { get; } = module is Conv2d c ? c.Weight : ((Linear)module).Weight;
        public Tensor? Bias { get; } = module is Conv2d c ? c.Bias : ((Linear)module).Bias;
        public Tensor? Input;
        public Tensor? OutputGradient;
        public float[] Columns = [];
    }
}
