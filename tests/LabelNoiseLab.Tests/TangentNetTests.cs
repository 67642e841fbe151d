using LabelNoiseLab.Autograd;
using LabelNoiseLab.Losses;
using LabelNoiseLab.Nn;
using LabelNoiseLab.Probes;
using LabelNoiseLab.Tensors;
using LabelNoiseLab.Training;

namespace LabelNoiseLab.Tests;

/// <summary>
/// The exact first- and second-order products of <see cref="TangentNet"/> against independent
/// references: a dense Jacobian assembled row by row with the engine's reverse mode, central
/// differences of the network's outputs, the closed-form Hessian of a linear least-squares model,
/// and central differences of the engine's gradients (<see cref="HessianProbe"/>).
/// </summary>
public sealed class TangentNetTests
{
    private const int N = 4;

    public static TheoryData<string> Models => ["mlp-erf", "mlp-tanh", "mlp-gelu", "mlp-sigmoid", "mlp-relu", "cnn-tanh-avg", "cnn-relu-max"];

    private static Model Create(string name, int seed = 3)
    {
        Model model = name switch
        {
            "mlp-erf" => new Mlp(5, [6, 4], 3, ActivationKind.Erf),
            "mlp-tanh" => new Mlp(5, [6], 3, ActivationKind.Tanh),
            "mlp-gelu" => new Mlp(5, [6, 4], 3, ActivationKind.Gelu),
            "mlp-sigmoid" => new Mlp(5, [6], 3, ActivationKind.Sigmoid),
            "mlp-relu" => new Mlp(5, [6, 4], 3, ActivationKind.Relu),
            "mlp-linear" => new Mlp(5, [], 3),
            "cnn-tanh-avg" => new SmallCnn(1, 8, 3, width: 2, hidden: 4, ActivationKind.Tanh, averagePooling: true),
            "cnn-relu-max" => new SmallCnn(1, 8, 3, width: 2, hidden: 4, ActivationKind.Relu),
            _ => throw new ArgumentException(name),
        };
        var rng = new Rng((ulong)seed);
        foreach (var p in model.Parameters())
        {
            for (int i = 0; i < p.Length; i++)
                p.Span[i] = (float)(0.6 * rng.NextNormal());
        }
        return model;
    }

    private static float[] Random(int length, int seed, double scale = 1)
    {
        var rng = new Rng((ulong)seed);
        var v = new float[length];
        for (int i = 0; i < length; i++)
            v[i] = (float)(scale * rng.NextNormal());
        return v;
    }

    private static Tensor Input(TangentNet net, int seed = 11) => new(Random(N * net.InputLength, seed), N, net.InputLength);

    /// <summary>J[(i·k + a), p] = ∂f_a(x_i)/∂θ_p by one engine backward per output.</summary>
    private static double[,] EngineJacobian(Model model, TangentNet net, Tensor x)
    {
        int k = net.Outputs, rows = N * k;
        var jac = new double[rows, net.Dimension];
        var tape = new Tape();
        for (int r = 0; r < rows; r++)
        {
            tape.Reset();
            foreach (var p in net.Parameters)
                p.ZeroGrad();
            var y = model.Forward(tape, x);
            var mask = new Tensor(N, k);
            mask.Span[r] = 1f;
            tape.Backward(SumOp.Forward(tape, MulOp.Forward(tape, y, mask)));
            int offset = 0;
            foreach (var p in net.Parameters)
            {
                var g = p.GradSpan();
                for (int j = 0; j < p.Length; j++)
                    jac[r, offset + j] = g[j];
                offset += p.Length;
            }
        }
        return jac;
    }

    private static double RelativeError(ReadOnlySpan<float> actual, ReadOnlySpan<double> expected)
    {
        double diff = 0, scale = 0;
        for (int i = 0; i < expected.Length; i++)
        {
            diff = Math.Max(diff, Math.Abs(actual[i] - expected[i]));
            scale = Math.Max(scale, Math.Abs(expected[i]));
        }
        return diff / Math.Max(scale, 1e-12);
    }

