using System.Globalization;
using LabelNoiseLab.Losses;
using LabelNoiseLab.Robust;
using LabelNoiseLab.RunFiles;
using LabelNoiseLab.Tensors;

namespace LabelNoiseLab.Tests;

/// <summary>Robust losses (gradient checks), pruning weights, detection metrics, T estimation, and robust runs through the CLI.</summary>
public sealed class RobustTrainingTests(ITestOutputHelper output) : IDisposable
{
    private readonly TempDir _temp = new("robust");

    private string _dir => _temp.Path;

    public void Dispose() => _temp.Dispose();

    private static readonly float[] T3 = [0.7f, 0.2f, 0.1f, 0.1f, 0.8f, 0.1f, 0.3f, 0.0f, 0.7f];

    [Theory]
    [InlineData(RobustLossKind.CrossEntropy)]
    [InlineData(RobustLossKind.Gce)]
    [InlineData(RobustLossKind.Sce)]
    [InlineData(RobustLossKind.Mae)]
    [InlineData(RobustLossKind.NceRce)]
    [InlineData(RobustLossKind.LabelSmoothing)]
    [InlineData(RobustLossKind.BootstrapSoft)]
    [InlineData(RobustLossKind.BootstrapHard)]
    [InlineData(RobustLossKind.ForwardCorrection)]
    [InlineData(RobustLossKind.BackwardCorrection)]
    public void Robust_loss_gradients_match_central_differences(RobustLossKind kind)
    {
        var rng = new Rng(11);
        var logits = GradCheck.Random(rng, [5, 3], scale: 1.5f);
        int[] labels = [0, 2, 1, 1, 0];
        var w = new Tensor(5);
        for (int i = 0; i < 5; i++)
            w[i] = 0.2f + i * 0.3f;
        float[]? m = kind switch
        {
            RobustLossKind.ForwardCorrection => T3,
            RobustLossKind.BackwardCorrection => TransitionMatrix.Inverse(T3, 3),
            _ => null,
        };
        var spec = new RobustLossSpec(kind, Q: 0.7f, Alpha: 0.4f, Beta: kind is RobustLossKind.BootstrapSoft or RobustLossKind.BootstrapHard ? 0.8f : 1.3f, Epsilon: 0.2f, Matrix: m);
        double err = GradCheck.MaxRelativeError(t => RobustLossOp.Forward(t, logits, labels, spec, w).Mean, [logits], h: 1e-3);
        output.WriteLine($"{kind}: relative error {err:E2}");
        Assert.True(err < 2e-3, $"{kind}: {err:E3}");
    }

    [Fact]
    public void Loss_values_match_their_formulas()
    {
        float[] z = [1f, -0.5f, 0.25f];
        var p = z.Select(v => Math.Exp(v)).ToArray();
        double sum = p.Sum();
        p = p.Select(v => v / sum).ToArray();
        var dz = new float[3];
        Assert.Equal((1 - Math.Pow(p[1], 0.7)) / 0.7, RobustLossOp.Row(z, 1, new RobustLossSpec(RobustLossKind.Gce, Q: 0.7f), dz), 5);
        Assert.Equal(2 * (1 - p[2]), RobustLossOp.Row(z, 2, new RobustLossSpec(RobustLossKind.Mae), dz), 5);
        Assert.Equal(0.1 * -Math.Log(p[0]) + 1.0 * -Math.Log(1e-4) * (1 - p[0]), RobustLossOp.Row(z, 0, new RobustLossSpec(RobustLossKind.Sce, Alpha: 0.1f, Beta: 1f), dz), 4);
        double q1 = T3[0 * 3 + 1] * p[0] + T3[1 * 3 + 1] * p[1] + T3[2 * 3 + 1] * p[2];
        Assert.Equal(-Math.Log(q1), RobustLossOp.Row(z, 1, new RobustLossSpec(RobustLossKind.ForwardCorrection, Matrix: T3), dz), 5);
        // Backward correction with T = I is plain cross-entropy.
        float[] identity = [1, 0, 0, 0, 1, 0, 0, 0, 1];
        Assert.Equal(-Math.Log(p[2]), RobustLossOp.Row(z, 2, new RobustLossSpec(RobustLossKind.BackwardCorrection, Matrix: identity), dz), 5);
    }

