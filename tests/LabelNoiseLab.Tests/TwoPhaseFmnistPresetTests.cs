using System.Text.Json;
using LabelNoiseLab.Cli;
using LabelNoiseLab.RunFiles;
using LabelNoiseLab.Studies;

namespace LabelNoiseLab.Tests;

/// <summary>`lnlab run two-phase-fmnist`: plain SGD versus label-noise SGD on Fashion-MNIST.</summary>
public sealed class TwoPhaseFmnistPresetTests : IDisposable
{
    private readonly TempDir _temp = new("tpf");

    private string _dir => _temp.Path;

    public void Dispose() => _temp.Dispose();

    private (int Code, string Out, string Err) Lnlab(params string[] args) => TestCli.Run(_dir, args);

    [Fact]
    public void Quick_preset_writes_dynamics_and_a_summary_per_method()
    {
        MachineTools.RequireFashionMnist();
        string outDir = Path.Combine(_dir, "quick");
        var (code, stdout, stderr) = Lnlab("run", "two-phase-fmnist", "--quick", "--out", outDir);
        Assert.True(code == 0, stderr + stdout);
        Assert.Equal(RunStatus.Complete, RunDirectory.ReadStatus(outDir)!.Value.Status);
        foreach (var method in TwoPhaseFmnistPreset.Methods)
            Assert.Equal(RunStatus.Complete, RunDirectory.ReadStatus(Path.Combine(outDir, method))!.Value.Status);

        var lines = File.ReadAllLines(Path.Combine(outDir, "dynamics.csv"));
        Assert.Equal(TwoPhaseFmnistPreset.Header, lines[0]);
        var rows = lines.Skip(1).Select(l => l.Split(',')).ToList();
        Assert.Equal(2 * 4, rows.Count); // a step-0 row and 3 epochs per method
        Assert.Equal(["sgd", "label_noise_sgd"], rows.Select(r => r[0]).Distinct());
        // Same initialisation for both methods: identical step-0 neuron norms.
        var starts = rows.Where(r => r[2] == "0").ToList();
        Assert.Equal(starts[0][7], starts[1][7]);
        Assert.All(rows.Where(r => r[2] != "0"), r => Assert.InRange(double.Parse(r[6], System.Globalization.CultureInfo.InvariantCulture), 0.2, 1.0));

        using var summary = JsonDocument.Parse(File.ReadAllText(Path.Combine(outDir, "summary.json")));
        var methods = summary.RootElement.GetProperty("methods");
        foreach (var method in TwoPhaseFmnistPreset.Methods)
        {
            var m = methods.GetProperty(method);
            foreach (var key in new[] { "initial_neuron_norm_mean", "final_neuron_norm_mean", "final_neuron_norm_ratio", "final_train_loss", "final_test_loss", "final_test_acc" })
                Assert.True(double.IsFinite(m.GetProperty(key).GetDouble()), $"{method}.{key}");
        }
        Assert.True(summary.RootElement.TryGetProperty("final_norm_ratio_label_noise_over_sgd", out _));
        // The paper's claims, in the contract, measured from the same figures.
        var claims = Claims.Read(System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(Path.Combine(outDir, "summary.json")))!.AsObject(), "summary.json")!;
        Assert.Equal(["label_noise_norms_shrink", "label_noise_shrinks_more_than_sgd"], claims.Select(c => c.Id));
        double ratio = methods.GetProperty("label_noise_sgd").GetProperty("final_neuron_norm_ratio").GetDouble();
        double relative = summary.RootElement.GetProperty("final_norm_ratio_label_noise_over_sgd").GetDouble();
        Assert.Equal(ratio, claims[0].Measured, 12);
        Assert.Equal(relative, claims[1].Measured, 12);
        Assert.Equal([ratio < 1, relative < 1], claims.Select(c => c.Pass));
        Assert.All(claims, c => Assert.True(c.Quick && c.Seeds == 1 && double.IsNaN(c.Spread)));
        Assert.StartsWith("epoch,step,lr,train_loss", File.ReadLines(Path.Combine(outDir, "metrics.csv")).First());
        // The label-noise run really had noise: its trainer summary reports the realised rate.
        using var ln = JsonDocument.Parse(File.ReadAllText(Path.Combine(outDir, "label_noise_sgd", "summary.json")));
        Assert.InRange(ln.RootElement.GetProperty("label_noise").GetProperty("realised_redraw_rate").GetDouble(), 0.45, 0.55);
    }

    [Theory]
    [InlineData("label_noise.p=2", "label_noise.p")]
    [InlineData("label_noise.kind=none", "label_noise.kind")]
    [InlineData("model.kind=small_cnn", "model.kind")]
    [InlineData("optim.lrr=0.1", "optim.lrr")]
    public void Bad_settings_exit_2_naming_the_key_before_any_run_directory(string set, string key)
    {
        string outDir = Path.Combine(_dir, "bad");
        var (code, _, stderr) = Lnlab("run", "two-phase-fmnist", "--quick", "--out", outDir, "--set", set);
        Assert.Equal(ExitCodes.BadInput, code);
        Assert.Single(stderr.Trim().Split('\n'));
        Assert.Contains($"'{key}'", stderr);
        Assert.False(Directory.Exists(outDir));
    }

    [Fact]
    public void Missing_data_files_exit_2_naming_the_file_and_leave_no_complete_run()
    {
        string data = Directory.CreateDirectory(Path.Combine(_dir, "empty-data")).FullName;
        string outDir = Path.Combine(_dir, "nodata");
        var (code, _, stderr) = Lnlab("run", "two-phase-fmnist", "--quick", "--out", outDir, "--data-dir", data);
        Assert.Equal(ExitCodes.BadInput, code);
        Assert.Single(stderr.Trim().Split('\n'));
        Assert.Contains("train-images-idx3-ubyte", stderr);
        Assert.NotEqual(RunStatus.Complete, RunDirectory.ReadStatus(outDir)?.Status);
    }
}