    [Theory]
    [MemberData(nameof(Models))]
    public void Forward_equals_the_model_and_jvp_equals_the_dense_jacobian_times_v(string name)
    {
        var model = Create(name);
        var net = TangentNet.For(model);
        var x = Input(net);
        var theta = new float[net.Dimension];
        net.CopyParameters(theta);
        var v = Random(net.Dimension, 5);
        net.Forward(theta, v, x.Span, N);

        var y = model.Forward(new Tape(recording: false), x);
        Assert.True(RelativeError(net.Output, [.. y.Span.ToArray().Select(f => (double)f)]) < 1e-5);

        var jac = EngineJacobian(model, net, x);
        var jv = new double[N * net.Outputs];
        for (int r = 0; r < jv.Length; r++)
            for (int p = 0; p < net.Dimension; p++)
                jv[r] += jac[r, p] * v[p];
        double error = RelativeError(net.OutputTangent, jv);
        Assert.True(error < 1e-4, $"{name}: JVP vs dense Jacobian, relative error {error:E2}");
    }

    [Theory]
    [MemberData(nameof(Models))]
    public void Vjp_equals_the_dense_jacobian_transposed_times_g(string name)
    {
        var model = Create(name);
        var net = TangentNet.For(model);
        var x = Input(net);
        var theta = new float[net.Dimension];
        net.CopyParameters(theta);
        var g = Random(N * net.Outputs, 9);
        net.Forward(theta, [], x.Span, N);
        var grad = new float[net.Dimension];
        net.Backward(theta, [], g, [], grad, []);
        var jac = EngineJacobian(model, net, x);
        var expected = new double[net.Dimension];
        for (int p = 0; p < net.Dimension; p++)
            for (int r = 0; r < g.Length; r++)
                expected[p] += jac[r, p] * g[r];
        double error = RelativeError(grad, expected);
        Assert.True(error < 1e-4, $"{name}: VJP vs dense Jacobian, relative error {error:E2}");
    }

    [Theory]
    [InlineData("mlp-erf")]
    [InlineData("mlp-tanh")]
    [InlineData("mlp-gelu")]
    [InlineData("cnn-tanh-avg")]
    public void Jvp_matches_central_differences_of_the_outputs(string name)
    {
        var model = Create(name);
        var net = TangentNet.For(model);
        var x = Input(net);
        var theta = new float[net.Dimension];
        net.CopyParameters(theta);
        var v = Random(net.Dimension, 5);
        net.Forward(theta, v, x.Span, N);
        var jv = net.OutputTangent.ToArray();
        const float h = 1e-2f;
        var plus = theta.Select((t, i) => t + h * v[i]).ToArray();
        var minus = theta.Select((t, i) => t - h * v[i]).ToArray();
        net.Forward(plus, [], x.Span, N);
        var fp = net.Output.ToArray();
        net.Forward(minus, [], x.Span, N);
        var fm = net.Output.ToArray();
        var fd = fp.Select((f, i) => (f - (double)fm[i]) / (2 * h)).ToArray();
        double error = RelativeError(jv, fd);
        Assert.True(error < 2e-3, $"{name}: JVP vs central differences, relative error {error:E2}");
    }

    [Theory]
    [InlineData("mlp-erf")]
    [InlineData("mlp-relu")]
    public void Tangent_kernel_equals_the_dense_jacobian_gram_matrix(string name)
    {
        var model = Create(name);
        var net = TangentNet.For(model);
        var x = Input(net);
        var theta = new float[net.Dimension];
        net.CopyParameters(theta);
        var kernel = net.TangentKernel(theta, x.Span, N);
        var jac = EngineJacobian(model, net, x);
        int k = net.Outputs, kn = k * N;
        double diff = 0, scale = 0;
        for (int a = 0; a < k; a++)
        for (int i = 0; i < N; i++)
        for (int b = 0; b < k; b++)
        for (int j = 0; j < N; j++)
        {
            double expected = 0;
            for (int p = 0; p < net.Dimension; p++)
                expected += jac[i * k + a, p] * jac[j * k + b, p];
            diff = Math.Max(diff, Math.Abs(kernel[(a * N + i) * kn + b * N + j] - expected));
            scale = Math.Max(scale, Math.Abs(expected));
        }
        Assert.True(diff / scale < 1e-4, $"{name}: kernel vs J Jᵀ, relative error {diff / scale:E2}");
        Assert.Equal(0, TangentNet.KernelDistance(kernel, kernel), 12);
    }

