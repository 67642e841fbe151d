using System.Buffers.Binary;
using System.Text;

namespace LabelNoiseLab.Tests;

/// <summary>`lnlab export features`: .npy files in NumPy's format, checked by a reader here and by numpy when present.</summary>
public sealed class ExportTests : IDisposable
{
    private readonly TempDir _temp = new("export");

    private string _dir => _temp.Path;

    public void Dispose() => _temp.Dispose();

    private const string Config = """
        name: export
        epochs: 2
        batch_size: 32
        threads: 1
        data: {name: gaussian-mixture, val_fraction: 0.2}
        noise: {kind: symmetric, rate: 0.3, seed: 5}
        model: {kind: mlp, hidden: [24, 16]}
        optim: {kind: sgd, lr: 0.1}
        """;

    private (int Code, string Out, string Err) Cli(params string[] args) => TestCli.Run(_dir, args);

    private string TrainedRun()
    {
        string config = Path.Combine(_dir, "c.yaml");
        File.WriteAllText(config, Config);
        string run = Path.Combine(_dir, "run");
        Assert.Equal(0, Cli("train", "--config", config, "--out", run).Code);
        return run;
    }

    /// <summary>A minimal independent .npy reader: header dict and raw data bytes.</summary>
    private static (string Header, byte[] Data) ReadNpy(string path)
    {
        var bytes = File.ReadAllBytes(path);
        Assert.Equal([0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y', 1, 0], bytes[..8]);
        int len = BinaryPrimitives.ReadUInt16LittleEndian(bytes.AsSpan(8));
        Assert.Equal(0, (10 + len) % 64);
        string header = Encoding.ASCII.GetString(bytes, 10, len);
        Assert.EndsWith("\n", header);
        return (header, bytes[(10 + len)..]);
    }

    [Fact]
    public void Features_labels_and_noise_mask_are_written_as_npy()
    {
        string run = TrainedRun();
        var (code, stdout, stderr) = Cli("export", "features", run, "--layer", "layers.1");
        Assert.True(code == 0, stderr + stdout);
        string outDir = Path.Combine(run, "exports", "train");

        var (h, data) = ReadNpy(Path.Combine(outDir, "features-layers.1.npy"));
        Assert.StartsWith("{'descr': '<f4', 'fortran_order': False, 'shape': (800, 24), }", h);
        Assert.Equal(800 * 24 * 4, data.Length);
        var values = new float[800 * 24];
        Buffer.BlockCopy(data, 0, values, 0, data.Length);
        Assert.All(values, v => Assert.True(v >= 0f)); // layers.1 is the first ReLU
        Assert.Contains(values, v => v > 0f);

        var (lh, labels) = ReadNpy(Path.Combine(outDir, "labels.npy"));
        var (th, trueLabels) = ReadNpy(Path.Combine(outDir, "true_labels.npy"));
        var (mh, mask) = ReadNpy(Path.Combine(outDir, "noise_mask.npy"));
        Assert.StartsWith("{'descr': '<i4', 'fortran_order': False, 'shape': (800,), }", lh);
        Assert.StartsWith("{'descr': '<i4', 'fortran_order': False, 'shape': (800,), }", th);
        Assert.StartsWith("{'descr': '|b1', 'fortran_order': False, 'shape': (800,), }", mh);
        int noisy = 0;
        for (int i = 0; i < 800; i++)
        {
            bool differs = BitConverter.ToInt32(labels, 4 * i) != BitConverter.ToInt32(trueLabels, 4 * i);
            Assert.Equal(differs, mask[i] == 1);
            noisy += mask[i];
        }
        Assert.InRange(noisy, 160, 320); // 30% symmetric noise on 800 samples

        // The head's input has the last hidden width; the test split has no noise.
        Assert.Equal(0, Cli("export", "features", run, "--layer", "features", "--split", "test").Code);
        Assert.Contains("'shape': (1000, 16)", ReadNpy(Path.Combine(run, "exports", "test", "features-features.npy")).Header);
        Assert.All(ReadNpy(Path.Combine(run, "exports", "test", "noise_mask.npy")).Data, b => Assert.Equal(0, b));
    }

    [Fact]
    public void Bad_export_input_is_one_line_exit_2()
    {
        string run = TrainedRun();
        foreach (var args in (string[][])[
            ["export", "features", run, "--layer", "layers.9"],
            ["export", "features", run, "--layer", "logits", "--split", "nope"],
            ["export", "features", _dir, "--layer", "logits"],
            ["export", "weights", run, "--layer", "logits"],
            ["export", "features", run, "--layer", "logits", "--checkpoint", "epoch-0042"]])
        {
            var (code, _, err) = Cli(args);
            Assert.Equal(2, code);
            Assert.Single(err.Trim().Split('\n'));
        }
    }

    [Fact]
    public void Python_numpy_loads_the_export_and_the_checkpoint()
    {
        MachineTools.RequirePythonWithNumpy();
        string run = TrainedRun();
        Assert.Equal(0, Cli("export", "features", run, "--layer", "logits").Code);
        string d = Path.Combine(run, "exports", "train");
        string script = $$"""
            import json, struct, numpy as np
            f = np.load('{{d}}/features-logits.npy'); y = np.load('{{d}}/labels.npy'); t = np.load('{{d}}/true_labels.npy'); m = np.load('{{d}}/noise_mask.npy')
            assert f.dtype == np.float32 and f.shape == (800, 10) and f.flags['C_CONTIGUOUS'], (f.dtype, f.shape)
            assert m.dtype == np.bool_ and (m == (y != t)).all() and y.dtype == np.int32
            raw = open('{{run}}/checkpoints/final.safetensors', 'rb').read()
            n = struct.unpack('<Q', raw[:8])[0]; h = json.loads(raw[8:8 + n])
            w = h['layers.4.weight']; a = np.frombuffer(raw[8 + n + w['data_offsets'][0]:8 + n + w['data_offsets'][1]], '<f4').reshape(w['shape'])
            assert w['dtype'] == 'F32' and list(a.shape) == [10, 16]
            print('ok', f[:, :].argmax(1)[:5])
            """;
        Assert.True(MachineTools.RunPython(["-c", script], out string output), output);
        Assert.StartsWith("ok", output);
    }
}
