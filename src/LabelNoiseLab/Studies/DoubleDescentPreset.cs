using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using LabelNoiseLab.RunFiles;
using LabelNoiseLab.Training;
using LabelNoiseLab.Experiments;

namespace LabelNoiseLab.Studies;

/// <summary>One network of the double-descent preset: its name (sub-directory) and hidden widths.</summary>
public sealed record DoubleDescentModel(string Name, IReadOnlyList<int> Hidden);

/// <summary>The resolved preset: the config every model shares and the models to train.</summary>
public sealed record DoubleDescentSettings(ExperimentConfig Base, IReadOnlyList<DoubleDescentModel> Models, bool Quick)
{
    /// <summary>The full config of one model: the shared one with its widths and name.</summary>
    public ExperimentConfig For(DoubleDescentModel m) => Base with { Name = m.Name, ModelHidden = m.Hidden };
}

/// <summary>
/// The <c>double-descent</c> preset (epoch-wise double descent under label noise, Kubo et al.
/// 2026): fully connected ReLU networks MLP3, MLP5, MLP7 (2, 4, 6 hidden layers, wider as they
/// get deeper) trained with Adam and softmax cross-entropy on a Fashion-MNIST training subset with
/// 30% symmetric label noise, long enough for the largest to fit the noisy labels. Each model is
/// an ordinary trainer run (<see cref="Trainer"/>) in its own sub-directory with the activation
/// probe and phase detection switched on; the preset's own folder gets a combined metrics.csv
/// (with a <c>model_id</c> column) and a summary.json comparing the models.
/// <c>--set</c> takes any experiment key (applied to every model; not <c>model.hidden</c>) and
/// <c>double_descent.models=mlp3,mlp7</c> to train only some of them.
/// </summary>
public sealed class DoubleDescentPreset : IPreset
{
    public string Name => "double-descent";

    public string Description => "MLP3/5/7 under 30% label noise: epoch-wise double descent, activation probe";

    /// <summary>See <see cref="Resolve"/>: everything is checked before the run folder exists.</summary>
    public PresetPlan Prepare(PresetRequest request)
    {
        ArgumentNullException.ThrowIfNull(request);
        var settings = Resolve(request.Quick, request.Sets);
        return new PresetPlan(request.Quick ? "double-descent-quick" : "double-descent", (dir, context) => Run(settings, dir, context));
    }

    public const string ModelsKey = "double_descent.models";

    /// <summary>Widths of the three networks; <c>--quick</c> halves them (and trains far less).</summary>
    public static IReadOnlyList<DoubleDescentModel> AllModels(bool quick)
    {
        int w = quick ? 64 : 128;
        return
        [
            new("mlp3", [w, w]),
            new("mlp5", [.. Enumerable.Repeat(2 * w, 4)]),
            new("mlp7", [.. Enumerable.Repeat(4 * w, 6)]),
        ];
    }

    /// <summary>
    /// The config every model shares before <c>--set</c>. Full: 4,000 training samples, 150 epochs,
    /// probe every epoch on 500 samples. Quick (CI, under a minute): 1,000 samples, 6 epochs,
    /// 200 probe samples.
    /// </summary>
    public static ExperimentConfig BaseConfig(bool quick) => ExperimentConfig.Default with
    {
        Name = "double-descent",
        Seed = 0,
        Epochs = quick ? 6 : 150,
        BatchSize = 128,
        DataName = "fashion-mnist",
        DataSubset = quick ? 1000 : 4000,
        DataValFraction = 0,
        NoiseKind = "symmetric",
        NoiseRate = 0.3,
        NoiseSeed = 0,
        ModelKind = "mlp",
        ModelActivation = "relu",
        LossKind = "cross_entropy",
        OptimKind = "adam",
        OptimLr = 1e-3,
        EvalTrainSamples = 0,
        ProbeActivationsEvery = 1,
        ProbeSetSize = quick ? 200 : 500,
        ProbePhases = true,
    };