    [Fact]
    public void Transition_inverse_and_anchor_estimate()
    {
        var inv = TransitionMatrix.Inverse(T3, 3)!;
        for (int i = 0; i < 3; i++)
            for (int j = 0; j < 3; j++)
            {
                double s = 0;
                for (int k = 0; k < 3; k++)
                    s += T3[i * 3 + k] * inv[k * 3 + j];
                Assert.Equal(i == j ? 1.0 : 0.0, s, 5);
            }
        Assert.Null(TransitionMatrix.Inverse([0.5f, 0.5f, 0.5f, 0.5f], 2));
        // Anchors: the sample at the top percentile of p(class) gives that row.
        float[] probs = [0.9f, 0.1f, 0.6f, 0.4f, 0.2f, 0.8f, 0.3f, 0.7f];
        var t = TransitionMatrix.EstimateFromAnchors(probs, 2, percentile: 100);
        Assert.Equal([0.9f, 0.1f, 0.2f, 0.8f], t);
    }

    [Fact]
    public void Pruning_weights_truncate_and_soft()
    {
        float[] norms = [1, 1.1f, 0.9f, 1.05f, 0.95f, 1, 8f, 1, 0.98f, 1.02f];
        var w = new float[norms.Length];
        new GradientPruning(PruneStatistic.MeanStd, PruneWeighting.Truncate, 2f, 2f).Weights(norms, w);
        Assert.Equal(0f, w[6]);
        Assert.Equal(9, w.Count(v => v == 1f));
        new GradientPruning(PruneStatistic.MedianIqr, PruneWeighting.Truncate, 2f, 2f).Weights(norms, w);
        Assert.Equal(0f, w[6]); // median/IQR: the outlier does not widen the window, so more go
        Assert.True(w.Count(v => v == 0f) >= 1);
        new GradientPruning(PruneStatistic.MeanStd, PruneWeighting.Soft, 1f, 1f).Weights(norms, w);
        Assert.True(w[6] < 0.05f && w[0] > 0.5f);
        float[] equal = [2, 2, 2];
        new GradientPruning(PruneStatistic.MeanStd, PruneWeighting.Truncate, 1f, 1f).Weights(equal, w.AsSpan(0, 3));
        Assert.All(w[..3], v => Assert.Equal(1f, v));
    }

    [Fact]
    public void Auroc_and_average_precision()
    {
        double[] perfect = [0.1, 0.2, 0.8, 0.9];
        bool[] mask = [false, false, true, true];
        Assert.Equal(1.0, Detection.Auroc(perfect, mask));
        Assert.Equal(1.0, Detection.AveragePrecision(perfect, mask));
        Assert.Equal(0.0, Detection.Auroc([0.9, 0.8, 0.2, 0.1], mask));
        Assert.Equal(0.5, Detection.Auroc([1, 1, 1, 1], mask));
        // One positive ranked second of four: AP = 1/2; AUROC = 2/3.
        Assert.Equal(0.5, Detection.AveragePrecision([0.9, 0.8, 0.2, 0.1], [false, true, false, false]), 10);
        Assert.Equal(2.0 / 3, Detection.Auroc([0.9, 0.8, 0.2, 0.1], [false, true, false, false]), 10);
    }

    [Fact]
    public void Roc_and_precision_recall_curves_agree_with_auroc_and_a_naive_count()
    {
        var rng = new Random(3);
        var scores = Enumerable.Range(0, 300).Select(_ => Math.Round(rng.NextDouble(), 2)).ToArray(); // ties
        var mask = scores.Select(s => rng.NextDouble() < s).ToArray();
        var curve = Detection.Curve(scores, mask, maxPoints: 1000);
        Assert.Equal((0.0, 0.0, 1.0), curve[0]);
        Assert.Equal(1.0, curve[^1].Fpr);
        Assert.Equal(1.0, curve[^1].Tpr);
        // Each point against a naive count at its threshold (the distinct scores, descending).
        var thresholds = scores.Distinct().OrderDescending().ToArray();
        Assert.Equal(thresholds.Length + 1, curve.Count);
        int pos = mask.Count(m => m), neg = mask.Length - pos;
        for (int t = 0; t < thresholds.Length; t++)
        {
            int tp = scores.Where((s, i) => s >= thresholds[t] && mask[i]).Count();
            int fp = scores.Where((s, i) => s >= thresholds[t] && !mask[i]).Count();
            Assert.Equal((double)fp / neg, curve[t + 1].Fpr, 12);
            Assert.Equal((double)tp / pos, curve[t + 1].Tpr, 12);
            Assert.Equal((double)tp / (tp + fp), curve[t + 1].Precision, 12);
        }
        // The trapezoid area under the ROC curve is the AUROC (ties counted half).
        double area = 0;
        for (int i = 1; i < curve.Count; i++)
            area += (curve[i].Fpr - curve[i - 1].Fpr) * (curve[i].Tpr + curve[i - 1].Tpr) / 2;
        Assert.Equal(Detection.Auroc(scores, mask), area, 10);
        var thin = Detection.Curve(scores, mask, maxPoints: 10);
        Assert.Equal(10, thin.Count);
        Assert.Equal(curve[0], thin[0]);
        Assert.Equal(curve[^1], thin[^1]);
        Assert.Empty(Detection.Curve([0.1, 0.2], [true, true]));
    }

