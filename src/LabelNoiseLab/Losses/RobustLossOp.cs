using System.Numerics.Tensors;
using LabelNoiseLab.Autograd;
using LabelNoiseLab.Tensors;

namespace LabelNoiseLab.Losses;

/// <summary>The noise-robust classification losses on logits.</summary>
public enum RobustLossKind
{
    /// <summary>Plain softmax cross-entropy (the other kinds' reference).</summary>
    CrossEntropy,
    /// <summary>Generalised cross-entropy (1 − p_y^q)/q (Zhang and Sabuncu 2018).</summary>
    Gce,
    /// <summary>Symmetric CE: α·CE + β·RCE, RCE with log 0 clamped to log 1e-4 (Wang et al. 2019).</summary>
    Sce,
    /// <summary>Mean absolute error Σ|p − e_y| = 2(1 − p_y).</summary>
    Mae,
    /// <summary>α·NCE + β·RCE, NCE = log p_y / Σ_j log p_j (Ma et al. 2020).</summary>
    NceRce,
    /// <summary>CE against (1 − ε)e_y + ε/K.</summary>
    LabelSmoothing,
    /// <summary>β·CE + (1 − β)·H(p): target β e_y + (1 − β) p (Reed et al. 2015).</summary>
    BootstrapSoft,
    /// <summary>CE against β e_y + (1 − β) e_argmax p.</summary>
    BootstrapHard,
    /// <summary>−log (Tᵀp)_y (Patrini et al. 2017).</summary>
    ForwardCorrection,
    /// <summary>Σ_j (T⁻¹)_{y j}·(−log p_j) (Patrini et al. 2017).</summary>
    BackwardCorrection,
}

/// <summary>A robust loss and its parameters. <see cref="Matrix"/> is T (forward) or T⁻¹ (backward), [K·K] row-major.</summary>
public sealed record RobustLossSpec(RobustLossKind Kind, float Q = 0.7f, float Alpha = 1f, float Beta = 1f, float Epsilon = 0.1f, float[]? Matrix = null)
{
    /// <summary>−log 1e-4: the clamped log of a zero one-hot entry in RCE.</summary>
    public const float RceLogClamp = 9.210340371976184f;
}

/// <summary>
/// Every <see cref="RobustLossKind"/> as one op on logits [B, K] and hard labels: forward computes
/// each row's loss and, in the same place, its gradient dℓ/dz (saved), so the formulas for ℓ and
/// for its derivative sit next to each other; backward scales the saved rows by wᵢ/B.
/// </summary>
public sealed class RobustLossOp : Op
{
    private static readonly RobustLossOp Instance = new();

    /// <summary>The robust loss <paramref name="spec"/> of the logits against the labels (first B entries), optionally weighted per sample.</summary>
    public static LossOutput Forward(Tape tape, Tensor logits, int[] labels, RobustLossSpec spec, Tensor? weights = null)
    {
        int batch = logits.Rows, classes = logits.RowLength;
        if (labels.Length < batch)
            throw new ShapeException($"{spec.Kind}: {labels.Length} labels for logits {logits.Describe()}");
        if (weights is not null && weights.Length != batch)
            throw new ShapeException($"{spec.Kind}: weights {weights.Describe()} for batch of {batch}");
        if (spec.Matrix is not null && spec.Matrix.Length != classes * classes)
            throw new ShapeException($"{spec.Kind}: a {classes}×{classes} matrix is needed, got {spec.Matrix.Length} entries");
        var grad = tape.Workspace(batch, classes);
        var perSample = tape.Workspace(batch);
        var mean = tape.Workspace(1);
        double total = 0;
        for (int i = 0; i < batch; i++)
        {
            float loss = Row(logits.Span.Slice(i * classes, classes), labels[i], spec, grad.Span.Slice(i * classes, classes));
            perSample.Span[i] = loss;
            total += (weights is null ? 1f : weights.Span[i]) * loss;
        }
        mean.Span[0] = (float)(total / batch);
        if (tape.Tracks(logits))
            tape.Record(new TapeEntry { Op = Instance, Output = mean, A = logits, C = weights, Saved = grad });
        return new LossOutput(mean, perSample);
    }

    /// <inheritdoc/>
    public override void Backward(Tape tape, in TapeEntry e)
    {
        Tensor logits = e.A!, grad = e.Saved!;
        int batch = logits.Rows, classes = logits.RowLength;
        float scale = e.Output.Grad!.Span[0] / batch;
        var dz = GradTarget.For(logits);
        for (int i = 0; i < batch; i++)
        {
            float wi = scale * (e.C is null ? 1f : e.C.Span[i]);
            Kernels.ScaleInto(grad.Span.Slice(i * classes, classes), wi, dz.Span.Slice(i * classes, classes), dz.Accumulate);
        }
    }