    /// <summary>
    /// Applies <c>--set</c> assignments and checks everything before any directory exists:
    /// a bad key or value, a data set without noise, or a probe set larger than the subset is a
    /// <see cref="ConfigException"/> naming the key.
    /// </summary>
    public static DoubleDescentSettings Resolve(bool quick, IEnumerable<string> sets)
    {
        var config = BaseConfig(quick);
        var models = AllModels(quick);
        var experimentSets = new List<string>();
        foreach (var assignment in sets)
        {
            int eq = assignment.IndexOf('=', StringComparison.Ordinal);
            string key = eq <= 0 ? assignment : assignment[..eq].Trim();
            if (key == ModelsKey)
            {
                var names = assignment[(eq + 1)..].Trim().Trim('[', ']').Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
                var all = AllModels(quick);
                var unknown = names.FirstOrDefault(n => all.All(m => m.Name != n));
                if (names.Length == 0 || unknown is not null)
                    throw new ConfigException(ModelsKey, $"expected some of {string.Join(",", all.Select(m => m.Name))}, got '{assignment[(eq + 1)..]}'");
                models = [.. all.Where(m => names.Contains(m.Name))];
            }
            else if (key == "model.hidden")
            {
                throw new ConfigException("model.hidden", "the double-descent preset sets the widths of MLP3/MLP5/MLP7 itself; choose models with double_descent.models");
            }
            else
            {
                experimentSets.Add(assignment);
            }
        }
        config = config.WithOverrides(experimentSets);
        config.Validate();
        if (config.ModelKind != "mlp")
            throw new ConfigException("model.kind", $"the double-descent preset trains fully connected networks (mlp), got {config.ModelKind}");
        if (config.NoiseKind == "none")
            throw new ConfigException("noise.kind", "the double-descent preset needs label noise, got none (e.g. noise.kind=symmetric, noise.rate=0.3)");
        if (config.NoiseKind != "transition" && config.NoiseRate == 0)
            throw new ConfigException("noise.rate", $"the double-descent preset needs label noise, got noise.rate=0 with noise.kind={config.NoiseKind}");
        if (config.ProbeActivationsEvery > 0 && config.DataSubset > 0 && config.ProbeSetSize > config.DataSubset)
            throw new ConfigException("probe.set_size", $"{config.ProbeSetSize} is larger than the training set (data.subset={config.DataSubset})");
        var settings = new DoubleDescentSettings(config, models, quick);
        foreach (var m in models)
            settings.For(m).Validate();
        return settings;
    }

    /// <summary>Trains every model into <c>DIR/&lt;model&gt;/</c>, then writes the preset's own files; the caller marks it complete.</summary>
    public static RunResult Run(DoubleDescentSettings s, RunDirectory dir, PresetContext context)
    {
        ArgumentNullException.ThrowIfNull(s);
        ArgumentNullException.ThrowIfNull(dir);
        ArgumentNullException.ThrowIfNull(context);
        var log = context.Log;
        var clock = System.Diagnostics.Stopwatch.StartNew();
        dir.WriteText(RunDirectory.ConfigFile, ToYaml(s));
        var combined = new CombinedMetrics("model_id");
        var perModel = new Dictionary<string, object?>();
        RunResult result = RunResult.Complete;
        for (int id = 0; id < s.Models.Count && result.Status == RunStatus.Complete; id++)
        {
            var model = s.Models[id];
            var config = s.For(model);
            string path = Path.Combine(dir.Path, model.Name);
            log($"{model.Name}: hidden [{string.Join(", ", model.Hidden)}] -> {path}");
            var run = SubRun.Execute(path, config, context.Runner, context.ForSubRun(new LinePrinter(model.Name, config.Epochs, log)));
            result = run.Result;
            if (run.Report is { } report)
                combined.Add(run, report.Rows, id.ToString(CultureInfo.InvariantCulture));
            perModel[model.Name] = ModelSummary(model, run.Report, result);
            log(Verdict(model.Name, run.Report));
        }
        dir.WriteText(RunDirectory.MetricsFile, combined.Text);
        dir.WriteSummary(new Dictionary<string, object?>
        {
            ["preset"] = "double-descent",
            ["quick"] = s.Quick,
            ["model_ids"] = s.Models.Select(m => m.Name).ToList(),
            ["data"] = s.Base.DataName,
            ["train_subset"] = s.Base.DataSubset,
            ["noise"] = $"{s.Base.NoiseKind} {s.Base.NoiseRate.ToString(CultureInfo.InvariantCulture)}",
            ["epochs"] = s.Base.Epochs,
            ["optimizer"] = $"{s.Base.OptimKind} lr {s.Base.OptimLr.ToString(CultureInfo.InvariantCulture)}",
            ["seconds"] = clock.Elapsed.TotalSeconds,
            ["double_descent_models"] = perModel.Where(p => At(p.Value, "double_descent") is true).Select(p => p.Key).ToList(),
            ["models"] = perModel,
        });
        return result.Status == RunStatus.Complete ? RunResult.Complete : new RunResult(result.Status, $"{s.Models.Count} models: {result.Reason}");
    }

