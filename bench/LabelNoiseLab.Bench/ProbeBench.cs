using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Nodes;
using LabelNoiseLab.RunFiles;
using LabelNoiseLab.Training;
using LabelNoiseLab.Experiments;
using LabelNoiseLab.Studies;

namespace LabelNoiseLab.Bench;

/// <summary>
/// What the activation probe costs: MLP7 of the double-descent preset (6 × 512, ReLU) trained with
/// Adam on a Fashion-MNIST subset with 30% symmetric noise, the probe off and on (every epoch,
/// <c>probe.set_size</c>), runs alternated to share the machine's load fairly. Prints the median
/// training seconds, the probe's own seconds (it runs inside the evaluation, not the training
/// clock), the probe as a share of training time, and the whole-run wall time both ways.
/// Options: <c>--epochs N --subset N --set-size N --reps N</c>.
/// </summary>
public static class ProbeBench
{
    public static int Run(string[] args)
    {
        int epochs = 3, subset = 4000, reps = 3;
        int? setSize = null;
        for (int i = 0; i + 1 < args.Length; i += 2)
        {
            int v = int.Parse(args[i + 1], CultureInfo.InvariantCulture);
            switch (args[i])
            {
                case "--epochs": epochs = v; break;
                case "--subset": subset = v; break;
                case "--set-size": setSize = v; break;
                case "--reps": reps = v; break;
                default:
                    Console.Error.WriteLine("usage: LabelNoiseLab.Bench activation-probe [--epochs N] [--subset N] [--set-size N] [--reps N]");
                    return 2;
            }
        }
        var baseConfig = DoubleDescentPreset.BaseConfig(quick: false) with
        {
            Name = "mlp7",
            ModelHidden = DoubleDescentPreset.AllModels(quick: false)[^1].Hidden,
            Epochs = epochs,
            DataSubset = subset,
            ProbePhases = false,
        };
        if (setSize is int s)
            baseConfig = baseConfig with { ProbeSetSize = s };
        baseConfig.Validate();
        string root = Directory.CreateTempSubdirectory("lnlab-probe-bench-").FullName;
        var off = new List<(double Train, double Wall)>();
        var on = new List<(double Train, double Wall, double Probe, double Forward)>();
        try
        {
            for (int rep = 0; rep < reps; rep++)
            {
                off.Add(Measure(baseConfig with { ProbeActivationsEvery = 0 }, Path.Combine(root, $"off{rep}"), out _, out _));
                var r = Measure(baseConfig, Path.Combine(root, $"on{rep}"), out double probe, out double forward);
                on.Add((r.Train, r.Wall, probe, forward));
            }
        }
        finally
        {
            Directory.Delete(root, recursive: true);
        }
        static double Median(IEnumerable<double> xs)
        {
            var a = xs.Order().ToArray();
            return a.Length % 2 == 1 ? a[a.Length / 2] : 0.5 * (a[a.Length / 2 - 1] + a[a.Length / 2]);
        }
        double trainOff = Median(off.Select(o => o.Train)), trainOn = Median(on.Select(o => o.Train));
        double wallOff = Median(off.Select(o => o.Wall)), wallOn = Median(on.Select(o => o.Wall));
        double probeSeconds = Median(on.Select(o => o.Probe));
        double forwardSeconds = Median(on.Select(o => o.Forward));
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"activation-probe mlp7 [{string.Join(",", baseConfig.ModelHidden)}] subset={subset} epochs={epochs} probe_set={baseConfig.ProbeSetSize} reps={reps} (probes: initialisation + every epoch)"));
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"training_s off={trainOff:F2} on={trainOn:F2}  probe_s={probeSeconds:F3} ({probeSeconds / (epochs + 1) * 1000:F0} ms per probe, forward pass {100 * forwardSeconds / probeSeconds:F0}% of it)  probe/training={100 * probeSeconds / trainOn:F1}%"));
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"run_wall_s off={wallOff:F2} on={wallOn:F2}  wall overhead={100 * (wallOn - wallOff) / wallOff:F1}%"));
        return 0;
    }

    private static (double Train, double Wall) Measure(ExperimentConfig config, string path, out double probeSeconds, out double forwardSeconds)
    {
        var dir = RunDirectory.Create(path, config.Name);
        dir.WriteConfig(config);
        var clock = Stopwatch.StartNew();
        var result = new ExperimentRunner().Run(config, dir, new RunContext(null, NullProgressSink.Instance));
        double wall = clock.Elapsed.TotalSeconds;
        if (result.Status != RunStatus.Complete)
            throw new InvalidOperationException($"bench run ended {result.Status}: {result.Reason}");
        var summary = JsonNode.Parse(File.ReadAllText(dir.FilePath(RunDirectory.SummaryFile)))!;
        probeSeconds = summary["activations"]?["seconds"]?.GetValue<double>() ?? 0;
        forwardSeconds = summary["activations"]?["seconds_forward"]?.GetValue<double>() ?? 0;
        return (summary["seconds_training"]!.GetValue<double>(), wall);
    }
}
