using System.Globalization;
using System.Text.Json.Nodes;
using LabelNoiseLab.Autograd;
using LabelNoiseLab.Data;
using LabelNoiseLab.Probes;
using LabelNoiseLab.RunFiles;
using LabelNoiseLab.Experiments;
using LabelNoiseLab.Studies;
using LabelNoiseLab.Tensors;

namespace LabelNoiseLab.Tests;

/// <summary>Activation probe measures, phase detection, and the double-descent preset (issue 5).</summary>
public sealed class DoubleDescentTests : IDisposable
{
    private readonly TempDir _temp = new("dd");

    private string _dir => _temp.Path;

    public void Dispose() => _temp.Dispose();

    // ---- cosine of clean and noisy class means ----

    [Fact]
    public void Clean_noisy_cosine_averages_the_class_cosines_of_the_means()
    {
        // 3 units. Class 0: clean rows [2,0,0] and [0,2,0] (mean [1,1,0]), noisy [5,0,0]: cos = 1/√2.
        // Class 1: clean [0,0,3], noisy [0,0,1] and [0,1,0] (mean [0,.5,.5]): cos = 1/√2 too... use [0,0,1],[0,0,5]: cos = 1.
        // Class 2: clean only: skipped. Expected (1/√2 + 1) / 2.
        float[] acts =
        [
            2, 0, 0,
            0, 2, 0,
            5, 0, 0,
            0, 0, 3,
            0, 0, 1,
            0, 0, 5,
            7, 7, 7,
        ];
        int[] given = [0, 0, 0, 1, 1, 1, 2];
        bool[] noisy = [false, false, true, false, true, true, false];
        var scratch = new float[2 * 3 * 3];
        var counts = new int[6];
        double cos = ActivationStats.CleanNoisyCosine(acts, 3, given, noisy, 3, scratch, counts);
        Assert.Equal((1 / Math.Sqrt(2) + 1) / 2, cos, 12);

        // Grouped by true label instead: the noisy rows belong elsewhere. Noisy row 2 ([5,0,0]) is
        // truly class 2 (clean mean [7,7,7]): cos = 1/√3; the noisy rows 4, 5 are truly class 0
        // (clean mean [1,1,0], noisy mean [0,0,3]): cos = 0. Class 1 has no noisy sample.
        int[] truth = [0, 0, 2, 1, 0, 0, 2];
        double cosTrue = ActivationStats.CleanNoisyCosine(acts, 3, truth, noisy, 3, scratch, counts);
        Assert.Equal((1 / Math.Sqrt(3) + 0) / 2, cosTrue, 12);
    }

    [Fact]
    public void Clean_noisy_cosine_is_nan_without_noisy_samples_and_skips_all_zero_means()
    {
        float[] acts = [1, 2, 3, 4];
        var scratch = new float[8];
        var counts = new int[4];
        Assert.True(double.IsNaN(ActivationStats.CleanNoisyCosine(acts, 2, [0, 1], [false, false], 2, scratch, counts)));
        // Class 0: noisy mean is zero (a dead ReLU pattern): no cosine, so only class 1 counts.
        float[] withZero = [1, 2, 0, 0, 3, 4, 3, 4];
        Assert.Equal(1.0, ActivationStats.CleanNoisyCosine(withZero, 2, [0, 0, 1, 1], [false, true, false, true], 2, scratch, counts), 12);
    }

    // ---- the massive-activation measure ----

    [Fact]
    public void Massive_activation_finds_a_planted_outlier_and_its_ratio_to_the_median()
    {
        const int rows = 50, units = 20;
        var rng = new Rng(3);
        var acts = new float[rows * units];
        for (int i = 0; i < acts.Length; i++)
            acts[i] = i % 3 == 0 ? 0f : 0.5f + rng.NextFloat(); // a third exact zeros, like a ReLU layer
        acts[17 * units + 13] = -300f; // the outlier (negative: the measure takes |a|)
        var nonzero = acts.Where(a => a != 0).Select(Math.Abs).Order().ToArray();
        double median = nonzero.Length % 2 == 1
            ? nonzero[nonzero.Length / 2]
            : 0.5 * ((double)nonzero[nonzero.Length / 2 - 1] + nonzero[nonzero.Length / 2]);

        var m = ActivationStats.Massive(acts, units, new float[acts.Length]);
        Assert.Equal(300.0, m.MaxAbs);
        Assert.Equal(17, m.Sample);
        Assert.Equal(13, m.Unit);
        Assert.Equal(median, m.MedianAbs, 12);
        Assert.Equal(300.0 / median, m.Ratio, 9);
        Assert.InRange(m.Ratio, 200, 300); // median ≈ 1 (uniform in [0.5, 1.5])

        var allZero = ActivationStats.Massive(new float[40], 4, new float[40]);
        Assert.Equal(0.0, allZero.MaxAbs);
        Assert.True(double.IsNaN(allZero.Ratio));
    }