    private (int Code, string Out, string Err) Train(string yaml, params string[] extra) => TestCli.Train(_dir, yaml, extra);

    private const string Mixture = """
        name: robust
        epochs: 3
        batch_size: 32
        data: {name: gaussian-mixture}
        noise: {kind: symmetric, rate: 0.4, seed: 5}
        model: {kind: mlp, hidden: [32]}
        optim: {kind: sgd, lr: 0.1, momentum: 0.9}
        """;

    [Fact]
    public void A_pruning_run_logs_pruned_fractions_detection_and_suspects()
    {
        string outDir = Path.Combine(_dir, "prune");
        var (code, stdout, stderr) = Train(Mixture, "--out", outDir, "--set", "prune.kind=truncate", "--set", "detection.enabled=true", "--set", "detection.suspects=20",
            "--set", "detection.ledger=false");
        Assert.True(code == 0, stderr + stdout);
        var lines = File.ReadAllLines(Path.Combine(outDir, "metrics.csv"));
        var header = lines[0].Split(',');
        Assert.Contains("pruned_clean", header);
        var row = lines[^1].Split(',');
        double prunedClean = double.Parse(row[Array.IndexOf(header, "pruned_clean")], CultureInfo.InvariantCulture);
        double prunedNoisy = double.Parse(row[Array.IndexOf(header, "pruned_noisy")], CultureInfo.InvariantCulture);
        double normNoisy = double.Parse(row[Array.IndexOf(header, "grad_norm_noisy")], CultureInfo.InvariantCulture);
        Assert.InRange(prunedClean, 0, 0.5);
        Assert.InRange(prunedNoisy, 0, 0.5);
        Assert.True(normNoisy > 0);
        var detection = File.ReadAllLines(Path.Combine(outDir, "detection.csv"));
        Assert.Equal("epoch,step,score,auroc,ap", detection[0]);
        Assert.Equal(1 + 3 * 6, detection.Length);
        output.WriteLine(string.Join("\n", detection) + $"\npruned clean {prunedClean:F3} noisy {prunedNoisy:F3}");
        foreach (var d in detection[1..])
            Assert.InRange(double.Parse(d.Split(',')[3], CultureInfo.InvariantCulture), 0, 1);
        var suspects = File.ReadAllLines(Path.Combine(outDir, "suspects.csv"));
        Assert.Equal("index,given_label,predicted_label,score,noisy", suspects[0]);
        Assert.Equal(21, suspects.Length);
        var curves = File.ReadAllLines(Path.Combine(outDir, "detection_curves.csv"));
        Assert.Equal("score,fpr,tpr,precision", curves[0]);
        Assert.Equal(["grad_norm", "loss", "margin", "self_confidence", "aum", "forgetting"], curves[1..].Select(l => l.Split(',')[0]).Distinct());
        Assert.Contains("\"robust\"", File.ReadAllText(Path.Combine(outDir, "summary.json")));
        Assert.False(File.Exists(Path.Combine(outDir, "ledger.parquet"))); // detection.ledger=false
    }

    /// <summary>Fast (one backward, re-weighted GEMMs) and naive (one backward per sample) pruning make the same run.</summary>
    [Fact]
    public void Fast_and_naive_pruning_train_the_same_model()
    {
        string Run(string mode)
        {
            string outDir = Path.Combine(_dir, mode);
            var (code, stdout, stderr) = Train(Mixture, "--out", outDir, "--set", "prune.kind=truncate", "--set", "prune.alpha=1", "--set", "prune.beta=1",
                "--set", $"per_sample.mode={mode}", "--set", "epochs=1");
            Assert.True(code == 0, stderr + stdout);
            return File.ReadAllLines(Path.Combine(outDir, "metrics.csv"))[^1];
        }
        var fast = Run("fast").Split(',');
        var naive = Run("naive").Split(',');
        output.WriteLine(string.Join(",", fast) + "\n" + string.Join(",", naive));
        // Same weights up to float rounding: test accuracy and the pruned fractions agree.
        foreach (int col in new[] { 12, 14 + 3, 14 + 4 })
            Assert.True(Math.Abs(double.Parse(fast[col], CultureInfo.InvariantCulture) - double.Parse(naive[col], CultureInfo.InvariantCulture)) < 0.01, $"column {col}");
    }

