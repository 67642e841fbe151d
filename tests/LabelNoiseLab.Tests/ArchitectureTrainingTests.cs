using LabelNoiseLab.RunFiles;

namespace LabelNoiseLab.Tests;

/// <summary>
/// `lnlab train` with the convolutional architectures on a tiny 28×28×1 IDX set: a run completes
/// and its final checkpoint holds the BatchNorm buffers; a run cut after an epoch checkpoint
/// resumes to the same metrics and the same final bytes (running statistics and the channel
/// dropout generator restored); bad architecture input is one line, exit 2.
/// </summary>
public sealed class ArchitectureTrainingTests : IDisposable
{
    private readonly DataTestFiles _data = new();
    private readonly TempDir _temp = new("arch");

    public ArchitectureTrainingTests()
    {
        Write("train", 48, 1);
        Write("t10k", 16, 2);

        void Write(string prefix, int n, int seed)
        {
            var labels = Enumerable.Range(0, n).Select(i => (byte)(i % 10)).ToArray();
            _data.Write(prefix + "-images-idx3-ubyte", DataTestFiles.IdxImages(DataTestFiles.Pixels(n * 28 * 28, seed), n, 28, 28));
            _data.Write(prefix + "-labels-idx1-ubyte", DataTestFiles.IdxLabels(labels));
        }
    }

    public void Dispose()
    {
        _data.Dispose();
        _temp.Dispose();
    }

    private static string Config(string model, int epochs = 1, string extra = "") => $$"""
        name: arch
        seed: 4
        epochs: {{epochs}}
        batch_size: 16
        checkpoint_every: 1
        threads: 1
        data: {name: mnist}
        noise: {kind: symmetric, rate: 0.2, seed: 1}
        model: {{model}}
        optim: {kind: sgd, lr: 0.05, momentum: 0.9}
        {{extra}}
        """;

    private const string ResNet = "{kind: resnet, depth: 8, width: 0.25}";
    private const string Cnn9 = "{kind: cnn9, width: 0.125}";
    private const string Vit = "{kind: vit, patch: 7, dim: 16, vit_depth: 1, heads: 2, mlp_ratio: 2}";

    [Theory]
    [InlineData(Vit)]
    [InlineData("{kind: vit, patch: 4, dim: 8, vit_depth: 1, heads: 2, mlp_ratio: 1, pool: mean}")]
    public void A_vit_run_completes(string model)
    {
        string dir = _temp.Sub("vit");
        var (code, stdout, stderr) = Train(Config(model, epochs: 2), dir);
        Assert.True(code == 0, stderr + stdout);
        Assert.Equal(RunStatus.Complete, RunDirectory.ReadStatus(dir)!.Value.Status);
        var final = Safetensors.Load(Path.Combine(dir, "checkpoints", "final.safetensors"));
        Assert.Contains("blocks.0.attn.qkv.weight", final.Tensors.Keys);
        Assert.Contains("pos_embed", final.Tensors.Keys);
        Assert.Equal(model.Contains("mean", StringComparison.Ordinal), !final.Tensors.ContainsKey("cls_token"));
    }

    private (int Code, string Out, string Err) Train(string yaml, string outDir) =>
        TestCli.Train(_temp.Path, yaml, "--out", outDir, "--data-dir", _data.Dir);

    [Theory]
    [InlineData(ResNet)]
    [InlineData(Cnn9)]
    [InlineData(Vit)]
    public void A_batch_norm_run_resumes_exactly_from_an_epoch_checkpoint(string model)
    {
        string whole = _temp.Sub("whole");
        var (code, stdout, stderr) = Train(Config(model, epochs: 3), whole);
        Assert.True(code == 0, stderr + stdout);
        var final = Safetensors.Load(Path.Combine(whole, "checkpoints", "final.safetensors"));
        if (model != Vit) // vit has no BatchNorm: only its parameters (cls_token [1, 1, D] among them) are resumed
        {
            Assert.Contains(final.Tensors.Keys, k => k.EndsWith("running_mean", StringComparison.Ordinal));
            var tracked = final.Tensors.First(t => t.Key.EndsWith("num_batches_tracked", StringComparison.Ordinal)).Value;
            Assert.Equal(3 * 3, tracked[0]); // 48 samples in batches of 16, 3 epochs
        }

        string cut = _temp.Sub("cut");
        CopyDirectory(whole, cut);
        foreach (var name in (string[])["epoch-0002", "epoch-0003", "final"])
            File.Delete(Path.Combine(cut, "checkpoints", name + ".safetensors"));
        File.WriteAllText(Path.Combine(cut, "status"), "failed\ninterrupted at step 3\n");
        (code, stdout, stderr) = TestCli.Run(_temp.Path, "resume", cut, "--data-dir", _data.Dir);
        Assert.True(code == 0, stderr + stdout);
        Assert.Equal(ResumeTests.MetricsWithoutTiming(whole), ResumeTests.MetricsWithoutTiming(cut));
        Assert.Equal(File.ReadAllBytes(Path.Combine(whole, "checkpoints", "final.safetensors")),
            File.ReadAllBytes(Path.Combine(cut, "checkpoints", "final.safetensors")));
        Assert.Equal(RunStatus.Complete, RunDirectory.ReadStatus(cut)!.Value.Status);
    }

