using System.Numerics.Tensors;
using LabelNoiseLab.Autograd;
using LabelNoiseLab.Losses;
using LabelNoiseLab.Nn;
using LabelNoiseLab.Optim;
using LabelNoiseLab.Tensors;

namespace LabelNoiseLab.Probes;

/// <summary>
/// The softmax linear classifier of the spectral probe, fitted with the engine on the first d
/// principal coordinates (whitened) of the training features. Convex, so zero init and a fixed
/// budget (epochs of shuffled minibatches, Adam) make it deterministic; no regularisation.
/// </summary>
internal static class LinearProbe
{
    /// <summary>
    /// Fits on <paramref name="coords"/> (n×D principal coordinates; the first d are used, times
    /// <paramref name="scale"/>). Returns the weights folded with the scale (K×d, applied to raw
    /// coordinates) and the bias (K).
    /// </summary>
    public static (float[] W, float[] B) Fit(float[] coords, int n, int dim, int d, float[] scale, int[] labels, int classes, SpectralOptions o)
    {
        var layer = new Linear(d, classes);
        var optimizer = new Adam(layer.Parameters(), o.ProbeLr);
        var rng = Rng.ForPurpose(o.Seed, "spectral-probe");
        var order = Enumerable.Range(0, n).ToArray();
        int batch = Math.Min(o.ProbeBatchSize, n);
        var x = new Tensor(batch, d);
        var y = new int[batch];
        var tape = new Tape();
        var s = scale.AsSpan(0, d);
        for (int epoch = 0; epoch < o.ProbeEpochs; epoch++)
        {
            rng.Shuffle(order);
            for (int start = 0; start < n; start += batch)
            {
                int len = Math.Min(batch, n - start);
                x.Resize([len, d]);
                var xs = x.Span;
                for (int r = 0; r < len; r++)
                {
                    int i = order[start + r];
                    TensorPrimitives.Multiply(coords.AsSpan(i * dim, d), s, xs.Slice(r * d, d));
                    y[r] = labels[i];
                }
                tape.Reset();
                optimizer.ZeroGrad();
                var loss = SoftmaxCrossEntropyOp.Forward(tape, layer.Forward(tape, x), y).Mean;
                tape.Backward(loss);
                optimizer.Step();
            }
        }
        var w = layer.Weight.ToArray();
        for (int k = 0; k < classes; k++)
            TensorPrimitives.Multiply(w.AsSpan(k * d, d), s, w.AsSpan(k * d, d));
        return (w, layer.Bias!.ToArray());
    }

    /// <summary>Predicted class of each of m samples from their first d coordinates (rows of length D).</summary>
    public static int[] Predict(float[] coords, int m, int dim, int d, float[] w, float[] b, int classes)
    {
        var logits = new float[(long)m * classes];
        Kernels.BroadcastRows(b, logits, m);
        Blas.Sgemm(false, true, m, classes, d, 1f, coords, dim, w, d, 1f, logits, classes);
        var predicted = new int[m];
        SpectralProbe.ArgMaxRows(logits, m, classes, predicted);
        return predicted;
    }
}
