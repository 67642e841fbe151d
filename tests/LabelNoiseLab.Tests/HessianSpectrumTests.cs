using System.Globalization;
using LabelNoiseLab.Losses;
using LabelNoiseLab.Nn;
using LabelNoiseLab.Probes;
using LabelNoiseLab.Tensors;
using LabelNoiseLab.Training;

namespace LabelNoiseLab.Tests;

/// <summary>
/// Lanczos top eigenvalues and stochastic Lanczos quadrature against dense eigen-decompositions,
/// the exact Hessian's top eigenvalues against those of a finite-difference dense Hessian, and the
/// probe in a run (files, columns, bad input).
/// </summary>
public sealed class HessianSpectrumTests : IDisposable
{
    private readonly TempDir _temp = new("hessian");

    public void Dispose() => _temp.Dispose();

    [Fact]
    public void Image_models_small_cnn_is_measured_and_others_are_one_line_exit_2()
    {
        using var data = new DataTestFiles();
        foreach (var (prefix, n) in (ValueTuple<string, int>[])[("train", 40), ("t10k", 10)])
        {
            var labels = Enumerable.Range(0, n).Select(i => (byte)(i % 10)).ToArray();
            data.Write(prefix + "-images-idx3-ubyte", DataTestFiles.IdxImages(DataTestFiles.Pixels(n * 28 * 28, n), n, 28, 28));
            data.Write(prefix + "-labels-idx1-ubyte", DataTestFiles.IdxLabels(labels));
        }
        string yaml = Yaml.Replace("name: gaussian-mixture", "name: mnist").Replace("epochs: 4", "epochs: 1")
            .Replace("kind: mlp", "kind: small_cnn").Replace("hessian_every: 2", "hessian_every: 1")
            .Replace("hessian_samples: 32", "hessian_samples: 6").Replace("hessian_lanczos_steps: 10", "hessian_lanczos_steps: 4").Replace("hessian_vectors: 2", "hessian_vectors: 1");
        string ok = _temp.Sub("cnn");
        var (code, _, err) = TestCli.Train(_temp.Path, yaml, "--out", ok, "--data-dir", data.Dir);
        Assert.True(code == 0, err);
        Assert.Equal(5, File.ReadAllLines(Path.Combine(ok, HessianSpectrumProbe.EigenFile)).Length); // header, steps 0 and 3, two each

        foreach (var (setting, key) in (ValueTuple<string, string>[])[("model.kind=cnn9", "probe.hessian_every"), ("probe.linearized=true", "probe.linearized")])
        {
            (code, _, err) = TestCli.Train(_temp.Path, yaml, "--out", _temp.Sub("refused-" + key), "--data-dir", data.Dir, "--set", setting);
            Assert.Equal(2, code);
            Assert.Single(err.Split('\n', StringSplitOptions.RemoveEmptyEntries));
            Assert.Contains(key, err);
        }
    }

    private static float[] RandomSymmetric(int n, int seed)
    {
        var rng = new Rng((ulong)seed);
        var a = new float[n * n];
        for (int i = 0; i < n; i++)
            for (int j = 0; j <= i; j++)
                a[i * n + j] = a[j * n + i] = (float)rng.NextNormal();
        return a;
    }

    private static SymmetricProduct Dense(float[] a, int n) => (v, av) =>
    {
        for (int i = 0; i < n; i++)
        {
            double s = 0;
            for (int j = 0; j < n; j++)
                s += (double)a[i * n + j] * v[j];
            av[i] = (float)s;
        }
    };

    private static float[] Eigenvalues(float[] a, int n)
    {
        var values = new float[n];
        Lapack.SymmetricEigen(a, n, values, new float[n * n]);
        return values; // descending
    }

    [Fact]
    public void Lanczos_top_eigenvalues_equal_the_dense_ones_with_as_many_steps_as_dimensions()
    {
        const int n = 40;
        var a = RandomSymmetric(n, 1);
        var expected = Eigenvalues(a, n);
        var top = Lanczos.TopEigenvalues(Dense(a, n), n, 5, n, new Rng(3));
        for (int i = 0; i < 5; i++)
            Assert.Equal(expected[i], top[i], 3);
    }

