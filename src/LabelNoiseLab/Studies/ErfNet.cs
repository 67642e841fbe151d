using LabelNoiseLab.Tensors;

namespace LabelNoiseLab.Studies;

/// <summary>
/// A model trained by full-batch gradient descent on fixed training inputs with the loss
/// 0.5·mean((f − y)²) over every entry: parameters as flat arrays, the exact gradient, and a
/// plain or SAM step. The two-phase-paper preset's network and its linearised twin.
/// </summary>
internal abstract class FullBatchModel
{
    private float[][]? _grads;
    private float[][]? _saved;
    private float[] _residual = [];

    /// <summary>W1, b1, W2, b2 (row-major).</summary>
    public abstract float[][] Params { get; }

    /// <summary>The outputs on the training inputs (n × k).</summary>
    public abstract float[] TrainOutput();

    /// <summary>The loss's gradient at the current parameters, given the residual scaled to the loss (r = (f − y)/(n·k)); called right after <see cref="TrainOutput"/> at the same parameters.</summary>
    protected abstract void Gradients(float[] residual, float[][] grads);

    public void Step(float[] targets, float lr)
    {
        var g = Grads(targets);
        for (int p = 0; p < Params.Length; p++)
            System.Numerics.Tensors.TensorPrimitives.MultiplyAdd(g[p], -lr, Params[p], Params[p]);
    }

    /// <summary>SAM: the gradient at w + ρ·g/‖g‖ (one global norm), the step taken from w.</summary>
    public void SamStep(float[] targets, float lr, float rho)
    {
        var g = Grads(targets);
        double norm2 = 0;
        foreach (var gp in g)
            norm2 += System.Numerics.Tensors.TensorPrimitives.Dot(gp, gp);
        double norm = Math.Sqrt(norm2);
        if (!(norm > 0) || !double.IsFinite(norm))
        {
            Step(targets, lr);
            return;
        }
        _saved ??= [.. Params.Select(p => new float[p.Length])];
        for (int p = 0; p < Params.Length; p++)
        {
            Params[p].CopyTo(_saved[p], 0);
            System.Numerics.Tensors.TensorPrimitives.MultiplyAdd(g[p], (float)(rho / norm), Params[p], Params[p]);
        }
        var g2 = Grads(targets);
        for (int p = 0; p < Params.Length; p++)
        {
            _saved[p].CopyTo(Params[p], 0);
            System.Numerics.Tensors.TensorPrimitives.MultiplyAdd(g2[p], -lr, Params[p], Params[p]);
        }
    }

    private float[][] Grads(float[] targets)
    {
        _grads ??= [.. Params.Select(p => new float[p.Length])];
        var f = TrainOutput();
        if (_residual.Length != f.Length)
            _residual = new float[f.Length];
        var r = _residual;
        float scale = 1f / f.Length;
        for (int i = 0; i < f.Length; i++)
            r[i] = (f[i] - targets[i]) * scale;
        Gradients(r, _grads);
        return _grads;
    }

    protected static void ColumnSums(float[] a, int rows, int cols, float[] sums)
    {
        Array.Clear(sums);
        for (int r = 0; r < rows; r++)
            System.Numerics.Tensors.TensorPrimitives.Add(sums, a.AsSpan(r * cols, cols), sums);
    }

    protected static readonly double TwoOverSqrtPi = 2 / Math.Sqrt(Math.PI);

    /// <summary>erf'(z) = 2/√π·exp(−z²), element-wise.</summary>
    protected static float[] ErfDerivative(float[] z)
    {
        var s = new float[z.Length];
        for (int i = 0; i < z.Length; i++)
            s[i] = (float)(TwoOverSqrtPi * Math.Exp(-(double)z[i] * z[i]));
        return s;
    }
}

/// <summary>
/// f(x) = W2·erf(W1·x + b1) + b2 in standard parameterisation (the label-noise SGD paper's
/// notebook): W ~ N(0, 1/fan_in), b ~ N(0, 1).
/// </summary>
internal sealed class ErfNet : FullBatchModel
{
    private readonly float[][] _params;
    private float[] _x = [];
    // Buffers for the bound training inputs, reused every step: pre-activations, erf, erf', back-propagated, outputs.
    private float[] _z = [], _h = [], _s = [], _g = [], _f = [];

    private ErfNet(int d, int m, int k, float[][] parameters)
    {
        (D, M, K) = (d, m, k);
        _params = parameters;
    }

    public int D { get; }
    public int M { get; }
    public int K { get; }

