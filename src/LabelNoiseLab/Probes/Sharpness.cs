using LabelNoiseLab.Autograd;
using LabelNoiseLab.Tensors;

namespace LabelNoiseLab.Probes;

/// <summary>
/// Sharpness of a loss on one fixed batch: the top Hessian eigenvalue (power iteration on
/// Hessian-vector products) and the Hessian trace (Hutchinson's estimator, Rademacher vectors).
/// <para>
/// Hessian-vector products are central finite differences of gradients computed by the engine:
/// Hv ≈ (g(w + δv̂) − g(w − δv̂)) / (2δ) · ‖v‖ with v̂ = v/‖v‖ and δ = <see cref="Step"/> (an
/// absolute step in parameter space). The error is O(δ²) from third derivatives (zero for a
/// quadratic loss) plus float32 rounding of the gradients divided by 2δ; δ = 1e-2 is the default.
/// The engine has no double-backward, hence differences rather than exact products.
/// </para>
/// The probe overwrites the parameters' gradients and restores the weights exactly after
/// each product. Buffers are allocated once, in the constructor.
/// </summary>
public sealed class HessianProbe
{
    private readonly Tensor[] _parameters;
    private readonly Func<Tape, Tensor> _loss;
    private readonly Tape _tape = new();
    private readonly float[] _saved, _gPlus, _gMinus, _v, _hv;

    /// <param name="parameters">The parameters w the Hessian is taken over (all of them, flattened in order).</param>
    /// <param name="loss">Forward pass on the fixed batch, returning the scalar loss.</param>
    public HessianProbe(IEnumerable<Tensor> parameters, Func<Tape, Tensor> loss, float step = 1e-2f)
    {
        _parameters = [.. parameters];
        _loss = loss;
        if (!(step > 0))
            throw new ArgumentOutOfRangeException(nameof(step), step, "finite-difference step must be positive");
        Step = step;
        Dimension = _parameters.Sum(p => p.Length);
        _saved = new float[Dimension];
        _gPlus = new float[Dimension];
        _gMinus = new float[Dimension];
        _v = new float[Dimension];
        _hv = new float[Dimension];
    }

    /// <summary>
    /// The same estimators on exact Hessian–vector products (e.g. <see cref="TangentNet.HessianVectorProduct"/>);
    /// the finite differences are then not used.
    /// </summary>
    public HessianProbe(IEnumerable<Tensor> parameters, Func<Tape, Tensor> loss, SymmetricProduct exact)
        : this(parameters, loss)
    {
        Exact = exact ?? throw new ArgumentNullException(nameof(exact));
    }

    /// <summary>Exact products, when given; null: central differences.</summary>
    public SymmetricProduct? Exact { get; }

    /// <summary>Number of parameters (the Hessian is Dimension × Dimension).</summary>
    public int Dimension { get; }

    /// <summary>δ, the finite-difference step (‖δv̂‖) of the central differences.</summary>
    public float Step { get; }

    /// <summary>Gradient of the loss at the current weights, flattened into <paramref name="g"/>; returns the loss.</summary>
    public float Gradient(Span<float> g)
    {
        _tape.Reset();
        foreach (var p in _parameters)
            p.ZeroGrad();
        var loss = _loss(_tape);
        _tape.Backward(loss);
        int offset = 0;
        foreach (var p in _parameters)
        {
            p.GradSpan().CopyTo(g.Slice(offset, p.Length));
            offset += p.Length;
        }
        return loss.Span[0];
    }

    /// <summary>hv = H·v: the exact product when given, else by central differences of gradients (see the class summary).</summary>
    public void HessianVectorProduct(ReadOnlySpan<float> v, Span<float> hv)
    {
        if (v.Length != Dimension || hv.Length != Dimension)
            throw new ArgumentException($"vectors must have {Dimension} entries, got {v.Length} and {hv.Length}");
        if (Exact is not null)
        {
            Exact(v, hv);
            return;
        }
        double norm = Math.Sqrt(System.Numerics.Tensors.TensorPrimitives.Dot(v, v));
        if (norm == 0)
        {
            hv.Clear();
            return;
        }
        float h = (float)(Step / norm);
        Copy(fromParameters: true, _saved);
        Perturb(v, h);
        Gradient(_gPlus);
        Copy(fromParameters: false, _saved);
        Perturb(v, -h);
        Gradient(_gMinus);
        Copy(fromParameters: false, _saved);
        // (g(w + h·v) − g(w − h·v)) / 2h with ‖h·v‖ = Step.
        float inv = 1f / (2f * h);
        for (int i = 0; i < Dimension; i++)
            hv[i] = (_gPlus[i] - _gMinus[i]) * inv;
    }

