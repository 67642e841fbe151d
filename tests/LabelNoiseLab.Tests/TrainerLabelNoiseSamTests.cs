using System.Globalization;
using System.Text.Json;
using LabelNoiseLab.Autograd;
using LabelNoiseLab.Cli;
using LabelNoiseLab.Data;
using LabelNoiseLab.Losses;
using LabelNoiseLab.Noise;
using LabelNoiseLab.Optim;
using LabelNoiseLab.RunFiles;
using LabelNoiseLab.Training;
using LabelNoiseLab.Experiments;
using LabelNoiseLab.Tensors;

namespace LabelNoiseLab.Tests;

/// <summary>Label-noise SGD, SAM and the neuron-norm probe as options of `lnlab train`.</summary>
public sealed class TrainerLabelNoiseSamTests : IDisposable
{
    private readonly TempDir _temp = new("lnsam");

    private string _dir => _temp.Path;

    public void Dispose() => _temp.Dispose();

    private const string Mixture = """
        name: mixture
        epochs: 2
        batch_size: 32
        data: {name: gaussian-mixture}
        model: {kind: mlp, hidden: [16]}
        optim: {kind: sgd, lr: 0.1, momentum: 0.9}
        eval: {train_samples: 200}
        """;

    private const string Teacher = """
        name: teacher
        epochs: 2
        batch_size: 16
        data: {name: linear-teacher}
        model: {kind: two_layer_linear, hidden: [50], init: ntk}
        loss: {kind: mse}
        optim: {kind: sgd, lr: 0.01}
        """;

    private (int Code, string Out, string Err) Train(string yaml, string outDir, params string[] sets)
    {
        string config = Path.Combine(_dir, "config-" + Guid.NewGuid().ToString("N") + ".yaml");
        File.WriteAllText(config, yaml);
        var args = new List<string> { "train", "--config", config, "--out", outDir };
        foreach (var s in sets)
            args.AddRange(["--set", s]);
        return TestCli.Run(_dir, [.. args]);
    }

    [Theory]
    [InlineData("mixture", "label_noise.kind=classification", "label_noise.p=0.3")]
    [InlineData("mixture", "label_noise.kind=classification", "loss.kind=mse", "label_noise.schedule=periodic", "label_noise.period=5")]
    [InlineData("teacher", "label_noise.kind=regression", "label_noise.sigma=0.5", "label_noise.distribution=gaussian", "label_noise.schedule=until", "label_noise.off_after=20")]
    [InlineData("mixture", "sam.rho=0.05")]
    [InlineData("teacher", "sam.rho=0.05", "sam.adaptive=true", "label_noise.kind=regression", "label_noise.sigma=1")]
    [InlineData("mixture", "sam.rho=0.05", "label_noise.kind=classification", "probe.neuron_norms=true")]
    public void A_short_run_with_each_option_writes_a_complete_run(string data, params string[] sets)
    {
        string outDir = Path.Combine(_dir, "run");
        var (code, stdout, stderr) = Train(data == "teacher" ? Teacher : Mixture, outDir, sets);
        Assert.True(code == 0, stderr + stdout);
        Assert.Equal(RunStatus.Complete, RunDirectory.ReadStatus(outDir)!.Value.Status);
        var lines = File.ReadAllLines(Path.Combine(outDir, "metrics.csv"));
        Assert.Equal(3, lines.Length);
        Assert.True(File.Exists(Path.Combine(outDir, "checkpoints", "final.safetensors")));
        var config = File.ReadAllText(Path.Combine(outDir, "config.yaml"));
        Assert.Contains("label_noise:", config);
        Assert.Contains("sam:", config);
        using var summary = JsonDocument.Parse(File.ReadAllText(Path.Combine(outDir, "summary.json")));
        Assert.False(summary.RootElement.GetProperty("diverged").GetBoolean());
        Assert.Equal(sets.Any(s => s.StartsWith("label_noise.kind", StringComparison.Ordinal)),
            summary.RootElement.TryGetProperty("label_noise", out _));
        if (sets.Contains("probe.neuron_norms=true"))
        {
            Assert.EndsWith("neuron_norm_mean,neuron_norm_std", lines[0]);
            var norms = summary.RootElement.GetProperty("neuron_norms");
            Assert.Equal("layers.0.weight", norms.GetProperty("weight").GetString());
            Assert.True(norms.GetProperty("initial_mean").GetDouble() > 0);
        }
    }