    [Fact]
    public void Median_by_selection_matches_sorting_at_every_length()
    {
        var rng = new Rng(11);
        for (int n = 1; n <= 300; n++)
        {
            // Few distinct values so ties and duplicates are exercised too.
            var v = Enumerable.Range(0, n).Select(_ => (float)rng.NextInt(n < 20 ? 5 : 50)).ToArray();
            var sorted = v.Order().ToArray();
            double expected = n % 2 == 1 ? sorted[n / 2] : 0.5 * ((double)sorted[n / 2 - 1] + sorted[n / 2]);
            Assert.Equal(expected, ActivationStats.Median(v), 12);
        }
    }

    [Fact]
    public void Pearson_and_logit_margin_on_known_values()
    {
        Assert.Equal(1.0, ActivationStats.Pearson([1, 2, 3, 4], [2, 4, 6, 8]), 12);
        Assert.Equal(-1.0, ActivationStats.Pearson([1, 2, 3, 4], [8, 6, 4, 2]), 12);
        Assert.Equal(0.0, ActivationStats.Pearson([1, 2, 3, 4], [1, -1, -1, 1]), 12);
        Assert.True(double.IsNaN(ActivationStats.Pearson([1, 1, 1], [1, 2, 3])));
        Assert.Equal(1.5, ActivationStats.LogitMargin([0.5f, 3f, 1.5f, -2f]), 6);
    }

    // ---- phase detection ----

    [Fact]
    public void Phase_detector_finds_a_second_descent()
    {
        double[] curve = [1.0, 0.8, 0.6, 0.5, 0.55, 0.7, 0.9, 1.0, 0.95, 0.8, 0.7, 0.65, 0.66];
        var p = PhaseDetector.Detect(curve, 0.05, 0.05);
        Assert.Equal(3, p.FirstMin);
        Assert.Equal(7, p.Max);
        Assert.Equal(11, p.LaterMin);
        Assert.True(p.DoubleDescent);
        Assert.Equal(1.0, p.Rise, 12);
        Assert.Equal(0.35, p.Fall, 12);
    }

    [Fact]
    public void Phase_detector_reports_no_second_descent_for_plain_overfitting_or_a_monotone_curve()
    {
        // Overfitting: down, up, then a plateau whose wiggles stay within 5% of the peak.
        double[] overfit = [1.0, 0.8, 0.6, 0.5, 0.6, 0.8, 1.0, 1.1, 1.12, 1.1, 1.11, 1.09];
        var p = PhaseDetector.Detect(overfit, 0.05, 0.05);
        Assert.Equal(3, p.FirstMin);
        Assert.Equal(8, p.Max);
        Assert.False(p.DoubleDescent);
        Assert.True(p.Fall < 0.05);

        double[] monotone = [1.0, 0.9, 0.8, 0.79, 0.795, 0.7];
        var q = PhaseDetector.Detect(monotone, 0.05, 0.05);
        Assert.Equal(5, q.FirstMin);
        Assert.Null(q.Max);
        Assert.False(q.DoubleDescent);

        // A wiggle smaller than the rise threshold is not a first minimum.
        double[] wiggle = [1.0, 0.9, 0.92, 0.8, 0.6, 0.7, 0.9, 0.5];
        var w = PhaseDetector.Detect(wiggle, 0.05, 0.05);
        Assert.Equal(4, w.FirstMin);
        Assert.Equal(6, w.Max);
        Assert.Equal(7, w.LaterMin);
        Assert.True(w.DoubleDescent);
    }

