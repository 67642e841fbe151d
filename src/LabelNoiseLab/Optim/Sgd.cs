using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace LabelNoiseLab.Optim;

/// <summary>
/// SGD with optional momentum, Nesterov momentum and L2 weight decay, PyTorch's update rule:
/// g ← g + λw; v ← μv + g (v = g on the first step); w ← w − lr·(Nesterov ? g + μv : v).
/// </summary>
public sealed class Sgd : Optimizer
{
    private readonly float[][] _velocity;

    /// <summary>SGD over <paramref name="parameters"/>; throws an <see cref="ArgumentOutOfRangeException"/> for momentum outside [0, 1) or negative weight decay, and an <see cref="ArgumentException"/> for Nesterov without momentum.</summary>
    public Sgd(IEnumerable<Tensor> parameters, float lr, float momentum = 0f, bool nesterov = false, float weightDecay = 0f)
        : base(parameters, lr)
    {
        if (momentum is < 0f or >= 1f)
            throw new ArgumentOutOfRangeException(nameof(momentum), momentum, "momentum must be in [0, 1)");
        if (weightDecay < 0f)
            throw new ArgumentOutOfRangeException(nameof(weightDecay), weightDecay, "weight decay must be ≥ 0");
        if (nesterov && momentum == 0f)
            throw new ArgumentException("Nesterov momentum needs momentum > 0");
        Momentum = momentum;
        Nesterov = nesterov;
        WeightDecay = weightDecay;
        _velocity = Parameters.Select(p => momentum > 0 ? new float[p.Length] : []).ToArray();
    }

    /// <summary>Momentum coefficient μ (0: plain SGD).</summary>
    public float Momentum { get; }
    /// <summary>Whether the update uses Nesterov momentum.</summary>
    public bool Nesterov { get; }
    /// <summary>L2 weight-decay coefficient λ, added to the gradient (0: none).</summary>
    public float WeightDecay { get; }

    /// <inheritdoc/>
    public override void Step()
    {
        bool first = StepCount == 0;
        for (int i = 0; i < Parameters.Count; i++)
        {
            var p = Parameters[i];
            Update(p.Span, GradientOf(p), _velocity[i], first);
        }
        StepCount++;
    }

    /// <summary>One fused pass over a parameter: weight decay, momentum and the update.</summary>
    private void Update(Span<float> w, ReadOnlySpan<float> g, Span<float> v, bool first)
    {
        float lr = LearningRate, mu = Momentum, wd = WeightDecay;
        int n = w.Length, i = 0;
        if (mu == 0f)
        {
            for (; i < n; i++)
                w[i] -= lr * (g[i] + wd * w[i]);
            return;
        }
        ref float wr = ref MemoryMarshal.GetReference(w);
        ref float gr = ref MemoryMarshal.GetReference(g);
        ref float vr = ref MemoryMarshal.GetReference(v);
        float muV = first ? 0f : mu; // v starts as g: v = 0·v + g
        if (Vector512.IsHardwareAccelerated && !Nesterov)
        {
            var vlr = Vector512.Create(lr);
            var vmu = Vector512.Create(muV);
            var vwd = Vector512.Create(wd);
            for (; i <= n - Vector512<float>.Count; i += Vector512<float>.Count)
            {
                var wv = Vector512.LoadUnsafe(ref wr, (nuint)i);
                var gv = Vector512.FusedMultiplyAdd(vwd, wv, Vector512.LoadUnsafe(ref gr, (nuint)i));
                var vv = Vector512.FusedMultiplyAdd(vmu, Vector512.LoadUnsafe(ref vr, (nuint)i), gv);
                vv.StoreUnsafe(ref vr, (nuint)i);
                Vector512.FusedMultiplyAdd(-vlr, vv, wv).StoreUnsafe(ref wr, (nuint)i);
            }
        }
        for (; i < n; i++)
        {
            float gi = g[i] + wd * w[i];
            float vi = muV * v[i] + gi;
            v[i] = vi;
            w[i] -= lr * (Nesterov ? gi + mu * vi : vi);
        }
    }

    /// <summary>Each parameter's momentum buffer, named <c>velocity.i</c> (none without momentum).</summary>
    public override IEnumerable<(string Name, float[] Buffer)> StateBuffers()
    {
        for (int i = 0; i < _velocity.Length; i++)
            if (_velocity[i].Length > 0)
                yield return ($"velocity.{i}", _velocity[i]);
    }
}