    /// <summary>
    /// Largest (algebraic) Hessian eigenvalue by power iteration from a random start. Power
    /// iteration finds the eigenvalue of largest magnitude; if that one is negative, a second run
    /// on H − λI finds the top of the spectrum. Stops when successive Rayleigh quotients agree to
    /// <paramref name="tolerance"/> (relative) or after <paramref name="maxIterations"/>.
    /// </summary>
    public EigenEstimate TopEigenvalue(Rng rng, int maxIterations = 100, double tolerance = 1e-4)
    {
        var first = PowerIteration(rng, 0, maxIterations, tolerance);
        if (first.Value >= 0)
            return first;
        var shifted = PowerIteration(rng, first.Value, maxIterations, tolerance);
        return new EigenEstimate(shifted.Value + first.Value, first.Iterations + shifted.Iterations, first.Converged && shifted.Converged);
    }

    /// <summary>Hutchinson's estimate of tr(H): the mean of vᵀHv over Rademacher vectors v, with its standard error.</summary>
    public TraceEstimate Trace(Rng rng, int samples = 20)
    {
        if (samples < 1)
            throw new ArgumentOutOfRangeException(nameof(samples), samples, "needs at least one sample");
        double sum = 0, sum2 = 0;
        for (int s = 0; s < samples; s++)
        {
            for (int i = 0; i < Dimension; i++)
                _v[i] = (rng.NextUInt64() >> 63) == 0 ? -1f : 1f;
            HessianVectorProduct(_v, _hv);
            double q = Dot(_v, _hv);
            sum += q;
            sum2 += q * q;
        }
        double mean = sum / samples;
        double variance = samples > 1 ? Math.Max(0, (sum2 - samples * mean * mean) / (samples - 1)) : double.NaN;
        return new TraceEstimate(mean, Math.Sqrt(variance / samples), samples);
    }

    private EigenEstimate PowerIteration(Rng rng, double shift, int maxIterations, double tolerance)
    {
        for (int i = 0; i < Dimension; i++)
            _v[i] = (float)rng.NextNormal();
        Normalize(_v);
        double lambda = double.NaN;
        for (int it = 1; it <= maxIterations; it++)
        {
            HessianVectorProduct(_v, _hv);
            if (shift != 0)
            {
                for (int i = 0; i < Dimension; i++)
                    _hv[i] -= (float)shift * _v[i];
            }
            double next = Dot(_v, _hv); // Rayleigh quotient, ‖v‖ = 1
            double norm = Normalize(_hv);
            if (norm == 0)
                return new EigenEstimate(0, it, true);
            _hv.CopyTo(_v, 0);
            if (Math.Abs(next - lambda) <= tolerance * Math.Abs(next))
                return new EigenEstimate(next, it, true);
            lambda = next;
        }
        return new EigenEstimate(lambda, maxIterations, false);
    }

    private void Perturb(ReadOnlySpan<float> v, float h)
    {
        int offset = 0;
        foreach (var p in _parameters)
        {
            System.Numerics.Tensors.TensorPrimitives.MultiplyAdd(v.Slice(offset, p.Length), h, p.Span, p.Span);
            offset += p.Length;
        }
    }

    private void Copy(bool fromParameters, float[] buffer)
    {
        int offset = 0;
        foreach (var p in _parameters)
        {
            if (fromParameters)
                p.Span.CopyTo(buffer.AsSpan(offset, p.Length));
            else
                buffer.AsSpan(offset, p.Length).CopyTo(p.Span);
            offset += p.Length;
        }
    }

    private static double Dot(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        double s = 0;
        for (int i = 0; i < a.Length; i++)
            s += (double)a[i] * b[i];
        return s;
    }

    private static double Normalize(Span<float> v)
    {
        double norm = Math.Sqrt(Dot(v, v));
        if (norm > 0)
        {
            float inv = (float)(1 / norm);
            for (int i = 0; i < v.Length; i++)
                v[i] *= inv;
        }
        return norm;
    }
}

/// <summary>A power-iteration eigenvalue estimate.</summary>
public readonly record struct EigenEstimate(double Value, int Iterations, bool Converged);

/// <summary>A Hutchinson trace estimate: mean over samples and its standard error.</summary>
public readonly record struct TraceEstimate(double Value, double StandardError, int Samples);
