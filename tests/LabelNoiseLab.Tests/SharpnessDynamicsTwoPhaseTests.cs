using System.Text.Json;
using LabelNoiseLab.Losses;
using LabelNoiseLab.Nn;
using LabelNoiseLab.Probes;
using LabelNoiseLab.RunFiles;
using LabelNoiseLab.Studies;
using LabelNoiseLab.Tensors;

namespace LabelNoiseLab.Tests;

/// <summary>Sharpness probes, the TwoLayerLinear dynamics probe and the two-phase preset.</summary>
public sealed class SharpnessDynamicsTwoPhaseTests : IDisposable
{
    private readonly TempDir _temp = new("twophase");

    private string _dir => _temp.Path;

    public void Dispose() => _temp.Dispose();

    /// <summary>Eigenvalues (ascending) of a symmetric matrix in double, by cyclic Jacobi rotations.</summary>
    private static double[] JacobiEigenvalues(double[,] a0)
    {
        int n = a0.GetLength(0);
        var a = (double[,])a0.Clone();
        for (int sweep = 0; sweep < 100; sweep++)
        {
            double off = 0;
            for (int p = 0; p < n; p++)
                for (int q = p + 1; q < n; q++)
                    off += a[p, q] * a[p, q];
            if (off < 1e-24)
                break;
            for (int p = 0; p < n; p++)
                for (int q = p + 1; q < n; q++)
                {
                    if (Math.Abs(a[p, q]) < 1e-300)
                        continue;
                    double theta = (a[q, q] - a[p, p]) / (2 * a[p, q]);
                    double t = Math.Sign(theta) / (Math.Abs(theta) + Math.Sqrt(theta * theta + 1));
                    if (theta == 0)
                        t = 1;
                    double c = 1 / Math.Sqrt(t * t + 1), s = t * c;
                    for (int k = 0; k < n; k++)
                    {
                        double akp = a[k, p], akq = a[k, q];
                        a[k, p] = c * akp - s * akq;
                        a[k, q] = s * akp + c * akq;
                    }
                    for (int k = 0; k < n; k++)
                    {
                        double apk = a[p, k], aqk = a[q, k];
                        a[p, k] = c * apk - s * aqk;
                        a[q, k] = s * apk + c * aqk;
                    }
                }
        }
        var ev = new double[n];
        for (int i = 0; i < n; i++)
            ev[i] = a[i, i];
        Array.Sort(ev);
        return ev;
    }

    /// <summary>
    /// A linear model y = Xw with loss factor·mean((Xw − t)²) has H = 2·factor·XᵀX/n exactly.
    /// Power iteration must find its top eigenvalue; Hutchinson's mean must lie within 4 of its
    /// own theoretical standard errors (Var vᵀHv = 2Σ_{i≠j}H²ᵢⱼ for Rademacher v) of tr H.
    /// </summary>
    [Fact]
    public void Sharpness_of_a_quadratic_matches_its_known_Hessian()
    {
        const int n = 40, d = 6;
        const float factor = 0.5f;
        var rng = new Rng(21);
        var x = GradCheck.Random(rng, [n, d]);
        for (int i = 0; i < n; i++)
            x[i, 0] *= 3; // a clear top eigenvalue
        var t = GradCheck.Random(rng, [n, 1]);
        var layer = new Linear(d, 1, bias: false);
        Init.Apply(layer, InitKind.Default, rng);
        var probe = new HessianProbe(layer.Parameters(), tape => MseOp.Forward(tape, layer.Forward(tape, x), t, factor).Mean);

        var h = new double[d, d];
        for (int i = 0; i < d; i++)
            for (int j = 0; j < d; j++)
            {
                double s = 0;
                for (int r = 0; r < n; r++)
                    s += (double)x[r, i] * x[r, j];
                h[i, j] = 2 * factor * s / n;
            }
        var eigen = JacobiEigenvalues(h);
        double trace = Enumerable.Range(0, d).Sum(i => h[i, i]);

        var top = probe.TopEigenvalue(new Rng(1), maxIterations: 500, tolerance: 1e-7);
        Assert.True(top.Converged);
        Assert.Equal(eigen[^1], top.Value, eigen[^1] * 1e-3);

        const int samples = 200;
        var est = probe.Trace(new Rng(2), samples);
        double offDiag2 = 0;
        for (int i = 0; i < d; i++)
            for (int j = 0; j < d; j++)
                if (i != j)
                    offDiag2 += h[i, j] * h[i, j];
        double se = Math.Sqrt(2 * offDiag2 / samples);
        Assert.InRange(est.Value, trace - 4 * se - 1e-3 * trace, trace + 4 * se + 1e-3 * trace);

        // Weights are restored exactly after the probe.
        var before = layer.Weight.ToArray();
        probe.HessianVectorProduct(new float[d].Select((_, i) => (float)i).ToArray(), new float[d]);
        Assert.Equal(before, layer.Weight.ToArray());
    }