    [Fact]
    public void Lanczos_finds_a_well_separated_top_eigenvalue_in_few_steps()
    {
        const int n = 200;
        var a = RandomSymmetric(n, 2);
        for (int i = 0; i < n; i++)
            a[i * n + i] += i == 7 ? 100f : 0f; // one outlier, as in a network's Hessian
        var expected = Eigenvalues(a, n);
        var top = Lanczos.TopEigenvalues(Dense(a, n), n, 1, 20, new Rng(4));
        Assert.Equal(expected[0], top[0], 2);
    }

    [Fact]
    public void Tridiagonal_eigenvalues_match_the_dense_decomposition()
    {
        double[] alpha = [2, -1, 0.5, 3, 1.5, -2];
        double[] beta = [1, 0.3, -0.7, 2, 0.1];
        var (values, first) = Lanczos.Tridiagonal(alpha, beta);
        int m = alpha.Length;
        var t = new float[m * m];
        for (int i = 0; i < m; i++)
        {
            t[i * m + i] = (float)alpha[i];
            if (i + 1 < m)
                t[i * m + i + 1] = t[(i + 1) * m + i] = (float)beta[i];
        }
        var expected = Eigenvalues(t, m);
        var sorted = values.OrderDescending().ToArray();
        for (int i = 0; i < m; i++)
            Assert.Equal(expected[i], sorted[i], 4);
        Assert.Equal(1.0, first.Sum(f => f * f), 10); // first components of an orthonormal basis
    }

    [Fact]
    public void Tridiagonal_eigen_by_dstev_and_by_the_managed_fallback_agree_and_solve_the_problem()
    {
        var native = Lapack.OpenBlas as OpenBlasLapack;
        if (native is not { HasTridiagonal: true })
            Assert.Skip(MachineTools.NoOpenBlasLapack);
        const int m = 30;
        var rng = new Rng(11);
        double[] d = [.. Enumerable.Range(0, m).Select(_ => rng.NextNormal())];
        double[] e = [.. Enumerable.Range(0, m - 1).Select(_ => rng.NextNormal())];
        var (lv, lz) = native.TridiagonalEigen(d, e);
        var (mv, mz) = ManagedLapack.TridiagonalEigen(d, e);
        for (int j = 0; j < m; j++)
        {
            Assert.Equal(mv[j], lv[j], 10);
            if (j > 0)
                Assert.True(lv[j] >= lv[j - 1]); // ascending
            double dot = 0;
            for (int i = 0; i < m; i++)
                dot += lz[j * m + i] * mz[j * m + i];
            Assert.Equal(1.0, Math.Abs(dot), 8); // the same unit vector up to sign
            foreach (var z in new[] { lz, mz })
                for (int i = 0; i < m; i++)
                {
                    double tv = d[i] * z[j * m + i] + (i > 0 ? e[i - 1] * z[j * m + i - 1] : 0) + (i + 1 < m ? e[i] * z[j * m + i + 1] : 0);
                    Assert.Equal(lv[j] * z[j * m + i], tv, 10); // T·v = λ·v
                }
        }
    }

    [Fact]
    public void Slq_of_a_diagonal_matrix_puts_weight_one_over_n_on_every_eigenvalue_and_its_trace_is_hutchinsons()
    {
        const int n = 12;
        var a = new float[n * n];
        for (int i = 0; i < n; i++)
            a[i * n + i] = i + 1;
        var nodes = Lanczos.Density(Dense(a, n), n, vectors: 3, steps: n, new Rng(5));
        foreach (var group in nodes.GroupBy(x => x.Vector))
        {
            var ordered = group.OrderBy(x => x.Node).ToArray();
            Assert.Equal(n, ordered.Length);
            for (int i = 0; i < n; i++)
            {
                Assert.Equal(i + 1, ordered[i].Node, 4);
                Assert.Equal(1.0 / n, ordered[i].Weight, 5);
            }
        }
        Assert.Equal(n * (n + 1) / 2.0, Lanczos.Trace(nodes, n), 3);

        // A dense matrix: the SLQ trace with Rademacher vectors equals Hutchinson's vᵀAv on the same vectors.
        var b = RandomSymmetric(n, 6);
        var rng = new Rng(7);
        var slq = Lanczos.Trace(Lanczos.Density(Dense(b, n), n, 2, n, new Rng(7)), n);
        double hutchinson = 0;
        for (int v = 0; v < 2; v++)
        {
            var x = new float[n];
            for (int i = 0; i < n; i++)
                x[i] = (rng.NextUInt64() >> 63) == 0 ? -1f : 1f;
            for (int i = 0; i < n; i++)
                for (int j = 0; j < n; j++)
                    hutchinson += x[i] * b[i * n + j] * x[j] / 2.0;
        }
        Assert.Equal(hutchinson, slq, 3);
    }

