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

/// <summary>One training setting of the preset (its grid): optimizer, learning rate, schedule, training-subset size.</summary>
public sealed record DoubleDescentSetting(string Optim, double Lr, string Schedule, int Subset)
{
    /// <summary>A file-name-safe id, e.g. <c>sgd-lr0.01-constant-n4000</c>.</summary>
    public string Id => string.Create(CultureInfo.InvariantCulture, $"{Optim}-lr{Lr}-{Schedule}-n{Subset}");

    /// <summary>The setting a config already has.</summary>
    public static DoubleDescentSetting Of(ExperimentConfig c) => new(c.OptimKind, c.OptimLr, c.ScheduleKind, c.DataSubset);
}

/// <summary>The resolved preset: the config every model shares, the models, and the settings (one, or the grid).</summary>
public sealed record DoubleDescentSettings(ExperimentConfig Base, IReadOnlyList<DoubleDescentModel> Models, bool Quick)
{
    /// <summary>One setting (the base config's) unless <c>double_descent.grid: true</c>.</summary>
    public IReadOnlyList<DoubleDescentSetting> Settings { get; init; } = [DoubleDescentSetting.Of(Base)];

    /// <summary>Whether the settings are the opt-in grid (<c>double_descent.grid: true</c>); each run's name then carries its setting's id.</summary>
    public bool Grid { get; init; }

    /// <summary>The full config of one model: the shared one with its widths and name.</summary>
    public ExperimentConfig For(DoubleDescentModel m) => Base with { Name = m.Name, ModelHidden = m.Hidden };

    /// <summary>One model in one setting (SGD with momentum 0.9).</summary>
    public ExperimentConfig For(DoubleDescentModel m, DoubleDescentSetting s) => For(m) with
    {
        Name = Grid ? $"{m.Name}-{s.Id}" : m.Name,
        OptimKind = s.Optim,
        OptimLr = s.Lr,
        OptimMomentum = s.Optim == "sgd" ? (Grid ? 0.9 : Base.OptimMomentum) : 0,
        ScheduleKind = s.Schedule,
        DataSubset = s.Subset,
    };

    /// <summary>Every (model, setting) run, in order.</summary>
    public IEnumerable<(DoubleDescentModel Model, DoubleDescentSetting Setting)> Runs() =>
        from m in Models from s in Settings select (m, s);
}

/// <summary>
/// The <c>double-descent</c> preset (epoch-wise double descent under label noise, Kubo et al.
/// 2026): fully connected ReLU networks MLP3, MLP5, MLP7 (2, 4, 6 hidden layers, wider as they
/// get deeper) trained with softmax cross-entropy on a Fashion-MNIST training subset with 30%
/// symmetric label noise (full: SGD with momentum 0.9, lr 0.01; <c>--quick</c>: Adam), each until
/// its noisy labels are fitted and then three times as long again (up to the epoch cap), evaluated
/// at log-spaced epochs; <c>double_descent.grid: true</c> runs every model in every setting of the
/// grid (<see cref="DoubleDescentSettings"/>). Each model is
/// an ordinary trainer run (<see cref="Trainer"/>) in its own sub-directory with the activation
/// probe and phase detection switched on; the preset's own folder gets a combined metrics.csv
/// (with a <c>model_id</c> column) and a summary.json comparing the models.
/// <c>--set</c> takes any experiment key (applied to every model; not <c>model.hidden</c>) and
/// <c>double_descent.models=mlp3,mlp7</c> to train only some of them.
/// </summary>
public sealed class DoubleDescentPreset : IPreset
{
    /// <inheritdoc/>
    public string Name => "double-descent";

    /// <inheritdoc/>
    public string Description => "MLP3/5/7 under 30% label noise: epoch-wise double descent, activation probe";

    /// <summary>See <see cref="Resolve"/>: everything is checked before the run folder exists.</summary>
    public PresetPlan Prepare(PresetRequest request)
    {
        ArgumentNullException.ThrowIfNull(request);
        var settings = Resolve(request.Quick, request.Sets);
        return new PresetPlan(request.Quick ? "double-descent-quick" : "double-descent", (dir, context) => Run(settings, dir, context));
    }