    [Theory]
    [InlineData("{kind: resnet, depth: 10}", "", "model.depth", "6n + 2")]
    [InlineData("{kind: cnn9}", "", "model.kind", "square images")]
    [InlineData("{kind: mlp, hidden: [8], norm: group}", "", "model.norm", "resnet and cnn9")]
    [InlineData(ResNet, "prune: {kind: truncate}", "prune.kind", "model.norm: group")]
    [InlineData("{kind: vit}", "", "model.kind", "square images")]
    [InlineData("{kind: vit, patch: 5}", "", "model.patch", "does not divide the image side 28")]
    [InlineData("{kind: vit, dim: 30, heads: 4}", "", "model.heads", "do not divide model.dim 30")]
    [InlineData("{kind: resnet, depth: 8, heads: 2}", "", "model.heads", "applies to model.kind vit only")]
    [InlineData("{kind: mlp, hidden: [8], pool: mean}", "", "model.pool", "applies to model.kind vit only")]
    public void Bad_architecture_input_is_one_line_exit_2(string model, string extra, string key, string says)
    {
        string yaml = Config(model, extra: extra);
        if (key == "model.kind")
            yaml = yaml.Replace("data: {name: mnist}", "data: {name: gaussian-mixture}", StringComparison.Ordinal);
        var (code, stdout, stderr) = Train(yaml, _temp.Sub("bad"));
        Assert.True(code == 2, $"exit {code}: {stderr}{stdout}");
        var lines = stderr.TrimEnd().Split('\n');
        Assert.Single(lines);
        Assert.Contains(key, lines[0]);
        Assert.Contains(says, lines[0]);
    }

    /// <summary>Gradient pruning and gradient-norm detection (per-sample gradients in the backward) run on vit and on GroupNorm resnet/cnn9.</summary>
    [Theory]
    [InlineData(Vit, "prune: {kind: truncate}")]
    [InlineData(Vit, "detection: {enabled: true}")]
    [InlineData("{kind: resnet, depth: 8, width: 0.25, norm: group}", "prune: {kind: soft}")]
    [InlineData("{kind: cnn9, width: 0.125, norm: group}", "detection: {enabled: true}")]
    public void Per_sample_gradient_methods_run_on_vit_and_group_norm_models(string model, string extra)
    {
        string dir = _temp.Sub("per-sample");
        var (code, stdout, stderr) = Train(Config(model, extra: extra), dir);
        Assert.True(code == 0, stderr + stdout);
        Assert.Equal(RunStatus.Complete, RunDirectory.ReadStatus(dir)!.Value.Status);
        var metrics = File.ReadAllLines(Path.Combine(dir, "metrics.csv"));
        var header = metrics[0].Split(',');
        int col = Array.FindIndex(header, h => h.StartsWith("grad_norm", StringComparison.Ordinal));
        Assert.True(col >= 0, "no grad_norm column in metrics.csv: " + metrics[0]);
        var last = metrics[^1].Split(',');
        Assert.True(double.TryParse(last[col], System.Globalization.CultureInfo.InvariantCulture, out double norm) && norm > 0,
            $"{header[col]} = '{last[col]}'");
    }