    [Fact]
    public void Classification_label_noise_changes_labels_at_the_requested_rate_and_keeps_them_within_a_step()
    {
        const double p = 0.4;
        var config = ExperimentConfig.Parse(Mixture, overrides: ["label_noise.kind=classification", "label_noise.p=0.4", "label_noise.schedule=periodic", "label_noise.period=3"]);
        var data = DataSources.Prepare(ExperimentSetup.DataOptions(config, null), ExperimentSetup.NoiseOptions(config));
        var batcher = new Batcher(data.Train, 32, new Rng(1));
        var objective = new LabelNoiseStep(new LabelNoiseSgdOptions(LabelNoiseSgdKind.Classification, p, 0, StepNoiseDistribution.PlusMinus,
            StepNoiseSchedule.Periodic(3), config.Seed), data.Train, 32);
        var ctx = new StepContext(batcher);
        var first = new int[32];
        long changedOff = 0, samplesOn = 0, changedOn = 0;
        long step = 0;
        for (int epoch = 0; epoch < 20; epoch++)
        {
            batcher.StartEpoch();
            while (batcher.Next())
            {
                ctx.Begin(step);
                objective.Apply(ctx); // once per step: SAM's second pass and every later component see these labels
                ctx.Labels.AsSpan(0, batcher.Length).CopyTo(first);
                int changed = 0;
                for (int i = 0; i < batcher.Length; i++)
                    changed += first[i] != batcher.Labels[i] ? 1 : 0;
                if ((step / 3) % 2 == 0)
                {
                    samplesOn += batcher.Length;
                    changedOn += changed;
                }
                else
                {
                    changedOff += changed;
                }
                step++;
            }
        }
        Assert.Equal(0, changedOff);
        Assert.Equal(samplesOn, objective.NoisySamples);
        Assert.Equal(changedOn, objective.Changed);
        // A redraw may land on the given class: P(changed) = p(k−1)/k; binomial, 4 standard deviations.
        double q = p * 9 / 10, sd = Math.Sqrt(samplesOn * q * (1 - q));
        Assert.InRange(changedOn, samplesOn * q - 4 * sd, samplesOn * q + 4 * sd);
        double r = p, sdr = Math.Sqrt(samplesOn * r * (1 - r));
        Assert.InRange(objective.Redrawn, samplesOn * r - 4 * sdr, samplesOn * r + 4 * sdr);
    }

    [Fact]
    public void The_trainer_reports_the_realised_rate_in_summary_json()
    {
        string outDir = Path.Combine(_dir, "rate");
        var (code, _, stderr) = Train(Mixture, outDir, "label_noise.kind=classification", "label_noise.p=0.5", "epochs=3");
        Assert.True(code == 0, stderr);
        using var summary = JsonDocument.Parse(File.ReadAllText(Path.Combine(outDir, "summary.json")));
        var ln = summary.RootElement.GetProperty("label_noise");
        long n = ln.GetProperty("noisy_samples").GetInt64();
        Assert.Equal(3000, n);
        double q = 0.5 * 9 / 10, sd = Math.Sqrt(q * (1 - q) / n);
        Assert.InRange(ln.GetProperty("realised_change_rate").GetDouble(), q - 4 * sd, q + 4 * sd);
    }

