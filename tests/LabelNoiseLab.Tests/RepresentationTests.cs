using System.Globalization;
using System.Text.Json.Nodes;
using LabelNoiseLab.Autograd;
using LabelNoiseLab.Data;
using LabelNoiseLab.Experiments;
using LabelNoiseLab.Nn;
using LabelNoiseLab.Probes;
using LabelNoiseLab.RunFiles;
using LabelNoiseLab.Tensors;
using LabelNoiseLab.Training;

namespace LabelNoiseLab.Tests;

/// <summary>Issue 14: per-sample learning events, massive activations (top-k, rule, R², η², ablation), log-spaced evaluation and the noisy-fit stop.</summary>
public sealed class RepresentationTests : IDisposable
{
    private readonly TempDir _temp = new("representation");

    public void Dispose() => _temp.Dispose();

    // ---- learning events ----

    [Fact]
    public void Learning_events_record_first_fit_first_true_and_forgetting_from_step_outputs()
    {
        // Sample 0 clean (label 1), sample 1 noisy (given 2, true 0); 3 classes.
        var events = new LearningEvents();
        events.Reset([1, 2], [1, 0], [false, true]);
        float[] Logits(int p0, int p1)
        {
            var z = new float[6];
            z[p0] = 1;
            z[3 + p1] = 1;
            return z;
        }
        events.Record(1, [0, 1], Logits(0, 0), 3); // 0 wrong, 1 predicted its true label
        events.Record(2, [0, 1], Logits(1, 1), 3); // 0 fitted
        events.Record(3, [1, 0], Logits(2, 2), 3); // batch order swapped: 1 → given label 2 (fitted), 0 → 2 (forgotten)
        events.Record(4, [0, 1], Logits(1, 0), 3); // 0 right again, 1 forgotten (back to its true label)
        events.Record(5, [0], Logits(0, 0)[..3], 3); // 0 forgotten a second time
        Assert.Equal([2, 3], events.FirstGivenEpoch);
        Assert.Equal([2, 1], events.FirstTrueEpoch);
        Assert.Equal([2, 1], events.Forgets);
        var summary = events.Summary();
        Assert.Equal(2.0, summary["median_first_fit_epoch_clean"]);
        Assert.Equal(3.0, summary["median_first_fit_epoch_noisy"]);
        var lines = events.Csv().Trim().Split('\n');
        Assert.Equal(LearningEvents.Header, lines[0]);
        Assert.Equal("1,1,2,0,3,1,1,0", lines[2]);
        Assert.Equal(4.0, LearningEvents.MedianFitted([0, 1, 2, 3, 4], [0, 5, 2, 7, 3])); // 2, 3, 5, 7 (the 0 = never fitted is left out)
        Assert.True(double.IsNaN(LearningEvents.MedianFitted([0], [0])));
    }

    // ---- massive-activation measures ----

    [Fact]
    public void Top_k_matches_a_full_sort_at_every_length()
    {
        var rng = new Random(3);
        for (int n = 1; n <= 120; n++)
        {
            var a = Enumerable.Range(0, n).Select(_ => (float)Math.Round(rng.NextDouble() * 20 - 10, 1)).ToArray();
            foreach (int k in (int[])[1, 3, 7])
            {
                var got = new int[k];
                int count = ActivationStats.TopK(a, k, got);
                var expected = Enumerable.Range(0, n).OrderByDescending(i => Math.Abs(a[i])).ThenBy(i => i).Take(k).ToArray();
                Assert.Equal(Math.Min(k, n), count);
                Assert.Equal(expected.Select(i => Math.Abs(a[i])), got[..count].Select(i => Math.Abs(a[i])));
            }
        }
    }

    [Fact]
    public void Eta_squared_is_between_over_total_sum_of_squares()
    {
        // Groups {1, 3} and {5, 7}: means 2 and 6, grand mean 4; between 4·4 = 16, total 9+1+1+9 = 20.
        Assert.Equal(0.8, ActivationStats.EtaSquared([1, 3, 5, 7], [0, 0, 1, 1], 2), 12);
        Assert.Equal(1.0, ActivationStats.EtaSquared([2, 2, 6, 6], [0, 0, 1, 1], 2), 12);
        Assert.Equal(0.0, ActivationStats.EtaSquared([1, 5, 1, 5], [0, 0, 1, 1], 2), 12);
        Assert.True(double.IsNaN(ActivationStats.EtaSquared([3, 3], [0, 1], 2)));
    }

