using System.Numerics.Tensors;
using LabelNoiseLab.Autograd;
using LabelNoiseLab.Nn;
using LabelNoiseLab.Tensors;
using LabelNoiseLab.Training;

namespace LabelNoiseLab.Probes;

/// <summary>
/// A copy of an MLP's, TwoLayerLinear's or SmallCnn's computation that runs with explicit parameters θ (one flat
/// vector, in <see cref="Module.Parameters"/> order) and, optionally, a tangent θ̇ beside them:
/// <list type="bullet">
/// <item><see cref="Forward"/>: f(x; θ) and, with a tangent, the exact Jacobian–vector product
/// J(x; θ)·θ̇ (forward mode through Linear, Conv2d, the activations and the pools);</item>
/// <item><see cref="Backward"/>: the vector–Jacobian product Jᵀg; with a tangent of g as well, its
/// directional derivative (forward-over-reverse), which for g = ∂L/∂f is the exact Hessian–vector
/// product H·θ̇ of the loss (<see cref="HessianVectorProduct"/>).</item>
/// </list>
/// Nothing materialises a Jacobian or a Hessian. Supported layers: Linear, Conv2d, the element-wise
/// activations (identity, relu, gelu, tanh, erf, sigmoid), max and average pooling, Flatten and
/// dropout with p = 0; anything else is refused by <see cref="Unsupported"/>.
/// Buffers grow to the largest batch seen and are reused (no allocation per call afterwards).
/// </summary>
public sealed class TangentNet
{
    private readonly Layer[] _layers;
    private readonly int[] _lengths; // per-sample length of the input of layer i (i = layers: the output)
    private float[][] _acts = [], _actsDot = [], _grads = [], _gradsDot = [];
    private int _capacity;
    private int _n;

    private TangentNet(Layer[] layers, int[] lengths, IReadOnlyList<Tensor> parameters)
    {
        _layers = layers;
        _lengths = lengths;
        Parameters = parameters;
        Dimension = parameters.Sum(p => p.Length);
    }

    /// <summary>The model's parameters in the order of the flat vector.</summary>
    public IReadOnlyList<Tensor> Parameters { get; }

    /// <summary>Number of parameters P.</summary>
    public int Dimension { get; }

    /// <summary>Per-sample input length.</summary>
    public int InputLength => _lengths[0];

    /// <summary>Outputs per sample (k).</summary>
    public int Outputs => _lengths[^1];

    /// <summary>Whether every parametrised layer is Linear (the closed-form tangent kernel applies).</summary>
    public bool LinearOnly => _layers.All(l => l is not ConvLayer);

    /// <summary>f(x; θ) of the last <see cref="Forward"/> ([n, k]).</summary>
    public ReadOnlySpan<float> Output => _acts[^1].AsSpan(0, _n * Outputs);

    /// <summary>J(x; θ)·θ̇ of the last <see cref="Forward"/> with a tangent ([n, k]).</summary>
    public ReadOnlySpan<float> OutputTangent => _actsDot[^1].AsSpan(0, _n * Outputs);

    /// <summary>Why <paramref name="model"/> is not covered (a short phrase), or null when it is.</summary>
    public static string? Unsupported(Model model)
    {
        ArgumentNullException.ThrowIfNull(model);
        return TryBuild(model, out _, out string? why) ? null : why;
    }

    /// <summary>The tangent network of <paramref name="model"/> (an MLP or a SmallCnn of supported layers).</summary>
    public static TangentNet For(Model model)
    {
        ArgumentNullException.ThrowIfNull(model);
        return TryBuild(model, out var net, out string? why) ? net! : throw new NotSupportedException(why);
    }

    /// <summary>The model's parameters as one flat vector.</summary>
    public void CopyParameters(Span<float> theta)
    {
        int offset = 0;
        foreach (var p in Parameters)
        {
            p.Span.CopyTo(theta.Slice(offset, p.Length));
            offset += p.Length;
        }
    }

    /// <summary>
    /// Runs n samples x ([n, InputLength]) at θ; with a non-empty <paramref name="thetaDot"/> also
    /// the tangent J·θ̇. Results in <see cref="Output"/> and <see cref="OutputTangent"/>.
    /// </summary>
    public void Forward(ReadOnlySpan<float> theta, ReadOnlySpan<float> thetaDot, ReadOnlySpan<float> x, int n)
    {
        Check(theta, thetaDot);
        if (x.Length < n * InputLength)
            throw new ArgumentException($"input has {x.Length} values, {n}×{InputLength} needed", nameof(x));
        Ensure(n);
        _n = n;
        bool tangent = !thetaDot.IsEmpty;
        x[..(n * InputLength)].CopyTo(_acts[0]);
        for (int i = 0; i < _layers.Length; i++)
        {
            int inLen = _lengths[i] * n, outLen = _lengths[i + 1] * n;
            var xd = tangent && i > 0 ? _actsDot[i].AsSpan(0, inLen) : Span<float>.Empty;
            var yd = tangent ? _actsDot[i + 1].AsSpan(0, outLen) : Span<float>.Empty;
            _layers[i].Forward(n, theta, thetaDot, _acts[i].AsSpan(0, inLen), xd, _acts[i + 1].AsSpan(0, outLen), yd);
        }
    }

