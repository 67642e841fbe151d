using LabelNoiseLab.Data;
using LabelNoiseLab.Nn;
using LabelNoiseLab.Tensors;

namespace LabelNoiseLab.Probes;

/// <summary>
/// Truncation of the penultimate features under the network's own linear head, exactly and
/// cheaply: head(mean + V_d V_dᵀ(f − mean)) = b + W·mean + Σ_{j&lt;d} c_j·(W v_j) with
/// c = (f − mean)·V, so the logits for a whole ascending grid of d are one running sum of
/// rank-(d − d_prev) GEMM updates (O(m·D·K) for the grid after one m×D×D GEMM per set).
/// </summary>
public sealed class HeadTruncation(FeatureSet? validation, FeatureSet test, float[] weight, float[]? bias, int classes) : ITruncation
{
    /// <summary>
    /// Truncation under the network's own <paramref name="head"/>, scored on <paramref name="validation"/>
    /// (given labels; may be null) and <paramref name="test"/> (true labels) features.
    /// </summary>
    public HeadTruncation(FeatureSet? validation, FeatureSet test, Linear head)
        : this(validation, test, head.Weight.ToArray(), head.Bias?.ToArray(), head.Outputs)
    {
    }

    /// <inheritdoc/>
    public TruncationScores Score(SpectralBasis basis, IReadOnlyList<int> grid)
    {
        int dim = basis.Dim;
        if (weight.Length != classes * dim)
            throw new ArgumentException($"head weight has {weight.Length} values; {classes}×{dim} expected");
        // G = W·V (K×D): column j is the head's response to v_j. c0 = b + W·mean.
        var g = new float[classes * dim];
        Blas.Sgemm(false, false, classes, dim, dim, 1f, weight, dim, basis.Vectors, dim, 0f, g, dim);
        var c0 = bias is null ? new float[classes] : (float[])bias.Clone();
        Blas.Sgemm(false, true, 1, classes, dim, 1f, basis.Mean, dim, weight, dim, 1f, c0, classes);

        // Validation is scored against its given (noisy) labels: d is chosen without clean labels.
        var testAcc = Sweep(test, test.TrueLabels);
        var valAcc = validation is null ? Enumerable.Repeat(double.NaN, grid.Count).ToArray() : Sweep(validation, validation.Labels);
        return new TruncationScores(testAcc, valAcc, Full(test, test.TrueLabels), validation is null ? double.NaN : Full(validation, validation.Labels));

        double[] Sweep(FeatureSet set, int[] labels)
        {
            int m = set.Count;
            var coords = new float[(long)m * dim];
            basis.Coordinates(set.X, m, coords);
            var logits = new float[(long)m * classes];
            Kernels.BroadcastRows(c0, logits, m);
            var predicted = new int[m];
            var acc = new double[grid.Count];
            int previous = 0;
            for (int i = 0; i < grid.Count; i++)
            {
                int d = grid[i];
                Blas.Sgemm(false, true, m, classes, d - previous, 1f, coords.AsSpan(previous), dim, g.AsSpan(previous), dim, 1f, logits, classes);
                previous = d;
                SpectralProbe.ArgMaxRows(logits, m, classes, predicted);
                acc[i] = SpectralProbe.Accuracy(predicted, labels);
            }
            return acc;
        }
    }

    private double Full(FeatureSet set, int[] labels)
    {
        int m = set.Count, dim = set.Dim;
        var logits = new float[(long)m * classes];
        float beta = 0f;
        if (bias is not null)
        {
            Kernels.BroadcastRows(bias, logits, m);
            beta = 1f;
        }
        Blas.Sgemm(false, true, m, classes, dim, 1f, set.X, dim, weight, dim, beta, logits, classes);
        var predicted = new int[m];
        SpectralProbe.ArgMaxRows(logits, m, classes, predicted);
        return SpectralProbe.Accuracy(predicted, labels);
    }
}

/// <summary>
/// Truncation at any named layer: a forward hook overwrites the layer's output with its
/// projection mean + V_d V_dᵀ(f − mean) and the rest of the network runs as usual (one forward
/// of the validation and test sets per d; the penultimate layer uses <see cref="HeadTruncation"/>).
/// </summary>
public sealed class ForwardTruncation(Model model, Module layer, Dataset? validation, Dataset test, int chunk = 1000) : ITruncation
{
    /// <inheritdoc/>
    public TruncationScores Score(SpectralBasis basis, IReadOnlyList<int> grid)
    {
        int current = 0;
        float[] scratch = [];
        void Project(Module m, Tensor input, Tensor output)
        {
            if (current < 0)
                return;
            int rows = output.Rows;
            if (output.Length != rows * basis.Dim)
                throw new InvalidOperationException($"layer output {output.Describe()} does not have D = {basis.Dim} per sample");
            if (scratch.Length < rows * current)
                scratch = new float[rows * current];
            basis.ProjectInPlace(output.Span, rows, current, scratch);
        }
        layer.AddForwardHook(Project);
        try
        {
            var testAcc = new double[grid.Count];
            var valAcc = new double[grid.Count];
            for (int i = 0; i < grid.Count; i++)
            {
                current = grid[i];
                testAcc[i] = Accuracy(test, useGiven: false);
                valAcc[i] = validation is null ? double.NaN : Accuracy(validation, useGiven: true);
            }
            current = -1;
            return new TruncationScores(testAcc, valAcc, Accuracy(test, false), validation is null ? double.NaN : Accuracy(validation, true));
        }
        finally
        {
            layer.RemoveForwardHook(Project);
        }
    }

    private double Accuracy(Dataset data, bool useGiven)
    {
        var labels = useGiven ? data.Labels : data.TrueLabels;
        long correct = 0;
        FeatureExtractor.ForEachChunk(model, data, chunk, (tape, x, start, len) =>
        {
            var logits = model.Forward(tape, x);
            int k = logits.RowLength;
            for (int i = 0; i < len; i++)
                correct += Evaluate(logits.Span.Slice(i * k, k)) == labels[start + i] ? 1 : 0;
        });
        return data.Count == 0 ? double.NaN : (double)correct / data.Count;

        static int Evaluate(ReadOnlySpan<float> row) => System.Numerics.Tensors.TensorPrimitives.IndexOfMax(row);
    }
}
