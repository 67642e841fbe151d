using LabelNoiseLab.Autograd;
using LabelNoiseLab.Tensors;

namespace LabelNoiseLab.Tests;

/// <summary>
/// Central-difference gradient checks. The function under test maps tensors to an output y;
/// the checked scalar is L = Σ rᵢyᵢ with fixed random r, evaluated in double precision from
/// the float32 outputs, so every element of y gets a distinct weight.
/// </summary>
internal static class GradCheck
{
    /// <summary>Returns the worst relative error ‖num − ana‖ / max(‖num‖, ‖ana‖) over the inputs.</summary>
    public static double MaxRelativeError(Func<Tape, Tensor> f, Tensor[] inputs, double h = 1e-2, int maxElements = 80, int seed = 7)
        => Check(f, inputs, h, maxElements, seed, skipKinks: false).Error;

    /// <summary>
    /// Like <see cref="MaxRelativeError"/>, for networks with ReLU and max-pooling: an element
    /// whose ±h interval holds a kink (central differences at h and h/2 disagree by over 1%)
    /// is skipped and counted, since no finite difference describes the gradient there.
    /// </summary>
    public static (double Error, double SkippedFraction) CheckSkippingKinks(Func<Tape, Tensor> f, Tensor[] inputs, double h = 1e-3, int maxElements = 80, int seed = 7)
        => Check(f, inputs, h, maxElements, seed, skipKinks: true);

    private static (double Error, double SkippedFraction) Check(Func<Tape, Tensor> f, Tensor[] inputs, double h, int maxElements, int seed, bool skipKinks)
    {
        int checkedCount = 0, skipped = 0;
        var rng = new Rng((ulong)seed);
        // Analytic gradients through the tape.
        var tape = new Tape();
        foreach (var x in inputs)
        {
            x.RequiresGrad = true;
            x.ZeroGrad();
        }
        var y = f(tape);
        var r = new Tensor(y.Shape.ToArray());
        for (int i = 0; i < r.Length; i++)
            r[i] = (float)rng.NextNormal();
        var loss = y.Length == 1 ? ScaleOp.Forward(tape, y, r[0]) : SumOp.Forward(tape, MulOp.Forward(tape, y, r));
        tape.Backward(loss);
        double worst = 0;
        foreach (var x in inputs)
        {
            var analytic = x.GradSpan().ToArray();
            double num2 = 0, ana2 = 0, diff2 = 0;
            var indices = Enumerable.Range(0, x.Length).ToArray();
            if (indices.Length > maxElements)
            {
                rng.Shuffle(indices);
                indices = indices[..maxElements];
            }
            foreach (int i in indices)
            {
                float saved = x[i];
                x[i] = (float)(saved + h);
                double plus = Evaluate(f, r);
                x[i] = (float)(saved - h);
                double minus = Evaluate(f, r);
                x[i] = saved;
                checkedCount++;
                if (skipKinks)
                {
                    // Smooth around x: central differences at h and h/2 agree to O(h²). A kink
                    // (a ReLU or a pooling maximum switching) within ±h makes them disagree.
                    x[i] = (float)(saved + h / 2);
                    double plusHalf = Evaluate(f, r);
                    x[i] = (float)(saved - h / 2);
                    double minusHalf = Evaluate(f, r);
                    x[i] = saved;
                    double full = (plus - minus) / (2 * h), half = (plusHalf - minusHalf) / h;
                    if (Math.Abs(full - half) > 0.01 * Math.Max(Math.Abs(full), 1e-2))
                    {
                        skipped++;
                        continue;
                    }
                }
                double numeric = (plus - minus) / (2 * h);
                num2 += numeric * numeric;
                ana2 += analytic[i] * (double)analytic[i];
                diff2 += (numeric - analytic[i]) * (numeric - analytic[i]);
            }
            double scale = Math.Max(Math.Sqrt(Math.Max(num2, ana2)), 1e-6);
            double rel = Math.Sqrt(diff2) / scale;
            if (double.IsNaN(rel))
                throw new InvalidOperationException($"gradient check of {x.Describe()}: NaN in the gradient");
            worst = Math.Max(worst, rel);
        }
        return (worst, checkedCount == 0 ? 0 : (double)skipped / checkedCount);
    }

    private static double Evaluate(Func<Tape, Tensor> f, Tensor r)
    {
        var tape = new Tape(recording: false);
        var y = f(tape);
        double s = 0;
        for (int i = 0; i < y.Length; i++)
            s += (double)y[i] * r[i];
        return s;
    }

    /// <summary>A tensor of normals, optionally pushed away from zero (for kinks at 0).</summary>
    public static Tensor Random(Rng rng, int[] shape, float scale = 1f, float awayFromZero = 0f)
    {
        var t = new Tensor(shape);
        for (int i = 0; i < t.Length; i++)
        {
            float v = (float)rng.NextNormal() * scale;
            if (awayFromZero > 0 && MathF.Abs(v) < awayFromZero)
                v = v < 0 ? v - awayFromZero : v + awayFromZero;
            t[i] = v;
        }
        return t;
    }
}