    /// <summary>
    /// After <see cref="Forward"/> (with the same θ and θ̇): grad = Jᵀ·gy; with a non-empty
    /// <paramref name="gyDot"/> (then the forward must have had a tangent) also gradDot = d/dε of
    /// Jᵀ(θ + εθ̇)·gy(ε) at ε = 0 with gy's derivative gyDot.
    /// </summary>
    public void Backward(ReadOnlySpan<float> theta, ReadOnlySpan<float> thetaDot, ReadOnlySpan<float> gy, ReadOnlySpan<float> gyDot,
        Span<float> grad, Span<float> gradDot)
    {
        Check(theta, thetaDot);
        int n = _n;
        bool tangent = !gyDot.IsEmpty;
        if (tangent && thetaDot.IsEmpty)
            throw new ArgumentException("a tangent backward needs the forward's tangent θ̇", nameof(thetaDot));
        if (grad.Length != Dimension || (tangent && gradDot.Length != Dimension))
            throw new ArgumentException($"gradients must have {Dimension} entries");
        gy[..(n * Outputs)].CopyTo(_grads[^1]);
        if (tangent)
            gyDot[..(n * Outputs)].CopyTo(_gradsDot[^1]);
        for (int i = _layers.Length - 1; i >= 0; i--)
        {
            int inLen = _lengths[i] * n, outLen = _lengths[i + 1] * n;
            bool first = i == 0;
            _layers[i].Backward(n, theta, tangent ? thetaDot : [],
                _acts[i].AsSpan(0, inLen), tangent && !first ? _actsDot[i].AsSpan(0, inLen) : Span<float>.Empty,
                _acts[i + 1].AsSpan(0, outLen),
                _grads[i + 1].AsSpan(0, outLen), tangent ? _gradsDot[i + 1].AsSpan(0, outLen) : Span<float>.Empty,
                first ? Span<float>.Empty : _grads[i].AsSpan(0, inLen), first || !tangent ? Span<float>.Empty : _gradsDot[i].AsSpan(0, inLen),
                grad, tangent ? gradDot : Span<float>.Empty);
        }
    }

    /// <summary>
    /// H·v of the loss (<paramref name="kind"/> as the trainer's plain loss: mean cross-entropy, or
    /// MSE meaned over all n·k entries) at θ on n samples x with labels (or regression targets);
    /// exact by forward-over-reverse. Returns the loss; <paramref name="grad"/> gets its gradient.
    /// </summary>
    public double HessianVectorProduct(ReadOnlySpan<float> theta, ReadOnlySpan<float> v, ReadOnlySpan<float> x, int n,
        LossKind kind, ReadOnlySpan<int> labels, ReadOnlySpan<float> targets, Span<float> grad, Span<float> hv, float[] gyScratch, float[] gyDotScratch)
    {
        ArgumentNullException.ThrowIfNull(gyScratch);
        ArgumentNullException.ThrowIfNull(gyDotScratch);
        Forward(theta, v, x, n);
        int len = n * Outputs;
        double loss = LossGradient(kind, Output, OutputTangent, n, Outputs, labels, targets, gyScratch.AsSpan(0, len), gyDotScratch.AsSpan(0, len));
        Backward(theta, v, gyScratch.AsSpan(0, len), gyDotScratch.AsSpan(0, len), grad, hv);
        return loss;
    }