    /// <summary>
    /// A small tanh network (3 → 4 → 1, with biases; 21 parameters) with MSE: the Hessian is built
    /// independently of the engine, by second central differences of the loss written out in
    /// double precision; its top eigenvalue and trace are compared with the probe's.
    /// </summary>
    [Fact]
    public void Sharpness_of_a_small_network_matches_a_finite_difference_Hessian()
    {
        const int n = 8;
        var rng = new Rng(31);
        var model = new Mlp(3, [4], 1, ActivationKind.Tanh);
        Init.Apply(model, InitKind.Default, rng, 2f);
        var x = GradCheck.Random(rng, [n, 3]);
        var t = GradCheck.Random(rng, [n, 1]);
        var ps = model.NamedParameters().ToArray();
        Assert.Equal(["layers.0.weight", "layers.0.bias", "layers.2.weight", "layers.2.bias"], ps.Select(p => p.Name));
        double[] w = [.. ps.SelectMany(p => p.Tensor.ToArray()).Select(v => (double)v)];
        int dim = w.Length;

        double Loss(double[] v)
        {
            // v = [W1 (4×3), b1 (4), W2 (1×4), b2 (1)]
            double total = 0;
            for (int r = 0; r < n; r++)
            {
                double f = v[20];
                for (int k = 0; k < 4; k++)
                {
                    double z = v[12 + k];
                    for (int j = 0; j < 3; j++)
                        z += v[k * 3 + j] * x[r, j];
                    f += v[16 + k] * Math.Tanh(z);
                }
                total += (f - t[r, 0]) * (f - t[r, 0]);
            }
            return total / n; // MseOp factor 1: mean of (f − t)²
        }

        var h = new double[dim, dim];
        const double e = 1e-4;
        for (int i = 0; i < dim; i++)
            for (int j = i; j < dim; j++)
            {
                double F(double di, double dj)
                {
                    var v = (double[])w.Clone();
                    v[i] += di;
                    v[j] += dj;
                    return Loss(v);
                }
                double hij = (F(e, e) - F(e, -e) - F(-e, e) + F(-e, -e)) / (4 * e * e);
                h[i, j] = h[j, i] = hij;
            }
        var eigen = JacobiEigenvalues(h);
        double trace = Enumerable.Range(0, dim).Sum(i => h[i, i]);

        var probe = new HessianProbe(model.Parameters(), tape => MseOp.Forward(tape, model.Forward(tape, x), t).Mean, step: 1e-2f);
        var top = probe.TopEigenvalue(new Rng(5), maxIterations: 1000, tolerance: 1e-7);
        Assert.Equal(eigen[^1], top.Value, Math.Abs(eigen[^1]) * 2e-2);

        // Rademacher estimate of the trace: unbiased, standard error from its own theory.
        const int samples = 400;
        var est = probe.Trace(new Rng(6), samples);
        double offDiag2 = 0;
        for (int i = 0; i < dim; i++)
            for (int j = 0; j < dim; j++)
                if (i != j)
                    offDiag2 += h[i, j] * h[i, j];
        double se = Math.Sqrt(2 * offDiag2 / samples);
        Assert.InRange(est.Value, trace - 4 * se - 0.02 * Math.Abs(trace), trace + 4 * se + 0.02 * Math.Abs(trace));
    }

