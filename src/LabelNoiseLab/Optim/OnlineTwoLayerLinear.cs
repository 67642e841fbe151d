using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using LabelNoiseLab.Nn;

namespace LabelNoiseLab.Optim;

/// <summary>
/// Fused batch-1 SGD (and SAM) for <see cref="TwoLayerLinear"/> with one output and the loss
/// ½(f(x) − t)², t = y + ε: the step the label-noise SGD paper runs millions of times.
/// <para>
/// The kernel keeps its own copy of the weights with W stored transposed (Wᵀ, [d, m]: column j
/// of W contiguous), so every pass runs along the width m in full vectors:
/// forward h = Wx = Σⱼ xⱼ·W[:, j], f = a·h (one pass over W); backward and update in a second
/// pass: r = f − t, W ← W − η·r·a xᵀ (with the old a), a ← a − η·r·h. That is the gradient
/// the autograd path computes (gW = r·a xᵀ, ga = r·h) in two vectorised passes, allocation-free.
/// </para>
/// <see cref="Load"/> copies a model's weights in; <see cref="Store"/> writes them back (needed
/// before anything reads the model). Sizes are fixed at construction.
/// </summary>
internal sealed class OnlineTwoLayerLinear
{
    private readonly float[] _wt;   // [d, m]: _wt[j*m + i] = W[i, j]
    private readonly float[] _a;    // [m]
    private readonly float[] _h;    // [m] workspace: Wx
    private readonly float[] _a2;   // [m] SAM: perturbed a
    private readonly float[] _h2;   // [m] SAM: perturbed Wx

    public OnlineTwoLayerLinear(int inputs, int width)
    {
        if (inputs < 1 || width < 1)
            throw new ArgumentOutOfRangeException(nameof(inputs), $"sizes must be positive, got d={inputs}, m={width}");
        Inputs = inputs;
        Width = width;
        _wt = new float[inputs * width];
        _a = new float[width];
        _h = new float[width];
        _a2 = new float[width];
        _h2 = new float[width];
    }

    public int Inputs { get; }

    public int Width { get; }

    /// <summary>Copies W and a from <paramref name="model"/> (which must have one output and these sizes).</summary>
    public void Load(TwoLayerLinear model)
    {
        Check(model);
        int d = Inputs, m = Width;
        var w = model.W.Span;
        for (int i = 0; i < m; i++)
            for (int j = 0; j < d; j++)
                _wt[j * m + i] = w[i * d + j];
        model.A.Span[..m].CopyTo(_a);
    }

    /// <summary>Writes the kernel's W and a back into <paramref name="model"/>.</summary>
    public void Store(TwoLayerLinear model)
    {
        Check(model);
        int d = Inputs, m = Width;
        var w = model.W.Span;
        for (int i = 0; i < m; i++)
            for (int j = 0; j < d; j++)
                w[i * d + j] = _wt[j * m + i];
        _a.CopyTo(model.A.Span);
    }

    /// <summary>f(x) = aᵀWx at the kernel's weights (fills the h workspace).</summary>
    public float Predict(ReadOnlySpan<float> x)
    {
        CheckInput(x);
        return Forward(x, _h);
    }

    /// <summary>
    /// One SGD step on ½(f(x) − target)² with learning rate <paramref name="lr"/>; returns the
    /// loss before the step.
    /// </summary>
    public float SgdStep(ReadOnlySpan<float> x, float target, float lr)
    {
        CheckInput(x);
        float r = Forward(x, _h) - target;
        RankOneUpdate(x, _a, _h, lr * r);
        return 0.5f * r * r;
    }

    /// <summary>
    /// One SGD step on the first layer only, with the second layer set to <paramref name="a"/>
    /// beforehand (the oscillation variant: a is prescribed, not trained): W −= lr·r·a xᵀ with
    /// r = aᵀWx − target. Returns ½r².
    /// </summary>
    public float FirstLayerStep(ReadOnlySpan<float> x, float target, float lr, ReadOnlySpan<float> a)
    {
        CheckInput(x);
        if (a.Length != Width)
            throw new ArgumentException($"a has {a.Length} entries, the network {Width}", nameof(a));
        a.CopyTo(_a);
        float r = Forward(x, _h) - target;
        int d = Inputs, m = Width;
        for (int j = 0; j < d; j++)
        {
            float c = -lr * r * x[j];
            System.Numerics.Tensors.TensorPrimitives.MultiplyAdd(_a, c, _wt.AsSpan(j * m, m), _wt.AsSpan(j * m, m));
        }
        return 0.5f * r * r;
    }

    /// <summary>
    /// One SAM step (ρ = <paramref name="rho"/>, global gradient norm) followed by SGD, in closed
    /// form: the gradient g = (r·a xᵀ, r·h) has ‖g‖² = r²(‖a‖²‖x‖² + ‖h‖²); at w + ε̂ with
    /// s = ρ/‖g‖ the weights are a' = a + s·r·h, W' = W + s·r·a xᵀ, so W'x = h + s·r·‖x‖²·a
    /// without another pass over W. The update uses the gradient at w + ε̂ and is applied at w.
    /// Returns the loss at w before the step.
    /// </summary>
    public float SamStep(ReadOnlySpan<float> x, float target, float lr, float rho)
    {
        CheckInput(x);
        int m = Width;
        float r = Forward(x, _h) - target;
        float xx = Dot(x, x), aa = Dot(_a, _a), hh = Dot(_h, _h);
        double gNorm = Math.Abs(r) * Math.Sqrt((double)aa * xx + hh);
        if (!(gNorm > 0) || !double.IsFinite(gNorm))
        {
            RankOneUpdate(x, _a, _h, lr * r);
            return 0.5f * r * r;
        }
        float sr = (float)(rho / gNorm) * r;
        float srxx = sr * xx;
        float f2 = 0;
        for (int i = 0; i < m; i++)
        {
            float ai = _a[i], hi = _h[i];
            float a2 = ai + sr * hi;
            float h2 = hi + srxx * ai;
            _a2[i] = a2;
            _h2[i] = h2;
            f2 += a2 * h2;
        }
        float r2 = f2 - target;
        RankOneUpdate(x, _a2, _h2, lr * r2);
        return 0.5f * r * r;
    }