    /// <summary>
    /// The plain loss of outputs y ([n, k]) and its gradient gy = ∂L/∂y; with a non-empty
    /// <paramref name="yDot"/> also gyDot = (∂²L/∂y²)·ẏ. Cross-entropy: L = mean −log softmax(yᵢ)[labelᵢ];
    /// MSE: L = mean over all n·k entries of (y − t)², t one-hot rows of the labels or the targets.
    /// </summary>
    public static double LossGradient(LossKind kind, ReadOnlySpan<float> y, ReadOnlySpan<float> yDot, int n, int k,
        ReadOnlySpan<int> labels, ReadOnlySpan<float> targets, Span<float> gy, Span<float> gyDot)
    {
        bool tangent = !yDot.IsEmpty;
        double total = 0;
        if (kind == LossKind.Mse)
        {
            float scale = 2f / (n * k);
            for (int i = 0; i < n; i++)
            {
                for (int j = 0; j < k; j++)
                {
                    int idx = i * k + j;
                    float t = targets.IsEmpty ? (labels[i] == j ? 1f : 0f) : targets[idx];
                    float r = y[idx] - t;
                    total += (double)r * r;
                    gy[idx] = scale * r;
                    if (tangent)
                        gyDot[idx] = scale * yDot[idx];
                }
            }
            return total / (n * k);
        }
        float inv = 1f / n;
        for (int i = 0; i < n; i++)
        {
            var row = y.Slice(i * k, k);
            float max = TensorPrimitives.Max(row);
            double sum = 0;
            for (int j = 0; j < k; j++)
                sum += Math.Exp(row[j] - max);
            int label = labels[i];
            total += Math.Log(sum) + max - row[label];
            double dot = 0;
            for (int j = 0; j < k; j++)
            {
                double p = Math.Exp(row[j] - max) / sum;
                gy[i * k + j] = (float)((p - (j == label ? 1 : 0)) * inv);
                if (tangent)
                    dot += p * yDot[i * k + j];
            }
            if (tangent)
            {
                for (int j = 0; j < k; j++)
                {
                    double p = Math.Exp(row[j] - max) / sum;
                    gyDot[i * k + j] = (float)(p * (yDot[i * k + j] - dot) * inv);
                }
            }
        }
        return total / n;
    }

    /// <summary>
    /// The empirical tangent kernel K = J Jᵀ at θ on n samples x over every (output, sample) pair,
    /// row and column index a·n + i (output a, sample i), [k·n, k·n] in double, for an all-Linear
    /// network (<see cref="LinearOnly"/>). Per Linear layer l with input h and output gradient δᵃ
    /// (of output a): K += (δᵃ δᵇᵀ) ⊙ (h hᵀ + 1 if it has a bias); one backward per output, no Jacobian.
    /// </summary>
    public double[] TangentKernel(ReadOnlySpan<float> theta, ReadOnlySpan<float> x, int n)
    {
        if (!LinearOnly)
            throw new NotSupportedException("the closed-form tangent kernel covers Linear layers only");
        int k = Outputs, kn = k * n;
        Forward(theta, [], x, n);
        var linear = _layers.Select((l, i) => (Layer: l as LinearLayer, Index: i)).Where(p => p.Layer is not null).ToArray();
        var deltas = linear.Select(p => new float[kn * p.Layer!.Out]).ToArray();
        var gy = new float[n * k];
        var grad = new float[Dimension];
        for (int a = 0; a < k; a++)
        {
            Array.Clear(gy);
            for (int i = 0; i < n; i++)
                gy[i * k + a] = 1f;
            Backward(theta, [], gy, [], grad, []);
            for (int l = 0; l < linear.Length; l++)
            {
                int outs = linear[l].Layer!.Out;
                _grads[linear[l].Index + 1].AsSpan(0, n * outs).CopyTo(deltas[l].AsSpan(a * n * outs, n * outs));
            }
        }
        var kernel = new double[kn * kn];
        var dd = new float[kn * kn];
        var hh = new float[n * n];
        for (int l = 0; l < linear.Length; l++)
        {
            var (layer, index) = (linear[l].Layer!, linear[l].Index);
            int ins = layer.In, outs = layer.Out;
            Blas.Sgemm(false, true, kn, kn, outs, 1f, deltas[l], outs, deltas[l], outs, 0f, dd, kn);
            Blas.Sgemm(false, true, n, n, ins, 1f, _acts[index].AsSpan(0, n * ins), ins, _acts[index].AsSpan(0, n * ins), ins, 0f, hh, n);
            float one = layer.HasBias ? 1f : 0f;
            for (int r = 0; r < kn; r++)
            {
                int i = r % n;
                for (int c = 0; c < kn; c++)
                    kernel[r * kn + c] += (double)dd[r * kn + c] * (hh[i * n + c % n] + one);
            }
        }
        return kernel;
    }

    /// <summary>1 − ⟨K₀, K⟩ / (‖K₀‖ ‖K‖) (Frobenius); 0 for identical directions.</summary>
    public static double KernelDistance(ReadOnlySpan<double> k0, ReadOnlySpan<double> k)
    {
        if (k0.Length != k.Length)
            throw new ArgumentException("kernels of different sizes");
        double dot = 0, a = 0, b = 0;
        for (int i = 0; i < k.Length; i++)
        {
            dot += k0[i] * k[i];
            a += k0[i] * k0[i];
            b += k[i] * k[i];
        }
        return a == 0 || b == 0 ? double.NaN : 1 - dot / Math.Sqrt(a * b);
    }