    /// <summary><c>--set double_descent.models=mlp3,mlp7</c>: train only the named networks (default all three).</summary>
    public const string ModelsKey = "double_descent.models";

    /// <summary><c>--set double_descent.grid=true</c>: train every model in every setting of <see cref="GridSettings"/> (default false: the base config's one setting).</summary>
    public const string GridKey = "double_descent.grid";

    /// <summary><c>--set double_descent.grid_subsets=4000,10000</c>: the training-subset sizes of the grid (default 4000 and 10000; each at least batch_size and probe.set_size).</summary>
    public const string GridSubsetsKey = "double_descent.grid_subsets";

    /// <summary>Per (model, setting): the three phases and the size of the second descent.</summary>
    public const string PhasesFile = "phases.csv";

    /// <summary>Every sub-run's activations.csv and ablation.csv rows, with a leading <c>run</c> column.</summary>
    public const string LayersFile = "layers.csv";

    /// <summary>Every sub-run's top-unit ablation rows (per run, evaluation and hidden layer), with a leading <c>run</c> column.</summary>
    public const string AblationFile = "ablation.csv";

    /// <summary>
    /// The opt-in grid: Adam at 1e-3 and 1e-4, SGD (momentum 0.9) at 0.01 and 0.05, each with a
    /// constant and a cosine schedule (cosine over the epoch cap), on each training-subset size.
    /// </summary>
    public static IReadOnlyList<DoubleDescentSetting> GridSettings(IReadOnlyList<int> subsets) =>
        [.. from n in subsets
            from o in new (string Optim, double Lr)[] { ("adam", 1e-3), ("adam", 1e-4), ("sgd", 0.01), ("sgd", 0.05) }
            from sch in new[] { "constant", "cosine" }
            select new DoubleDescentSetting(o.Optim, o.Lr, sch, n)];

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
    /// The config every model shares before <c>--set</c>. Full: 4,000 training samples, SGD
    /// (momentum 0.9, lr 0.01, constant), until the noisy labels are fitted and then three times as
    /// long again (<c>early_stop.noisy_fit_factor: 4</c>, cap 1,000 epochs), evaluated and probed at
    /// log-spaced epochs on 500 probe samples, learning events, top-unit ablation (zero, scored on
    /// 2,000 test samples). Quick (CI, under a minute): 1,000 samples, Adam 1e-3, 6 epochs, 200 probe
    /// samples, ablation on 500 test samples.
    /// </summary>
    public static ExperimentConfig BaseConfig(bool quick) => ExperimentConfig.Default with
    {
        Name = "double-descent",
        Seed = 0,
        Epochs = quick ? 6 : 1000,
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
        OptimKind = quick ? "adam" : "sgd",
        OptimLr = quick ? 1e-3 : 0.01,
        OptimMomentum = quick ? 0 : 0.9,
        EvalTrainSamples = 0,
        EvalSchedule = "log",
        EarlyStopNoisyFitFactor = 4,
        ProbeActivationsEvery = 1,
        ProbeSetSize = quick ? 200 : 500,
        ProbePhases = true,
        ProbeLearningEvents = true,
        ProbeAblate = "zero",
        ProbeAblateUnits = 1,
        ProbeAblateTestSamples = quick ? 500 : 2000,
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
        bool grid = false;
        IReadOnlyList<int> gridSubsets = [4000, 10000];
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
            else if (key == GridKey)
            {
                string v = assignment[(eq + 1)..].Trim();
                grid = v switch
                {
                    "true" => true,
                    "false" => false,
                    _ => throw new ConfigException(GridKey, $"expected true or false, got '{v}'"),
                };
            }
            else if (key == GridSubsetsKey)
            {
                string v = assignment[(eq + 1)..].Trim().Trim('[', ']');
                var parts = v.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
                var sizes = new List<int>();
                foreach (var part in parts)
                {
                    if (!int.TryParse(part, NumberStyles.Integer, CultureInfo.InvariantCulture, out int size) || size < 1 || size > 60000)
                        throw new ConfigException(GridSubsetsKey, $"expected training-subset sizes in 1..60000, got '{part}'");
                    sizes.Add(size);
                }
                if (sizes.Count == 0)
                    throw new ConfigException(GridSubsetsKey, "expected at least one training-subset size");
                gridSubsets = sizes;
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
        int narrowest = models.SelectMany(m => m.Hidden).Min();
        if (config.ProbeAblate != "none" && config.ProbeAblateUnits > narrowest)
            throw new ConfigException("probe.ablate_units", $"{config.ProbeAblateUnits} units to ablate, but the narrowest hidden layer has {narrowest}");
        if (grid && gridSubsets.Any(n => n < config.BatchSize || n < config.ProbeSetSize))
            throw new ConfigException(GridSubsetsKey, $"every subset must hold at least batch_size ({config.BatchSize}) and probe.set_size ({config.ProbeSetSize}) samples, got {string.Join(",", gridSubsets)}");
        var settings = new DoubleDescentSettings(config, models, quick)
        {
            Grid = grid,
            Settings = grid ? GridSettings(gridSubsets) : [DoubleDescentSetting.Of(config)],
        };
        foreach (var (m, st) in settings.Runs())
            settings.For(m, st).Validate();
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
        var phases = new List<Dictionary<string, object?>>();
        var layers = new CsvConcat("run");
        var ablation = new CsvConcat("run");
        RunResult result = RunResult.Complete;
        var runs = s.Runs().ToList();
        for (int id = 0; id < runs.Count && result.Status == RunStatus.Complete; id++)
        {
            var (model, setting) = runs[id];
            var config = s.For(model, setting);
            string path = Path.Combine(dir.Path, config.Name);
            log($"{config.Name}: hidden [{string.Join(", ", model.Hidden)}], {setting.Id} -> {path}");
            var run = SubRun.Execute(path, config, context.Runner, context.ForSubRun(new LinePrinter(config.Name, config.Epochs, log)));
            result = run.Result;
            if (run.Report is { } report)
                combined.Add(run, report.Rows, id.ToString(CultureInfo.InvariantCulture));
            perModel[config.Name] = ModelSummary(model, run.Report, result) is var block && s.Grid
                ? new Dictionary<string, object?>(block) { ["setting"] = setting.Id, ["model"] = model.Name } : block;
            phases.Add(PhaseRow(config.Name, model, setting, run.Report));
            layers.Add(config.Name, Path.Combine(path, Probes.ActivationProbe.FileName));
            ablation.Add(config.Name, Path.Combine(path, Probes.ActivationProbe.AblationFileName));
            log(Verdict(config.Name, run.Report));
        }
        dir.WriteText(RunDirectory.MetricsFile, combined.Text);
        dir.WriteText(PhasesFile, CsvConcat.Table(phases));
        dir.WriteText(LayersFile, layers.Text);
        dir.WriteText(AblationFile, ablation.Text);
        dir.WriteSummary(new Dictionary<string, object?>
        {
            ["preset"] = "double-descent",
            ["quick"] = s.Quick,
            ["model_ids"] = s.Models.Select(m => m.Name).ToList(),
            ["data"] = s.Base.DataName,
            ["train_subset"] = s.Base.DataSubset,
            ["noise"] = $"{s.Base.NoiseKind} {s.Base.NoiseRate.ToString(CultureInfo.InvariantCulture)}",
            ["epochs_cap"] = s.Base.Epochs,
            ["noisy_fit_factor"] = s.Base.EarlyStopNoisyFitFactor,
            ["evaluation"] = s.Base.EvalSchedule,
            ["optimizer"] = $"{s.Base.OptimKind} lr {s.Base.OptimLr.ToString(CultureInfo.InvariantCulture)}",
            ["grid"] = s.Grid,
            ["settings"] = s.Settings.Select(x => x.Id).ToList(),
            ["seconds"] = clock.Elapsed.TotalSeconds,
            ["double_descent_models"] = perModel.Where(p => At(p.Value, "double_descent") is true).Select(p => p.Key).ToList(),
            ["phases"] = phases,
            ["claims"] = DoubleDescentClaims.Evaluate(phases, perModel, s.Quick),
            ["files"] = new Dictionary<string, object?>
            {
                ["metrics.csv"] = "every evaluation of every run (per epoch, log-spaced), model_id = index into runs",
                [PhasesFile] = "per run: the three phases, their epochs, the second descent",
                [LayersFile] = "per run, evaluation and hidden layer: activations.csv's columns",
                [AblationFile] = "per run, evaluation and hidden layer: the top-unit ablation",
            },
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
            ["learning_events"] = report?.Value("learning_events"),
            ["noisy_fit_epoch"] = report?.Value("noisy_fit_epoch"),
            ["epochs_completed"] = report?.Value("epochs_completed"),
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
                ["final_massive"] = At(l, "final_massive"),
                ["massive_epochs"] = At(l, "massive_epochs"),
                ["final_max_abs_activation"] = At(l, "final_max_abs_activation"),
                ["final_max_unit_input_r2"] = At(l, "final_max_unit_input_r2"),
                ["final_max_unit_eta2_given"] = At(l, "final_max_unit_eta2_given"),
                ["final_max_unit_eta2_true"] = At(l, "final_max_unit_eta2_true"),
                ["final_ablation"] = At(l, "final_ablation"),
            }).ToList();
        }
        return o;
    }

