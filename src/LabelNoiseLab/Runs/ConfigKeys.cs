using System.Globalization;
using static LabelNoiseLab.Runs.ConfigTypes;

namespace LabelNoiseLab.Runs;

/// <summary>
/// The single table of config keys. To add a key: add a property to <see cref="ExperimentConfig"/>
/// and one line here (name, type, default, getter, setter, check, description). Loading,
/// <c>--set</c>, validation, <see cref="ExperimentConfig.ToYaml"/> and equality all follow the table;
/// a test checks that every property has exactly one line.
/// </summary>
public static class ConfigKeys
{
    public static IReadOnlyList<ConfigKey> All { get; } =
    [
        Key("name", Text, "run", c => c.Name, (c, v) => c with { Name = v }, SafeName, "run name; the default run directory is runs/<name>-<timestamp>"),
        Key("seed", Int, 0, c => c.Seed, (c, v) => c with { Seed = v }, null, "seed of the initialisation and shuffling generators"),
        Key("epochs", Int, 20, c => c.Epochs, (c, v) => c with { Epochs = v }, AtLeast(1), "passes over the training set"),
        Key("batch_size", Int, 128, c => c.BatchSize, (c, v) => c with { BatchSize = v }, AtLeast(1), "mini-batch size"),
        Key("eval_every_steps", Int, 0, c => c.EvalEverySteps, (c, v) => c with { EvalEverySteps = v }, AtLeast(0), "evaluate every N steps as well as after each epoch; 0 = per epoch only"),
        Key("checkpoint_every", Int, 0, c => c.CheckpointEvery, (c, v) => c with { CheckpointEvery = v }, AtLeast(0), "checkpoint every N epochs; 0 = only the final one"),
        Key("threads", Int, 0, c => c.Threads, (c, v) => c with { Threads = v }, AtLeast(0), "worker threads; 0 = all cores"),

        Key("data.name", Choice("fashion-mnist", "mnist", "cifar10", "csv", "gaussian-mixture", "linear-teacher"), "fashion-mnist", c => c.DataName, (c, v) => c with { DataName = v }, null, "data set"),
        Key("data.path", Text, "", c => c.DataPath, (c, v) => c with { DataPath = v }, null, "file for data.name=csv (relative to --data-dir if not absolute); unused otherwise"),
        Key("data.subset", Int, 0, c => c.DataSubset, (c, v) => c with { DataSubset = v }, AtLeast(0), "use the first N training samples; 0 = all"),
        Key("data.val_fraction", Number, 0.0, c => c.DataValFraction, (c, v) => c with { DataValFraction = v }, Range(0, 1, upperOpen: true), "fraction of the training set held out for validation"),
        Key("data.normalize", Choice("none", "standardize"), "none", c => c.DataNormalize, (c, v) => c with { DataNormalize = v }, null, "feature normalisation (statistics from the training split)"),
        Key("data.csv_label_column", Text, "label", c => c.DataCsvLabelColumn, (c, v) => c with { DataCsvLabelColumn = v }, null, "label column of a CSV file (header name)"),

        Key("noise.kind", Choice("none", "symmetric", "pairflip", "asymmetric", "instance", "transition"), "none", c => c.NoiseKind, (c, v) => c with { NoiseKind = v }, null, "label noise model"),
        Key("noise.rate", Number, 0.0, c => c.NoiseRate, (c, v) => c with { NoiseRate = v }, Range(0, 1), "fraction of labels corrupted"),
        Key("noise.seed", Int, 0, c => c.NoiseSeed, (c, v) => c with { NoiseSeed = v }, null, "seed of the noise generator (separate from seed)"),
        Key("noise.include_true", Bool, false, c => c.NoiseIncludeTrue, (c, v) => c with { NoiseIncludeTrue = v }, null, "symmetric noise may draw the true class as the new label"),
        Key("noise.map", ClassMap, [], c => c.NoiseMap, (c, v) => c with { NoiseMap = v }, null, "asymmetric noise: true class -> given class, e.g. \"0:6,6:0\"; empty = the data set's built-in map"),
        Key("noise.T", Matrix, [], c => c.NoiseTransition, (c, v) => c with { NoiseTransition = v }, StochasticRows, "transition noise: row-stochastic matrix, rows by ';', entries by ','"),

        Key("model.kind", Choice("mlp", "two_layer_linear", "small_cnn"), "mlp", c => c.ModelKind, (c, v) => c with { ModelKind = v }, null, "model"),
        Key("model.hidden", IntList, [512, 512], c => c.ModelHidden, (c, v) => c with { ModelHidden = v }, PositiveWidths, "hidden widths"),
        Key("model.activation", Choice("relu", "gelu", "tanh", "erf", "identity"), "relu", c => c.ModelActivation, (c, v) => c with { ModelActivation = v }, null, "activation"),
        Key("model.init", Choice("default", "ntk"), "default", c => c.ModelInit, (c, v) => c with { ModelInit = v }, null, "initialisation scheme"),
        Key("model.init_scale", Number, 1.0, c => c.ModelInitScale, (c, v) => c with { ModelInitScale = v }, Positive, "multiplier on the initial weights"),
        Key("model.dropout", Number, 0.0, c => c.ModelDropout, (c, v) => c with { ModelDropout = v }, Range(0, 1, upperOpen: true), "dropout probability"),

        Key("loss.kind", Choice("cross_entropy", "mse"), "cross_entropy", c => c.LossKind, (c, v) => c with { LossKind = v }, null, "training loss"),

        Key("optim.kind", Choice("sgd", "adam", "adamw"), "sgd", c => c.OptimKind, (c, v) => c with { OptimKind = v }, null, "optimizer"),
        Key("optim.lr", Number, 0.01, c => c.OptimLr, (c, v) => c with { OptimLr = v }, Positive, "learning rate"),
        Key("optim.momentum", Number, 0.0, c => c.OptimMomentum, (c, v) => c with { OptimMomentum = v }, Range(0, 1, upperOpen: true), "SGD momentum"),
        Key("optim.nesterov", Bool, false, c => c.OptimNesterov, (c, v) => c with { OptimNesterov = v }, null, "Nesterov momentum (SGD)"),
        Key("optim.weight_decay", Number, 0.0, c => c.OptimWeightDecay, (c, v) => c with { OptimWeightDecay = v }, AtLeast(0.0), "weight decay (L2 for sgd/adam, decoupled for adamw)"),
        Key("optim.betas", NumberList, [0.9, 0.999], c => c.OptimBetas, (c, v) => c with { OptimBetas = v }, Betas, "Adam betas [beta1, beta2]"),
        Key("optim.eps", Number, 1e-8, c => c.OptimEps, (c, v) => c with { OptimEps = v }, Positive, "Adam epsilon"),

        Key("schedule.kind", Choice("constant", "step", "cosine", "inverse_sqrt"), "constant", c => c.ScheduleKind, (c, v) => c with { ScheduleKind = v }, null, "learning-rate schedule"),
        Key("schedule.step_size", Int, 10, c => c.ScheduleStepSize, (c, v) => c with { ScheduleStepSize = v }, AtLeast(1), "step schedule: epochs between decays"),
        Key("schedule.gamma", Number, 0.1, c => c.ScheduleGamma, (c, v) => c with { ScheduleGamma = v }, Positive, "step schedule: decay factor"),
        Key("schedule.warmup", Int, 0, c => c.ScheduleWarmup, (c, v) => c with { ScheduleWarmup = v }, AtLeast(0), "linear warm-up steps"),

        Key("early_stop.patience", Int, 0, c => c.EarlyStopPatience, (c, v) => c with { EarlyStopPatience = v }, AtLeast(0), "stop after N evaluations without a better validation loss; 0 = never"),
        Key("eval.train_samples", Int, 10000, c => c.EvalTrainSamples, (c, v) => c with { EvalTrainSamples = v }, AtLeast(0), "training samples scored at each evaluation (a fixed random subset, same clean/noisy mix); 0 = all"),

        Key("probe.activations_every", Int, 0, c => c.ProbeActivationsEvery, (c, v) => c with { ProbeActivationsEvery = v }, AtLeast(0), "activation probe (activations.csv) every N epochs and at the last; 0 = off"),
        Key("probe.set_size", Int, 500, c => c.ProbeSetSize, (c, v) => c with { ProbeSetSize = v }, AtLeast(1), "activation probe: fixed training samples, stratified by given class and clean/noisy"),
        Key("probe.layers", IntList, [], c => c.ProbeLayers, (c, v) => c with { ProbeLayers = v }, NonNegativeIndices, "activation probe: hidden activation layers by index from 0; empty = all"),
        Key("probe.phases", Bool, false, c => c.ProbePhases, (c, v) => c with { ProbePhases = v }, null, "epoch-wise double-descent phase detection on the test loss, into summary.json"),
        Key("probe.phase_smooth", Int, 5, c => c.ProbePhaseSmooth, (c, v) => c with { ProbePhaseSmooth = v }, v => v >= 1 && v % 2 == 1 ? null : "must be an odd number ≥ 1", "phase detection: centred moving-average window (evaluations) applied to the curve first; 1 = none"),
        Key("probe.phase_rise", Number, 0.1, c => c.ProbePhaseRise, (c, v) => c with { ProbePhaseRise = v }, Positive, "phase detection: relative rise of the test loss above its first minimum that counts"),
        Key("probe.phase_fall", Number, 0.1, c => c.ProbePhaseFall, (c, v) => c with { ProbePhaseFall = v }, Range(0, 1, upperOpen: true), "phase detection: relative fall below the following maximum that counts as a second descent"),
    ];

