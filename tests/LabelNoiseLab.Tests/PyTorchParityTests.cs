using System.Globalization;
using LabelNoiseLab.Autograd;
using LabelNoiseLab.Nn;
using LabelNoiseLab.RunFiles;
using LabelNoiseLab.Tensors;

namespace LabelNoiseLab.Tests;

/// <summary>
/// The convolutional architectures against the same module trees built in PyTorch: our state
/// (parameters and BatchNorm buffers, under PyTorch's names) is saved as safetensors, loaded
/// into the PyTorch model with load_state_dict(strict=True), and the logits of one batch are
/// compared, in evaluation mode (running statistics) and, where no dropout is drawn, in
/// training mode (batch statistics).
/// </summary>
public class PyTorchParityTests(ITestOutputHelper output) : IDisposable
{
    private const double Tolerance = 1e-4;
    private readonly TempDir _dir = new();

    public void Dispose()
    {
        _dir.Dispose();
        GC.SuppressFinalize(this);
    }

    private const string Script = """
        import json, struct, sys, numpy as np, torch, torch.nn as nn, torch.nn.functional as F
        path, kind, channels, size, classes, depth, width, normkind = sys.argv[1:9]
        channels, size, classes, depth, width = int(channels), int(size), int(classes), int(depth), float(width)
        raw = open(path, 'rb').read()
        (n,) = struct.unpack('<Q', raw[:8])
        header = json.loads(raw[8:8 + n])
        data = raw[8 + n:]
        tensors = {}
        for name, e in header.items():
            if name == '__metadata__':
                continue
            begin, end = e['data_offsets']
            tensors[name] = torch.from_numpy(np.frombuffer(data[begin:end], dtype='<f4').reshape(e['shape']).copy())

        def groups(c):
            for g in range(max(1, min(32, c // 2)), 1, -1):
                if c % g == 0:
                    return g
            return 1

        def norm(c):
            return nn.BatchNorm2d(c) if normkind == 'batch' else nn.GroupNorm(groups(c), c)

        def scaled(c):
            return max(1, int(np.floor(c * width + 0.5)))

        class BasicBlock(nn.Module):
            def __init__(self, i, o, stride):
                super().__init__()
                self.conv1 = nn.Conv2d(i, o, 3, stride, 1, bias=False)
                self.bn1 = norm(o)
                self.conv2 = nn.Conv2d(o, o, 3, 1, 1, bias=False)
                self.bn2 = norm(o)
                self.shortcut = nn.Sequential()
                if stride != 1 or i != o:
                    self.shortcut = nn.Sequential(nn.Conv2d(i, o, 1, stride, bias=False), norm(o))
            def forward(self, x):
                out = F.relu(self.bn1(self.conv1(x)))
                out = self.bn2(self.conv2(out))
                return F.relu(out + self.shortcut(x))

        class ResNet(nn.Module):
            def __init__(self):
                super().__init__()
                w = [scaled(16), scaled(32), scaled(64)]
                blocks = (depth - 2) // 6
                self.conv1 = nn.Conv2d(channels, w[0], 3, 1, 1, bias=False)
                self.bn1 = norm(w[0])
                i = w[0]
                for s in range(3):
                    layers = []
                    for b in range(blocks):
                        layers.append(BasicBlock(i, w[s], 2 if b == 0 and s > 0 else 1))
                        i = w[s]
                    setattr(self, 'layer%d' % (s + 1), nn.Sequential(*layers))
                self.linear = nn.Linear(w[2], classes)
            def forward(self, x):
                out = F.relu(self.bn1(self.conv1(x)))
                out = self.layer3(self.layer2(self.layer1(out)))
                return self.linear(F.adaptive_avg_pool2d(out, 1).flatten(1))

        class CNN9(nn.Module):  # the Co-teaching reference network
            def __init__(self):
                super().__init__()
                c = [channels] + [scaled(v) for v in (128, 128, 128, 256, 256, 256, 512, 256, 128)]
                for k in range(9):
                    setattr(self, 'c%d' % (k + 1), nn.Conv2d(c[k], c[k + 1], 3, 1, 1 if k < 6 else 0))
                self.l_c1 = nn.Linear(c[9], classes)
                for k in range(9):
                    setattr(self, 'bn%d' % (k + 1), norm(c[k + 1]))
            def forward(self, h):
                for k in range(9):
                    h = F.leaky_relu(getattr(self, 'bn%d' % (k + 1))(getattr(self, 'c%d' % (k + 1))(h)), negative_slope=0.01)
                    if k in (2, 5):
                        h = F.dropout2d(F.max_pool2d(h, kernel_size=2, stride=2), p=0.25, training=self.training)
                h = F.avg_pool2d(h, kernel_size=h.shape[2]).view(h.size(0), h.size(1))
                return self.l_c1(h)

        model = ResNet() if kind == 'resnet' else CNN9()
        state = {k: (v.long().reshape(()) if k.endswith('num_batches_tracked') else v) for k, v in tensors.items() if not k.startswith('test.')}
        model.load_state_dict(state, strict=True)
        x = tensors['test.x'].reshape(-1, channels, size, size)
        with torch.no_grad():
            model.eval()
            print('eval', float((model(x) - tensors['test.eval_logits']).abs().max()), float(tensors['test.eval_logits'].abs().max()))
            if 'test.train_logits' in tensors:
                model.train()
                print('train', float((model(x) - tensors['test.train_logits']).abs().max()), float(tensors['test.train_logits'].abs().max()))
        """;