    [Fact]
    public void R_squared_equals_pearson_squared_for_one_regressor_and_one_for_an_exact_linear_fit()
    {
        var rng = new Random(5);
        int n = 200;
        var x = new double[n * 3];
        var y = new double[n];
        var exact = new double[n];
        for (int i = 0; i < n; i++)
        {
            for (int j = 0; j < 3; j++)
                x[i * 3 + j] = rng.NextDouble();
            exact[i] = 2 * x[i * 3] - 3 * x[i * 3 + 1] + 0.5 * x[i * 3 + 2] + 7;
            y[i] = exact[i] + rng.NextDouble();
        }
        var first = Enumerable.Range(0, n).Select(i => x[i * 3]).ToArray();
        double r = ActivationStats.Pearson(first, y);
        Assert.Equal(r * r, ActivationStats.RSquared(y, first, 1), 10);
        Assert.Equal(1.0, ActivationStats.RSquared(exact, x, 3), 9);
        double three = ActivationStats.RSquared(y, x, 3);
        Assert.InRange(three, r * r, 1);
        // A duplicated (collinear) column changes nothing.
        var dup = new double[n * 4];
        for (int i = 0; i < n; i++)
        {
            Array.Copy(x, i * 3, dup, i * 4, 3);
            dup[i * 4 + 3] = x[i * 3 + 1];
        }
        Assert.Equal(three, ActivationStats.RSquared(y, dup, 4), 8);
    }

    [Fact]
    public void Log_spaced_epochs_are_one_to_ten_then_ten_a_decade()
    {
        var epochs = Enumerable.Range(0, 1001).Where(EvaluationSchedule.IsLogEpoch).ToArray();
        Assert.Equal([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 12, 15, 20, 25, 30, 40, 50, 60, 80, 100, 120, 150, 200, 250, 300, 400, 500, 600, 800, 1000], epochs);
    }

    // ---- in a training run ----

    private const string Mixture = """
        name: mixture
        epochs: 12
        batch_size: 32
        threads: 1
        data: {name: gaussian-mixture}
        noise: {kind: symmetric, rate: 0.3, seed: 5}
        model: {kind: mlp, hidden: [24, 16]}
        optim: {kind: adam, lr: 0.01}
        """;

    private (int Code, string Out, string Err) Train(string outDir, params string[] sets)
    {
        string config = _temp.Sub("mixture.yaml");
        File.WriteAllText(config, Mixture);
        return TestCli.Run(_temp.Path, ["train", "--config", config, "--out", outDir, .. sets.SelectMany(s => new[] { "--set", s })]);
    }

    [Fact]
    public void Ablation_rows_equal_the_test_accuracy_of_the_final_model_with_its_top_unit_zeroed_and_probes_leave_training_alone()
    {
        string on = _temp.Sub("on"), off = _temp.Sub("off");
        var r = Train(on, "probe.activations_every=4", "probe.set_size=120", "probe.ablate=zero", "probe.ablate_units=1", "probe.learning_events=true", "probe.top_k=3");
        Assert.True(r.Code == 0, r.Err + r.Out);
        Assert.Equal(0, Train(off).Code);
        Assert.Equal(File.ReadAllLines(Path.Combine(off, "metrics.csv")).Select(l => string.Join(",", l.Split(',').Take(13))),
            File.ReadAllLines(Path.Combine(on, "metrics.csv")).Select(l => string.Join(",", l.Split(',').Take(13))));

        var ablation = File.ReadAllLines(Path.Combine(on, ActivationProbe.AblationFileName));
        Assert.Equal(ActivationProbe.AblationHeader, ablation[0]);
        var last = ablation.Last(l => l.StartsWith("12,0,", StringComparison.Ordinal)).Split(',');
        int unit = int.Parse(last[3], CultureInfo.InvariantCulture);

        // Recompute: the final model, the first hidden activation's unit set to zero, on the test set.
        var config = ExperimentConfig.Load(Path.Combine(on, "config.yaml"));
        var data = DataSources.Prepare(ExperimentSetup.DataOptions(config, null), ExperimentSetup.NoiseOptions(config));
        var model = (Mlp)ExperimentSetup.CreateModel(config, data.Train);
        Safetensors.LoadInto(Path.Combine(on, "checkpoints", "final.safetensors"), model.NamedParameters());
        var test = data.Test;
        var x = new Tensor(test.Count, test.FeatureLength);
        for (int i = 0; i < test.Count; i++)
            test.Sample(i).CopyTo(x.Span.Slice(i * x.RowLength, x.RowLength));
        var tape = new Tape(recording: false);
        var h = model.Layers[1].Forward(tape, model.Layers[0].Forward(tape, x));
        for (int i = 0; i < test.Count; i++)
            h.Span[i * h.RowLength + unit] = 0;
        var z = h;
        for (int l = 2; l < model.Layers.Count; l++)
            z = model.Layers[l].Forward(tape, z);
        int correct = 0;
        for (int i = 0; i < test.Count; i++)
        {
            var row = z.Span.Slice(i * z.RowLength, z.RowLength);
            correct += System.Numerics.Tensors.TensorPrimitives.IndexOfMax(row) == test.Labels[i] ? 1 : 0;
        }
        Assert.Equal((double)correct / test.Count, double.Parse(last[7], CultureInfo.InvariantCulture), 9);
        double intact = double.Parse(last[5], CultureInfo.InvariantCulture);
        var metricsLast = File.ReadAllLines(Path.Combine(on, "metrics.csv"))[^1].Split(',');
        Assert.Equal(double.Parse(metricsLast[12], CultureInfo.InvariantCulture), intact, 9);

        // Top-k rows: 3 per (epoch, layer), descending, the first equal to activations.csv's maximum.
        var top = File.ReadAllLines(Path.Combine(on, ActivationProbe.TopKFileName))[1..].Select(l => l.Split(',')).ToArray();
        var acts = File.ReadAllLines(Path.Combine(on, ActivationProbe.FileName))[1..].Select(l => l.Split(',')).ToArray();
        Assert.Equal(3 * acts.Length, top.Length);
        for (int i = 0; i < acts.Length; i++)
        {
            Assert.Equal(acts[i][4], top[3 * i][3]);
            Assert.Equal(acts[i][5], top[3 * i][4]);
            Assert.Equal(acts[i][10], top[3 * i][5]);
            Assert.True(double.Parse(top[3 * i][3], CultureInfo.InvariantCulture) >= double.Parse(top[3 * i + 2][3], CultureInfo.InvariantCulture));
            foreach (int col in (int[])[12, 13, 14])
                Assert.InRange(double.Parse(acts[i][col], CultureInfo.InvariantCulture), 0, 1);
        }

        // Learning events: one row per training sample; the summary's medians are those of the file.
        var ev = File.ReadAllLines(Path.Combine(on, LearningEvents.FileName))[1..].Select(l => l.Split(',').Select(c => int.Parse(c, CultureInfo.InvariantCulture)).ToArray()).ToArray();
        var summary = JsonNode.Parse(File.ReadAllText(Path.Combine(on, "summary.json")))!;
        Assert.Equal(summary["data"]!["train"]!.GetValue<int>(), ev.Length);
        var cleanFits = ev.Where(e => e[1] == 0 && e[4] > 0).Select(e => e[4]).ToArray();
        Assert.Equal(LearningEvents.MedianFitted(Enumerable.Range(0, cleanFits.Length), cleanFits), summary["learning_events"]!["median_first_fit_epoch_clean"]!.GetValue<double>());
        Assert.All(ev, e => Assert.InRange(e[4], 0, 12));
    }

