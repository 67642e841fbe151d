using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using LabelNoiseLab.Experiments;
using LabelNoiseLab.RunFiles;
using LabelNoiseLab.Studies;

namespace LabelNoiseLab.Bench;

/// <summary>
/// <c>lnlab audit</c> on the first 10,000 Fashion-MNIST training images, as the peer takes them
/// (written once to a temporary .npy with labels.npy beside it and read back as data.name npy; the
/// test set likewise), 40% noise (our noise model, noise seed 1), 5 folds, no validation split,
/// standardised per feature. Models:
/// <c>mlp</c> (one hidden layer of 512, Adam lr 5e-4, batch 64, 3 epochs: few enough not to memorise the noise) and <c>linear</c>
/// (no hidden layer: multinomial logistic regression with the peer's L2, weight decay 1/(C·n) for
/// C = 0.05, 10 epochs of Adam). Prints precision, recall, F1, AP, AUROC, the estimated noise rate
/// and the seconds. Options: <c>--kind symmetric|pairflip</c>, <c>--model mlp|linear</c>,
/// <c>--set key=value</c> (repeatable). The peer: <c>/usr/bin/python3 ../shared/peers/cl_reference.py --kind KIND</c>.
/// </summary>
public static class AuditBench
{
    public static int Run(string[] args)
    {
        string kind = "symmetric", model = "mlp";
        var sets = new List<string>();
        for (int i = 0; i + 1 < args.Length; i += 2)
        {
            switch (args[i])
            {
                case "--kind":
                    kind = args[i + 1];
                    break;
                case "--model":
                    model = args[i + 1];
                    break;
                case "--set":
                    sets.Add(args[i + 1]);
                    break;
                default:
                    Console.Error.WriteLine("usage: LabelNoiseLab.Bench audit [--kind symmetric|pairflip] [--model mlp|linear] [--set key=value ...]");
                    return 2;
            }
        }
        var config = ExperimentConfig.Default with
        {
            Name = $"bench-audit-{model}-{kind}",
            DataName = "npy",
            DataValFraction = 0,
            DataNormalize = "standardize",
            NoiseKind = kind,
            NoiseRate = 0.4,
            NoiseSeed = 1,
            AuditFolds = 5,
            EvalTrainSamples = 1000,
            BatchSize = 128,
        };
        config = model == "linear"
            ? config with { ModelHidden = [], OptimKind = "adam", OptimLr = 0.001, OptimWeightDecay = 1 / (0.05 * 8000), Epochs = 10 }
            : config with { ModelHidden = [512], OptimKind = "adam", OptimLr = 0.0005, Epochs = 3, BatchSize = 64 };
        string outDir = Path.Combine(Path.GetTempPath(), "lnlab-bench-audit-" + Environment.ProcessId);
        var splits = LabelNoiseLab.Data.DataSources.Load(new LabelNoiseLab.Data.DataOptions { Name = "fashion-mnist" });
        string Write(string name, LabelNoiseLab.Data.Dataset d, int count)
        {
            string folder = Path.Combine(outDir + "-data", name);
            Directory.CreateDirectory(folder);
            Npy.Write(Path.Combine(folder, "features.npy"), d.Features.AsSpan(0, count * d.FeatureLength), count, d.FeatureLength);
            Npy.Write(Path.Combine(folder, "labels.npy"), d.Labels.AsSpan(0, count), count);
            return Path.Combine(folder, "features.npy");
        }
        config = config with { DataPath = Write("train", splits.Train, 10000), DataTestPath = Write("test", splits.Test, splits.Test.Count) };
        config = config.WithOverrides(sets);
        config.Validate();
        var clock = Stopwatch.StartNew();
        using (var dir = RunDirectory.Create(outDir, config.Name, overwrite: true))
        {
            dir.WriteConfig(config);
            dir.Publish();
            var result = Audit.Run(config, dir, new PresetContext(new ExperimentRunner(), null, _ => { }));
            RunOutcome.Record(dir, result);
            if (result.Status != RunStatus.Complete)
            {
                Console.Error.WriteLine($"audit ended {result.Status}: {result.Reason}");
                return 1;
            }
        }
        double seconds = clock.Elapsed.TotalSeconds;
        using var summary = JsonDocument.Parse(File.ReadAllText(Path.Combine(outDir, RunDirectory.SummaryFile)));
        var a = summary.RootElement.GetProperty("audit");
        string F(string key) => a.GetProperty(key).GetDouble().ToString("F4", CultureInfo.InvariantCulture);
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"model={model} kind={kind} n={a.GetProperty("samples").GetInt32()} realised={F("realised_noise_rate")} flagged={a.GetProperty("flagged").GetInt32()} est_noise_rate={F("estimated_noise_rate")}"));
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"precision={F("precision")} recall={F("recall")} f1={F("f1")} ap={F("average_precision")} auroc={F("auroc")} cv_acc_vs_true={F("cv_accuracy_true")} seconds={seconds:F1}"));
        Directory.Delete(outDir, recursive: true);
        Directory.Delete(outDir + "-data", recursive: true);
        return 0;
    }
}