    /// <summary>
    /// Detection on a BatchNorm model (in training mode): every score but the gradient norm, which
    /// needs per-sample gradients; summary.json says why it is missing; suspects by the loss.
    /// </summary>
    [Theory]
    [InlineData(ResNet)]
    [InlineData(Cnn9)]
    public void Detection_on_a_batch_norm_model_ranks_every_score_but_the_gradient_norm(string model)
    {
        string dir = _temp.Sub("bn-detection");
        var (code, stdout, stderr) = Train(Config(model, epochs: 2, extra: "detection: {enabled: true, suspects: 3}"), dir);
        Assert.True(code == 0, stderr + stdout);
        var detection = File.ReadAllLines(Path.Combine(dir, "detection.csv"));
        Assert.Equal(["loss", "margin", "self_confidence", "aum", "forgetting"], detection[1..].Select(l => l.Split(',')[2]).Distinct());
        Assert.Equal(1 + 2 * 5, detection.Length);
        using var summary = System.Text.Json.JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "summary.json")));
        var robust = summary.RootElement.GetProperty("robust");
        Assert.Contains("BatchNorm", robust.GetProperty("detection_grad_norm").GetString(), StringComparison.Ordinal);
        Assert.False(robust.TryGetProperty("detection_auroc_grad_norm", out _));
        Assert.True(robust.TryGetProperty("detection_auroc_aum", out _));
        var ledger = DetectionDynamicsTests.ReadWithParquetNet(Path.Combine(dir, "ledger.parquet"));
        Assert.Equal(2 * 48, ledger["grad_norm"].Length);
        Assert.All(ledger["grad_norm"], bits => Assert.True(float.IsNaN(BitConverter.Int32BitsToSingle((int)bits))));
        Assert.All(ledger["loss"], bits => Assert.True(float.IsFinite(BitConverter.Int32BitsToSingle((int)bits))));
        Assert.Equal(4, File.ReadAllLines(Path.Combine(dir, "suspects.csv")).Length);
    }

    /// <summary>
    /// The spectral probe (pooled penultimate features) and the activation probe (each block's
    /// output: resnet's stem and residual blocks, cnn9's nine conv units, each vit block's residual
    /// stream, one row per sample) run on every architecture.
    /// </summary>
    [Theory]
    [InlineData(ResNet, 4, 16)]             // stem + 3 blocks (depth 8); penultimate 64 × 0.25 channels
    [InlineData(Cnn9, 9, 16)]               // c1..c9; 128 × 0.125
    [InlineData(Vit, 1, 16)]                // one block; dim 16
    public void Spectral_and_activation_probes_run_on_every_architecture(string model, int layers, int features)
    {
        string dir = _temp.Sub("probes");
        var (code, stdout, stderr) = Train(Config(model, extra: "probe: {spectral_every: 1, activations_every: 1, set_size: 20}"), dir);
        Assert.True(code == 0, stderr + stdout);
        var acts = File.ReadAllLines(Path.Combine(dir, "activations.csv"));
        var header = acts[0].Split(',');
        int layer = Array.IndexOf(header, "layer"), max = Array.IndexOf(header, "max_abs_activation"), epoch = Array.IndexOf(header, "epoch");
        var rows = acts.Skip(1).Select(l => l.Split(',')).ToList();
        Assert.Equal(Enumerable.Range(0, layers), rows.Where(r => r[epoch] == "1").Select(r => int.Parse(r[layer], System.Globalization.CultureInfo.InvariantCulture)));
        Assert.All(rows, r => Assert.True(double.Parse(r[max], System.Globalization.CultureInfo.InvariantCulture) > 0, string.Join(",", r)));
        var spectral = File.ReadAllLines(Path.Combine(dir, "spectral_epochs.csv"));
        var sh = spectral[0].Split(',');
        int se = Array.IndexOf(sh, "epoch"), d = Array.IndexOf(sh, "d"), rank = Array.IndexOf(sh, "effective_rank");
        var srows = spectral.Skip(1).Select(l => l.Split(',')).ToList();
        Assert.Equal(["0", "1"], srows.Select(r => r[se]).Distinct());
        Assert.Equal(features, srows.Max(r => int.Parse(r[d], System.Globalization.CultureInfo.InvariantCulture)));
        Assert.All(srows, r => Assert.True(double.Parse(r[rank], System.Globalization.CultureInfo.InvariantCulture) > 1, string.Join(",", r)));
    }

    private static void CopyDirectory(string from, string to)
    {
        Directory.CreateDirectory(to);
        foreach (var file in Directory.GetFiles(from))
            File.Copy(file, Path.Combine(to, Path.GetFileName(file)));
        foreach (var dir in Directory.GetDirectories(from))
            CopyDirectory(dir, Path.Combine(to, Path.GetFileName(dir)));
    }
}