    private static readonly Dictionary<string, ConfigKey> ByName = All.ToDictionary(k => k.Name, StringComparer.Ordinal);

    public static ConfigKey? Find(string name) => ByName.GetValueOrDefault(name);

    /// <summary>The known key nearest to an unknown one, if it is close enough to be a typo.</summary>
    public static string? Suggest(string unknown)
    {
        string last = unknown[(unknown.LastIndexOf('.') + 1)..];
        var sameLeaf = All.FirstOrDefault(k => k.Name.EndsWith("." + last, StringComparison.Ordinal) || k.Name == last);
        if (sameLeaf is not null)
            return sameLeaf.Name;
        var best = All.Select(k => (k.Name, Distance: Levenshtein(k.Name, unknown))).MinBy(p => p.Distance);
        return best.Distance <= Math.Max(2, unknown.Length / 4) ? best.Name : null;
    }

    private static ConfigKey<T> Key<T>(
        string name, ConfigType<T> type, T defaultValue,
        Func<ExperimentConfig, T> get, Func<ExperimentConfig, T, ExperimentConfig> set,
        Func<T, string?>? check, string description) =>
        new(name, type, defaultValue, get, set, check, description);

    private static Func<int, string?> AtLeast(int min) => v => v >= min ? null : $"must be at least {min}";

