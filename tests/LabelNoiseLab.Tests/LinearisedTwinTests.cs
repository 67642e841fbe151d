using System.Globalization;
using System.Text.Json;
using LabelNoiseLab.Autograd;
using LabelNoiseLab.Experiments;
using LabelNoiseLab.Probes;
using LabelNoiseLab.RunFiles;
using LabelNoiseLab.Training;

namespace LabelNoiseLab.Tests;

/// <summary>
/// <c>probe.linearized</c>: the twin trained inside a run equals gradient descent on the
/// linearisation built from a dense engine Jacobian; the kernel distance and lazy_exit_step agree
/// with metrics.csv; a resumed run equals the uninterrupted one; bad input is one line, exit 2.
/// </summary>
public sealed class LinearisedTwinTests : IDisposable
{
    private readonly TempDir _temp = new("linearized");

    public void Dispose() => _temp.Dispose();

    private const string Yaml = """
        name: twin
        seed: 2
        epochs: 4
        batch_size: 30
        threads: 1
        data:
          name: gaussian-mixture
          samples: 30
          test_samples: 20
          classes: 3
          dimension: 4
          separation: 2.0
        noise:
          kind: symmetric
          rate: 0.3
          seed: 1
        model:
          kind: mlp
          hidden: [6]
          activation: tanh
        loss:
          kind: mse
        optim:
          kind: sgd
          lr: 0.5
          momentum: 0.0
        probe:
          linearized: true
          kernel_set_size: 10
        """;

    [Fact]
    public void The_twin_equals_full_batch_gradient_descent_on_the_dense_linearisation()
    {
        var config = ExperimentConfig.Parse(Yaml);
        var setup = ExperimentRunner.Build(config, null);
        var model = setup.Model;
        var train = setup.Data.Train;
        int n = train.Count, k = 3;
        var parameters = model.Parameters().ToList();
        int p = parameters.Sum(t => t.Length);
        var theta0 = parameters.SelectMany(t => t.Span.ToArray()).ToArray();

        // f₀ and the dense J₀ [n·k, P] from the engine, one backward per output.
        var x = new Tensor((float[])train.Features.Clone(), n, train.FeatureLength);
        var f0 = model.Forward(new Tape(recording: false), x).Span.ToArray();
        var jac = new double[n * k, p];
        var tape = new Tape();
        for (int r = 0; r < n * k; r++)
        {
            tape.Reset();
            foreach (var t in parameters)
                t.ZeroGrad();
            var y = model.Forward(tape, x);
            var mask = new Tensor(n, k);
            mask.Span[r] = 1f;
            tape.Backward(SumOp.Forward(tape, MulOp.Forward(tape, y, mask)));
            int offset = 0;
            foreach (var t in parameters)
            {
                var g = t.GradSpan();
                for (int j = 0; j < t.Length; j++)
                    jac[r, offset + j] = g[j];
                offset += t.Length;
            }
        }

        var dir = RunDirectory.Create(_temp.Sub("run"), "twin");
        dir.Publish();
        var result = new Trainer().Run(setup, dir, new RunContext(null, NullProgressSink.Instance));
        Assert.Equal(RunStatus.Complete, result.Status);
        var twin = setup.Callbacks.OfType<LinearisedTwin>().Single();

        // Reference: Δ ← Δ − lr · J₀ᵀ · 2/(n·k) · (f₀ + J₀Δ − Y), four full-batch steps, in double.
        var delta = new double[p];
        var fLin = new double[n * k];
        for (int step = 0; step < 4; step++)
        {
            for (int r = 0; r < n * k; r++)
            {
                double v = f0[r];
                for (int j = 0; j < p; j++)
                    v += jac[r, j] * delta[j];
                fLin[r] = v;
            }
            var residual = new double[n * k];
            for (int r = 0; r < n * k; r++)
                residual[r] = 2.0 / (n * k) * (fLin[r] - (train.Labels[r / k] == r % k ? 1 : 0));
            for (int j = 0; j < p; j++)
            {
                double g = 0;
                for (int r = 0; r < n * k; r++)
                    g += jac[r, j] * residual[r];
                delta[j] -= 0.5 * g;
            }
        }
        var actual = twin.TwinParameters.SelectMany(t => t.Span.ToArray()).ToArray();
        double diff = 0, scale = 0;
        for (int j = 0; j < p; j++)
        {
            diff = Math.Max(diff, Math.Abs(actual[j] - theta0[j] - delta[j]));
            scale = Math.Max(scale, Math.Abs(delta[j]));
        }
        Assert.True(scale > 1e-3, "the twin moved");
        Assert.True(diff / scale < 1e-4, $"twin vs dense linearisation: relative error {diff / scale:E2}");

        // The final lin_train_loss is the reference model's MSE on the given labels after four steps.
        for (int r = 0; r < n * k; r++)
        {
            double v = f0[r];
            for (int j = 0; j < p; j++)
                v += jac[r, j] * delta[j];
            fLin[r] = v;
        }
        double loss = Enumerable.Range(0, n * k).Sum(r => Math.Pow(fLin[r] - (train.Labels[r / k] == r % k ? 1 : 0), 2)) / (n * k);
        var last = Metrics(dir.Path)[^1];
        Assert.Equal(loss, last["lin_train_loss"], 4);
    }