    public float[] W1 => _params[0];
    public float[] B1 => _params[1];
    public float[] W2 => _params[2];
    public float[] B2 => _params[3];

    public override float[][] Params => _params;

    public static ErfNet Initialise(int d, int m, int k, Rng rng)
    {
        float[] Normal(int count, double std)
        {
            var a = new float[count];
            for (int i = 0; i < count; i++)
                a[i] = (float)(rng.NextNormal() * std);
            return a;
        }
        return new ErfNet(d, m, k, [Normal(m * d, 1 / Math.Sqrt(d)), Normal(m, 1), Normal(k * m, 1 / Math.Sqrt(m)), Normal(k, 1)]);
    }

    public ErfNet Clone() => new(D, M, K, [.. _params.Select(p => (float[])p.Clone())]);

    /// <summary>Binds the training inputs the gradient is taken on.</summary>
    public ErfNet On(float[] x)
    {
        _x = x;
        int n = x.Length / D;
        (_z, _h, _s, _g, _f) = (new float[n * M], new float[n * M], new float[n * M], new float[n * M], new float[n * K]);
        return this;
    }

    /// <summary>The pre-activations z = x·W1ᵀ + b1 (n × m).</summary>
    public float[] PreActivations(float[] x) => PreActivations(x, new float[x.Length / D * M]);

    private float[] PreActivations(float[] x, float[] z)
    {
        int n = x.Length / D;
        Blas.Sgemm(false, true, n, M, D, 1f, x, D, W1, D, 0f, z, M);
        for (int r = 0; r < n; r++)
            System.Numerics.Tensors.TensorPrimitives.Add(z.AsSpan(r * M, M), B1, z.AsSpan(r * M, M));
        return z;
    }

    public float[] Forward(float[] x) => Head(Erf(PreActivations(x)), x.Length / D);

    public override float[] TrainOutput()
    {
        var z = PreActivations(_x, _z);
        for (int i = 0; i < z.Length; i++)
        {
            _h[i] = Kernels.ErfSingle(z[i]);
            _s[i] = (float)(TwoOverSqrtPi * Math.Exp(-(double)z[i] * z[i]));
        }
        return Head(_h, _x.Length / D, _f);
    }

    public float[] Head(float[] h, int n) => Head(h, n, new float[n * K]);

    private float[] Head(float[] h, int n, float[] f)
    {
        Blas.Sgemm(false, true, n, K, M, 1f, h, M, W2, M, 0f, f, K);
        for (int r = 0; r < n; r++)
            System.Numerics.Tensors.TensorPrimitives.Add(f.AsSpan(r * K, K), B2, f.AsSpan(r * K, K));
        return f;
    }

    public static float[] Erf(float[] z)
    {
        var h = new float[z.Length];
        for (int i = 0; i < z.Length; i++)
            h[i] = Kernels.ErfSingle(z[i]);
        return h;
    }

    protected override void Gradients(float[] r, float[][] grads)
    {
        // At the weights the residual was taken at: TrainOutput just filled _h and _s = erf'(z).
        int n = _x.Length / D;
        var (h, s, g) = (_h, _s, _g);
        Blas.Sgemm(true, false, K, M, n, 1f, r, K, h, M, 0f, grads[2], M);      // ∂W2 = rᵀh
        ColumnSums(r, n, K, grads[3]);                                          // ∂b2 = Σ r
        Blas.Sgemm(false, false, n, M, K, 1f, r, K, W2, M, 0f, g, M);           // r·W2
        System.Numerics.Tensors.TensorPrimitives.Multiply(g, s, g);             // ⊙ erf'(z)
        Blas.Sgemm(true, false, M, D, n, 1f, g, M, _x, D, 0f, grads[0], D);     // ∂W1 = gᵀx
        ColumnSums(g, n, M, grads[1]);                                          // ∂b1 = Σ g
    }

    /// <summary>Mean and (population) standard deviation of the norms of W1's rows.</summary>
    public (double Mean, double Std) NeuronNorms()
    {
        var norms = new double[M];
        for (int u = 0; u < M; u++)
            norms[u] = Math.Sqrt(System.Numerics.Tensors.TensorPrimitives.Dot(W1.AsSpan(u * D, D), W1.AsSpan(u * D, D)));
        double mean = norms.Average();
        return (mean, Math.Sqrt(norms.Select(v => (v - mean) * (v - mean)).Average()));
    }

    /// <summary>The empirical tangent kernel on inputs x (see <see cref="CrossKernel"/>).</summary>
    public double[] Kernel(float[] x) => CrossKernel(x, x);

