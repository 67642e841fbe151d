using LabelNoiseLab.Studies;
using System.Text.Json;
using LabelNoiseLab.RunFiles;

namespace LabelNoiseLab.Tests;

/// <summary>`lnlab probe spectral`, the training-time hook and `lnlab run spectral-tail --quick`, driven through the CLI.</summary>
public sealed class SpectralCliTests : IDisposable
{
    private readonly TempDir _temp = new("spectral");

    private string _dir => _temp.Path;

    public void Dispose() => _temp.Dispose();

    private (int Code, string Out, string Err) Cli(params string[] args) => TestCli.Run(_dir, args);

    private string TrainMixture(string name, int spectralEvery = 0)
    {
        string config = Path.Combine(_dir, name + ".yaml");
        File.WriteAllText(config, $$"""
            name: {{name}}
            epochs: 2
            batch_size: 32
            data: {name: gaussian-mixture, val_fraction: 0.2}
            noise: {kind: symmetric, rate: 0.4, seed: 5}
            model: {kind: mlp, hidden: [32, 24]}
            optim: {kind: sgd, lr: 0.1, momentum: 0.9}
            probe: {spectral_every: {{spectralEvery}}}
            """);
        string outDir = Path.Combine(_dir, name);
        var (code, stdout, stderr) = Cli("train", "--config", config, "--out", outDir);
        Assert.True(code == 0, stderr + stdout);
        return outDir;
    }

    [Fact]
    public void Probe_spectral_writes_the_named_files_and_summary_figures()
    {
        string run = TrainMixture("probe");
        var (code, stdout, stderr) = Cli("probe", "spectral", run);
        Assert.True(code == 0, stderr + stdout);
        var spectrum = File.ReadAllLines(Path.Combine(run, "spectrum.csv"));
        Assert.Equal("index,singular_value,explained_variance,cumulative_variance", spectrum[0]);
        Assert.Equal(25, spectrum.Length); // D = 24
        Assert.Equal(1.0, double.Parse(spectrum[^1].Split(',')[3], System.Globalization.CultureInfo.InvariantCulture), 1e-6);
        var spectral = File.ReadAllLines(Path.Combine(run, "spectral.csv"));
        Assert.Equal("d,probe_test_acc,probe_clean_acc,probe_noisy_given_acc,probe_noisy_true_acc,trunc_test_acc,trunc_val_acc,clean_tail_energy,noisy_tail_energy", spectral[0]);
        Assert.StartsWith("1,", spectral[1]);
        Assert.StartsWith("24,", spectral[^1]);
        Assert.True(File.Exists(Path.Combine(run, "spectral_init.csv")));
        using var summary = JsonDocument.Parse(File.ReadAllText(Path.Combine(run, "summary.json")));
        var root = summary.RootElement;
        foreach (var key in new[] { "effective_rank", "stable_rank", "full_test_acc", "best_d_by_val", "trunc_test_acc_at_best_d", "probe_best_d", "probe_best_test_acc", "effective_rank_at_init" })
            Assert.True(root.TryGetProperty(key, out _), key);
        Assert.True(root.TryGetProperty("best_test_acc", out _)); // the training summary is kept
        // The probe's full model is the trained model: its test accuracy is what training reported.
        Assert.Equal(root.GetProperty("final").GetProperty("test_acc").GetDouble(), root.GetProperty("full_test_acc").GetDouble(), 1e-9);
        double erank = root.GetProperty("effective_rank").GetDouble();
        Assert.InRange(erank, 1, 24);

        // Another layer, a given grid, no control: the earlier control does not linger.
        (code, stdout, stderr) = Cli("probe", "spectral", run, "--layer", "layers.1", "--d-grid", "32,1,4", "--no-control");
        Assert.True(code == 0, stderr + stdout);
        Assert.Equal(["1,", "4,", "32,"], File.ReadAllLines(Path.Combine(run, "spectral.csv")).Skip(1).Select(l => l[..(l.IndexOf(',') + 1)]));
        Assert.False(File.Exists(Path.Combine(run, "spectral_init.csv")));
        using var again = JsonDocument.Parse(File.ReadAllText(Path.Combine(run, "summary.json")));
        Assert.Equal(JsonValueKind.Null, again.RootElement.GetProperty("effective_rank_at_init").ValueKind);
        Assert.Equal("layers.1", again.RootElement.GetProperty("spectral_probe").GetProperty("layer").GetString());
    }

    [Fact]
    public void Bad_input_is_one_line_and_exit_code_2()
    {
        string run = TrainMixture("bad");
        string noCheckpoint = Path.Combine(_dir, "no-checkpoint");
        Directory.CreateDirectory(noCheckpoint);
        File.Copy(Path.Combine(run, "config.yaml"), Path.Combine(noCheckpoint, "config.yaml"));
        foreach (var (args, needle) in new (string[], string)[]
        {
            (["probe", "spectral", noCheckpoint], "final.safetensors"),
            (["probe", "spectral", run, "--layer", "layers.7"], "--layer 'layers.7'"),
            (["probe", "spectral", run, "--d-grid", "1,2,25"], "d = 25 is larger than the feature dimension D = 24"),
            (["probe", "spectral", Path.Combine(_dir, "missing")], "no such run directory"),
        })
        {
            var (code, _, stderr) = Cli(args);
            Assert.Equal(2, code);
            Assert.Single(stderr.Trim().Split('\n'));
            Assert.Contains(needle, stderr);
        }
        Assert.False(File.Exists(Path.Combine(run, "spectral.csv")));
    }