    [Theory]
    [InlineData("resnet", 1, 28, 20, 0.5, "batch")]
    [InlineData("resnet", 3, 32, 8, 0.25, "group")]
    [InlineData("cnn9", 3, 32, 0, 0.25, "batch")]
    [InlineData("cnn9", 1, 28, 0, 0.125, "group")]
    public void Logits_match_the_same_architecture_in_pytorch(string kind, int channels, int size, int depth, double width, string norm)
    {
        MachineTools.RequirePythonWithTorch();
        const int classes = 10, batch = 4;
        var rng = new Rng(11);
        var normKind = norm == "batch" ? NormKind.Batch : NormKind.Group;
        Model model = kind == "resnet"
            ? new ResNet(channels, size, classes, depth, width, normKind)
            : new Cnn9(channels, size, classes, new Rng(2), width, normKind);
        Init.Apply(model, InitKind.Default, rng);
        // Norm parameters away from 1 and 0, running statistics away from their start.
        foreach (var (name, p) in model.NamedParameters())
            if (name.Contains("bn", StringComparison.Ordinal) || name.Contains("shortcut.1", StringComparison.Ordinal))
                for (int i = 0; i < p.Length; i++)
                    p[i] = (name.EndsWith("weight", StringComparison.Ordinal) ? 1f : 0f) + 0.3f * (float)rng.NextNormal();
        var tape = new Tape(recording: false);
        for (int s = 0; s < 3; s++)
        {
            tape.Reset();
            model.Forward(tape, GradCheck.Random(rng, [8, channels * size * size], 1f + s));
        }
        var x = GradCheck.Random(rng, [batch, channels * size * size]);
        var tensors = model.NamedState().Select(s => (s.Name, s.Tensor.Clone())).ToList(); // before the training forward below moves the running statistics
        model.SetTraining(false);
        tape.Reset();
        var evalLogits = model.Forward(tape, x).Clone();
        tensors.Add(("test.x", x));
        tensors.Add(("test.eval_logits", evalLogits));
        if (kind == "resnet") // cnn9 draws channel dropout in training: no common mask to compare with
        {
            model.SetTraining(true);
            tape.Reset();
            tensors.Add(("test.train_logits", model.Forward(tape, x).Clone()));
        }
        string path = Path.Combine(_dir.Path, $"{kind}.safetensors");
        Safetensors.Save(path, tensors);

        string[] args = ["-c", Script, path, kind, .. new object[] { channels, size, classes, depth, width }.Select(v => Convert.ToString(v, CultureInfo.InvariantCulture)!), norm];
        Assert.True(MachineTools.RunPython(args, out string result), result);
        output.WriteLine($"{kind} {channels}×{size}×{size} depth {depth} width {width} {norm} norm — max |ours − pytorch| (max |logit|):");
        output.WriteLine(result.TrimEnd());
        var lines = result.TrimEnd().Split('\n');
        Assert.Equal(kind == "resnet" ? 2 : 1, lines.Length);
        foreach (var line in lines)
        {
            var parts = line.Split(' ');
            double diff = double.Parse(parts[1], CultureInfo.InvariantCulture);
            Assert.True(diff < Tolerance, $"{kind} {parts[0]} mode: logits differ from PyTorch's by {diff:E2}");
        }
    }
}
