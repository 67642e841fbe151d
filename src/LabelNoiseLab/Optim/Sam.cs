namespace LabelNoiseLab.Optim;

/// <summary>
/// Sharpness-aware minimisation (Foret et al. 2021) wrapped around any base optimizer.
/// One <see cref="Step"/>: gradient g at w (the closure), ε̂ = ρ·g/‖g‖₂ (one global norm over all
/// parameters), gradient again at w + ε̂, w restored exactly (from a saved copy), then the base
/// optimizer's step with that second gradient. Adaptive SAM (ASAM, Kwon et al. 2021) uses
/// T = |w| + η element-wise: ε̂ = ρ·T²g/‖Tg‖₂ (η = <see cref="AdaptiveEta"/>, 0 by default).
/// If g = 0 the perturbation is zero. Buffers are allocated once; a step allocates nothing.
/// Works with per-step label noise: the closure is called twice per step and must use the
/// same noisy targets both times (draw the noise before calling <see cref="Step"/>).
/// </summary>
public sealed class Sam
{
    private readonly float[][] _saved;

    /// <summary>SAM around <paramref name="baseOptimizer"/> with radius <paramref name="rho"/>; throws an <see cref="ArgumentOutOfRangeException"/> for ρ not finite and positive or η &lt; 0.</summary>
    /// <param name="adaptive">True: ASAM's element-wise scaling T = |w| + η.</param>
    public Sam(Optimizer baseOptimizer, float rho, bool adaptive = false, float adaptiveEta = 0f)
    {
        ArgumentNullException.ThrowIfNull(baseOptimizer);
        if (!(rho > 0) || float.IsInfinity(rho))
            throw new ArgumentOutOfRangeException(nameof(rho), $"SAM radius ρ = {rho}; expected a finite value > 0");
        if (!(adaptiveEta >= 0))
            throw new ArgumentOutOfRangeException(nameof(adaptiveEta), $"ASAM η = {adaptiveEta}; expected a value ≥ 0");
        Base = baseOptimizer;
        Rho = rho;
        Adaptive = adaptive;
        AdaptiveEta = adaptiveEta;
        _saved = [.. Base.Parameters.Select(p => new float[p.Length])];
    }

    /// <summary>The optimizer that takes the step with the gradient at the perturbed weights.</summary>
    public Optimizer Base { get; }

    /// <summary>Radius ρ of the weight perturbation.</summary>
    public float Rho { get; set; }

    /// <summary>Whether this is adaptive SAM (ASAM).</summary>
    public bool Adaptive { get; }

    /// <summary>ASAM's η in T = |w| + η.</summary>
    public float AdaptiveEta { get; }

    /// <summary>‖ε̂‖-defining norm of the last step's first gradient (‖g‖ or ‖Tg‖).</summary>
    public double LastGradientNorm { get; private set; }

    /// <summary>One SAM step; returns the loss at w (the first closure call).</summary>
    /// <param name="closure">Computes the loss and the gradients at the current weights (the
    /// gradients are reset lazily by the wrapper before each call) and returns the loss.</param>
    public float Step(Func<float> closure)
    {
        var ps = Base.Parameters;
        Base.ZeroGrad();
        float loss = closure();

        double norm2 = 0;
        for (int k = 0; k < ps.Count; k++)
        {
            var w = ps[k].Span;
            var g = ps[k].GradSpan();
            if (!Adaptive)
            {
                norm2 += System.Numerics.Tensors.TensorPrimitives.Dot(g, g);
                continue;
            }
            for (int i = 0; i < g.Length; i++)
            {
                double tg = (MathF.Abs(w[i]) + AdaptiveEta) * (double)g[i];
                norm2 += tg * tg;
            }
        }
        double norm = Math.Sqrt(norm2);
        LastGradientNorm = norm;
        if (norm > 0 && double.IsFinite(norm))
        {
            float scale = (float)(Rho / norm);
            for (int k = 0; k < ps.Count; k++)
            {
                var w = ps[k].Span;
                var g = ps[k].GradSpan();
                w.CopyTo(_saved[k]);
                if (!Adaptive)
                {
                    System.Numerics.Tensors.TensorPrimitives.MultiplyAdd(g, scale, w, w);
                    continue;
                }
                for (int i = 0; i < w.Length; i++)
                {
                    float t = MathF.Abs(w[i]) + AdaptiveEta;
                    w[i] += scale * t * t * g[i];
                }
            }
            Base.ZeroGrad();
            closure();
            for (int k = 0; k < ps.Count; k++)
                _saved[k].AsSpan(0, ps[k].Length).CopyTo(ps[k].Span);
        }
        Base.Step();
        return loss;
    }
}
