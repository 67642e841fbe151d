using System.Text.Json;

namespace LabelNoiseLab.Tests;

/// <summary>
/// Every training component in one `lnlab train` run (label-noise SGD, GCE, gradient pruning, SAM,
/// detection, every probe): the run completes and summary.json → components says how often each
/// acted; and a combination that makes no sense is one line naming both keys, exit 2.
/// </summary>
public sealed class ComponentCombinationTests : IDisposable
{
    private readonly TempDir _temp = new("combination");

    public void Dispose() => _temp.Dispose();

    // 320 samples, 10% validation → 288 training samples: 9 steps of 32 per epoch.
    internal const string Config = """
        name: combination
        seed: 3
        epochs: 4
        batch_size: 32
        threads: 1
        data: {name: gaussian-mixture, samples: 320, classes: 4, dimension: 10, val_fraction: 0.1}
        noise: {kind: symmetric, rate: 0.3, seed: 5}
        model: {kind: mlp, hidden: [32, 32]}
        optim: {kind: sgd, lr: 0.05, momentum: 0.9}
        """;

    internal static readonly string[] Everything =
    [
        "--set", "label_noise.kind=classification", "--set", "label_noise.p=0.9",
        "--set", "robust.loss=gce", "--set", "prune.kind=truncate", "--set", "sam.rho=0.05",
        "--set", "probe.neuron_norms=true", "--set", "probe.spectral_every=1",
        "--set", "probe.activations_every=1", "--set", "probe.set_size=100", "--set", "probe.phases=true",
        "--set", "detection.enabled=true",
    ];

    [Fact]
    public void Every_component_at_once_completes_and_reports_how_often_each_acted()
    {
        string run = _temp.Sub("all");
        var (code, stdout, stderr) = TestCli.Train(_temp.Path, Config, [.. Everything, "--out", run]);
        Assert.True(code == 0, stderr + stdout);

        const int epochs = 4, trainSamples = 288, batch = 32;
        const long steps = epochs * ((trainSamples + batch - 1) / batch); // 36
        using var summary = JsonDocument.Parse(File.ReadAllText(Path.Combine(run, "summary.json")));
        var root = summary.RootElement;
        Assert.Equal(steps, root.GetProperty("steps").GetInt64());
        var components = root.GetProperty("components");
        long Acted(string name) => components.GetProperty(name).GetProperty("acted").GetInt64();

        string[] expected = ["label_noise", "robust_loss", "prune", "sam", "probe.neuron_norms", "probe.spectral", "probe.activations", "probe.phases", "detection"];
        Assert.Equal(expected.Order(StringComparer.Ordinal), components.EnumerateObject().Select(p => p.Name).Order(StringComparer.Ordinal));

        // p = 0.9 over 32 samples: every step redraws at least one label (P(none) = 0.1^32).
        Assert.Equal(steps, Acted("label_noise"));
        Assert.Equal(steps, Acted("robust_loss"));
        Assert.Equal(steps, Acted("sam")); // every step took an ascent
        Assert.InRange(Acted("prune"), 1, steps);
        // Probes: every probe but detection also measures the untrained model, then once per epoch
        // (detection ranks the scores once per epoch); phases once at the end.
        Assert.Equal(epochs + 1, Acted("probe.neuron_norms"));
        Assert.Equal(epochs, Acted("detection"));
        Assert.Equal(epochs + 1, Acted("probe.spectral"));
        Assert.Equal(epochs + 1, Acted("probe.activations"));
        Assert.Equal(1, Acted("probe.phases"));

        // The counts agree with the files the probes wrote.
        Assert.Equal(epochs + 1, File.ReadAllLines(Path.Combine(run, "metrics.csv")).Length);
        Assert.Equal(epochs + 1, File.ReadAllLines(Path.Combine(run, "spectral_epochs.csv")).Skip(1).Select(l => l.Split(',')[0]).Distinct().Count());
        Assert.Equal(epochs + 1, File.ReadAllLines(Path.Combine(run, "activations.csv")).Skip(1).Select(l => l.Split(',')[0]).Distinct().Count());
        Assert.Equal(epochs, File.ReadAllLines(Path.Combine(run, "detection.csv")).Skip(1).Select(l => l.Split(',')[0]).Distinct().Count());
        Assert.Equal(JsonValueKind.Object, root.GetProperty("phases").ValueKind);
        Assert.Equal(JsonValueKind.Object, root.GetProperty("neuron_norms").ValueKind);
        // label_noise's own block: every sample of every step was considered, ~90% redrawn.
        var noise = root.GetProperty("label_noise");
        Assert.Equal(steps * batch, noise.GetProperty("samples").GetInt64());
        Assert.InRange(noise.GetProperty("realised_redraw_rate").GetDouble(), 0.8, 1.0);
    }

    [Fact]
    public void Label_noise_sgd_with_gce_alone_runs()
    {
        string run = _temp.Sub("gce");
        var (code, stdout, stderr) = TestCli.Train(_temp.Path, Config,
            "--set", "label_noise.kind=classification", "--set", "robust.loss=gce", "--set", "epochs=2", "--out", run);
        Assert.True(code == 0, stderr + stdout);
        using var summary = JsonDocument.Parse(File.ReadAllText(Path.Combine(run, "summary.json")));
        var components = summary.RootElement.GetProperty("components");
        // The robust report is there whenever robust training is (its metrics columns); with
        // detection off it is "robust_report" and ranks nothing.
        Assert.Equal(["label_noise", "robust_loss", "robust_report"], components.EnumerateObject().Select(p => p.Name).Order(StringComparer.Ordinal).ToArray());
        Assert.Equal(0, components.GetProperty("robust_report").GetProperty("acted").GetInt64());
        Assert.Equal(18, components.GetProperty("robust_loss").GetProperty("acted").GetInt64());
        Assert.InRange(components.GetProperty("label_noise").GetProperty("acted").GetInt64(), 1, 18);
    }

    [Theory]
    [InlineData("robust.loss=gce", "robust.loss")]
    [InlineData("prune.kind=soft", "prune.kind")]
    [InlineData("select.kind=small_loss", "select.kind")]
    public void Regression_label_noise_with_robust_training_is_one_line_naming_both_keys_exit_2(string robust, string key)
    {
        const string regression = """
            name: regression
            seed: 3
            epochs: 2
            batch_size: 32
            threads: 1
            data: {name: linear-teacher, samples: 200}
            model: {kind: mlp, hidden: [16]}
            loss: {kind: mse}
            """;
        var (code, stdout, stderr) = TestCli.Train(_temp.Path, regression,
            "--set", "label_noise.kind=regression", "--set", robust, "--out", _temp.Sub("refused"));
        Assert.True(code == 2, $"exit {code}: {stderr}{stdout}");
        string line = Assert.Single(stderr.Trim().Split('\n'));
        Assert.Contains(key, line);
        Assert.Contains("label_noise.kind", line);
    }
}