    [Fact]
    public void A_dip_inside_a_continuing_ascent_is_not_a_second_descent()
    {
        // Loss spikes while noisy labels are memorised: 20% down, then on up past the earlier peak.
        double[] curve = [1.0, 0.5, 0.6, 0.8, 1.0, 0.8, 1.2, 1.4];
        var p = PhaseDetector.Detect(curve, 0.1, 0.1);
        Assert.Equal(1, p.FirstMin);
        Assert.Equal(7, p.Max);
        Assert.Null(p.LaterMin);
        Assert.False(p.DoubleDescent);
    }

    [Fact]
    public void Phase_detector_reads_noisy_smooth_curves_at_the_right_epochs()
    {
        // A smooth double-descent curve (minimum near epoch 20, peak at 60, down again by 150) and the
        // same curve without its second descent (flat after the peak), each with 0.5% noise: a
        // peak-to-trough wobble of about 2.5%, well inside the 5% thresholds.
        var rng = new Rng(5);
        static double Smooth(int t) => 0.4 + 0.6 * Math.Exp(-t / 6.0) + 0.5 * Math.Exp(-Math.Pow((t - 60) / 20.0, 2));
        var dd = Enumerable.Range(0, 150).Select(t => Smooth(t) * (1 + 0.005 * rng.NextNormal())).ToArray();
        var p = PhaseDetector.Detect(dd, 0.05, 0.05);
        Assert.True(p.DoubleDescent);
        Assert.InRange(p.FirstMin, 15, 35);
        Assert.InRange(p.Max!.Value, 50, 70);
        Assert.InRange(p.LaterMin!.Value, 100, 149);

        var plateau = Enumerable.Range(0, 150).Select(t => (t < 60 ? Smooth(t) : Smooth(60)) * (1 + 0.005 * rng.NextNormal())).ToArray();
        Assert.False(PhaseDetector.Detect(plateau, 0.05, 0.05).DoubleDescent);
    }

    [Fact]
    public void Smoothing_keeps_the_epoch_jitter_of_a_real_overfitting_curve_from_reading_as_double_descent()
    {
        // MLP3 on 4,000 Fashion-MNIST samples, 30% noise, Adam: test loss of epochs 1-40 as measured,
        // then the steady rise it went on with (to 2.3 by epoch 150) and no second descent.
        double[] measured =
        [
            1.199, 1.0606, 1.0203, 0.9666, 0.9998, 0.9013, 0.8891, 0.8509, 0.8869, 0.8625, 0.8964, 0.8327, 0.8564,
            0.8484, 0.8564, 0.8566, 0.814, 0.8702, 0.8162, 0.8158, 0.8473, 0.9078, 0.8716, 0.8235, 0.8685, 0.8381,
            0.8273, 0.8509, 0.901, 0.8468, 0.8999, 0.9421, 0.8732, 0.8893, 0.9395, 0.9586, 1.0001, 0.9453, 0.9492, 0.9116,
        ];
        var curve = measured.Concat(Enumerable.Range(1, 110).Select(i => 0.95 + 1.35 * i / 110.0)).ToArray();
        // Raw, with 5% thresholds: the jitter puts the first minimum at epoch 8, before the real one.
        var raw = PhaseDetector.Detect(curve, 0.05, 0.05);
        Assert.Equal(8, raw.FirstMin + 1);
        Assert.False(raw.DoubleDescent);
        // The hook's defaults (5-epoch moving average, 10%): one minimum, then overfitting.
        var p = PhaseDetector.Detect(PhaseDetector.Smooth(curve, 5), 0.1, 0.1);
        Assert.False(p.DoubleDescent);
        Assert.InRange(p.FirstMin + 1, 15, 25);
        Assert.Equal(curve.Length - 1, p.Max);
    }

    [Fact]
    public void Smooth_is_a_centred_moving_average_shrinking_at_the_ends()
    {
        Assert.Equal([1.5, 2, 3, 4, 4.5], PhaseDetector.Smooth([1, 2, 3, 4, 5], 3));
        Assert.Equal([1.0, 5, 2], PhaseDetector.Smooth([1, 5, 2], 1));
        Assert.Throws<ArgumentOutOfRangeException>(() => PhaseDetector.Smooth([1, 2], 2));
    }