    [Fact]
    public void Log_schedule_and_noisy_fit_stop_end_the_run_at_ceil_factor_times_the_fit_epoch()
    {
        string dir = _temp.Sub("fit");
        var r = Train(dir, "epochs=400", "eval.schedule=log", "early_stop.noisy_fit_factor=1.5", "eval.train_samples=0", "optim.lr=0.003", "model.hidden=256,256");
        Assert.True(r.Code == 0, r.Err + r.Out);
        var summary = JsonNode.Parse(File.ReadAllText(Path.Combine(dir, "summary.json")))!;
        int fit = summary["noisy_fit_epoch"]!.GetValue<int>();
        int done = summary["epochs_completed"]!.GetValue<int>();
        Assert.Equal((int)Math.Ceiling(1.5 * fit), done);
        var rows = File.ReadAllLines(Path.Combine(dir, "metrics.csv"))[1..].Select(l => l.Split(',')).ToArray();
        var epochs = rows.Select(c => int.Parse(c[0], CultureInfo.InvariantCulture)).ToArray();
        Assert.Equal([.. Enumerable.Range(1, done - 1).Where(EvaluationSchedule.IsLogEpoch), done], epochs);
        // The fit epoch is the first evaluated epoch with noisy_given_acc ≥ 0.99.
        var firstFit = rows.First(c => double.Parse(c[8], CultureInfo.InvariantCulture) >= 0.99);
        Assert.Equal(fit, int.Parse(firstFit[0], CultureInfo.InvariantCulture));
    }

    [Theory]
    [InlineData("probe.ablate_units=17", "probe.ablate_units")] // layer 1 has 16 units
    [InlineData("probe.massive_abs=0", "probe.massive_abs")]
    [InlineData("probe.massive_ratio=-3", "probe.massive_ratio")]
    [InlineData("probe.top_k=0", "probe.top_k")]
    [InlineData("early_stop.noisy_fit_factor=0.5", "early_stop.noisy_fit_factor")]
    [InlineData("eval.schedule=sqrt", "eval.schedule")]
    public void Bad_representation_settings_are_one_line_exit_2_naming_the_key(string set, string key)
    {
        string outDir = _temp.Sub("bad");
        var (code, _, stderr) = Train(outDir, "probe.activations_every=1", "probe.set_size=50", "probe.ablate=zero", set);
        Assert.Equal(2, code);
        Assert.Single(stderr.Trim().Split('\n'));
        Assert.Contains($"'{key}'", stderr);
        Assert.NotEqual(RunStatus.Complete, RunDirectory.ReadStatus(outDir)?.Status);
    }
}