    [Fact]
    public void Forward_correction_estimates_T_from_anchor_points()
    {
        string outDir = Path.Combine(_dir, "forward");
        var (code, stdout, stderr) = Train(Mixture, "--out", outDir, "--set", "robust.loss=forward", "--set", "robust.estimate_after=1");
        Assert.True(code == 0, stderr + stdout);
        Assert.Contains("\"estimated_T\"", File.ReadAllText(Path.Combine(outDir, "summary.json")));
    }

    [Theory]
    [InlineData("prune.alpha=0", "prune.alpha")]
    [InlineData("prune.beta=-1", "prune.beta")]
    [InlineData("robust.sce_alpha=0", "robust.sce_alpha")]
    [InlineData("robust.gce_q=1.5", "robust.gce_q")]
    [InlineData("robust.gce_q=0", "robust.gce_q")]
    [InlineData("select.forget_rate=1.2", "select.forget_rate")]
    [InlineData("robust.T=0.5,0.4;0.5,0.5", "robust.T")]
    public void Bad_robust_settings_are_one_line_exit_2_naming_the_key(string set, string key)
    {
        var (code, _, stderr) = Train(Mixture, "--out", Path.Combine(_dir, "bad"), "--set", set);
        Assert.Equal(2, code);
        Assert.Single(stderr.Trim().Split('\n'));
        Assert.Contains(key, stderr);
    }

    [Fact]
    public void A_singular_T_for_backward_correction_is_exit_2_naming_the_key()
    {
        string uniform = string.Join(";", Enumerable.Repeat(string.Join(",", Enumerable.Repeat("0.1", 10)), 10));
        var (code, _, stderr) = Train(Mixture, "--out", Path.Combine(_dir, "singular"), "--set", "robust.loss=backward", "--set", $"robust.T={uniform}");
        Assert.Equal(2, code);
        Assert.Contains("robust.T", stderr);
        Assert.Contains("singular", stderr);
    }
    [Fact]
    public void Small_loss_selection_drops_more_noisy_than_clean_samples()
    {
        string outDir = Path.Combine(_dir, "small-loss");
        var (code, stdout, stderr) = Train(Mixture, "--out", outDir, "--set", "select.kind=small_loss", "--set", "select.forget_rate=0.4", "--set", "select.forget_epochs=1");
        Assert.True(code == 0, stderr + stdout);
        var lines = File.ReadAllLines(Path.Combine(outDir, "metrics.csv"));
        var header = lines[0].Split(',');
        var row = lines[^1].Split(',');
        double Col(string name) => double.Parse(row[Array.IndexOf(header, name)], CultureInfo.InvariantCulture);
        output.WriteLine($"dropped: clean {Col("pruned_clean"):F3}, noisy {Col("pruned_noisy"):F3}");
        // 40% of each batch is dropped in epochs 2 and 3; overall 40% of the samples.
        Assert.Equal(0.4, 0.6 * Col("pruned_clean") + 0.4 * Col("pruned_noisy"), 1);
        Assert.True(Col("pruned_noisy") > Col("pruned_clean"));
    }

    private (int Code, string Out, string Err) RunPreset(params string[] args) => TestCli.Run(_dir, ["run", "robust", .. args]);