    private void Check(ReadOnlySpan<float> theta, ReadOnlySpan<float> thetaDot)
    {
        if (theta.Length != Dimension || (!thetaDot.IsEmpty && thetaDot.Length != Dimension))
            throw new ArgumentException($"parameter vectors must have {Dimension} entries, got {theta.Length} and {thetaDot.Length}");
    }

    private void Ensure(int n)
    {
        if (n <= _capacity)
            return;
        _capacity = n;
        int count = _lengths.Length;
        _acts = new float[count][];
        _actsDot = new float[count][];
        _grads = new float[count][];
        _gradsDot = new float[count][];
        for (int i = 0; i < count; i++)
        {
            int len = _lengths[i] * n;
            _acts[i] = new float[len];
            _actsDot[i] = new float[len];
            _grads[i] = new float[len];
            _gradsDot[i] = new float[len];
        }
        foreach (var layer in _layers)
            layer.Ensure(n);
    }

    private static bool TryBuild(Model model, out TangentNet? net, out string? why)
    {
        net = null;
        why = null;
        IReadOnlyList<Module> modules;
        int[] shape; // per-sample input shape: [d] or [C, H, W]
        switch (model)
        {
            case Mlp mlp:
                modules = mlp.Layers;
                var first = (Linear)mlp.Layers[0];
                shape = [first.Inputs];
                break;
            case TwoLayerLinear two:
                modules = [.. two.NamedModules().Skip(1).Select(m => m.Module)]; // first, second: aᵀWx
                shape = [two.InputDim];
                break;
            case SmallCnn cnn:
                modules = [.. cnn.Layers, cnn.Head];
                shape = [cnn.Channels, cnn.ImageSize, cnn.ImageSize];
                break;
            default:
                why = $"{model.GetType().Name} is not covered (exact products exist for the MLP and SmallCnn layers only)";
                return false;
        }
        var offsets = new Dictionary<Tensor, int>(ReferenceEqualityComparer.Instance);
        var parameters = model.Parameters().ToList();
        int offset = 0;
        foreach (var p in parameters)
        {
            offsets[p] = offset;
            offset += p.Length;
        }
        var layers = new List<Layer>();
        var lengths = new List<int> { shape.Aggregate(1, (a, b) => a * b) };
        foreach (var module in modules)
        {
            Layer? layer;
            switch (module)
            {
                case Linear linear:
                    if (Product(shape) != linear.Inputs)
                    {
                        why = $"a Linear layer expects {linear.Inputs} inputs, gets {Product(shape)}";
                        return false;
                    }
                    layer = new LinearLayer(linear.Inputs, linear.Outputs, offsets[linear.Weight], linear.Bias is null ? -1 : offsets[linear.Bias]);
                    shape = [linear.Outputs];
                    break;
                case Activation act:
                    layer = new ActivationLayer(act.Kind);
                    break;
                case Flatten:
                    shape = [Product(shape)];
                    layer = null;
                    break;
                case Dropout { P: 0f }:
                    layer = null;
                    break;
                case Conv2d conv when shape.Length == 3:
                    var w = conv.Weight;
                    var g = new Conv2dOp.Geometry(0, shape[0], shape[1], shape[2], w.Dim(0), w.Dim(2), w.Dim(3), conv.Stride, conv.Padding,
                        (shape[1] + 2 * conv.Padding - w.Dim(2)) / conv.Stride + 1, (shape[2] + 2 * conv.Padding - w.Dim(3)) / conv.Stride + 1);
                    if (w.Dim(1) != shape[0])
                    {
                        why = $"a Conv2d layer expects {w.Dim(1)} channels, gets {shape[0]}";
                        return false;
                    }
                    layer = new ConvLayer(g, offsets[w], conv.Bias is null ? -1 : offsets[conv.Bias]);
                    shape = [g.Co, g.OH, g.OW];
                    break;
                case MaxPool2d pool when shape.Length == 3:
                    layer = new PoolLayer(shape[0], shape[1], shape[2], pool.Kernel, pool.Stride, max: true);
                    shape = [shape[0], (shape[1] - pool.Kernel) / pool.Stride + 1, (shape[2] - pool.Kernel) / pool.Stride + 1];
                    break;
                case AvgPool2d pool when shape.Length == 3:
                    layer = new PoolLayer(shape[0], shape[1], shape[2], pool.Kernel, pool.Stride, max: false);
                    shape = [shape[0], (shape[1] - pool.Kernel) / pool.Stride + 1, (shape[2] - pool.Kernel) / pool.Stride + 1];
                    break;
                default:
                    why = $"layer {module.GetType().Name} is not covered (Linear, Conv2d, activations, pooling, Flatten, dropout 0 are)";
                    return false;
            }
            if (layer is not null)
            {
                layer.InLen = lengths[^1];
                layer.OutLen = Product(shape);
                layers.Add(layer);
                lengths.Add(Product(shape));
            }
        }
        net = new TangentNet([.. layers], [.. lengths], parameters);
        return true;

        static int Product(int[] s) => s.Aggregate(1, (a, b) => a * b);
    }