    [Fact]
    public void Phase_summary_gives_the_epochs_clean_and_noisy_samples_are_fitted()
    {
        var rows = new List<MetricsRow>();
        for (int e = 1; e <= 10; e++)
            rows.Add(new MetricsRow { Epoch = e, TestLoss = 1.0 / e, TestAcc = 0.5, CleanAcc = Math.Min(1, 0.3 * e), NoisyGivenAcc = e >= 8 ? 0.995 : 0.1 * e });
        var block = PhaseDetectionHook.Describe(rows, 0.05, 0.05);
        Assert.Equal(4, block["clean_fit_epoch"]);
        Assert.Equal(8, block["noisy_fit_epoch"]);
        Assert.Equal(2, block["clean_half_epoch"]);
        Assert.Equal(5, block["noisy_half_epoch"]);
        Assert.Equal(false, block["double_descent"]);
        Assert.Equal(10, block["test_loss_first_min_epoch"]);
    }

    // ---- the probe in a training run ----

    private const string Mixture = """
        name: mixture
        epochs: 4
        batch_size: 32
        data: {name: gaussian-mixture}
        noise: {kind: symmetric, rate: 0.3, seed: 5}
        model: {kind: mlp, hidden: [24, 16]}
        optim: {kind: adam, lr: 0.01}
        """;

    private (int Code, string Out, string Err) Cli(params string[] args) => TestCli.Run(_dir, args);

    private (int Code, string Out, string Err) Train(string outDir, params string[] sets)
    {
        string config = Path.Combine(_dir, "mixture.yaml");
        File.WriteAllText(config, Mixture);
        return Cli(["train", "--config", config, "--out", outDir, .. sets.SelectMany(s => new[] { "--set", s })]);
    }

    [Fact]
    public void The_probe_writes_activations_csv_reads_the_hidden_layers_and_does_not_change_training()
    {
        string on = Path.Combine(_dir, "on"), off = Path.Combine(_dir, "off");
        var r = Train(on, "probe.activations_every=3", "probe.set_size=120", "probe.phases=true");
        Assert.True(r.Code == 0, r.Err + r.Out);
        Assert.Equal(0, Train(off).Code);

        var lines = File.ReadAllLines(Path.Combine(on, "activations.csv"));
        Assert.Equal("epoch,layer,clean_noisy_cosine_given,clean_noisy_cosine_true,max_abs_activation,max_unit,median_abs_activation,max_to_median_ratio,max_unit_input_corr,max_unit_output_corr,max_sample,massive,max_unit_input_r2,max_unit_eta2_given,max_unit_eta2_true", lines[0]);
        // Initialisation, epoch 3, and the last epoch (4); two hidden layers each.
        var rows = lines[1..].Select(l => l.Split(',')).ToArray();
        Assert.Equal(["0", "0", "3", "3", "4", "4"], rows.Select(c => c[0]));
        Assert.Equal(["0", "1", "0", "1", "0", "1"], rows.Select(c => c[1]));
        Assert.All(rows, c => Assert.Equal(15, c.Length));

        // Same seed, probe on or off: identical metrics (the probe touches no weights or generators).
        static string[] Deterministic(string dir) => File.ReadAllLines(Path.Combine(dir, "metrics.csv"))
            .Select(l => string.Join(",", l.Split(',').Take(13))).ToArray();
        Assert.Equal(Deterministic(off), Deterministic(on));

        // The hook really reads the first hidden activation: recompute its largest |activation| on the
        // probe set from the final checkpoint.
        var config = ExperimentConfig.Load(Path.Combine(on, "config.yaml"));
        var data = DataSources.Prepare(ExperimentSetup.DataOptions(config, null), ExperimentSetup.NoiseOptions(config));
        var model = ExperimentSetup.CreateModel(config, data.Train);
        Safetensors.LoadInto(Path.Combine(on, "checkpoints", "final.safetensors"), model.NamedParameters());
        var probe = ActivationProbe.StratifiedSample(data.Train, 120, Rng.ForPurpose(config.Seed, "activation-probe-set"));
        var x = new Tensor(probe.Length, data.Train.FeatureLength);
        for (int i = 0; i < probe.Length; i++)
            data.Train.Sample(probe[i]).CopyTo(x.Span.Slice(i * x.RowLength, x.RowLength));
        var tape = new Tape(recording: false);
        var hidden = ((Nn.Mlp)model).Layers[1].Forward(tape, ((Nn.Mlp)model).Layers[0].Forward(tape, x));
        double expected = hidden.ToArray().Max(v => Math.Abs(v));
        Assert.Equal(expected, double.Parse(rows[4][4], CultureInfo.InvariantCulture), 5);

        var summary = JsonNode.Parse(File.ReadAllText(Path.Combine(on, "summary.json")))!;
        var layer0 = summary["activations"]!["layers"]![0]!;
        Assert.InRange(layer0["top_unit_stability"]!.GetValue<double>(), 0, 1);
        Assert.Equal(60, summary["activations"]!["probe_set"]!["noisy"]!.GetValue<int>()); // 6 per (class, clean/noisy) cell
        Assert.NotNull(summary["phases"]!["double_descent"]);
    }