    [Fact]
    public void The_robust_preset_writes_results_and_a_table()
    {
        string outDir = Path.Combine(_dir, "preset");
        var (code, stdout, stderr) = RunPreset("--quick", "--seeds", "2", "--out", outDir, "--set", "data.name=gaussian-mixture", "--set", "data.subset=0",
            "--set", "model.hidden=32", "--set", "epochs=2", "--set", "preset.methods=ce,prune_truncate,co_teaching", "--set", "preset.settings=symmetric:0.4,pairflip:0.4");
        Assert.True(code == 0, stderr + stdout);
        Assert.Equal(RunStatus.Complete, RunDirectory.ReadStatus(outDir)!.Value.Status);
        var results = File.ReadAllLines(Path.Combine(outDir, "results.csv"));
        Assert.Equal("method,noise_kind,noise_rate,seed,best_test_acc,last_test_acc,detection_auroc,epoch_seconds", results[0]);
        Assert.Equal(1 + 3 * 2 * 2, results.Length);
        var table = File.ReadAllText(Path.Combine(outDir, "table.md"));
        output.WriteLine(table);
        Assert.Contains("| co_teaching |", table);
        Assert.Contains("±", table);
        Assert.Equal(1 + 12, File.ReadAllLines(Path.Combine(outDir, "metrics.csv")).Length);

        // The claims contract: at 40% symmetric noise, over 2 seeds, judged on the mean.
        var summary = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(Path.Combine(outDir, "summary.json")))!.AsObject();
        Assert.Equal("robust", (string?)summary["preset"]);
        Assert.True((bool)summary["quick"]!);
        var claims = LabelNoiseLab.Studies.Claims.Read(summary, "summary.json")!;
        Assert.Equal(["grad_norm_auroc_above_chance", "prune_truncate_above_ce"], claims.Select(c => c.Id));
        var rows = results[1..].Select(l => l.Split(',')).Where(c => c[1] == "symmetric").ToList();
        double Mean(string method, int column) => rows.Where(c => c[0] == method).Average(c => double.Parse(c[column], CultureInfo.InvariantCulture));
        var prune = claims[1];
        Assert.Equal(2, prune.Seeds);
        Assert.True(prune.Quick);
        Assert.Equal(Mean("prune_truncate", 5), prune.Measured, 4);
        if (Math.Abs(prune.Measured - Mean("ce", 5)) > 1e-3) // results.csv rounds to 5 digits
            Assert.Equal(prune.Measured > Mean("ce", 5), prune.Pass);
        Assert.Equal(claims[0].Measured > 0.5, claims[0].Pass);
        Assert.Equal(Mean("ce", 6), claims[0].Measured, 4);
        Assert.False(double.IsNaN(prune.Spread));
    }

    [Fact]
    public void Robust_claims_are_judged_on_the_mean_over_seeds()
    {
        var rows = new List<(string, string, double, double, double)>
        {
            ("ce", "symmetric", 0.4, 0.50, 0.60), ("ce", "symmetric", 0.4, 0.70, 0.40),
            ("prune_soft", "symmetric", 0.4, 0.90, double.NaN), ("prune_soft", "symmetric", 0.4, 0.20, double.NaN), // mean 0.55 < 0.6
            ("gce", "symmetric", 0.4, 0.62, 0.5), ("gce", "symmetric", 0.4, 0.60, 0.5),
            ("gce", "symmetric", 0.8, 0.99, 0.5), // another setting: ignored
        };
        var claims = LabelNoiseLab.Studies.Claims.Read(new System.Text.Json.Nodes.JsonObject
        {
            ["claims"] = System.Text.Json.JsonSerializer.SerializeToNode(LabelNoiseLab.Studies.RobustPreset.RobustClaims(rows, quick: false)),
        }, "s")!;
        Assert.Equal(["grad_norm_auroc_above_chance", "prune_soft_above_ce", "gce_above_ce"], claims.Select(c => c.Id));
        Assert.Equal(0.5, claims[0].Measured, 12); // (0.6 + 0.4) / 2: not above 0.5
        Assert.False(claims[0].Pass);
        Assert.Equal(0.55, claims[1].Measured, 12);
        Assert.False(claims[1].Pass);
        Assert.Equal(Math.Sqrt(2 * 0.35 * 0.35), claims[1].Spread, 12);
        Assert.True(claims[2].Pass);
        Assert.All(claims, c => Assert.Equal(2, c.Seeds));
        Assert.Empty(LabelNoiseLab.Studies.RobustPreset.RobustClaims([("gce", "symmetric", 0.4, 0.6, 0.5)], false)); // no ce: nothing to compare with
    }

    [Theory]
    [InlineData("preset.methods=ce,magic", "preset.methods")]
    [InlineData("preset.settings=symmetric:1.5", "preset.settings")]
    [InlineData("robust.gce_q=2", "robust.gce_q")]
    public void Bad_preset_settings_are_exit_2_naming_the_key(string set, string key)
    {
        var (code, _, stderr) = RunPreset("--quick", "--out", Path.Combine(_dir, "bad-preset"), "--set", set);
        Assert.Equal(2, code);
        Assert.Contains(key, stderr);
        Assert.False(Directory.Exists(Path.Combine(_dir, "bad-preset")));
    }
}
