using LabelNoiseLab.Cli;
using LabelNoiseLab.Data;
using LabelNoiseLab.Nn;
using LabelNoiseLab.RunFiles;
using LabelNoiseLab.Training;
using LabelNoiseLab.Experiments;

namespace LabelNoiseLab.Tests;

/// <summary>The real trainer driven through the CLI, as `lnlab train` runs it.</summary>
public sealed class TrainerTests : IDisposable
{
    private readonly TempDir _temp = new("trainer");

    private string _dir => _temp.Path;

    public void Dispose() => _temp.Dispose();

    private (int Code, string Out, string Err) Train(string yaml, params string[] extra) => TestCli.Train(_dir, yaml, extra);

    private const string Mixture = """
        name: mixture
        epochs: 3
        batch_size: 32
        data: {name: gaussian-mixture, val_fraction: 0.2}
        noise: {kind: symmetric, rate: 0.3, seed: 5}
        model: {kind: mlp, hidden: [32]}
        optim: {kind: sgd, lr: 0.1, momentum: 0.9}
        """;

    [Fact]
    public void A_synthetic_run_writes_a_complete_run_directory()
    {
        string outDir = Path.Combine(_dir, "run");
        var (code, stdout, stderr) = Train(Mixture, "--out", outDir);
        Assert.True(code == 0, stderr + stdout);
        Assert.Equal(RunStatus.Complete, RunDirectory.ReadStatus(outDir)!.Value.Status);
        var lines = File.ReadAllLines(Path.Combine(outDir, "metrics.csv"));
        Assert.StartsWith("epoch,step,lr,train_loss,train_acc,clean_loss,clean_acc,noisy_given_loss,noisy_given_acc,noisy_true_loss,noisy_true_acc,test_loss,test_acc,seconds", lines[0]);
        Assert.Equal(4, lines.Length);
        var summary = File.ReadAllText(Path.Combine(outDir, "summary.json"));
        Assert.Contains("\"realised_rate\"", summary);
        Assert.Contains("\"best_test_epoch\"", summary);
        Assert.True(File.Exists(Path.Combine(outDir, "checkpoints", "final.safetensors")));
        Assert.True(File.Exists(Path.Combine(outDir, "config.yaml")));
        // Ten overlapping classes, 30% noise, 3 epochs: clean samples and the test set are well
        // above chance (0.1) while the noisy labels are not memorised yet.
        var last = lines[^1].Split(',').Select(v => v.Length == 0 ? double.NaN : double.Parse(v, System.Globalization.CultureInfo.InvariantCulture)).ToArray();
        Assert.True(last[6] > 0.5, lines[^1]);
        Assert.True(last[12] > 0.5, lines[^1]);
        Assert.True(last[8] < 0.3, lines[^1]);
    }

    [Fact]
    public void The_final_checkpoint_loads_back_bit_exactly_and_the_same_seed_repeats_the_run()
    {
        string a = Path.Combine(_dir, "a"), b = Path.Combine(_dir, "b");
        Assert.Equal(0, Train(Mixture, "--out", a).Code);
        Assert.Equal(0, Train(Mixture, "--out", b).Code);
        // Same seed → same metrics except timing columns.
        static string[] Deterministic(string dir) => File.ReadAllLines(Path.Combine(dir, "metrics.csv"))
            .Select(l => string.Join(",", l.Split(',').Take(13))).ToArray();
        Assert.Equal(Deterministic(a), Deterministic(b));

        var config = ExperimentConfig.Load(Path.Combine(a, "config.yaml"));
        var data = DataSources.Prepare(ExperimentSetup.DataOptions(config, null), ExperimentSetup.NoiseOptions(config));
        var model = ExperimentSetup.CreateModel(config, data.Train);
        var file = Path.Combine(a, "checkpoints", "final.safetensors");
        Safetensors.LoadInto(file, model.NamedParameters());
        var saved = Safetensors.Load(file);
        foreach (var (name, tensor) in model.NamedParameters())
            Assert.Equal(saved.Tensors[name].ToArray().Select(BitConverter.SingleToInt32Bits), tensor.ToArray().Select(BitConverter.SingleToInt32Bits));
        // And the loaded model scores what the run reported for the test set.
        var test = new Evaluator(model, "cross_entropy").Score(data.Test).Given.Accuracy;
        var reported = File.ReadAllLines(Path.Combine(a, "metrics.csv"))[^1].Split(',')[12];
        Assert.Equal(double.Parse(reported, System.Globalization.CultureInfo.InvariantCulture), test, 12);
    }