    /// <summary>
    /// The tangent kernel between inputs xa and xb over every (sample, output) pair, in closed form:
    /// K[(a,i),(b,j)] = δᵢⱼ(h_a·h_b + 1) + Σᵤ W2[i,u]W2[j,u]·s_a,u·s_b,u·(x_a·x_b + 1), s = erf'(z),
    /// row a·k + i, column b·k + j (the layout of the outputs). K = J(xa)·J(xb)ᵀ over all parameters.
    /// </summary>
    public double[] CrossKernel(float[] xa, float[] xb)
    {
        int na = xa.Length / D, nb = xb.Length / D;
        var (ha, sa) = HiddenAndSlope(xa);
        var (hb, sb) = HiddenAndSlope(xb);
        var hh = new float[na * nb];
        Blas.Sgemm(false, true, na, nb, M, 1f, ha, M, hb, M, 0f, hh, nb);
        var xx = new float[na * nb];
        Blas.Sgemm(false, true, na, nb, D, 1f, xa, D, xb, D, 0f, xx, nb);
        var aa = Scaled(sa, na);
        var ab = Scaled(sb, nb);
        int ka = K * na, kb = K * nb;
        var g = new float[ka * kb];
        Blas.Sgemm(false, true, ka, kb, M, 1f, aa, M, ab, M, 0f, g, kb);
        var kernel = new double[ka * kb];
        for (int a = 0; a < na; a++)
            for (int i = 0; i < K; i++)
                for (int b = 0; b < nb; b++)
                    for (int j = 0; j < K; j++)
                    {
                        double v = g[(i * na + a) * kb + j * nb + b] * ((double)xx[a * nb + b] + 1);
                        if (i == j)
                            v += hh[a * nb + b] + 1;
                        kernel[(a * K + i) * kb + b * K + j] = v;
                    }
        return kernel;
    }

    private (float[] H, float[] S) HiddenAndSlope(float[] x)
    {
        var z = PreActivations(x);
        return (Erf(z), ErfDerivative(z));
    }

    /// <summary>Rows i·n + a: s_a ⊙ W2[i].</summary>
    private float[] Scaled(float[] s, int n)
    {
        var a = new float[K * n * M];
        for (int i = 0; i < K; i++)
            for (int r = 0; r < n; r++)
                System.Numerics.Tensors.TensorPrimitives.Multiply(s.AsSpan(r * M, M), W2.AsSpan(i * M, M), a.AsSpan((i * n + r) * M, M));
        return a;
    }
}

/// <summary>
/// The linearised twin trained in function space: since f_lin = f₀ + J₀Δ and a step moves Δ by
/// −lr·J₀ᵀr, the outputs move by −lr·K₀r (K₀ = J₀J₀ᵀ, the tangent kernel at θ₀; on test inputs
/// the cross kernel). The same steps as <see cref="LinearisedErfNet"/> (and SAM: ‖J₀ᵀr‖² = rᵀK₀r,
/// the ascent point's outputs f + (ρ/‖g‖)·K₀r), at the cost of matrix–vector products with the
/// (n·k)² kernel instead of the network's parameter-sized products.
/// </summary>
internal sealed class FunctionSpaceTwin
{
    private readonly double[] _ktt, _kst;
    private readonly double[] _train, _test;
    private readonly double[] _r, _kr;

    public FunctionSpaceTwin(ErfNet at, float[] x, float[] xTest)
    {
        _ktt = at.CrossKernel(x, x);
        _kst = at.CrossKernel(xTest, x);
        _train = [.. at.Forward(x).Select(v => (double)v)];
        _test = [.. at.Forward(xTest).Select(v => (double)v)];
        _r = new double[_train.Length];
        _kr = new double[_train.Length];
    }

    public float[] Forward(bool train) => [.. (train ? _train : _test).Select(v => (float)v)];

    public void Step(float[] targets, float lr)
    {
        Residual(_train, targets, _r);
        Move(lr, _r);
    }

    public void SamStep(float[] targets, float lr, float rho)
    {
        Residual(_train, targets, _r);
        MatVec(_ktt, _r, _kr);
        double norm = Math.Sqrt(Dot(_r, _kr));
        if (!(norm > 0) || !double.IsFinite(norm))
        {
            Move(lr, _r);
            return;
        }
        // The residual at the ascent point f + (ρ/‖g‖)·K₀r.
        double scale = 1.0 / _train.Length, step = rho / norm;
        for (int i = 0; i < _r.Length; i++)
            _r[i] = (_train[i] + step * _kr[i] - targets[i]) * scale;
        Move(lr, _r);
    }

