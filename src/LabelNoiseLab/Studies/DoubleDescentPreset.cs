using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;
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
public static class DoubleDescentPreset
{
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
    public static RunResult Run(DoubleDescentSettings s, RunDirectory dir, string? dataDir, Action<string>? log = null, CancellationToken cancellation = default)
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        dir.WriteText(RunDirectory.ConfigFile, ToYaml(s));
        var combined = new StringBuilder();
        var perModel = new JsonObject();
        RunResult result = RunResult.Complete;
        for (int id = 0; id < s.Models.Count && result.Status == RunStatus.Complete; id++)
        {
            var model = s.Models[id];
            var config = s.For(model);
            var sub = RunDirectory.Create(Path.Combine(dir.Path, model.Name), model.Name, overwrite: true);
            log?.Invoke($"{model.Name}: hidden [{string.Join(", ", model.Hidden)}] -> {sub.Path}");
            try
            {
                sub.WriteConfig(config);
                var progress = new LinePrinter(model.Name, config.Epochs, log);
                result = new ExperimentRunner().Run(config, sub, new RunContext(dataDir, progress, cancellation));
                if (result.Status == RunStatus.Complete)
                    sub.MarkComplete();
                else if (result.Status == RunStatus.Diverged)
                    sub.MarkDiverged(result.Reason ?? "diverged");
                else
                    sub.MarkFailed(result.Reason ?? "failed");
            }
            catch (Exception e)
            {
                if (sub.Status == RunStatus.Running)
                    sub.MarkFailed(e is InputException ? e.Message : $"{e.GetType().Name}: {e.Message}");
                throw;
            }
            AppendMetrics(combined, sub.FilePath(RunDirectory.MetricsFile), id);
            var summary = File.Exists(sub.FilePath(RunDirectory.SummaryFile))
                ? JsonNode.Parse(File.ReadAllText(sub.FilePath(RunDirectory.SummaryFile)))!.AsObject()
                : [];
            perModel[model.Name] = ModelSummary(model, summary, result);
            log?.Invoke(Verdict(model.Name, summary));
        }
        dir.WriteText(RunDirectory.MetricsFile, combined.ToString());
        dir.WriteSummary(new JsonObject
        {
            ["preset"] = "double-descent",
            ["quick"] = s.Quick,
            ["model_ids"] = new JsonArray([.. s.Models.Select(m => JsonValue.Create(m.Name))]),
            ["data"] = s.Base.DataName,
            ["train_subset"] = s.Base.DataSubset,
            ["noise"] = $"{s.Base.NoiseKind} {s.Base.NoiseRate.ToString(CultureInfo.InvariantCulture)}",
            ["epochs"] = s.Base.Epochs,
            ["optimizer"] = $"{s.Base.OptimKind} lr {s.Base.OptimLr.ToString(CultureInfo.InvariantCulture)}",
            ["seconds"] = clock.Elapsed.TotalSeconds,
            ["double_descent_models"] = new JsonArray([.. perModel.Where(p => p.Value?["double_descent"]?.GetValue<bool>() == true).Select(p => JsonValue.Create(p.Key))]),
            ["models"] = perModel,
        });
        return result.Status == RunStatus.Complete ? RunResult.Complete : new RunResult(result.Status, $"{s.Models.Count} models: {result.Reason}");
    }

    private static JsonObject ModelSummary(DoubleDescentModel model, JsonObject summary, RunResult result)
    {
        var phases = summary["phases"];
        var o = new JsonObject
        {
            ["hidden"] = new JsonArray([.. model.Hidden.Select(h => JsonValue.Create(h))]),
            ["status"] = result.Status.ToString().ToLowerInvariant(),
            ["parameters"] = summary["parameters"]?.DeepClone(),
            ["seconds_total"] = summary["seconds_total"]?.DeepClone(),
            ["seconds_training"] = summary["seconds_training"]?.DeepClone(),
            ["double_descent"] = phases?["double_descent"]?.DeepClone(),
            ["test_error_double_descent"] = phases?["test_error"]?["double_descent"]?.DeepClone(),
            ["final"] = summary["final"]?.DeepClone(),
            ["phases"] = phases?.DeepClone(),
        };
        if (summary["activations"] is JsonObject acts)
        {
            o["activation_probe_seconds"] = acts["seconds"]?.DeepClone();
            o["most_massive_final_layer"] = acts["most_massive_final_layer"]?.DeepClone();
            o["layers"] = new JsonArray([.. (acts["layers"]?.AsArray() ?? []).Select(l => (JsonNode)new JsonObject
            {
                ["layer"] = l?["layer"]?.DeepClone(),
                ["final_max_to_median_ratio"] = l?["final_max_to_median_ratio"]?.DeepClone(),
                ["peak_max_to_median_ratio"] = l?["peak_max_to_median_ratio"]?.DeepClone(),
                ["top_unit_stability"] = l?["top_unit_stability"]?.DeepClone(),
                ["initial_cosine_given"] = l?["initial_cosine_given"]?.DeepClone(),
                ["min_cosine_given"] = l?["min_cosine_given"]?.DeepClone(),
                ["final_cosine_given"] = l?["final_cosine_given"]?.DeepClone(),
            })]);
        }
        return o;
    }

    private static string Verdict(string name, JsonObject summary)
    {
        var p = summary["phases"];
        if (p is null)
            return $"{name}: no evaluations";
        string E(string key) => p[key]?.ToJsonString() ?? "-";
        return $"{name}: test loss first minimum at epoch {E("test_loss_first_min_epoch")}, maximum at {E("test_loss_max_epoch")}, later minimum at {E("test_loss_later_min_epoch")}: "
            + $"double_descent {E("double_descent")}; clean fitted (≥0.99) at epoch {E("clean_fit_epoch")}, noisy fitted at {E("noisy_fit_epoch")}";
    }

    /// <summary>Copies a model's metrics.csv rows into the combined one, with its model_id last.</summary>
    private static void AppendMetrics(StringBuilder combined, string path, int id)
    {
        if (!File.Exists(path))
            return;
        var lines = File.ReadAllLines(path);
        if (combined.Length == 0 && lines.Length > 0)
            combined.Append(lines[0]).Append(",model_id\n");
        foreach (var line in lines.Skip(1))
            combined.Append(line).Append(',').Append(id.ToString(CultureInfo.InvariantCulture)).Append('\n');
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
    private sealed class LinePrinter(string name, int epochs, Action<string>? log) : IProgressSink
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
            if (log is not null && (r.Epoch % _every == 0 || r.Epoch == epochs))
                log(string.Create(CultureInfo.InvariantCulture,
                    $"{name} epoch {r.Epoch}/{epochs}: test_loss {r.TestLoss:F4} test_acc {r.TestAcc:F4} clean_acc {r.CleanAcc:F4} noisy_given_acc {r.NoisyGivenAcc:F4} noisy_true_acc {r.NoisyTrueAcc:F4} ({r.Seconds:F1} s)"));
        }

        public void OnMessage(string message) => log?.Invoke($"{name}: {message}");
    }
}