    [Theory]
    [InlineData("detection.enabled=true")]
    [InlineData("prune.kind=truncate")]
    public void Sam_with_a_per_sample_objective_still_learns(string option)
    {
        // The per-sample objectives finish the weight gradients after the backward; SAM's two
        // gradient evaluations must run that step too, or the weights never move.
        string outDir = Path.Combine(_dir, "sam-" + option.Split('=')[0]);
        var (code, stdout, stderr) = Train(Mixture, "--out", outDir, "--set", "sam.rho=0.05", "--set", option);
        Assert.True(code == 0, stderr + stdout);
        var last = File.ReadAllLines(Path.Combine(outDir, "metrics.csv"))[^1].Split(',');
        Assert.True(double.Parse(last[6], System.Globalization.CultureInfo.InvariantCulture) > 0.5, string.Join(",", last));
    }

    [Fact]
    public void A_nan_loss_ends_the_run_as_diverged_with_its_step_and_keeps_the_metrics()
    {
        string outDir = Path.Combine(_dir, "diverged");
        var (code, _, _) = Train(Mixture, "--out", outDir, "--set", "optim.lr=1e30", "--set", "optim.momentum=0");
        Assert.Equal(ExitCodes.Diverged, code);
        var (status, reason) = RunDirectory.ReadStatus(outDir)!.Value;
        Assert.Equal(RunStatus.Diverged, status);
        Assert.Matches(@"diverged at step \d+", reason);
        Assert.True(File.Exists(Path.Combine(outDir, "metrics.csv")));
        Assert.Contains("\"diverged\": true", File.ReadAllText(Path.Combine(outDir, "summary.json")));
    }

    [Fact]
    public void A_corrupt_data_file_is_one_line_exit_2_and_no_complete_run()
    {
        string dataDir = Path.Combine(_dir, "data");
        Directory.CreateDirectory(dataDir);
        foreach (var f in DataSources.IdxFiles)
            File.WriteAllBytes(Path.Combine(dataDir, f), [0, 0, 8, 1, 0, 0, 0, 5]); // labels magic everywhere, truncated
        string outDir = Path.Combine(_dir, "corrupt");
        var (code, _, stderr) = Train("name: c\ndata: {name: fashion-mnist}\n", "--out", outDir, "--data-dir", dataDir);
        Assert.Equal(2, code);
        Assert.Single(stderr.Trim().Split('\n'));
        Assert.Contains("train-images-idx3-ubyte", stderr);
        Assert.NotEqual(RunStatus.Complete, RunDirectory.ReadStatus(outDir)?.Status);
    }

    [Fact]
    public void Evaluator_splits_clean_memorised_and_recovered_samples()
    {
        // A fixed linear model on 1-D data: predicts class 1 for x > 0.
        var model = new Mlp(1, [], 2, ActivationKind.Identity);
        var head = model.Head;
        head.Weight.Span[0] = -1f;
        head.Weight.Span[1] = 1f;
        head.Bias!.Span.Clear();
        var data = new Dataset("toy", [-1f, -2f, 1f, 2f, 3f], [1], [0, 0, 1, 1, 1], 2);
        data.Labels[1] = 1; // noisy, predicted 0 = true label: recovered, not memorised
        data.Labels[4] = 0; // noisy, predicted 1 = true label
        data.UpdateNoiseMask();
        var s = new Evaluator(model, "cross_entropy").Score(data);
        Assert.Equal(3, s.Clean.Count);
        Assert.Equal(1.0, s.Clean.Accuracy);
        Assert.Equal(2, s.NoisyGiven.Count);
        Assert.Equal(0.0, s.NoisyGiven.Accuracy);
        Assert.Equal(1.0, s.NoisyTrue.Accuracy);
        Assert.Equal(0.6, s.Given.Accuracy, 12);
        Assert.True(s.NoisyGiven.Loss > s.NoisyTrue.Loss);
    }

    [Fact]
    public void Fashion_mnist_demo_config_trains_one_epoch_when_the_data_set_is_installed()
    {
        MachineTools.RequireFashionMnist();
        string outDir = Path.Combine(_dir, "fmnist");
        var (code, stdout, stderr) = Train(DemoConfig.Text, "--out", outDir, "--set", "epochs=1", "--set", "data.subset=3000");
        Assert.True(code == 0, stderr + stdout);
        var last = File.ReadAllLines(Path.Combine(outDir, "metrics.csv"))[^1].Split(',');
        // Clean samples are fitted better than chance, noisy ones are not yet memorised.
        Assert.True(double.Parse(last[6], System.Globalization.CultureInfo.InvariantCulture) > 0.5);
        Assert.True(double.Parse(last[8], System.Globalization.CultureInfo.InvariantCulture) < 0.5);
    }
}