    /// <summary>
    /// One run's phases: clean fit, noisy fit (with the test loss rising), re-generalisation; the
    /// epochs of each and the size of the second descent (test error at the maximum minus the later
    /// minimum, smoothed as the phase detector reads it).
    /// </summary>
    private static Dictionary<string, object?> PhaseRow(string run, DoubleDescentModel model, DoubleDescentSetting setting, TrainingReport? report)
    {
        object? P(string key) => report?.Value("phases." + key);
        static double N(object? v) => v switch { double d => d, int i => i, long l => l, _ => double.NaN };
        double errMax = N(P("test_error.max")), errLater = N(P("test_error.later_min"));
        int? noisyFit = P("noisy_fit_epoch") is int f ? f : null;
        int? laterEpoch = P("test_error.later_min_epoch") is int le ? le : null;
        bool ddError = P("test_error.double_descent") is true;
        return new Dictionary<string, object?>
        {
            ["run"] = run,
            ["model"] = model.Name,
            ["setting"] = setting.Id,
            ["optimizer"] = setting.Optim,
            ["lr"] = setting.Lr,
            ["schedule"] = setting.Schedule,
            ["subset"] = setting.Subset,
            ["epochs_run"] = report?.Value("epochs_completed"),
            ["clean_fit_epoch"] = P("clean_fit_epoch"),
            ["noisy_fit_epoch"] = noisyFit,
            ["median_first_fit_epoch_clean"] = report?.Value("learning_events.median_first_fit_epoch_clean"),
            ["median_first_fit_epoch_noisy"] = report?.Value("learning_events.median_first_fit_epoch_noisy"),
            ["test_loss_first_min_epoch"] = P("test_loss_first_min_epoch"),
            ["test_loss_max_epoch"] = P("test_loss_max_epoch"),
            ["test_loss_later_min_epoch"] = P("test_loss_later_min_epoch"),
            ["double_descent_test_loss"] = P("double_descent") is true,
            ["test_error_first_min_epoch"] = P("test_error.first_min_epoch"),
            ["test_error_first_min"] = N(P("test_error.first_min")),
            ["test_error_max_epoch"] = P("test_error.max_epoch"),
            ["test_error_max"] = errMax,
            ["test_error_later_min_epoch"] = laterEpoch,
            ["test_error_later_min"] = errLater,
            ["second_descent_test_error"] = errMax - errLater,
            ["double_descent_test_error"] = ddError,
            // Re-generalisation: a second descent of the test error that ends after the noisy labels were fitted.
            ["regeneralised"] = ddError && noisyFit is int nf && laterEpoch is int l2 && l2 >= nf,
            ["final_test_acc"] = report?.Value("final.test_acc"),
        };
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
