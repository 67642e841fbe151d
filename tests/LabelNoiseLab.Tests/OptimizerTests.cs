using LabelNoiseLab.Optim;

namespace LabelNoiseLab.Tests;

/// <summary>Optimizer updates against hand-written reference formulas (PyTorch's definitions).</summary>
public class OptimizerTests
{
    private static Tensor Param(params float[] values)
    {
        var p = new Tensor(values, values.Length) { RequiresGrad = true };
        return p;
    }

    private static void SetGrad(Tensor p, params float[] g)
    {
        g.CopyTo(p.EnsureGrad().Span);
        p.GradIsZero = false;
    }

    [Theory]
    [InlineData(0f, false, 0f)]
    [InlineData(0.9f, false, 0f)]
    [InlineData(0.9f, true, 0.01f)]
    [InlineData(0.5f, false, 0.1f)]
    public void Sgd_matches_the_reference_recursion(float momentum, bool nesterov, float wd)
    {
        // 37 elements so both the vector loop and the scalar tail run.
        var rng = new Tensors.Rng(1);
        var w0 = Enumerable.Range(0, 37).Select(_ => (float)rng.NextNormal()).ToArray();
        var p = Param((float[])w0.Clone());
        var opt = new Sgd([p], 0.1f, momentum, nesterov, wd);
        var w = w0.Select(v => (double)v).ToArray();
        var v = new double[37];
        for (int step = 0; step < 4; step++)
        {
            var g = Enumerable.Range(0, 37).Select(_ => (float)rng.NextNormal()).ToArray();
            SetGrad(p, g);
            opt.Step();
            for (int i = 0; i < 37; i++)
            {
                double gi = g[i] + wd * w[i];
                v[i] = step == 0 ? gi : momentum * v[i] + gi;
                double d = momentum == 0 ? gi : nesterov ? gi + momentum * v[i] : v[i];
                w[i] -= 0.1 * d;
            }
        }
        for (int i = 0; i < 37; i++)
            Assert.Equal(w[i], p[i], 5);
    }

    [Theory]
    [InlineData(0f, false)]
    [InlineData(0.1f, false)]
    [InlineData(0.1f, true)]
    public void Adam_matches_the_reference(float wd, bool decoupled)
    {
        var p = Param(1f, -2f, 0.5f);
        var opt = new Adam([p], 0.01f, 0.9f, 0.999f, 1e-8f, wd, decoupled);
        double[] w = [1, -2, 0.5], m = new double[3], v = new double[3];
        float[][] grads = [[0.1f, -0.3f, 2f], [0.2f, 0.1f, -1f], [-0.5f, 0.4f, 0.3f]];
        for (int t = 1; t <= 3; t++)
        {
            SetGrad(p, grads[t - 1]);
            opt.Step();
            for (int i = 0; i < 3; i++)
            {
                double g = grads[t - 1][i];
                if (decoupled)
                    w[i] *= 1 - 0.01 * wd;
                else
                    g += wd * w[i];
                m[i] = 0.9 * m[i] + 0.1 * g;
                v[i] = 0.999 * v[i] + 0.001 * g * g;
                double mh = m[i] / (1 - Math.Pow(0.9, t)), vh = v[i] / (1 - Math.Pow(0.999, t));
                w[i] -= 0.01 * mh / (Math.Sqrt(vh) + 1e-8);
            }
        }
        for (int i = 0; i < 3; i++)
            Assert.Equal(w[i], p[i], 5);
    }

    [Fact]
    public void Lazy_zero_grad_means_no_gradient()
    {
        var p = Param(1f, 2f);
        var opt = new Sgd([p], 0.5f);
        opt.ZeroGrad();
        opt.Step();
        Assert.Equal([1f, 2f], p.ToArray());
    }

    [Fact]
    public void Schedules()
    {
        Assert.Equal(0.1f, new LrSchedule.Constant().At(1000, 0.1f));
        Assert.Equal(0.1f * 0.25f, new LrSchedule.Step(10, 0.5f).At(25, 0.1f), 6);
        var cos = new LrSchedule.Cosine(100);
        Assert.Equal(0.1f, cos.At(0, 0.1f), 6);
        Assert.Equal(0.05f, cos.At(50, 0.1f), 6);
        Assert.Equal(0f, cos.At(100, 0.1f), 6);
        Assert.Equal(0.1f / 3f, new LrSchedule.InverseSqrt().At(8, 0.1f), 6);
        Assert.Equal(0.05f, new LrSchedule.InverseSqrt(warmup: 4).At(1, 0.1f), 6);
    }

    [Fact]
    public void Bad_options_are_rejected()
    {
        var p = Param(1f);
        Assert.Throws<ArgumentOutOfRangeException>(() => new Sgd([p], 0f));
        Assert.Throws<ArgumentOutOfRangeException>(() => new Sgd([p], 0.1f, momentum: 1f));
        Assert.Throws<ArgumentOutOfRangeException>(() => new Adam([p], 0.1f, beta1: 1f));
    }
}
