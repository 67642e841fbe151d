using System.Diagnostics;
using System.Globalization;
using System.Text;
using LabelNoiseLab.RunFiles;
using LabelNoiseLab.Training;
using LabelNoiseLab.Experiments;

namespace LabelNoiseLab.Studies;

/// <summary>
/// The <c>two-phase-fmnist</c> preset: an online-SGD variant inspired by the label-noise SGD
/// paper on Fashion-MNIST (not the paper's own setting: that is <see cref="TwoPhasePaperPreset"/>). A two-layer net (Dense 512 → erf → Dense 10, flattened images), MSE on one-hot
/// labels, trained by the general trainer twice from the same initialisation and batch order:
/// <c>sgd</c> (no label noise) and <c>label_noise_sgd</c> (classification label noise, each
/// label redrawn with probability <c>label_noise.p</c> at every step). The settings are one
/// trainer config (experiments/two-phase-fmnist.yaml; <c>--set</c> overrides any key); the
/// <c>sgd</c> run is that config with <c>label_noise.kind=none</c>.
/// Writes, in the preset's run directory: <c>config.yaml</c> (the label_noise_sgd config),
/// <c>sgd/</c> and <c>label_noise_sgd/</c> (complete trainer runs, with <c>neuron_norm_*</c>
/// metrics columns), <c>dynamics.csv</c> (both methods, <see cref="Header"/>) and
/// <c>summary.json</c> (per method), <c>metrics.csv</c> (both methods' rows, <c>method_id</c> =
/// index in <see cref="Methods"/>); the caller marks the run complete.
/// </summary>
public sealed class TwoPhaseFmnistPreset : IPreset
{
    /// <summary>The methods run, in order (plain SGD, then label-noise SGD); <c>metrics.csv</c>'s <c>method_id</c> indexes this list.</summary>
    public static IReadOnlyList<string> Methods { get; } = ["sgd", "label_noise_sgd"];

    /// <inheritdoc/>
    public string Name => "two-phase-fmnist";

    /// <inheritdoc/>
    public string Description => "plain vs label-noise SGD on Fashion-MNIST";

    /// <summary>The built-in config, <c>--quick</c>'s overrides, then <c>--set</c> (any config key), checked.</summary>
    public PresetPlan Prepare(PresetRequest request)
    {
        ArgumentNullException.ThrowIfNull(request);
        var config = Configure(TwoPhaseFmnistConfig.Text, TwoPhaseFmnistConfig.Source, request.Quick, request.Sets);
        return new PresetPlan(config.Name, (dir, context) => Run(config, dir, context, request.Quick));
    }

    /// <summary>The CI version (<c>--quick</c>): 2,000 training samples, 3 epochs, under a minute.</summary>
    public static IReadOnlyList<string> QuickSets { get; } = ["data.subset=2000", "epochs=3", "eval_every_steps=0", "name=two-phase-fmnist-quick"];

    /// <summary>The header of <c>dynamics.csv</c>: one row per method and evaluation, with the first layer's neuron-norm mean and spread.</summary>
    public const string Header = "method,epoch,step,train_loss,train_acc,test_loss,test_acc,neuron_norm_mean,neuron_norm_std";

    /// <summary>The preset's config: the base YAML, then the quick overrides, then the user's; validated.</summary>
    public static ExperimentConfig Configure(string yaml, string source, bool quick, IEnumerable<string> sets)
    {
        var config = ExperimentConfig.Parse(yaml, source, [.. quick ? QuickSets : [], .. sets]);
        if (config.LabelNoiseKind != "classification")
            throw new ConfigException("label_noise.kind", $"the two-phase-fmnist preset compares plain SGD with classification label noise; got '{config.LabelNoiseKind}'");
        if (config.ModelKind != "mlp" || config.ModelHidden.Count == 0)
            throw new ConfigException("model.kind", "the two-phase-fmnist preset needs an mlp with at least one hidden layer (its first-layer neurons are measured)");
        return config;
    }