    [Fact]
    public void Stratified_probe_set_takes_clean_and_noisy_samples_of_every_class()
    {
        var labels = Enumerable.Range(0, 400).Select(i => i % 4).ToArray();
        var d = new Dataset("toy", new float[400], [1], labels, 4);
        for (int i = 0; i < 400; i += 5)
            d.Labels[i] = (d.Labels[i] + 1) % 4; // every fifth sample noisy
        d.UpdateNoiseMask();
        var set = ActivationProbe.StratifiedSample(d, 80, new Rng(1));
        Assert.Equal(80, set.Distinct().Count());
        Assert.True(set.SequenceEqual(set.Order()));
        for (int c = 0; c < 4; c++)
        {
            Assert.Equal(10, set.Count(i => d.Labels[i] == c && !d.NoiseMask[i]));
            Assert.Equal(10, set.Count(i => d.Labels[i] == c && d.NoiseMask[i]));
        }
        // Larger than a cell allows: still exactly the size asked for.
        Assert.Equal(390, ActivationProbe.StratifiedSample(d, 390, new Rng(1)).Distinct().Count());
    }

    // ---- bad input ----

    [Theory]
    [InlineData("probe.set_size=5000", "probe.set_size")]
    [InlineData("probe.layers=[2]", "probe.layers")]
    public void Bad_probe_settings_are_one_line_exit_2_naming_the_key(string set, string key)
    {
        string outDir = Path.Combine(_dir, "bad");
        var (code, _, stderr) = Train(outDir, "probe.activations_every=1", set);
        Assert.Equal(2, code);
        Assert.Single(stderr.Trim().Split('\n'));
        Assert.Contains($"'{key}'", stderr);
        Assert.NotEqual(RunStatus.Complete, RunDirectory.ReadStatus(outDir)?.Status);
    }

    [Theory]
    [InlineData("noise.rate=0", "noise.rate")]
    [InlineData("noise.kind=none", "noise.kind")]
    [InlineData("model.hidden=8", "model.hidden")]
    [InlineData("double_descent.models=mlp9", "double_descent.models")]
    [InlineData("probe.set_size=5000", "probe.set_size")]
    [InlineData("double_descent.grid=maybe", "double_descent.grid")]
    [InlineData("double_descent.grid_subsets=4000,70000", "double_descent.grid_subsets")]
    [InlineData("double_descent.grid_subsets=0", "double_descent.grid_subsets")]
    [InlineData("probe.ablate_units=65", "probe.ablate_units")]
    public void Double_descent_preset_rejects_bad_settings_before_making_a_directory(string set, string key)
    {
        string outDir = Path.Combine(_dir, "dd-bad");
        var (code, _, stderr) = Cli("run", "double-descent", "--quick", "--out", outDir, "--set", set);
        Assert.Equal(2, code);
        Assert.Single(stderr.Trim().Split('\n'));
        Assert.Contains($"'{key}'", stderr);
        Assert.False(Directory.Exists(outDir));
    }