    /// <summary>One layer: forward with an optional tangent; backward with an optional tangent. Empty spans mean "none".</summary>
    private abstract class Layer
    {
        public int InLen;
        public int OutLen;

        public virtual void Ensure(int n)
        {
        }

        public abstract void Forward(int n, ReadOnlySpan<float> theta, ReadOnlySpan<float> thetaDot,
            ReadOnlySpan<float> x, ReadOnlySpan<float> xd, Span<float> y, Span<float> yd);

        /// <summary>gx/gxd empty: not wanted. grad/gradDot: this layer's parameter slices are overwritten.</summary>
        public abstract void Backward(int n, ReadOnlySpan<float> theta, ReadOnlySpan<float> thetaDot,
            ReadOnlySpan<float> x, ReadOnlySpan<float> xd, ReadOnlySpan<float> y, ReadOnlySpan<float> gy, ReadOnlySpan<float> gyd,
            Span<float> gx, Span<float> gxd, Span<float> grad, Span<float> gradDot);
    }

    private sealed class LinearLayer(int inputs, int outputs, int weight, int bias) : Layer
    {
        public int In => inputs;
        public int Out => outputs;
        public bool HasBias => bias >= 0;

        public override void Forward(int n, ReadOnlySpan<float> theta, ReadOnlySpan<float> thetaDot,
            ReadOnlySpan<float> x, ReadOnlySpan<float> xd, Span<float> y, Span<float> yd)
        {
            var w = theta.Slice(weight, inputs * outputs);
            Blas.Sgemm(false, true, n, outputs, inputs, 1f, x, inputs, w, inputs, 0f, y, outputs);
            if (bias >= 0)
                AddRows(y, theta.Slice(bias, outputs), n);
            if (yd.IsEmpty)
                return;
            float beta = 0f;
            if (!xd.IsEmpty)
            {
                Blas.Sgemm(false, true, n, outputs, inputs, 1f, xd, inputs, w, inputs, 0f, yd, outputs);
                beta = 1f;
            }
            Blas.Sgemm(false, true, n, outputs, inputs, 1f, x, inputs, thetaDot.Slice(weight, inputs * outputs), inputs, beta, yd, outputs);
            if (bias >= 0)
                AddRows(yd, thetaDot.Slice(bias, outputs), n);
        }

        public override void Backward(int n, ReadOnlySpan<float> theta, ReadOnlySpan<float> thetaDot,
            ReadOnlySpan<float> x, ReadOnlySpan<float> xd, ReadOnlySpan<float> y, ReadOnlySpan<float> gy, ReadOnlySpan<float> gyd,
            Span<float> gx, Span<float> gxd, Span<float> grad, Span<float> gradDot)
        {
            int wl = inputs * outputs;
            var w = theta.Slice(weight, wl);
            Blas.Sgemm(true, false, outputs, inputs, n, 1f, gy, outputs, x, inputs, 0f, grad.Slice(weight, wl), inputs);
            if (bias >= 0)
                ColumnSums(gy, n, outputs, grad.Slice(bias, outputs));
            if (!gyd.IsEmpty)
            {
                var gwd = gradDot.Slice(weight, wl);
                Blas.Sgemm(true, false, outputs, inputs, n, 1f, gyd, outputs, x, inputs, 0f, gwd, inputs);
                if (!xd.IsEmpty)
                    Blas.Sgemm(true, false, outputs, inputs, n, 1f, gy, outputs, xd, inputs, 1f, gwd, inputs);
                if (bias >= 0)
                    ColumnSums(gyd, n, outputs, gradDot.Slice(bias, outputs));
            }
            if (!gx.IsEmpty)
                Blas.Sgemm(false, false, n, inputs, outputs, 1f, gy, outputs, w, inputs, 0f, gx, inputs);
            if (!gxd.IsEmpty)
            {
                Blas.Sgemm(false, false, n, inputs, outputs, 1f, gyd, outputs, w, inputs, 0f, gxd, inputs);
                Blas.Sgemm(false, false, n, inputs, outputs, 1f, gy, outputs, thetaDot.Slice(weight, wl), inputs, 1f, gxd, inputs);
            }
        }
    }