    /// <summary>Runs both methods as sub-runs of <paramref name="dir"/> (one folder each) from <paramref name="config"/> (see <see cref="Configure"/>), then writes <c>dynamics.csv</c>, <c>metrics.csv</c> and <c>summary.json</c>; returns how it ended.</summary>
    public static RunResult Run(ExperimentConfig config, RunDirectory dir, PresetContext context, bool quick = false)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(dir);
        ArgumentNullException.ThrowIfNull(context);
        var log = context.Log;
        var clock = Stopwatch.StartNew();
        dir.WriteConfig(config);
        var csv = new StringBuilder(Header).Append('\n');
        // The preset's own metrics.csv: both methods' evaluations, method_id indexing Methods.
        var metrics = dir.OpenMetrics(["method_id", "neuron_norm_mean", "neuron_norm_std"]);
        var methods = new Dictionary<string, object?>();
        var finalRatio = new Dictionary<string, double>();
        for (int mi = 0; mi < Methods.Count; mi++)
        {
            string method = Methods[mi];
            var methodConfig = config with
            {
                Name = method,
                LabelNoiseKind = method == "sgd" ? "none" : config.LabelNoiseKind,
                ProbeNeuronNorms = true,
            };
            var methodClock = Stopwatch.StartNew();
            var run = SubRun.Execute(Path.Combine(dir.Path, method), methodConfig, context.Runner, context.ForSubRun(new LogProgress(method, log)));
            if (run.Status != RunStatus.Complete)
            {
                dir.WriteText("dynamics.csv", csv.ToString());
                return run.Result with { Reason = $"{method}: {run.Result.Reason}" };
            }

            // What the trainer measured is the source: its summary (initial norms) and metrics rows.
            var report = run.Report ?? throw new InvalidOperationException($"{method}: the runner reported no measurements");
            double initialMean = report.Number("neuron_norms.initial_mean");
            double initialStd = report.Number("neuron_norms.initial_std");
            csv.Append(CultureInfo.InvariantCulture, $"{method},0,0,,,,,{F(initialMean)},{F(initialStd)}\n");
            var rows = report.Rows;
            foreach (var r in rows)
            {
                metrics.Append(r with
                {
                    Extra = new Dictionary<string, double>
                    {
                        ["method_id"] = mi,
                        ["neuron_norm_mean"] = r.Extra!["neuron_norm_mean"],
                        ["neuron_norm_std"] = r.Extra!["neuron_norm_std"],
                    },
                });
            }
            foreach (var r in rows)
                csv.Append(CultureInfo.InvariantCulture, $"{method},{r.Epoch},{r.Step},{F(r.TrainLoss)},{F(r.TrainAcc)},{F(r.TestLoss)},{F(r.TestAcc)},{F(r.Extra!["neuron_norm_mean"])},{F(r.Extra!["neuron_norm_std"])}\n");
            var last = rows[^1];
            var min = rows.MinBy(r => r.Extra!["neuron_norm_mean"])!;
            double lastMean = last.Extra!["neuron_norm_mean"];
            finalRatio[method] = lastMean / initialMean;
            methods[method] = new Dictionary<string, object?>
            {
                ["initial_neuron_norm_mean"] = initialMean,
                ["initial_neuron_norm_std"] = initialStd,
                ["final_neuron_norm_mean"] = lastMean,
                ["final_neuron_norm_std"] = last.Extra!["neuron_norm_std"],
                ["final_neuron_norm_ratio"] = lastMean / initialMean,
                ["min_neuron_norm_ratio"] = Math.Min(1, min.Extra!["neuron_norm_mean"] / initialMean),
                ["min_neuron_norm_step"] = min.Extra!["neuron_norm_mean"] < initialMean ? min.Step : 0,
                ["final_train_loss"] = last.TrainLoss,
                ["final_train_acc"] = last.TrainAcc,
                ["final_test_loss"] = last.TestLoss,
                ["final_test_acc"] = last.TestAcc,
                ["best_test_acc"] = rows.Max(r => r.TestAcc),
                ["steps"] = last.Step,
                ["seconds"] = methodClock.Elapsed.TotalSeconds,
            };
            log(string.Create(CultureInfo.InvariantCulture,
                $"{method}: {last.Step} steps in {methodClock.Elapsed.TotalSeconds:F1} s, neuron norm mean {initialMean:F4} -> {lastMean:F4} (ratio {lastMean / initialMean:F4}), test acc {last.TestAcc:F4}, test loss {last.TestLoss:F4}"));
            dir.WriteText("dynamics.csv", csv.ToString());
        }