    [Fact]
    public void The_grid_is_optimizer_lr_schedule_and_subset_for_every_model()
    {
        var s = DoubleDescentPreset.Resolve(false, ["double_descent.grid=true", "double_descent.models=mlp3,mlp7"]);
        Assert.Equal(16, s.Settings.Count);
        Assert.Equal(32, s.Runs().Count());
        var ids = s.Runs().Select(r => s.For(r.Model, r.Setting).Name).ToList();
        Assert.Equal(32, ids.Distinct().Count());
        Assert.Contains("mlp7-sgd-lr0.05-cosine-n10000", ids);
        var sgd = s.For(s.Models[0], s.Settings.First(x => x.Optim == "sgd"));
        Assert.Equal(0.9, sgd.OptimMomentum);
        var one = DoubleDescentPreset.Resolve(false, []);
        Assert.Single(one.Settings);
        Assert.Equal(("sgd", 0.01, "constant", 4000), (one.Settings[0].Optim, one.Settings[0].Lr, one.Settings[0].Schedule, one.Settings[0].Subset));
        Assert.Equal(4, one.Base.EarlyStopNoisyFitFactor);
        Assert.Equal("log", one.Base.EvalSchedule);
    }

    // ---- the preset end to end ----

    [Fact]
    public void Double_descent_quick_preset_trains_three_models_with_probe_and_phases()
    {
        MachineTools.RequireFashionMnist(orLnlabData: true);
        string outDir = Path.Combine(_dir, "dd");
        var (code, stdout, stderr) = Cli("run", "double-descent", "--quick", "--out", outDir, "--set", "epochs=3");
        Assert.True(code == 0, stdout + stderr);
        Assert.Equal(RunStatus.Complete, RunDirectory.ReadStatus(outDir)!.Value.Status);
        var combined = File.ReadAllLines(Path.Combine(outDir, "metrics.csv"));
        Assert.EndsWith(",model_id", combined[0]);
        Assert.Equal(1 + 3 * 3, combined.Length);
        int[] hiddenLayers = [2, 4, 6];
        for (int m = 0; m < 3; m++)
        {
            string sub = Path.Combine(outDir, $"mlp{2 * m + 3}");
            Assert.Equal(RunStatus.Complete, RunDirectory.ReadStatus(sub)!.Value.Status);
            var acts = File.ReadAllLines(Path.Combine(sub, "activations.csv"));
            Assert.Equal(1 + 4 * hiddenLayers[m], acts.Length); // epochs 0..3, every hidden layer
            var summary = JsonNode.Parse(File.ReadAllText(Path.Combine(sub, "summary.json")))!;
            Assert.Equal(0.3, summary["noise"]!["realised_rate"]!.GetValue<double>(), 1);
            Assert.NotNull(summary["phases"]!["double_descent"]);
            Assert.Equal(hiddenLayers[m], summary["activations"]!["layers"]!.AsArray().Count);
        }
        var top = JsonNode.Parse(File.ReadAllText(Path.Combine(outDir, "summary.json")))!;
        Assert.Equal(["mlp3", "mlp5", "mlp7"], top["model_ids"]!.AsArray().Select(n => n!.GetValue<string>()));

        // Claims in the DESIGN.md contract, marked quick; the per-run tables for the figures.
        var claims = top["claims"]!.AsArray();
        Assert.Equal(["noisy_fitted_after_clean", "separation_grows_with_depth", "regeneralisation_after_interpolation", "massive_activation_in_shallow_layer", "massive_activation_tied_to_input"],
            claims.Select(c => c!["id"]!.GetValue<string>()));
        foreach (var c in claims)
        {
            foreach (var field in (string[])["statement", "measured", "expected", "pass", "n_seeds", "spread", "quick"])
                Assert.True(c!.AsObject().ContainsKey(field), field);
            Assert.True(c!["quick"]!.GetValue<bool>());
        }
        var phases = File.ReadAllLines(Path.Combine(outDir, DoubleDescentPreset.PhasesFile));
        Assert.Equal(4, phases.Length);
        Assert.StartsWith("run,model,setting,", phases[0]);
        var layers = File.ReadAllLines(Path.Combine(outDir, DoubleDescentPreset.LayersFile));
        Assert.Equal(1 + 4 * (2 + 4 + 6), layers.Length);
        Assert.StartsWith("run,epoch,layer,", layers[0]);
        Assert.Equal(1 + 4 * (2 + 4 + 6), File.ReadAllLines(Path.Combine(outDir, DoubleDescentPreset.AblationFile)).Length);
        Assert.True(File.Exists(Path.Combine(outDir, "mlp7", LearningEvents.FileName)));
    }
}