    private sealed class ActivationLayer(ActivationKind kind) : Layer
    {
        private static readonly double TwoOverSqrtPi = 2.0 / Math.Sqrt(Math.PI);
        private static readonly double InvSqrt2 = 1.0 / Math.Sqrt(2.0);
        private static readonly double InvSqrt2Pi = 1.0 / Math.Sqrt(2.0 * Math.PI);

        public override void Forward(int n, ReadOnlySpan<float> theta, ReadOnlySpan<float> thetaDot,
            ReadOnlySpan<float> x, ReadOnlySpan<float> xd, Span<float> y, Span<float> yd)
        {
            switch (kind)
            {
                case ActivationKind.Identity: x.CopyTo(y); break;
                case ActivationKind.Relu: ReluOp.Instance.Apply(x, y); break;
                case ActivationKind.Gelu: GeluOp.Instance.Apply(x, y); break;
                case ActivationKind.Tanh: TanhOp.Instance.Apply(x, y); break;
                case ActivationKind.Erf: ErfOp.Instance.Apply(x, y); break;
                case ActivationKind.Sigmoid: SigmoidOp.Instance.Apply(x, y); break;
                default: throw new NotSupportedException($"activation {kind}");
            }
            if (yd.IsEmpty)
                return;
            if (xd.IsEmpty)
            {
                yd.Clear();
                return;
            }
            for (int i = 0; i < y.Length; i++)
                yd[i] = (float)(First(x[i], y[i]) * xd[i]);
        }

        public override void Backward(int n, ReadOnlySpan<float> theta, ReadOnlySpan<float> thetaDot,
            ReadOnlySpan<float> x, ReadOnlySpan<float> xd, ReadOnlySpan<float> y, ReadOnlySpan<float> gy, ReadOnlySpan<float> gyd,
            Span<float> gx, Span<float> gxd, Span<float> grad, Span<float> gradDot)
        {
            if (gx.IsEmpty)
                return;
            for (int i = 0; i < gx.Length; i++)
            {
                double d1 = First(x[i], y[i]);
                gx[i] = (float)(gy[i] * d1);
                if (!gxd.IsEmpty)
                {
                    double v = gyd[i] * d1;
                    if (!xd.IsEmpty)
                        v += gy[i] * Second(x[i], y[i]) * xd[i];
                    gxd[i] = (float)v;
                }
            }
        }

        /// <summary>σ′(x) given y = σ(x).</summary>
        private double First(double x, double y) => kind switch
        {
            ActivationKind.Identity => 1,
            ActivationKind.Relu => y > 0 ? 1 : 0,
            ActivationKind.Tanh => 1 - y * y,
            ActivationKind.Sigmoid => y * (1 - y),
            ActivationKind.Erf => TwoOverSqrtPi * Math.Exp(-x * x),
            ActivationKind.Gelu => 0.5 * (1 + Kernels.Erf(x * InvSqrt2)) + x * InvSqrt2Pi * Math.Exp(-0.5 * x * x),
            _ => throw new NotSupportedException($"activation {kind}"),
        };

        /// <summary>σ″(x) given y = σ(x) (0 for identity and relu, almost everywhere).</summary>
        private double Second(double x, double y) => kind switch
        {
            ActivationKind.Identity or ActivationKind.Relu => 0,
            ActivationKind.Tanh => -2 * y * (1 - y * y),
            ActivationKind.Sigmoid => y * (1 - y) * (1 - 2 * y),
            ActivationKind.Erf => -2 * x * TwoOverSqrtPi * Math.Exp(-x * x),
            ActivationKind.Gelu => InvSqrt2Pi * Math.Exp(-0.5 * x * x) * (2 - x * x),
            _ => throw new NotSupportedException($"activation {kind}"),
        };
    }

    /// <summary>Conv2d by im2col and GEMMs, as <see cref="Conv2dOp"/>; the unfolded input (and its tangent) kept for the backward.</summary>
    private sealed class ConvLayer(Conv2dOp.Geometry shape, int weight, int bias) : Layer
    {
        private float[] _col = [], _colDot = [], _yt = [], _gt = [], _gtDot = [], _dcol = [];
        private Conv2dOp.Geometry _g;

        public override void Ensure(int n)
        {
            _g = shape with { N = n };
            int positions = n * _g.OutPlane;
            _col = new float[_g.Patch * positions];
            _colDot = new float[_g.Patch * positions];
            _dcol = new float[_g.Patch * positions];
            _yt = new float[_g.Co * positions];
            _gt = new float[_g.Co * positions];
            _gtDot = new float[_g.Co * positions];
        }