    private void Move(float lr, double[] r)
    {
        MatVec(_ktt, r, _kr);
        for (int i = 0; i < _train.Length; i++)
            _train[i] -= lr * _kr[i];
        int n = _train.Length;
        for (int row = 0; row < _test.Length; row++)
            _test[row] -= lr * Dot(_kst.AsSpan(row * n, n), r);
    }

    private static void Residual(double[] f, float[] targets, double[] r)
    {
        double scale = 1.0 / f.Length;
        for (int i = 0; i < f.Length; i++)
            r[i] = (f[i] - targets[i]) * scale;
    }

    private static void MatVec(double[] m, double[] v, double[] into)
    {
        int n = v.Length;
        for (int row = 0; row < into.Length; row++)
            into[row] = Dot(m.AsSpan(row * n, n), v);
    }

    private static double Dot(ReadOnlySpan<double> a, ReadOnlySpan<double> b) => System.Numerics.Tensors.TensorPrimitives.Dot(a, b);
}

/// <summary>
/// The linearised twin of an <see cref="ErfNet"/> at θ₀: f_lin(x) = f₀(x) + J₀(x)(θ − θ₀), in closed
/// form with Δ = θ − θ₀: f₀ + h₀·ΔW2ᵀ + Δb2 + ((x·ΔW1ᵀ + Δb1) ⊙ s₀)·W2₀ᵀ, s₀ = erf'(z₀). Linear in
/// Δ, so its gradient is J₀ᵀr, again in closed form; no Jacobian is materialised.
/// </summary>
internal sealed class LinearisedErfNet : FullBatchModel
{
    private readonly ErfNet _at;
    private readonly float[][] _delta;
    private readonly (float[] X, float[] F0, float[] H0, float[] S0) _train, _test;

    public LinearisedErfNet(ErfNet at, float[] x, float[] xTest)
    {
        _at = at.Clone();
        _delta = [.. _at.Params.Select(p => new float[p.Length])];
        _train = Point(x);
        _test = Point(xTest);
    }

    public override float[][] Params => _delta;

    private (float[], float[], float[], float[]) Point(float[] x)
    {
        var z = _at.PreActivations(x);
        var h = ErfNet.Erf(z);
        return (x, _at.Head(h, x.Length / _at.D), h, ErfDerivative(z));
    }

    public float[] Forward(bool train)
    {
        var (x, f0, h0, s0) = train ? _train : _test;
        int n = x.Length / _at.D, d = _at.D, m = _at.M, k = _at.K;
        var f = (float[])f0.Clone();
        Blas.Sgemm(false, true, n, k, m, 1f, h0, m, _delta[2], m, 1f, f, k);        // + h₀·ΔW2ᵀ
        for (int r = 0; r < n; r++)
            System.Numerics.Tensors.TensorPrimitives.Add(f.AsSpan(r * k, k), _delta[3], f.AsSpan(r * k, k));
        var u = new float[n * m];
        Blas.Sgemm(false, true, n, m, d, 1f, x, d, _delta[0], d, 0f, u, m);         // x·ΔW1ᵀ
        for (int r = 0; r < n; r++)
            System.Numerics.Tensors.TensorPrimitives.Add(u.AsSpan(r * m, m), _delta[1], u.AsSpan(r * m, m));
        System.Numerics.Tensors.TensorPrimitives.Multiply(u, s0, u);
        Blas.Sgemm(false, true, n, k, m, 1f, u, m, _at.W2, m, 1f, f, k);            // + (· ⊙ s₀)·W2₀ᵀ
        return f;
    }

    public override float[] TrainOutput() => Forward(train: true);

    protected override void Gradients(float[] r, float[][] grads)
    {
        var (x, _, h0, s0) = _train;
        int n = x.Length / _at.D, d = _at.D, m = _at.M, k = _at.K;
        Blas.Sgemm(true, false, k, m, n, 1f, r, k, h0, m, 0f, grads[2], m);
        ColumnSums(r, n, k, grads[3]);
        var g = new float[n * m];
        Blas.Sgemm(false, false, n, m, k, 1f, r, k, _at.W2, m, 0f, g, m);
        System.Numerics.Tensors.TensorPrimitives.Multiply(g, s0, g);
        Blas.Sgemm(true, false, m, d, n, 1f, g, m, x, d, 0f, grads[0], d);
        ColumnSums(g, n, m, grads[1]);
    }
}