    private static Func<double, string?> AtLeast(double min) =>
        v => v >= min ? null : $"must be at least {min.ToString(CultureInfo.InvariantCulture)}";

    private static string? Positive(double v) => v > 0 ? null : "must be greater than 0";

    private static Func<double, string?> Range(double lo, double hi, bool upperOpen = false) =>
        v => v >= lo && (upperOpen ? v < hi : v <= hi)
            ? null
            : string.Create(CultureInfo.InvariantCulture, $"must be in [{lo}, {hi}{(upperOpen ? ")" : "]")}");

    private static string? SafeName(string s) =>
        s.Length > 0 && s.All(ch => char.IsAsciiLetterOrDigit(ch) || ch is '-' or '_' or '.') && s[0] != '.'
            ? null
            : "must be a non-empty file-name-safe name (letters, digits, '-', '_', '.')";

    private static string? PositiveWidths(IReadOnlyList<int> widths) =>
        widths.All(w => w > 0) ? null : "must be greater than 0 (every width)";

    private static string? NonNegativeIndices(IReadOnlyList<int> indices) =>
        indices.All(i => i >= 0) ? null : "must be layer indices ≥ 0";

    private static string? Betas(IReadOnlyList<double> b) =>
        b.Count == 2 && b.All(x => x >= 0 && x < 1) ? null : "must be two numbers in [0, 1)";

    private static string? StochasticRows(IReadOnlyList<IReadOnlyList<double>> t)
    {
        if (t.Count == 0)
            return null;
        if (t.Any(r => r.Count != t.Count))
            return $"must be square ({t.Count} rows)";
        if (t.Any(r => r.Any(x => x < 0 || x > 1) || Math.Abs(r.Sum() - 1) > 1e-6))
            return "must have rows of probabilities summing to 1";
        return null;
    }

    private static int Levenshtein(string a, string b)
    {
        var prev = new int[b.Length + 1];
        var cur = new int[b.Length + 1];
        for (int j = 0; j <= b.Length; j++)
            prev[j] = j;
        for (int i = 1; i <= a.Length; i++)
        {
            cur[0] = i;
            for (int j = 1; j <= b.Length; j++)
                cur[j] = Math.Min(Math.Min(cur[j - 1], prev[j]) + 1, prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1));
            (prev, cur) = (cur, prev);
        }
        return prev[b.Length];
    }
}