        public override void Forward(int n, ReadOnlySpan<float> theta, ReadOnlySpan<float> thetaDot,
            ReadOnlySpan<float> x, ReadOnlySpan<float> xd, Span<float> y, Span<float> yd)
        {
            var g = _g with { N = n };
            int positions = n * g.OutPlane, wl = g.Co * g.Patch;
            var col = _col.AsSpan(0, g.Patch * positions);
            var yt = _yt.AsSpan(0, g.Co * positions);
            Conv2dOp.Im2Col(x, col, g);
            Blas.Sgemm(false, false, g.Co, positions, g.Patch, 1f, theta.Slice(weight, wl), g.Patch, col, positions, 0f, yt, positions);
            ToBatchMajor(yt, y, g, bias >= 0 ? theta.Slice(bias, g.Co) : []);
            if (yd.IsEmpty)
                return;
            float beta = 0f;
            if (!xd.IsEmpty)
            {
                var colDot = _colDot.AsSpan(0, g.Patch * positions);
                Conv2dOp.Im2Col(xd, colDot, g);
                Blas.Sgemm(false, false, g.Co, positions, g.Patch, 1f, theta.Slice(weight, wl), g.Patch, colDot, positions, 0f, yt, positions);
                beta = 1f;
            }
            Blas.Sgemm(false, false, g.Co, positions, g.Patch, 1f, thetaDot.Slice(weight, wl), g.Patch, col, positions, beta, yt, positions);
            ToBatchMajor(yt, yd, g, bias >= 0 ? thetaDot.Slice(bias, g.Co) : []);
        }

        public override void Backward(int n, ReadOnlySpan<float> theta, ReadOnlySpan<float> thetaDot,
            ReadOnlySpan<float> x, ReadOnlySpan<float> xd, ReadOnlySpan<float> y, ReadOnlySpan<float> gy, ReadOnlySpan<float> gyd,
            Span<float> gx, Span<float> gxd, Span<float> grad, Span<float> gradDot)
        {
            var g = _g with { N = n };
            int positions = n * g.OutPlane, wl = g.Co * g.Patch;
            var col = _col.AsSpan(0, g.Patch * positions);
            var gt = _gt.AsSpan(0, g.Co * positions);
            ToChannelMajor(gy, gt, g);
            Blas.Sgemm(false, true, g.Co, g.Patch, positions, 1f, gt, positions, col, positions, 0f, grad.Slice(weight, wl), g.Patch);
            if (bias >= 0)
                RowSums(gt, g.Co, positions, grad.Slice(bias, g.Co));
            bool tangent = !gyd.IsEmpty;
            var gtDot = _gtDot.AsSpan(0, g.Co * positions);
            if (tangent)
            {
                ToChannelMajor(gyd, gtDot, g);
                var gwd = gradDot.Slice(weight, wl);
                Blas.Sgemm(false, true, g.Co, g.Patch, positions, 1f, gtDot, positions, col, positions, 0f, gwd, g.Patch);
                if (!xd.IsEmpty)
                    Blas.Sgemm(false, true, g.Co, g.Patch, positions, 1f, gt, positions, _colDot.AsSpan(0, g.Patch * positions), positions, 1f, gwd, g.Patch);
                if (bias >= 0)
                    RowSums(gtDot, g.Co, positions, gradDot.Slice(bias, g.Co));
            }
            var dcol = _dcol.AsSpan(0, g.Patch * positions);
            if (!gx.IsEmpty)
            {
                Blas.Sgemm(true, false, g.Patch, positions, g.Co, 1f, theta.Slice(weight, wl), g.Patch, gt, positions, 0f, dcol, positions);
                gx.Clear();
                Conv2dOp.Col2ImAdd(dcol, gx, g);
            }
            if (!gxd.IsEmpty)
            {
                Blas.Sgemm(true, false, g.Patch, positions, g.Co, 1f, theta.Slice(weight, wl), g.Patch, gtDot, positions, 0f, dcol, positions);
                Blas.Sgemm(true, false, g.Patch, positions, g.Co, 1f, thetaDot.Slice(weight, wl), g.Patch, gt, positions, 1f, dcol, positions);
                gxd.Clear();
                Conv2dOp.Col2ImAdd(dcol, gxd, g);
            }
        }

        private static void ToBatchMajor(ReadOnlySpan<float> yt, Span<float> y, in Conv2dOp.Geometry g, ReadOnlySpan<float> b)
        {
            int positions = g.N * g.OutPlane;
            for (int n = 0; n < g.N; n++)
            for (int c = 0; c < g.Co; c++)
            {
                var src = yt.Slice(c * positions + n * g.OutPlane, g.OutPlane);
                var dst = y.Slice((n * g.Co + c) * g.OutPlane, g.OutPlane);
                if (b.IsEmpty)
                    src.CopyTo(dst);
                else
                    TensorPrimitives.Add(src, b[c], dst);
            }
        }

