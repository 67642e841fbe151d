using LabelNoiseLab.Autograd;
using LabelNoiseLab.Tensors;

namespace LabelNoiseLab.Losses;

/// <summary>
/// Mean squared error on predictions [B, K]: ℓᵢ = factor · (1/K) Σₖ (predᵢₖ − targetᵢₖ)², mean
/// Σ wᵢℓᵢ / B. factor = 1 is PyTorch's MSELoss; factor = ½ gives the ½(f − y)² of the
/// label-noise SGD paper. Targets are a tensor, or class labels turned into one-hot rows.
/// </summary>
public sealed class MseOp : Op
{
    private static readonly MseOp Instance = new();

    /// <summary>Mean squared error against regression targets of the predictions' shape, times <paramref name="factor"/>, optionally weighted per sample.</summary>
    public static LossOutput Forward(Tape tape, Tensor predictions, Tensor targets, float factor = 1f, Tensor? weights = null)
    {
        if (targets.Length != predictions.Length)
            throw new ShapeException($"mse: targets {targets.Describe()} do not fit predictions {predictions.Describe()}");
        return Compute(tape, predictions, targets, null, factor, weights);
    }

    /// <summary>MSE against one-hot rows of <paramref name="labels"/> (the first B entries).</summary>
    public static LossOutput Forward(Tape tape, Tensor predictions, int[] labels, float factor = 1f, Tensor? weights = null)
    {
        if (labels.Length < predictions.Rows)
            throw new ShapeException($"mse: {labels.Length} labels for predictions {predictions.Describe()}");
        return Compute(tape, predictions, null, labels, factor, weights);
    }

    private static LossOutput Compute(Tape tape, Tensor pred, Tensor? targets, int[]? labels, float factor, Tensor? weights)
    {
        int batch = pred.Rows, k = pred.RowLength;
        if (weights is not null && weights.Length != batch)
            throw new ShapeException($"mse: weights {weights.Describe()} for batch of {batch}");
        var residual = tape.Workspace(batch, k);
        var perSample = tape.Workspace(batch);
        var mean = tape.Workspace(1);
        var r = residual.Span;
        pred.Span.CopyTo(r);
        for (int i = 0; i < batch; i++)
        {
            var ri = r.Slice(i * k, k);
            if (targets is not null)
            {
                System.Numerics.Tensors.TensorPrimitives.Subtract(ri, targets.Span.Slice(i * k, k), ri);
            }
            else
            {
                int y = labels![i];
                if ((uint)y >= (uint)k)
                    throw new ArgumentOutOfRangeException(nameof(labels), $"mse: label {y} of sample {i} outside [0, {k})");
                ri[y] -= 1f;
            }
        }
        double total = 0;
        for (int i = 0; i < batch; i++)
        {
            var ri = r.Slice(i * k, k);
            float loss = factor * System.Numerics.Tensors.TensorPrimitives.Dot(ri, ri) / k;
            perSample.Span[i] = loss;
            total += (weights is null ? 1f : weights.Span[i]) * loss;
        }
        mean.Span[0] = (float)(total / batch);
        if (tape.Tracks(pred))
            tape.Record(new TapeEntry { Op = Instance, Output = mean, A = pred, C = weights, Saved = residual, Scalar = factor });
        return new LossOutput(mean, perSample);
    }

    /// <inheritdoc/>
    public override void Backward(Tape tape, in TapeEntry e)
    {
        Tensor pred = e.A!;
        int batch = pred.Rows, k = pred.RowLength;
        float scale = e.Output.Grad!.Span[0] * 2f * e.Scalar / (batch * k);
        var d = GradTarget.For(pred);
        for (int i = 0; i < batch; i++)
        {
            float wi = scale * (e.C is null ? 1f : e.C.Span[i]);
            Kernels.ScaleInto(e.Saved!.Span.Slice(i * k, k), wi, d.Span.Slice(i * k, k), d.Accumulate);
        }
    }
}