    [Theory]
    [InlineData(LossKind.CrossEntropy)]
    [InlineData(LossKind.Mse)]
    public void Top_eigenvalues_of_the_exact_hessian_match_a_finite_difference_dense_hessian(LossKind kind)
    {
        var model = new Mlp(4, [5], 3, ActivationKind.Tanh);
        var rng = new Rng(8);
        foreach (var p in model.Parameters())
            for (int i = 0; i < p.Length; i++)
                p.Span[i] = (float)(0.8 * rng.NextNormal());
        var net = TangentNet.For(model);
        int n = 6, dim = net.Dimension;
        var x = new float[n * 4];
        for (int i = 0; i < x.Length; i++)
            x[i] = (float)rng.NextNormal();
        int[] labels = [0, 1, 2, 2, 1, 0];
        var theta = new float[dim];
        net.CopyParameters(theta);
        var (grad, gy, gyd) = (new float[dim], new float[n * 3], new float[n * 3]);
        SymmetricProduct exact = (v, hv) => net.HessianVectorProduct(theta, v, x, n, kind, labels, [], grad, hv, gy, gyd);

        var xt = new Tensor(x, n, 4);
        var fd = new HessianProbe(model.Parameters(), tape => kind == LossKind.Mse
            ? MseOp.Forward(tape, model.Forward(tape, xt), labels).Mean
            : SoftmaxCrossEntropyOp.Forward(tape, model.Forward(tape, xt), labels).Mean);
        var dense = new float[dim * dim];
        var col = new float[dim];
        for (int c = 0; c < dim; c++)
        {
            var e = new float[dim];
            e[c] = 1f;
            fd.HessianVectorProduct(e, col);
            for (int r = 0; r < dim; r++)
                dense[r * dim + c] = col[r];
        }
        var expected = Eigenvalues(dense, dim);
        var top = Lanczos.TopEigenvalues(exact, dim, 3, dim, new Rng(9));
        for (int i = 0; i < 3; i++)
            Assert.True(Math.Abs(top[i] - expected[i]) < 1e-2 * Math.Abs(expected[0]), $"λ{i + 1}: exact {top[i]}, finite differences {expected[i]}");
    }

    [Fact]
    public void The_two_phase_network_gets_exact_products_that_agree_with_the_finite_difference_cross_check()
    {
        const int d = 4, m = 6, n = 5;
        var model = new TwoLayerLinear(d, m);
        Init.Apply(model, InitKind.Ntk, new Rng(3));
        var rng = new Rng(4);
        var x = Enumerable.Range(0, n * d).Select(_ => (float)rng.NextNormal()).ToArray();
        var y = Enumerable.Range(0, n).Select(_ => (float)rng.NextNormal()).ToArray();
        var net = TangentNet.For(model);
        var (theta, grad, gy, gyd) = (new float[net.Dimension], new float[net.Dimension], new float[n], new float[n]);
        net.CopyParameters(theta);
        var xt = new Tensor(x, n, d);
        var yt = new Tensor(y, n, 1);
        Func<Autograd.Tape, Tensor> loss = tape => MseOp.Forward(tape, model.Forward(tape, xt), yt, 0.5f).Mean;
        var exact = new HessianProbe(model.Parameters(), loss, (v, hv) =>
        {
            net.HessianVectorProduct(theta, v, x, n, LossKind.Mse, [], y, grad, hv, gy, gyd);
            System.Numerics.Tensors.TensorPrimitives.Multiply(hv, 0.5f, hv);
        });
        var fd = new HessianProbe(model.Parameters(), loss);
        var v = Enumerable.Range(0, net.Dimension).Select(_ => (float)rng.NextNormal()).ToArray();
        var (a, b) = (new float[net.Dimension], new float[net.Dimension]);
        exact.HessianVectorProduct(v, a);
        fd.HessianVectorProduct(v, b);
        double diff = a.Zip(b, (p, q) => Math.Abs(p - q)).Max(), scale = a.Max(Math.Abs);
        Assert.True(diff / scale < 1e-2, $"exact vs finite differences: {diff / scale:E2}");
        Assert.Equal(fd.TopEigenvalue(new Rng(5)).Value, exact.TopEigenvalue(new Rng(5)).Value, 2);
    }