        private static void ToChannelMajor(ReadOnlySpan<float> y, Span<float> yt, in Conv2dOp.Geometry g)
        {
            int positions = g.N * g.OutPlane;
            for (int n = 0; n < g.N; n++)
            for (int c = 0; c < g.Co; c++)
                y.Slice((n * g.Co + c) * g.OutPlane, g.OutPlane).CopyTo(yt.Slice(c * positions + n * g.OutPlane, g.OutPlane));
        }

        private static void RowSums(ReadOnlySpan<float> a, int rows, int cols, Span<float> sums)
        {
            for (int r = 0; r < rows; r++)
                sums[r] = TensorPrimitives.Sum(a.Slice(r * cols, cols));
        }
    }

    /// <summary>Max or average pooling over k×k windows with a stride, no padding (max: the first largest entry of a window wins, as <see cref="MaxPool2dOp"/>).</summary>
    private sealed class PoolLayer(int channels, int height, int width, int kernel, int stride, bool max) : Layer
    {
        private readonly int _oh = (height - kernel) / stride + 1;
        private readonly int _ow = (width - kernel) / stride + 1;
        private int[] _argmax = [];

        public override void Ensure(int n) => _argmax = max ? new int[n * channels * _oh * _ow] : [];

        public override void Forward(int n, ReadOnlySpan<float> theta, ReadOnlySpan<float> thetaDot,
            ReadOnlySpan<float> x, ReadOnlySpan<float> xd, Span<float> y, Span<float> yd)
        {
            int inPlane = height * width, outPlane = _oh * _ow;
            float inv = 1f / (kernel * kernel);
            for (int p = 0; p < n * channels; p++)
            {
                for (int oy = 0; oy < _oh; oy++)
                for (int ox = 0; ox < _ow; ox++)
                {
                    int o = p * outPlane + oy * _ow + ox;
                    float best = float.NegativeInfinity, sum = 0, sumDot = 0;
                    int bestIndex = 0;
                    for (int i = 0; i < kernel; i++)
                    for (int j = 0; j < kernel; j++)
                    {
                        int idx = p * inPlane + (oy * stride + i) * width + ox * stride + j;
                        float v = x[idx];
                        if (max && (v > best || float.IsNaN(v)))
                            (best, bestIndex) = (v, idx);
                        sum += v;
                        if (!xd.IsEmpty)
                            sumDot += xd[idx];
                    }
                    if (max)
                    {
                        y[o] = best;
                        _argmax[o] = bestIndex;
                        if (!yd.IsEmpty)
                            yd[o] = xd.IsEmpty ? 0f : xd[bestIndex];
                    }
                    else
                    {
                        y[o] = sum * inv;
                        if (!yd.IsEmpty)
                            yd[o] = sumDot * inv;
                    }
                }
            }
        }

        public override void Backward(int n, ReadOnlySpan<float> theta, ReadOnlySpan<float> thetaDot,
            ReadOnlySpan<float> x, ReadOnlySpan<float> xd, ReadOnlySpan<float> y, ReadOnlySpan<float> gy, ReadOnlySpan<float> gyd,
            Span<float> gx, Span<float> gxd, Span<float> grad, Span<float> gradDot)
        {
            if (gx.IsEmpty)
                return;
            Scatter(gy, gx);
            if (!gxd.IsEmpty)
                Scatter(gyd, gxd);

            void Scatter(ReadOnlySpan<float> g, Span<float> dx)
            {
                dx.Clear();
                int inPlane = height * width, outPlane = _oh * _ow;
                float inv = 1f / (kernel * kernel);
                for (int p = 0; p < n * channels; p++)
                for (int oy = 0; oy < _oh; oy++)
                for (int ox = 0; ox < _ow; ox++)
                {
                    int o = p * outPlane + oy * _ow + ox;
                    if (max)
                    {
                        dx[_argmax[o]] += g[o];
                        continue;
                    }
                    for (int i = 0; i < kernel; i++)
                    for (int j = 0; j < kernel; j++)
                        dx[p * inPlane + (oy * stride + i) * width + ox * stride + j] += g[o] * inv;
                }
            }
        }
    }

    private static void AddRows(Span<float> y, ReadOnlySpan<float> b, int n)
    {
        int k = b.Length;
        for (int i = 0; i < n; i++)
            TensorPrimitives.Add(y.Slice(i * k, k), b, y.Slice(i * k, k));
    }

    private static void ColumnSums(ReadOnlySpan<float> a, int rows, int cols, Span<float> sums)
    {
        sums.Clear();
        for (int r = 0; r < rows; r++)
            TensorPrimitives.Add(sums, a.Slice(r * cols, cols), sums);
    }
}