    [Fact]
    public void Kernel_distance_and_lazy_exit_step_agree_with_the_metrics_and_a_tiny_learning_rate_stays_lazy()
    {
        string lazy = _temp.Sub("lazy"), rich = _temp.Sub("rich");
        var (code, _, err) = TestCli.Train(_temp.Path, Yaml, "--out", lazy, "--set", "optim.lr=1e-4");
        Assert.True(code == 0, err);
        (code, _, err) = TestCli.Train(_temp.Path, Yaml, "--out", rich, "--set", "epochs=40", "--set", "probe.lazy_threshold=0.02");
        Assert.True(code == 0, err);

        var lazyRows = Metrics(lazy);
        Assert.All(lazyRows, r => Assert.True(r["kernel_distance"] < 1e-3, $"kernel distance {r["kernel_distance"]}"));
        Assert.All(lazyRows, r => Assert.True(r["function_gap_test"] < 1e-3));
        Assert.Equal(JsonValueKind.Null, Linearized(lazy).GetProperty("lazy_exit_step").ValueKind);

        var richRows = Metrics(rich);
        var first = richRows.First(r => r["kernel_distance"] > 0.02);
        Assert.Equal((long)first["step"], Linearized(rich).GetProperty("lazy_exit_step").GetInt64());
        Assert.True(richRows[^1]["function_gap_train_clean"] > 0 && richRows[^1]["function_gap_train_noisy"] > 0);
    }

    [Fact]
    public void A_resumed_run_with_the_twin_and_the_hessian_probe_equals_the_uninterrupted_one()
    {
        string a = _temp.Sub("A"), b = _temp.Sub("B");
        string[] settings = ["--set", "checkpoint_every=1", "--set", "batch_size=8", "--set", "optim.momentum=0.9", "--set", "label_noise.kind=classification", "--set", "label_noise.p=0.3",
            "--set", "probe.hessian_every=2", "--set", "probe.hessian_lanczos_steps=5", "--set", "probe.hessian_vectors=2"];
        foreach (var dir in (string[])[a, b])
        {
            var (code, _, err) = TestCli.Train(_temp.Path, Yaml, ["--out", dir, .. settings]);
            Assert.True(code == 0, err);
        }
        File.WriteAllText(Path.Combine(b, "status"), "failed\n");
        foreach (var name in (string[])["epoch-0003", "epoch-0004", "final"])
            File.Delete(Path.Combine(b, "checkpoints", name + ".safetensors"));
        File.Delete(Path.Combine(b, "summary.json"));
        var (resumed, _, resumeErr) = TestCli.Run(_temp.Path, "resume", b);
        Assert.True(resumed == 0, resumeErr);
        RunFilesComparison.AssertSameRun(a, b);
    }

    [Theory]
    [InlineData("probe.linearized", "model.kind=two_layer_linear", "probe.linearized=true")]
    [InlineData("probe.linearized", "model.dropout=0.2", "probe.linearized=true")]
    [InlineData("probe.linearized", "sam.rho=0.05", "probe.linearized=true")]
    [InlineData("probe.kernel_set_size", "probe.kernel_set_size=31", "probe.linearized=true")]
    [InlineData("probe.lazy_threshold", "probe.lazy_threshold=0", "probe.linearized=true")]
    [InlineData("probe.lazy_threshold", "probe.lazy_threshold=-1", "probe.linearized=true")]
    public void Bad_input_is_one_line_naming_the_key_and_exit_2(string key, string setting, string other)
    {
        var (code, _, err) = TestCli.Train(_temp.Path, Yaml, "--out", _temp.Sub("bad"), "--set", setting, "--set", other);
        Assert.Equal(2, code);
        var lines = err.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Single(lines);
        Assert.Contains(key, lines[0]);
        Assert.False(File.Exists(Path.Combine(_temp.Sub("bad"), "summary.json")));
    }

    private static List<Dictionary<string, double>> Metrics(string dir)
    {
        var lines = File.ReadAllLines(Path.Combine(dir, "metrics.csv"));
        var header = lines[0].Split(',');
        return [.. lines.Skip(1).Select(l => l.Split(',').Select((v, i) => (header[i], double.TryParse(v, NumberStyles.Float, CultureInfo.InvariantCulture, out double d) ? d : double.NaN))
            .ToDictionary(p => p.Item1, p => p.Item2))];
    }

    private static JsonElement Linearized(string dir) =>
        JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "summary.json"))).RootElement.GetProperty("linearized").Clone();
}