        double relative = finalRatio["label_noise_sgd"] / finalRatio["sgd"];
        dir.WriteSummary(new Dictionary<string, object?>
        {
            ["preset"] = "two-phase-fmnist",
            ["quick"] = quick,
            ["method_ids"] = Methods.ToList(),
            ["train_samples"] = config.DataSubset,
            ["epochs"] = config.Epochs,
            ["label_noise_p"] = config.LabelNoiseP,
            ["seconds"] = clock.Elapsed.TotalSeconds,
            ["methods"] = methods,
            // < 1: the first-layer neurons ended smaller under label noise than under plain SGD.
            ["final_norm_ratio_label_noise_over_sgd"] = relative,
            ["label_noise_shrinks_neuron_norms"] = finalRatio["label_noise_sgd"] < 1 && relative < 1,
            ["claims"] = PaperClaims(finalRatio["label_noise_sgd"], relative, quick),
            ["notes"] = "neuron norms = ‖w_i‖ over the rows of the first Linear weight (layers.0.weight); train_* are on the training "
                + "set's given labels (clean unless noise.kind is set: per-step label noise never changes them), on eval.train_samples samples.",
        });
        return RunResult.Complete;
    }

    /// <summary>
    /// The label-noise SGD paper's phase I on this setting (one seed): under label noise the first
    /// layer's neurons shrink (the model leaves the lazy regime), more than under plain SGD from the
    /// same start. Both read the last evaluation's mean neuron norm over its initial value.
    /// </summary>
    internal static List<Dictionary<string, object?>> PaperClaims(double labelNoiseRatio, double relative, bool quick) =>
    [
        Claims.Claim("label_noise_norms_shrink", "under label-noise SGD the first layer's mean neuron norm ends below its start (phase I: the weights shrink)",
            labelNoiseRatio, "< 1 (final/initial mean neuron norm, label_noise_sgd)", labelNoiseRatio < 1, quick),
        Claims.Claim("label_noise_shrinks_more_than_sgd", "label noise shrinks the first-layer neurons more than plain SGD from the same start (plain SGD stays nearer its lazy initialisation)",
            relative, "< 1 (final/initial norm ratio of label_noise_sgd over that of sgd)", relative < 1, quick),
    ];

    private static string F(double v) => double.IsNaN(v) ? "" : v.ToString("R", CultureInfo.InvariantCulture);

    /// <summary>One line per evaluation, prefixed with the method.</summary>
    private sealed class LogProgress(string method, Action<string> log) : IProgressSink
    {
        public void OnRunStart(int totalEpochs, int stepsPerEpoch)
        {
        }

        public void OnStep(int epoch, long step, double loss)
        {
        }

        public void OnEvaluation(MetricsRow row) => log(string.Create(CultureInfo.InvariantCulture,
            $"{method} epoch {row.Epoch} step {row.Step}: train_loss {row.TrainLoss:F4} test_acc {row.TestAcc:F4} neuron_norm_mean {row.Extra?["neuron_norm_mean"]:F4}"));

        public void OnMessage(string message) => log($"{method}: {message}");
    }
}

/// <summary>The two-phase-fmnist preset's config (experiments/two-phase-fmnist.yaml, embedded at build time).</summary>
internal static class TwoPhaseFmnistConfig
{
    public const string Source = "two-phase-fmnist.yaml (built in)";

    public static string Text { get; } = Read();

    private static string Read()
    {
        using var stream = typeof(TwoPhaseFmnistConfig).Assembly.GetManifestResourceStream("LabelNoiseLab.Studies.two-phase-fmnist.yaml")
            ?? throw new InvalidOperationException("two-phase-fmnist.yaml is not embedded in LabelNoiseLab");
        using var reader = new StreamReader(stream);
        return reader.ReadToEnd();
    }
}