    [Fact]
    public void The_training_hook_probes_at_init_and_every_E_epochs()
    {
        string run = TrainMixture("hook", spectralEvery: 2);
        var lines = File.ReadAllLines(Path.Combine(run, "spectral_epochs.csv"));
        Assert.Equal("epoch,step,effective_rank,stable_rank,full_test_acc,best_d_by_val,d,probe_test_acc,probe_clean_acc,probe_noisy_given_acc,probe_noisy_true_acc,trunc_test_acc,trunc_val_acc,clean_tail_energy,noisy_tail_energy", lines[0]);
        var epochs = lines.Skip(1).Select(l => l.Split(',')[0]).Distinct().ToArray();
        Assert.Equal(["0", "2"], epochs);
        // Training is unchanged by the probe: same metrics as without it (timing columns aside).
        string plain = TrainMixture("plain");
        static string[] Deterministic(string dir) => File.ReadAllLines(Path.Combine(dir, "metrics.csv"))
            .Select(l => string.Join(",", l.Split(',').Take(13))).ToArray();
        Assert.Equal(Deterministic(plain), Deterministic(run));
    }

    [Fact]
    public void The_quick_preset_writes_results_with_the_named_columns()
    {
        string outDir = Path.Combine(_dir, "preset");
        var (code, stdout, stderr) = Cli("run", "spectral-tail", "--quick", "--out", outDir,
            "--set", "spectral_tail.data=gaussian-mixture", "--set", "spectral_tail.subset=0", "--set", "spectral_tail.epochs=3");
        Assert.True(code == 0, stderr + stdout);
        Assert.Equal(RunStatus.Complete, RunDirectory.ReadStatus(outDir)!.Value.Status);
        var lines = File.ReadAllLines(Path.Combine(outDir, "results.csv"));
        Assert.StartsWith("noise_rate,width,full_test_acc,best_d_by_val,trunc_test_acc_at_best_d,best_early_stop_test_acc,effective_rank,effective_rank_at_init,", lines[0]);
        Assert.Equal(4, lines.Length); // (0, 128), (0.4, 128), (0.4, 32)
        Assert.StartsWith("0.4,32,", lines[3]);
        foreach (var run in new[] { "mlp-w128-noise0", "mlp-w128-noise40", "mlp-w32-noise40" })
        {
            string sub = Path.Combine(outDir, "runs", run);
            Assert.Equal(RunStatus.Complete, RunDirectory.ReadStatus(sub)!.Value.Status);
            Assert.True(File.Exists(Path.Combine(sub, "spectral.csv")), run);
            Assert.True(File.Exists(Path.Combine(sub, "checkpoints", "best_val.safetensors")), run);
            Assert.True(File.Exists(Path.Combine(sub, "spectral_early_stopped.csv")), run);
        }
        Assert.StartsWith("run,d,", File.ReadAllLines(Path.Combine(outDir, SpectralTailPreset.PerDFile))[0]);
        Assert.StartsWith("run,d,", File.ReadAllLines(Path.Combine(outDir, SpectralTailPreset.PerDEarlyFile))[0]);
        Assert.Equal(3, File.ReadAllLines(Path.Combine(outDir, SpectralTailPreset.WidthsFile)).Length); // widths 32 and 128 at 40%
        Assert.StartsWith("model,width,noise_rate,n_seeds,full_test_acc_mean,full_test_acc_std,", File.ReadAllLines(Path.Combine(outDir, SpectralTailPreset.AggregateFile))[0]);
        var summary = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(Path.Combine(outDir, "summary.json")))!;
        Assert.Equal(["convex_valley_best_d_near_classes", "truncation_beats_full_model", "truncation_vs_early_stopping", "wider_larger_tail"],
            summary["claims"]!.AsArray().Select(c => c!["id"]!.GetValue<string>()));
        Assert.All(summary["claims"]!.AsArray(), c => Assert.True(c!["quick"]!.GetValue<bool>()));

        var (bad, _, err) = Cli("run", "spectral-tail", "--quick", "--out", Path.Combine(_dir, "bad-preset"), "--set", "spectral_tail.widht=3");
        Assert.Equal(2, bad);
        Assert.Contains("spectral_tail.widht", err);
        Assert.False(Directory.Exists(Path.Combine(_dir, "bad-preset")));
    }

    [Theory]
    [InlineData("spectral_tail.seeds=0", "spectral_tail.seeds")]
    [InlineData("spectral_tail.fit_factor=0.5", "spectral_tail.fit_factor")]
    [InlineData("spectral_tail.architectures=lstm", "spectral_tail.architectures")]
    public void Bad_spectral_tail_settings_are_one_line_exit_2_before_a_directory(string set, string key)
    {
        string outDir = Path.Combine(_dir, "bad-st");
        var (code, _, err) = Cli("run", "spectral-tail", "--quick", "--out", outDir, "--set", set);
        Assert.Equal(2, code);
        Assert.Single(err.Trim().Split('\n'));
        Assert.Contains(key, err);
        Assert.False(Directory.Exists(outDir));
    }

    [Fact]
    public void Spearman_uses_average_ranks()
    {
        Assert.Equal(1.0, SpectralTailClaims.Spearman([(64, 0.1), (128, 0.2), (2048, 0.9)]), 12);
        Assert.Equal(-1.0, SpectralTailClaims.Spearman([(64, 0.3), (128, 0.2), (2048, 0.1)]), 12);
        // Ranks x 1,2,3,4 against y 1.5,1.5,3,4 (a tie): Pearson of the ranks.
        double expected = ActivationStatsPearson([1, 2, 3, 4], [1.5, 1.5, 3, 4]);
        Assert.Equal(expected, SpectralTailClaims.Spearman([(1, 5), (2, 5), (3, 7), (4, 9)]), 12);
    }

    private static double ActivationStatsPearson(double[] a, double[] b) => LabelNoiseLab.Probes.ActivationStats.Pearson(a, b);
}