    /// <summary>A model's block of the preset's summary, from what its run measured (nulls when it measured nothing).</summary>
    private static Dictionary<string, object?> ModelSummary(DoubleDescentModel model, TrainingReport? report, RunResult result)
    {
        var o = new Dictionary<string, object?>
        {
            ["hidden"] = model.Hidden.ToList(),
            ["status"] = result.Status.ToString().ToLowerInvariant(),
            ["parameters"] = report?.Value("parameters"),
            ["seconds_total"] = report?.Value("seconds_total"),
            ["seconds_training"] = report?.Value("seconds_training"),
            ["double_descent"] = report?.Value("phases.double_descent"),
            ["test_error_double_descent"] = report?.Value("phases.test_error.double_descent"),
            ["final"] = report?.Value("final"),
            ["phases"] = report?.Value("phases"),
        };
        if (report?.Value("activations") is IReadOnlyDictionary<string, object?> acts)
        {
            o["activation_probe_seconds"] = At(acts, "seconds");
            o["most_massive_final_layer"] = At(acts, "most_massive_final_layer");
            o["layers"] = (At(acts, "layers") as IEnumerable<object?> ?? []).Select(l => (object?)new Dictionary<string, object?>
            {
                ["layer"] = At(l, "layer"),
                ["final_max_to_median_ratio"] = At(l, "final_max_to_median_ratio"),
                ["peak_max_to_median_ratio"] = At(l, "peak_max_to_median_ratio"),
                ["top_unit_stability"] = At(l, "top_unit_stability"),
                ["initial_cosine_given"] = At(l, "initial_cosine_given"),
                ["min_cosine_given"] = At(l, "min_cosine_given"),
                ["final_cosine_given"] = At(l, "final_cosine_given"),
            }).ToList();
        }
        return o;
    }

    /// <summary>A key of a summary block (a dictionary), or null.</summary>
    private static object? At(object? block, string key) =>
        block is IReadOnlyDictionary<string, object?> d && d.TryGetValue(key, out var v) ? v : null;

    private static readonly JsonSerializerOptions VerdictJson = new() { NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals };

    private static string Verdict(string name, TrainingReport? report)
    {
        var p = report?.Value("phases");
        if (p is null)
            return $"{name}: no evaluations";
        string E(string key) => At(p, key) is { } v ? JsonSerializer.Serialize(v, VerdictJson) : "-";
        return $"{name}: test loss first minimum at epoch {E("test_loss_first_min_epoch")}, maximum at {E("test_loss_max_epoch")}, later minimum at {E("test_loss_later_min_epoch")}: "
            + $"double_descent {E("double_descent")}; clean fitted (≥0.99) at epoch {E("clean_fit_epoch")}, noisy fitted at {E("noisy_fit_epoch")}";
    }

    private static string ToYaml(DoubleDescentSettings s)
    {
        var sb = new StringBuilder("# double-descent preset, fully resolved: every model runs this config with its own model.hidden\n");
        sb.Append("# (each model's exact config is <model>/config.yaml)\n");
        sb.Append(ModelsKey).Append(": [").Append(string.Join(", ", s.Models.Select(m => m.Name))).Append("]\n");
        foreach (var m in s.Models)
            sb.Append("# ").Append(m.Name).Append(": hidden [").Append(string.Join(", ", m.Hidden)).Append("]\n");
        foreach (var line in s.Base.ToYaml().Split('\n'))
            sb.Append(line.TrimStart().StartsWith("hidden:", StringComparison.Ordinal) ? "  # hidden: per model (above)" : line).Append('\n');
        return sb.ToString().TrimEnd('\n') + "\n";
    }

    /// <summary>One line per evaluation (every epoch in short runs, every tenth epoch in long ones).</summary>
    private sealed class LinePrinter(string name, int epochs, Action<string> log) : IProgressSink
    {
        private readonly int _every = epochs <= 20 ? 1 : 10;

        public void OnRunStart(int totalEpochs, int stepsPerEpoch)
        {
        }

        public void OnStep(int epoch, long step, double loss)
        {
        }

        public void OnEvaluation(MetricsRow r)
        {
            if (r.Epoch % _every == 0 || r.Epoch == epochs)
                log(string.Create(CultureInfo.InvariantCulture,
                    $"{name} epoch {r.Epoch}/{epochs}: test_loss {r.TestLoss:F4} test_acc {r.TestAcc:F4} clean_acc {r.CleanAcc:F4} noisy_given_acc {r.NoisyGivenAcc:F4} noisy_true_acc {r.NoisyTrueAcc:F4} ({r.Seconds:F1} s)"));
        }

        public void OnMessage(string message) => log($"{name}: {message}");
    }
}