    /// <summary>h = Wx (in Wᵀ layout) and f = a·h.</summary>
    private float Forward(ReadOnlySpan<float> x, float[] h)
    {
        int d = Inputs, m = Width, i = 0;
        ref float wt = ref MemoryMarshal.GetArrayDataReference(_wt);
        ref float hr = ref MemoryMarshal.GetArrayDataReference(h);
        ref float ar = ref MemoryMarshal.GetArrayDataReference(_a);
        var fAcc = Vector256<float>.Zero;
        if (Vector256.IsHardwareAccelerated)
        {
            for (; i <= m - 2 * Vector256<float>.Count; i += 2 * Vector256<float>.Count)
            {
                var acc0 = Vector256<float>.Zero;
                var acc1 = Vector256<float>.Zero;
                for (int j = 0; j < d; j++)
                {
                    var xj = Vector256.Create(x[j]);
                    ref float col = ref Unsafe.Add(ref wt, j * m + i);
                    acc0 = Vector256.FusedMultiplyAdd(Vector256.LoadUnsafe(ref col), xj, acc0);
                    acc1 = Vector256.FusedMultiplyAdd(Vector256.LoadUnsafe(ref col, (nuint)Vector256<float>.Count), xj, acc1);
                }
                acc0.StoreUnsafe(ref hr, (nuint)i);
                acc1.StoreUnsafe(ref hr, (nuint)(i + Vector256<float>.Count));
                fAcc = Vector256.FusedMultiplyAdd(acc0, Vector256.LoadUnsafe(ref ar, (nuint)i), fAcc);
                fAcc = Vector256.FusedMultiplyAdd(acc1, Vector256.LoadUnsafe(ref ar, (nuint)(i + Vector256<float>.Count)), fAcc);
            }
        }
        float f = Vector256.Sum(fAcc);
        for (; i < m; i++)
        {
            float s = 0;
            for (int j = 0; j < d; j++)
                s += _wt[j * m + i] * x[j];
            h[i] = s;
            f += s * _a[i];
        }
        return f;
    }

    /// <summary>W ← W − c·av xᵀ, then a ← a − c·hv (W's update uses av as given).</summary>
    private void RankOneUpdate(ReadOnlySpan<float> x, float[] av, float[] hv, float c)
    {
        int d = Inputs, m = Width, i = 0;
        ref float wt = ref MemoryMarshal.GetArrayDataReference(_wt);
        ref float avr = ref MemoryMarshal.GetArrayDataReference(av);
        ref float hvr = ref MemoryMarshal.GetArrayDataReference(hv);
        ref float ar = ref MemoryMarshal.GetArrayDataReference(_a);
        if (Vector256.IsHardwareAccelerated)
        {
            var vc = Vector256.Create(-c);
            for (; i <= m - Vector256<float>.Count; i += Vector256<float>.Count)
            {
                var ca = vc * Vector256.LoadUnsafe(ref avr, (nuint)i); // −c·a, old a
                for (int j = 0; j < d; j++)
                {
                    ref float col = ref Unsafe.Add(ref wt, j * m + i);
                    Vector256.FusedMultiplyAdd(ca, Vector256.Create(x[j]), Vector256.LoadUnsafe(ref col)).StoreUnsafe(ref col);
                }
                Vector256.FusedMultiplyAdd(vc, Vector256.LoadUnsafe(ref hvr, (nuint)i), Vector256.LoadUnsafe(ref ar, (nuint)i)).StoreUnsafe(ref ar, (nuint)i);
            }
        }
        for (; i < m; i++)
        {
            float ca = -c * av[i];
            for (int j = 0; j < d; j++)
                _wt[j * m + i] = MathF.FusedMultiplyAdd(ca, x[j], _wt[j * m + i]);
            _a[i] = MathF.FusedMultiplyAdd(-c, hv[i], _a[i]);
        }
    }

    private static float Dot(ReadOnlySpan<float> a, ReadOnlySpan<float> b) => System.Numerics.Tensors.TensorPrimitives.Dot(a, b);

    private void CheckInput(ReadOnlySpan<float> x)
    {
        if (x.Length != Inputs)
            throw new ArgumentException($"input has {x.Length} features, the kernel expects {Inputs}", nameof(x));
    }

    private void Check(TwoLayerLinear model)
    {
        if (model.InputDim != Inputs || model.Width != Width || model.A.Rows != 1)
            throw new ArgumentException($"model is d={model.InputDim}, m={model.Width}, outputs={model.A.Rows}; the kernel is d={Inputs}, m={Width}, one output", nameof(model));
    }
}