    /// <summary>One sample's loss; writes dℓ/dz into <paramref name="dz"/> (which first holds nothing).</summary>
    internal static float Row(ReadOnlySpan<float> z, int y, RobustLossSpec s, Span<float> dz)
    {
        int k = z.Length;
        if ((uint)y >= (uint)k)
            throw new ArgumentOutOfRangeException(nameof(y), $"{s.Kind}: label {y} outside [0, {k})");
        // p = softmax(z) into dz, log p from the log-sum-exp.
        float max = TensorPrimitives.Max(z);
        TensorPrimitives.Subtract(z, max, dz);
        TensorPrimitives.Exp(dz, dz);
        float sum = TensorPrimitives.Sum(dz);
        float logSum = MathF.Log(sum);
        TensorPrimitives.Multiply(dz, 1f / sum, dz);
        Span<float> p = dz; // overwritten with the gradient below, entry by entry where safe
        float logPy = z[y] - max - logSum, py = p[y];
        float rceA = RobustLossSpec.RceLogClamp;
        switch (s.Kind)
        {
            case RobustLossKind.CrossEntropy:
                // ℓ = −log p_y; ∂ℓ/∂z = p − e_y
                p[y] -= 1f;
                return -logPy;
            case RobustLossKind.Gce:
            {
                // ℓ = (1 − p_y^q)/q; ∂ℓ/∂z_k = −p_y^q (δ_ky − p_k)
                float pq = MathF.Exp(s.Q * logPy);
                TensorPrimitives.Multiply(p, pq, dz);
                dz[y] -= pq;
                return (1f - pq) / s.Q;
            }
            case RobustLossKind.Mae:
                // ℓ = 2(1 − p_y); ∂ℓ/∂z_k = −2 p_y (δ_ky − p_k)
                TensorPrimitives.Multiply(p, 2f * py, dz);
                dz[y] -= 2f * py;
                return 2f * (1f - py);
            case RobustLossKind.Sce:
            {
                // ℓ = α(−log p_y) + β·A(1 − p_y); ∂ℓ/∂z = α(p − e_y) − βA p_y (e_y − p)
                float c = s.Alpha + s.Beta * rceA * py;
                TensorPrimitives.Multiply(p, c, dz);
                dz[y] -= c;
                return -s.Alpha * logPy + s.Beta * rceA * (1f - py);
            }
            case RobustLossKind.NceRce:
            {
                // NCE = L_y/S with L = log p, S = Σ L_j; ∂NCE/∂z_k = [(δ_yk − p_k)S − L_y(1 − K p_k)]/S²
                double sumLog = 0;
                for (int j = 0; j < k; j++)
                    sumLog += z[j] - max - logSum;
                float sl = (float)sumLog, nce = logPy / sl, inv = 1f / (sl * sl);
                for (int j = 0; j < k; j++)
                {
                    float pj = p[j];
                    float dn = ((j == y ? 1f : 0f) - pj) * sl - logPy * (1f - k * pj);
                    float dr = -rceA * py * ((j == y ? 1f : 0f) - pj);
                    dz[j] = s.Alpha * dn * inv + s.Beta * dr;
                }
                return s.Alpha * nce + s.Beta * rceA * (1f - py);
            }
            case RobustLossKind.LabelSmoothing:
            {
                // target t = (1 − ε)e_y + ε/K; ℓ = −Σ t log p; ∂ℓ/∂z = p − t
                double loss = 0;
                for (int j = 0; j < k; j++)
                {
                    float t = s.Epsilon / k + (j == y ? 1f - s.Epsilon : 0f);
                    loss -= t * (z[j] - max - logSum);
                    dz[j] = p[j] - t;
                }
                return (float)loss;
            }
            case RobustLossKind.BootstrapSoft:
            {
                // ℓ = β(−log p_y) + (1 − β)H(p); ∂H/∂z_k = −p_k(log p_k + H)
                double h = 0;
                for (int j = 0; j < k; j++)
                    h -= p[j] * (z[j] - max - logSum);
                for (int j = 0; j < k; j++)
                {
                    float logPj = z[j] - max - logSum;
                    dz[j] = s.Beta * (p[j] - (j == y ? 1f : 0f)) - (1f - s.Beta) * p[j] * (logPj + (float)h);
                }
                return -s.Beta * logPy + (1f - s.Beta) * (float)h;
            }
            case RobustLossKind.BootstrapHard:
            {
                // target β e_y + (1 − β) e_ŷ with ŷ = argmax p (piecewise constant); ∂ℓ/∂z = p − target
                int hat = 0;
                for (int j = 1; j < k; j++)
                    if (z[j] > z[hat])
                        hat = j;
                float logPHat = z[hat] - max - logSum;
                p[y] -= s.Beta;
                p[hat] -= 1f - s.Beta;
                return -s.Beta * logPy - (1f - s.Beta) * logPHat;
            }
            case RobustLossKind.ForwardCorrection:
            {
                // q = Tᵀp, ℓ = −log q_y; ∂ℓ/∂z_k = p_k (1 − T_ky / q_y)
                var t = s.Matrix!;
                double qy = 0;
                for (int i = 0; i < k; i++)
                    qy += t[i * k + y] * p[i];
                float q = (float)Math.Max(qy, 1e-12);
                for (int j = 0; j < k; j++)
                    dz[j] = p[j] * (1f - t[j * k + y] / q);
                return -MathF.Log(q);
            }
            case RobustLossKind.BackwardCorrection:
            {
                // ℓ = Σ_j M_yj (−log p_j), M = T⁻¹; ∂ℓ/∂z_k = p_k Σ_j M_yj − M_yk
                var m = s.Matrix!.AsSpan(y * k, k);
                float rowSum = TensorPrimitives.Sum(m);
                double loss = 0;
                for (int j = 0; j < k; j++)
                {
                    loss -= m[j] * (z[j] - max - logSum);
                    dz[j] = p[j] * rowSum - m[j];
                }
                return (float)loss;
            }
            default:
                throw new InvalidOperationException($"unknown robust loss {s.Kind}");
        }
    }
}