    private const string Yaml = """
        name: hessian
        seed: 1
        epochs: 4
        batch_size: 16
        threads: 1
        data:
          name: gaussian-mixture
          samples: 64
          test_samples: 32
          classes: 3
          dimension: 5
        model:
          kind: mlp
          hidden: [8]
          activation: gelu
        optim:
          kind: sgd
          lr: 0.1
        probe:
          hessian_every: 2
          hessian_top_k: 2
          hessian_vectors: 2
          hessian_lanczos_steps: 10
          hessian_samples: 32
        """;

    [Fact]
    public void A_run_writes_eigenvalues_and_density_at_initialisation_and_every_second_evaluation()
    {
        string dir = _temp.Sub("run");
        var (code, _, err) = TestCli.Train(_temp.Path, Yaml, "--out", dir);
        Assert.True(code == 0, err);
        var eigen = File.ReadAllLines(Path.Combine(dir, HessianSpectrumProbe.EigenFile));
        Assert.Equal("step,rank,eigenvalue", eigen[0]);
        // 4 steps an epoch: measurements at steps 0, 8, 16, two eigenvalues each, descending.
        var rows = eigen.Skip(1).Select(l => l.Split(',')).ToArray();
        Assert.Equal(["0", "0", "8", "8", "16", "16"], rows.Select(r => r[0]));
        for (int i = 0; i < rows.Length; i += 2)
            Assert.True(double.Parse(rows[i][2], CultureInfo.InvariantCulture) >= double.Parse(rows[i + 1][2], CultureInfo.InvariantCulture));
        var density = File.ReadAllLines(Path.Combine(dir, HessianSpectrumProbe.DensityFile)).Skip(1).Select(l => l.Split(',')).ToArray();
        foreach (var group in density.GroupBy(r => (r[0], r[1])))
            Assert.Equal(1.0, group.Sum(r => double.Parse(r[3], CultureInfo.InvariantCulture)), 4);
        var metrics = File.ReadAllLines(Path.Combine(dir, "metrics.csv"));
        int top = Array.IndexOf(metrics[0].Split(','), "hessian_top");
        Assert.True(top >= 0);
        var cells = metrics.Skip(1).Select(l => l.Split(',')[top]).ToArray();
        Assert.Equal(double.Parse(rows[2][2], CultureInfo.InvariantCulture), double.Parse(cells[1], CultureInfo.InvariantCulture), 5);
        Assert.False(double.TryParse(cells[0], NumberStyles.Float, CultureInfo.InvariantCulture, out double first) && double.IsFinite(first));
    }

    [Theory]
    [InlineData("probe.hessian_every", "model.dropout=0.3")]
    [InlineData("probe.hessian_top_k", "probe.hessian_top_k=11")]
    [InlineData("probe.hessian_lanczos_steps", "probe.hessian_lanczos_steps=1")]
    public void Bad_input_is_one_line_naming_the_key_and_exit_2(string key, string setting)
    {
        var (code, _, err) = TestCli.Train(_temp.Path, Yaml, "--out", _temp.Sub("bad"), "--set", setting);
        Assert.Equal(2, code);
        var lines = err.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Single(lines);
        Assert.Contains(key, lines[0]);
    }
}
