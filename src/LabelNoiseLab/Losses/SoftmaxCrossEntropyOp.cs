using System.Numerics.Tensors;
using LabelNoiseLab.Autograd;
using LabelNoiseLab.Tensors;

namespace LabelNoiseLab.Losses;

/// <summary>
/// Fused softmax + cross-entropy on logits [B, K], numerically stable (log-sum-exp with the row
/// maximum subtracted). Targets are hard labels or soft distributions [B, K]. Optional sample
/// weights w give the mean Σ wᵢℓᵢ / B (gradient pruning and sample selection use them).
/// Gradient: (softmax − target)·wᵢ/B.
/// </summary>
public sealed class SoftmaxCrossEntropyOp : Op
{
    private static readonly SoftmaxCrossEntropyOp Instance = new();

    /// <param name="labels">Class index per sample; only the first B entries are read.</param>
    public static LossOutput Forward(Tape tape, Tensor logits, int[] labels, Tensor? weights = null)
    {
        if (labels.Length < logits.Rows)
            throw new ShapeException($"cross-entropy: {labels.Length} labels for logits {logits.Describe()}");
        return Compute(tape, logits, labels, null, weights);
    }

    /// <param name="targets">A probability distribution per row, same shape as the logits.</param>
    public static LossOutput Forward(Tape tape, Tensor logits, Tensor targets, Tensor? weights = null)
    {
        AddOp.RequireSameShape("cross-entropy (soft targets)", logits, targets);
        return Compute(tape, logits, null, targets, weights);
    }

    private static LossOutput Compute(Tape tape, Tensor logits, int[]? labels, Tensor? targets, Tensor? weights)
    {
        int batch = logits.Rows, classes = logits.RowLength;
        if (weights is not null && weights.Length != batch)
            throw new ShapeException($"cross-entropy: weights {weights.Describe()} for batch of {batch}");
        var probs = tape.Workspace(batch, classes);
        var perSample = tape.Workspace(batch);
        var mean = tape.Workspace(1);
        var z = logits.Span;
        var p = probs.Span;
        // Whole-buffer passes: with few classes (10) a TensorPrimitives call per row costs more
        // than its work, so row maxima and sums are plain loops and exp runs once over [B, K].
        Span<float> maxima = batch <= 1024 ? stackalloc float[batch] : new float[batch];
        for (int i = 0; i < batch; i++)
        {
            var zi = z.Slice(i * classes, classes);
            var pi = p.Slice(i * classes, classes);
            float max = zi[0];
            for (int k = 1; k < classes; k++)
                max = MathF.Max(max, zi[k]);
            for (int k = 0; k < classes; k++)
                pi[k] = zi[k] - max;
            maxima[i] = max;
        }
        TensorPrimitives.Exp(p, p);
        double total = 0;
        for (int i = 0; i < batch; i++)
        {
            var zi = z.Slice(i * classes, classes);
            var pi = p.Slice(i * classes, classes);
            float max = maxima[i];
            float sum = 0f;
            for (int k = 0; k < classes; k++)
                sum += pi[k];
            float logSum = MathF.Log(sum);
            float inv = 1f / sum;
            for (int k = 0; k < classes; k++)
                pi[k] *= inv;
            float loss;
            if (labels is not null)
            {
                int y = labels[i];
                if ((uint)y >= (uint)classes)
                    throw new ArgumentOutOfRangeException(nameof(labels), $"cross-entropy: label {y} of sample {i} outside [0, {classes})");
                loss = logSum - (zi[y] - max);
            }
            else
            {
                // −Σ t log p = Σ t (logSum − (z − max)) with Σ t = 1 not assumed.
                var ti = targets!.Span.Slice(i * classes, classes);
                loss = 0;
                for (int k = 0; k < classes; k++)
                    loss += ti[k] * (logSum - (zi[k] - max));
            }
            perSample.Span[i] = loss;
            total += (weights is null ? 1f : weights.Span[i]) * loss;
        }
        mean.Span[0] = (float)(total / batch);
        if (tape.Tracks(logits))
            tape.Record(new TapeEntry { Op = Instance, Output = mean, A = logits, B = targets, C = weights, Saved = probs, State = labels });
        return new LossOutput(mean, perSample);
    }

    /// <inheritdoc/>
    public override void Backward(Tape tape, in TapeEntry e)
    {
        Tensor logits = e.A!, probs = e.Saved!;
        int batch = logits.Rows, classes = logits.RowLength;
        float scale = e.Output.Grad!.Span[0] / batch;
        var dz = GradTarget.For(logits);
        var labels = (int[]?)e.State;
        if (labels is not null && e.C is null && !dz.Accumulate)
        {
            // The common case in one pass over [B, K]: dz = p·scale, then −scale at each label.
            TensorPrimitives.Multiply(probs.Span, scale, dz.Span);
            for (int i = 0; i < batch; i++)
                dz.Span[i * classes + labels[i]] -= scale;
            return;
        }
        for (int i = 0; i < batch; i++)
        {
            float wi = scale * (e.C is null ? 1f : e.C.Span[i]);
            var pi = probs.Span.Slice(i * classes, classes);
            var di = dz.Span.Slice(i * classes, classes);
            if (dz.Accumulate)
                TensorPrimitives.FusedMultiplyAdd(pi, wi, di, di);
            else
                TensorPrimitives.Multiply(pi, wi, di);
            if (labels is not null)
            {
                di[labels[i]] -= wi;
            }
            else
            {
                var ti = e.B!.Span.Slice(i * classes, classes);
                // Soft targets need not sum to one: d/dz of −Σ t log p is p·Σt − t.
                float tsum = TensorPrimitives.Sum(ti);
                if (tsum != 1f)
                    TensorPrimitives.FusedMultiplyAdd(pi, wi * (tsum - 1f), di, di);
                TensorPrimitives.FusedMultiplyAdd(ti, -wi, di, di);
            }
        }
    }
}