    [Fact]
    public void Dynamics_columns_on_a_hand_made_network()
    {
        var model = new TwoLayerLinear(2, 3);
        // w_1 = (3, 4), w_2 = (0, 2), w_3 = (1, 0); a = (1, 2, −1); θ* = (1, 0).
        float[] w = [3, 4, 0, 2, 1, 0];
        w.CopyTo(model.W.Span);
        float[] a = [1, 2, -1];
        a.CopyTo(model.A.Span);
        float[] theta = [1, 0];
        float[] w0 = [3, 4, 0, 2, 1, 1]; // W − W₀ has one entry, −1
        var row = TwoLayerDynamics.Measure(model, theta, w0, "hand", 7);
        Assert.Equal("hand", row.Method);
        Assert.Equal(7, row.Step);
        Assert.Equal((5 + 2 + 1) / 3.0, row.NeuronNormMean, 12);
        double mean = 8 / 3.0;
        Assert.Equal(Math.Sqrt(((5 - mean) * (5 - mean) + (2 - mean) * (2 - mean) + (1 - mean) * (1 - mean)) / 3), row.NeuronNormStd, 12);
        Assert.Equal(Math.Sqrt(6), row.ANorm, 12);
        Assert.Equal((3 / 5.0 + 0 + 1) / 3, row.Alignment, 12);
        // θ = Wᵀa = (3·1 + 0·2 + 1·(−1), 4·1 + 2·2 + 0) = (2, 8); ‖θ − θ*‖ = √(1 + 64).
        Assert.Equal(Math.Sqrt(65), row.ThetaDist, 12);
        Assert.Equal(1 / Math.Sqrt(9 + 16 + 4 + 1 + 1), row.WeightChange, 12);

        var csv = new System.Text.StringBuilder();
        TwoLayerDynamics.AppendCsv(csv, row);
        Assert.Equal(12, csv.ToString().TrimEnd('\n').Split(',').Length);
        Assert.EndsWith(",,\n", csv.ToString()); // Hessian columns empty

        var notLinear = new Mlp(2, [3], 1);
        Assert.Equal("model.kind", Assert.Throws<ConfigException>(() => TwoLayerDynamics.Require(notLinear)).Key);
    }

    private (int Code, string Out, string Err) Cli(params string[] args) => TestCli.RunWith(null, _dir, args);