    [Fact]
    public void Hvp_of_a_linear_least_squares_model_equals_its_closed_form_hessian()
    {
        // f = W x + b, L = mean over n·k of (f − y)²: H = 2/(n·k) · (Σᵢ x̃ᵢ x̃ᵢᵀ) for every output row, x̃ = [x; 1].
        var model = Create("mlp-linear");
        var net = TangentNet.For(model);
        var x = Input(net);
        int d = net.InputLength, k = net.Outputs;
        var theta = new float[net.Dimension];
        net.CopyParameters(theta);
        int[] labels = [0, 2, 1, 2];
        var (grad, hv, gy, gyd) = (new float[net.Dimension], new float[net.Dimension], new float[N * k], new float[N * k]);
        for (int col = 0; col < net.Dimension; col++)
        {
            var e = new float[net.Dimension];
            e[col] = 1f;
            net.HessianVectorProduct(theta, e, x.Span, N, LossKind.Mse, labels, [], grad, hv, gy, gyd);
            for (int row = 0; row < net.Dimension; row++)
            {
                Assert.Equal(Closed(row, col), hv[row], 5);
            }
        }

        // Parameter layout: weight [k, d] then bias [k].
        double Closed(int r, int c)
        {
            (int ra, int rj) = r < k * d ? (r / d, r % d) : (r - k * d, d);
            (int ca, int cj) = c < k * d ? (c / d, c % d) : (c - k * d, d);
            if (ra != ca)
                return 0;
            double s = 0;
            for (int i = 0; i < N; i++)
                s += (rj == d ? 1 : x.Span[i * d + rj]) * (cj == d ? 1 : x.Span[i * d + cj]);
            return 2.0 / (N * k) * s;
        }
    }

    [Theory]
    [InlineData("mlp-erf", LossKind.Mse)]
    [InlineData("mlp-tanh", LossKind.CrossEntropy)]
    [InlineData("mlp-gelu", LossKind.CrossEntropy)]
    [InlineData("mlp-sigmoid", LossKind.Mse)]
    [InlineData("cnn-tanh-avg", LossKind.CrossEntropy)]
    [InlineData("cnn-tanh-avg", LossKind.Mse)]
    public void Exact_dense_hessian_is_symmetric_and_matches_finite_differences_of_engine_gradients(string name, LossKind kind)
    {
        var model = Create(name);
        var net = TangentNet.For(model);
        var x = Input(net);
        int p = net.Dimension, k = net.Outputs;
        var theta = new float[p];
        net.CopyParameters(theta);
        int[] labels = [0, 2, 1, 2];
        var labelTensor = labels;
        var fd = new HessianProbe(model.Parameters(), tape => kind == LossKind.Mse
            ? MseOp.Forward(tape, model.Forward(tape, x), labelTensor).Mean
            : SoftmaxCrossEntropyOp.Forward(tape, model.Forward(tape, x), labelTensor).Mean, step: 1e-2f);
        var exact = new double[p, p];
        var (grad, hv, gy, gyd, fdColumn) = (new float[p], new float[p], new float[N * k], new float[N * k], new float[p]);
        double diff = 0, scale = 0, asym = 0;
        for (int c = 0; c < p; c++)
        {
            var e = new float[p];
            e[c] = 1f;
            double loss = net.HessianVectorProduct(theta, e, x.Span, N, kind, labels, [], grad, hv, gy, gyd);
            for (int r = 0; r < p; r++)
                exact[r, c] = hv[r];
            fd.HessianVectorProduct(e, fdColumn);
            for (int r = 0; r < p; r++)
            {
                diff = Math.Max(diff, Math.Abs(hv[r] - fdColumn[r]));
                scale = Math.Max(scale, Math.Abs(hv[r]));
            }
        }
        for (int r = 0; r < p; r++)
            for (int c = 0; c < r; c++)
                asym = Math.Max(asym, Math.Abs(exact[r, c] - exact[c, r]));
        Assert.True(scale > 0);
        Assert.True(asym / scale < 1e-5, $"{name}: exact Hessian asymmetric by {asym / scale:E2} (relative)");
        Assert.True(diff / scale < 2e-2, $"{name}: exact vs finite-difference Hessian, relative error {diff / scale:E2}");

        // The gradient the product computes on the way is the engine's.
        var engineGrad = new float[p];
        fd.Gradient(engineGrad);
        Assert.True(RelativeError(grad, [.. engineGrad.Select(g => (double)g)]) < 1e-4);
    }

    [Fact]
    public void Models_with_other_layers_are_refused_with_a_reason()
    {
        var rn = new ResNet(3, 8, 3, 8, 0.25, NormKind.Batch);
        Assert.Contains("not covered", TangentNet.Unsupported(rn));
        Assert.Null(TangentNet.Unsupported(Create("cnn-relu-max")));
        var dropout = new Mlp(5, [6], 3, ActivationKind.Relu, 0.5f, new Rng(1));
        Assert.Contains("Dropout", TangentNet.Unsupported(dropout));
    }
}