    /// <summary>
    /// The trainer with sam.rho and classification label noise must take exactly the steps of the
    /// Sam class driven by hand (same batches, same noisy labels in both passes, same base SGD).
    /// </summary>
    [Fact]
    public void Sam_with_label_noise_in_the_trainer_matches_the_sam_class_used_directly()
    {
        string[] sets = ["epochs=1", "sam.rho=0.05", "label_noise.kind=classification", "label_noise.p=0.5"];
        string outDir = Path.Combine(_dir, "sam");
        var (code, _, stderr) = Train(Mixture, outDir, sets);
        Assert.True(code == 0, stderr);
        var trained = Safetensors.Load(Path.Combine(outDir, "checkpoints", "final.safetensors")).Tensors;

        var config = ExperimentConfig.Parse(Mixture, overrides: sets);
        var data = DataSources.Prepare(ExperimentSetup.DataOptions(config, null), ExperimentSetup.NoiseOptions(config));
        var train = data.Train;
        var model = ExperimentSetup.CreateModel(config, train);
        var sam = new Sam(ExperimentSetup.CreateOptimizer(config, model.Parameters()), 0.05f);
        var noise = new ClassificationStepNoise(0.5, train.NumClasses, StepNoiseSchedule.Constant, Rng.ForPurpose(config.Seed, "step-label-noise"));
        var batcher = new Batcher(train, 32, Rng.ForPurpose(config.Seed, "shuffle"));
        var tape = new Tape();
        var x = new Tensor(32, train.FeatureLength);
        var labels = new int[32];
        int steps = 0;
        batcher.StartEpoch();
        while (batcher.Next())
        {
            x.Resize([batcher.Length, train.FeatureLength]);
            batcher.Features.CopyTo(x.Span);
            noise.Apply(batcher.Labels, labels, steps);
            sam.Step(() =>
            {
                tape.Reset();
                var loss = SoftmaxCrossEntropyOp.Forward(tape, model.Forward(tape, x), labels).Mean;
                tape.Backward(loss);
                return loss[0];
            });
            steps++;
        }
        Assert.True(steps > 20);
        double maxDiff = 0, maxDiffFromInit = 0;
        var init = ExperimentSetup.CreateModel(config, train).NamedParameters().ToDictionary(p => p.Name, p => p.Tensor.ToArray());
        foreach (var (name, p) in model.NamedParameters())
        {
            var a = p.ToArray();
            var b = trained[name].ToArray();
            for (int i = 0; i < a.Length; i++)
            {
                maxDiff = Math.Max(maxDiff, Math.Abs(a[i] - b[i]));
                maxDiffFromInit = Math.Max(maxDiffFromInit, Math.Abs(a[i] - init[name][i]));
            }
        }
        Assert.True(maxDiffFromInit > 1e-2, $"training moved the weights by only {maxDiffFromInit}");
        Assert.True(maxDiff < 1e-5, $"trainer and hand-driven SAM differ by {maxDiff.ToString(CultureInfo.InvariantCulture)}");
    }

    [Theory]
    [InlineData("label_noise.p=1.5", "label_noise.p")]
    [InlineData("label_noise.p=-0.1", "label_noise.p")]
    [InlineData("label_noise.sigma=-1", "label_noise.sigma")]
    [InlineData("label_noise.period=0", "label_noise.period")]
    [InlineData("label_noise.off_after=-1", "label_noise.off_after")]
    [InlineData("label_noise.kind=sometimes", "label_noise.kind")]
    [InlineData("label_noise.kind=regression", "label_noise.kind")] // cross-entropy on a classification set
    [InlineData("sam.rho=-0.05", "sam.rho")]
    [InlineData("sam.eta=-1", "sam.eta")]
    public void Bad_values_exit_2_naming_the_key(string set, string key)
    {
        string outDir = Path.Combine(_dir, "bad");
        var (code, _, stderr) = Train(Mixture, outDir, set);
        Assert.Equal(ExitCodes.BadInput, code);
        Assert.Single(stderr.Trim().Split('\n'));
        Assert.Contains($"'{key}'", stderr);
        Assert.NotEqual(RunStatus.Complete, RunDirectory.ReadStatus(outDir)?.Status);
    }

    [Fact]
    public void Label_noise_that_does_not_fit_the_data_exits_2_naming_the_key()
    {
        string outDir = Path.Combine(_dir, "misfit");
        var (code, _, stderr) = Train(Mixture, outDir, "label_noise.kind=regression", "loss.kind=mse");
        Assert.Equal(ExitCodes.BadInput, code);
        Assert.Contains("'label_noise.kind'", stderr);
        Assert.NotEqual(RunStatus.Complete, RunDirectory.ReadStatus(outDir)?.Status);
        (code, _, stderr) = Train(Teacher, Path.Combine(_dir, "misfit2"), "label_noise.kind=classification");
        Assert.Equal(ExitCodes.BadInput, code);
        Assert.Contains("'label_noise.kind'", stderr);
    }
}
