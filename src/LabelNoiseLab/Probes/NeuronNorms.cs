using LabelNoiseLab.Nn;

namespace LabelNoiseLab.Probes;

/// <summary>Mean and (population) standard deviation of the neuron norms ‖w_i‖ of one weight matrix.</summary>
public readonly record struct NeuronNormStats(double Mean, double Std, double Min, double Max);

/// <summary>
/// Per-neuron norms of a model's first layer: ‖w_i‖ over the rows of the first weight matrix
/// (a Linear's [out, in] weight, a Conv2d's [out, in, kh, kw] filters), the quantity that shrinks
/// in phase I of label-noise SGD (arXiv 2603.10397).
/// </summary>
public static class NeuronNorms
{
    /// <summary>The first parameter of rank ≥ 2 in parameter order (the first layer's weight).</summary>
    public static (string Name, Tensor Weight) FirstWeight(Module model)
    {
        ArgumentNullException.ThrowIfNull(model);
        foreach (var (name, p) in model.NamedParameters())
        {
            if (p.Rank >= 2)
                return (name, p);
        }
        throw new ArgumentException("model has no weight matrix", nameof(model));
    }

    /// <summary>Statistics of the row norms of <paramref name="weight"/> (rows = first dimension).</summary>
    public static NeuronNormStats Measure(Tensor weight)
    {
        ArgumentNullException.ThrowIfNull(weight);
        int rows = weight.Rows, len = weight.RowLength;
        var w = weight.Span;
        double sum = 0, sum2 = 0, min = double.PositiveInfinity, max = 0;
        for (int i = 0; i < rows; i++)
        {
            var row = w.Slice(i * len, len);
            double n = Math.Sqrt(System.Numerics.Tensors.TensorPrimitives.Dot(row, row));
            sum += n;
            sum2 += n * n;
            min = Math.Min(min, n);
            max = Math.Max(max, n);
        }
        double mean = sum / rows;
        return new NeuronNormStats(mean, Math.Sqrt(Math.Max(0, sum2 / rows - mean * mean)), min, max);
    }
}