    [Fact]
    public void TwoPhase_quick_preset_writes_a_complete_run_with_every_method()
    {
        string outDir = Path.Combine(_dir, "quick");
        var (code, stdout, stderr) = Cli("run", "two-phase", "--quick", "--out", outDir);
        Assert.True(code == 0, stdout + stderr);
        Assert.Equal(RunStatus.Complete, RunDirectory.ReadStatus(outDir)!.Value.Status);
        foreach (var f in (string[])["config.yaml", "metrics.csv", "summary.json", "dynamics.csv"])
            Assert.True(File.Exists(Path.Combine(outDir, f)), f);

        var lines = File.ReadAllLines(Path.Combine(outDir, "dynamics.csv"));
        Assert.Equal(TwoLayerDynamics.Header, lines[0]);
        var rows = lines[1..].Select(l => l.Split(',')).ToArray();
        Assert.All(rows, r => Assert.Equal(12, r.Length));
        Assert.Equal(TwoPhasePreset.Methods, rows.Select(r => r[0]).Distinct());
        long steps = TwoPhaseOptions.Quick.Steps;
        foreach (var method in TwoPhasePreset.Methods)
        {
            var mine = rows.Where(r => r[0] == method).ToArray();
            Assert.Equal("0", mine[0][1]);
            Assert.Equal(steps.ToString(System.Globalization.CultureInfo.InvariantCulture), mine[^1][1]);
            Assert.NotEqual("", mine[0][10]); // Hessian at the first and last evaluation
            Assert.NotEqual("", mine[^1][11]);
            Assert.Contains(mine, r => r[10] == ""); // and empty elsewhere
        }
        // One shared initialisation: every method's first row is identical.
        Assert.Single(rows.Where(r => r[1] == "0").Select(r => string.Join(',', r[2..10])).Distinct());
        // The Hessian columns too, up to float rounding: the exact products run through BLAS, whose
        // summation order follows its thread count, which other tests in this process may change.
        foreach (int col in (int[])[10, 11])
        {
            var values = rows.Where(r => r[1] == "0").Select(r => double.Parse(r[col], System.Globalization.CultureInfo.InvariantCulture)).ToArray();
            Assert.All(values, v => Assert.Equal(1.0, v / values[0], 5));
        }

        using var summary = JsonDocument.Parse(File.ReadAllText(Path.Combine(outDir, "summary.json")));
        var methods = summary.RootElement.GetProperty("methods");
        foreach (var method in TwoPhasePreset.Methods)
        {
            var m = methods.GetProperty(method);
            foreach (var key in (string[])["initial_alignment", "final_alignment", "min_neuron_norm_ratio", "phase1_end_step", "final_test_loss"])
                Assert.True(m.TryGetProperty(key, out _), $"{method}.{key}");
            Assert.InRange(m.GetProperty("min_neuron_norm_ratio").GetDouble(), 0, 1);
        }
        // Plain SGD without label noise stays lazy over the quick run: W barely moves.
        var sgd = rows.Where(r => r[0] == "sgd").ToArray();
        Assert.True(double.Parse(sgd[^1][9], System.Globalization.CultureInfo.InvariantCulture) < 0.05);
        // The claims: written whatever they say, judged on this (quick) run's own figures.
        var claims = summary.RootElement.GetProperty("claims").EnumerateArray().ToDictionary(c => c.GetProperty("id").GetString()!);
        Assert.Equal(["label_noise_aligns", "sgd_stays_lazy"], claims.Keys.Order(StringComparer.Ordinal));
        var lazy = claims["sgd_stays_lazy"];
        double change = methods.GetProperty("sgd").GetProperty("final_alignment").GetDouble() - methods.GetProperty("sgd").GetProperty("initial_alignment").GetDouble();
        Assert.Equal(change, lazy.GetProperty("measured").GetDouble(), 12);
        Assert.Equal(Math.Abs(change) <= 0.1, lazy.GetProperty("pass").GetBoolean());
        Assert.All(claims.Values, c => Assert.True(c.GetProperty("quick").GetBoolean()));
    }

    [Theory]
    [InlineData("two_phase.sigma=-1", "two_phase.sigma")]
    [InlineData("two_phase.rho=0", "two_phase.rho")]
    [InlineData("two_phase.period=0", "two_phase.period")]
    [InlineData("two_phase.osc_period=0", "two_phase.osc_period")]
    [InlineData("two_phase.osc_period=-5", "two_phase.osc_period")]
    [InlineData("two_phase.osc_amplitude=-1", "two_phase.osc_amplitude")]
    [InlineData("two_phase.knee_smooth=4", "two_phase.knee_smooth")]
    [InlineData("two_phase.bogus=1", "two_phase.bogus")]
    [InlineData("two_phase.steps=many", "two_phase.steps")]
    public void TwoPhase_bad_values_exit_2_naming_the_key(string set, string key)
    {
        string outDir = Path.Combine(_dir, "bad");
        var (code, _, stderr) = Cli("run", "two-phase", "--quick", "--out", outDir, "--set", set);
        Assert.Equal(2, code);
        Assert.StartsWith("lnlab: ", stderr);
        Assert.Contains($"'{key}'", stderr);
        Assert.Single(stderr.TrimEnd('\n').Split('\n'));
        Assert.False(Directory.Exists(outDir));
    }

    [Fact]
    public void Unknown_preset_exits_2()
    {
        var (code, _, stderr) = Cli("run", "two-phase-typo");
        Assert.Equal(2, code);
        Assert.Contains("two-phase-typo", stderr);
    }
}
