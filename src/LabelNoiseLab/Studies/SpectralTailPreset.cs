using System.Diagnostics;
using System.Globalization;
using System.Text;
using LabelNoiseLab.Probes;
using LabelNoiseLab.RunFiles;
using LabelNoiseLab.Training;
using LabelNoiseLab.Experiments;

namespace LabelNoiseLab.Studies;

/// <summary>
/// Settings of the <c>spectral-tail</c> preset (malignant-tail paper). Keys as written in
/// <c>config.yaml</c> and accepted by <c>--set</c>: <c>spectral_tail.&lt;name&gt;</c>; lists are
/// comma-separated (<c>--set spectral_tail.widths=64,256</c>).
/// </summary>
public sealed record SpectralTailOptions
{
    public string Data { get; init; } = "fashion-mnist";
    public int Subset { get; init; } = 10_000;
    public double ValFraction { get; init; } = 0.1;
    public int Epochs { get; init; } = 40;
    public int BatchSize { get; init; } = 128;
    public double Lr { get; init; } = 1e-3;
    /// <summary>Hidden layers of the MLP, each <see cref="Width"/> wide (the penultimate width).</summary>
    public int Depth { get; init; } = 2;
    public int Width { get; init; } = 512;
    public IReadOnlyList<double> NoiseRates { get; init; } = [0, 0.2, 0.4, 0.6];
    public IReadOnlyList<int> Widths { get; init; } = [128, 512, 2048];
    public double SweepNoise { get; init; } = 0.4;
    /// <summary>Also SmallCnn (penultimate width 128) at every noise rate.</summary>
    public bool Cnn { get; init; } = true;
    public int ProbeEpochs { get; init; } = 5;
    public int Seed { get; init; }
    public int Threads { get; init; }

    /// <summary>The CI version: MLP only, small subset, few epochs, two noise rates, two widths (under a minute).</summary>
    public static SpectralTailOptions Quick { get; } = new()
    {
        Subset = 2000, Epochs = 12, Width = 128, Widths = [32, 128], NoiseRates = [0, 0.4], Cnn = false, ProbeEpochs = 3,
    };

    private static readonly (string Key, Func<SpectralTailOptions, string> Get, Func<SpectralTailOptions, string, SpectralTailOptions> Set)[] Table =
    [
        ("spectral_tail.data", o => o.Data, (o, v) => o with { Data = v }),
        ("spectral_tail.subset", o => F(o.Subset), (o, v) => o with { Subset = I(v) }),
        ("spectral_tail.val_fraction", o => F(o.ValFraction), (o, v) => o with { ValFraction = D(v) }),
        ("spectral_tail.epochs", o => F(o.Epochs), (o, v) => o with { Epochs = I(v) }),
        ("spectral_tail.batch_size", o => F(o.BatchSize), (o, v) => o with { BatchSize = I(v) }),
        ("spectral_tail.lr", o => F(o.Lr), (o, v) => o with { Lr = D(v) }),
        ("spectral_tail.depth", o => F(o.Depth), (o, v) => o with { Depth = I(v) }),
        ("spectral_tail.width", o => F(o.Width), (o, v) => o with { Width = I(v) }),
        ("spectral_tail.noise_rates", o => string.Join(",", o.NoiseRates.Select(F)), (o, v) => o with { NoiseRates = List(v, D) }),
        ("spectral_tail.widths", o => string.Join(",", o.Widths.Select(w => F(w))), (o, v) => o with { Widths = List(v, I) }),
        ("spectral_tail.sweep_noise", o => F(o.SweepNoise), (o, v) => o with { SweepNoise = D(v) }),
        ("spectral_tail.cnn", o => o.Cnn ? "true" : "false", (o, v) => o with { Cnn = bool.Parse(v) }),
        ("spectral_tail.probe_epochs", o => F(o.ProbeEpochs), (o, v) => o with { ProbeEpochs = I(v) }),
        ("spectral_tail.seed", o => F(o.Seed), (o, v) => o with { Seed = I(v) }),
        ("spectral_tail.threads", o => F(o.Threads), (o, v) => o with { Threads = I(v) }),
    ];

    /// <summary>Applies <c>key=value</c>; an unknown key or a value of the wrong type is a <see cref="ConfigException"/>.</summary>
    public SpectralTailOptions With(string assignment) => PresetSettings.Apply(this, assignment, "spectral-tail", Table);

    /// <summary>The experiment config of one run of the preset (validated).</summary>
    public ExperimentConfig RunConfig(string model, double noiseRate, int width)
    {
        var config = ExperimentConfig.Default with
        {
            Name = Name(model, noiseRate, width),
            Seed = Seed,
            Epochs = Epochs,
            BatchSize = BatchSize,
            Threads = Threads,
            DataName = Data,
            DataSubset = Subset,
            DataValFraction = ValFraction,
            NoiseKind = noiseRate > 0 ? "symmetric" : "none",
            NoiseRate = noiseRate,
            NoiseSeed = Seed,
            ModelKind = model,
            ModelHidden = Enumerable.Repeat(width, Depth).ToList(),
            OptimKind = "adam",
            OptimLr = Lr,
        };
        config.Validate();
        return config;
    }

    public static string Name(string model, double noiseRate, int width) =>
        string.Create(CultureInfo.InvariantCulture, $"{model.Replace('_', '-')}-w{width}-noise{Math.Round(noiseRate * 100)}");

    /// <summary>Throws a <see cref="ConfigException"/> naming the first out-of-range key.</summary>
    public void Validate()
    {
        if (Subset < 0) throw new ConfigException("spectral_tail.subset", $"expected ≥ 0 (0 = all), got {Subset}");
        if (!(ValFraction > 0 && ValFraction < 1)) throw new ConfigException("spectral_tail.val_fraction", $"expected a value in (0, 1): d is chosen on the validation split; got {F(ValFraction)}");
        if (Depth < 1) throw new ConfigException("spectral_tail.depth", $"expected at least 1 hidden layer, got {Depth}");
        if (NoiseRates.Count == 0 || NoiseRates.Any(r => r is < 0 or >= 1)) throw new ConfigException("spectral_tail.noise_rates", "expected rates in [0, 1)");
        if (SweepNoise is < 0 or >= 1) throw new ConfigException("spectral_tail.sweep_noise", "expected a rate in [0, 1)");
        if (Widths.Any(w => w < 1) || Width < 1) throw new ConfigException("spectral_tail.widths", "expected positive widths");
        if (Widths.Append(Width).Any(w => w > FeatureExtractor.MaxDim)) throw new ConfigException("spectral_tail.widths", $"the spectral probe handles widths up to {FeatureExtractor.MaxDim}");
        if (ProbeEpochs < 1) throw new ConfigException("spectral_tail.probe_epochs", $"expected at least 1, got {ProbeEpochs}");
        foreach (var (model, rate, width) in Runs())
            RunConfig(model, rate, width); // every run's config is checked before anything is trained
    }

    /// <summary>MLP (and SmallCnn) at every noise rate, then the MLP width sweep at <see cref="SweepNoise"/>.</summary>
    public IReadOnlyList<(string Model, double NoiseRate, int Width)> Runs()
    {
        var runs = new List<(string, double, int)>();
        string[] models = Cnn ? ["mlp", "small_cnn"] : ["mlp"];
        foreach (var model in models)
            foreach (double rate in NoiseRates)
                runs.Add((model, rate, model == "mlp" ? Width : 128)); // SmallCnn's penultimate layer is 128 wide
        foreach (int w in Widths)
            if (!runs.Contains(("mlp", SweepNoise, w)))
                runs.Add(("mlp", SweepNoise, w));
        return runs;
    }

    public string ToYaml()
    {
        var sb = new StringBuilder("# spectral-tail preset (spectral linear probe and truncation under label noise), fully resolved\n");
        foreach (var (k, get, _) in Table)
            sb.Append(k).Append(": ").Append(get(this)).Append('\n');
        return sb.ToString();
    }

    private static string F(double v) => ConfigTypes.FormatDouble(v);
    private static string F(long v) => v.ToString(CultureInfo.InvariantCulture);
    private static int I(string s) => int.Parse(s, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture);
    private static double D(string s) => double.Parse(s, NumberStyles.Float, CultureInfo.InvariantCulture);
    private static List<T> List<T>(string s, Func<string, T> parse) =>
        s.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries).Select(parse).ToList();
}

/// <summary>
/// The <c>spectral-tail</c> preset: each run (model, noise rate, width) is an ordinary training
/// run in <c>runs/&lt;name&gt;/</c> (Adam, trained to fit the given labels), then probed by
/// <see cref="SpectralRunProbe"/> (trained, and at init as the control). Writes
/// <c>config.yaml</c>, <c>results.csv</c> (one row per run), <c>metrics.csv</c> (one row per
/// run: its final test accuracy) and <c>summary.json</c> with what was seen; the caller marks
/// the preset complete.
/// </summary>
public sealed class SpectralTailPreset : IPreset
{
    public const string ResultsFile = "results.csv";

    public string Name => "spectral-tail";

    public string Description => "spectral probe and truncation under label noise";

    /// <summary><c>--set spectral_tail.&lt;key&gt;=value</c> over the defaults (or <see cref="SpectralTailOptions.Quick"/>), checked with every run's config.</summary>
    public PresetPlan Prepare(PresetRequest request)
    {
        ArgumentNullException.ThrowIfNull(request);
        var settings = request.Quick ? SpectralTailOptions.Quick : new SpectralTailOptions();
        foreach (var set in request.Sets)
            settings = settings.With(set);
        settings.Validate();
        return new PresetPlan(request.Quick ? "spectral-tail-quick" : "spectral-tail", (dir, context) => Run(settings, dir, context, request.Quick));
    }

    /// <summary>The issue's columns, then extras (the model, the oracle best epoch, the probe's valley, tail energies at d = classes, the run folder).</summary>
    public const string ResultsHeader = "noise_rate,width,full_test_acc,best_d_by_val,trunc_test_acc_at_best_d,best_early_stop_test_acc,effective_rank,effective_rank_at_init,"
        + "model,oracle_best_test_acc,probe_best_d,probe_best_test_acc,probe_test_acc_at_D,clean_tail_energy_at_k,noisy_tail_energy_at_k,run";

    public static RunResult Run(SpectralTailOptions o, RunDirectory dir, PresetContext context, bool quick = false)
    {
        ArgumentNullException.ThrowIfNull(o);
        ArgumentNullException.ThrowIfNull(dir);
        ArgumentNullException.ThrowIfNull(context);
        o.Validate();
        var log = context.Log;
        dir.WriteText(RunDirectory.ConfigFile, o.ToYaml());
        var metrics = dir.OpenMetrics(["run_index", "noise_rate", "width", "trunc_test_acc_at_best_d"]);
        var csv = new StringBuilder(ResultsHeader).Append('\n');
        var rows = new List<Dictionary<string, object?>>();
        var clock = Stopwatch.StartNew();
        var runs = o.Runs();
        for (int i = 0; i < runs.Count; i++)
        {
            var (model, rate, width) = runs[i];
            var config = o.RunConfig(model, rate, width);
            var runClock = Stopwatch.StartNew();
            // The trained model is probed before its run is marked complete.
            SpectralRunReport? probe = null;
            var run = SubRun.Execute(Path.Combine(dir.Path, "runs", config.Name), config, context.Runner, context.ForSubRun(),
                beforeComplete: (sub, _) => probe = SpectralRunProbe.Run(sub.Path, FeatureExtractor.Penultimate, new SpectralOptions { ProbeEpochs = o.ProbeEpochs }, context.DataDir));
            Dictionary<string, object?> row;
            if (run.Status != RunStatus.Complete)
            {
                log($"{config.Name}: {run.Result.Reason}; no probe");
                row = Row(model, rate, width, config.Name, null, null);
            }
            else
            {
                row = Row(model, rate, width, config.Name, probe, run.Report);
            }
            rows.Add(row);
            csv.Append(CsvRow(row)).Append('\n');
            dir.WriteText(ResultsFile, csv.ToString());
            metrics.Append(new MetricsRow
            {
                Epoch = o.Epochs,
                TestAcc = Num(row["full_test_acc"]),
                Seconds = runClock.Elapsed.TotalSeconds,
                Extra = new Dictionary<string, double>
                {
                    ["run_index"] = i,
                    ["noise_rate"] = rate,
                    ["width"] = width,
                    ["trunc_test_acc_at_best_d"] = Num(row["trunc_test_acc_at_best_d"]),
                },
            });
            log(string.Create(CultureInfo.InvariantCulture,
                $"[{i + 1}/{runs.Count}] {config.Name}: full {Num(row["full_test_acc"]):F4}, trunc at d={row["best_d_by_val"]} {Num(row["trunc_test_acc_at_best_d"]):F4}, early stop {Num(row["best_early_stop_test_acc"]):F4}, erank {Num(row["effective_rank"]):F1} (init {Num(row["effective_rank_at_init"]):F1}), probe best d {row["probe_best_d"]}; {runClock.Elapsed.TotalSeconds:F0} s"));
        }
        dir.WriteSummary(new Dictionary<string, object?>
        {
            ["preset"] = "spectral-tail",
            ["quick"] = quick,
            ["runs"] = rows,
            ["observations"] = Observations(rows, o),
            ["seconds"] = clock.Elapsed.TotalSeconds,
            ["notes"] = "best_early_stop_test_acc = test accuracy at the epoch of the lowest validation loss (validation labels are noisy); "
                + "oracle_best_test_acc = the best test accuracy of any epoch. Tail energies at d = the number of classes. "
                + "Each run's own folder under runs/ holds metrics.csv, spectrum.csv, spectral.csv, spectral_init.csv and its summary.json.",
        });
        return RunResult.Complete;
    }

    private static Dictionary<string, object?> Row(string model, double rate, int width, string name, SpectralRunReport? report, TrainingReport? training)
    {
        var t = report?.Trained;
        var atK = t?.RowAt(t.Classes);
        var atD = t?.Rows[^1];
        return new Dictionary<string, object?>
        {
            ["noise_rate"] = rate,
            ["width"] = width,
            ["full_test_acc"] = t?.FullTestAcc ?? double.NaN,
            ["best_d_by_val"] = t?.BestDByVal,
            ["trunc_test_acc_at_best_d"] = t?.TruncTestAccAtBestD ?? double.NaN,
            ["best_early_stop_test_acc"] = training?.Number("test_acc_at_best_val") ?? double.NaN,
            ["effective_rank"] = t?.EffectiveRank ?? double.NaN,
            ["effective_rank_at_init"] = report?.Init?.EffectiveRank ?? double.NaN,
            ["model"] = model,
            ["oracle_best_test_acc"] = training?.Number("best_test_acc") ?? double.NaN,
            ["probe_best_d"] = t?.ProbeBestD,
            ["probe_best_test_acc"] = t?.ProbeBestTestAcc ?? double.NaN,
            ["probe_test_acc_at_D"] = atD?.ProbeTestAcc ?? double.NaN,
            ["clean_tail_energy_at_k"] = atK?.CleanTailEnergy ?? double.NaN,
            ["noisy_tail_energy_at_k"] = atK?.NoisyTailEnergy ?? double.NaN,
            ["run"] = "runs/" + name,
        };
    }

    private static double Num(object? v) => v switch
    {
        double d => d,
        int i => i,
        _ => double.NaN,
    };

    private static string CsvRow(Dictionary<string, object?> row) => string.Join(",", row.Values.Select(v => v switch
    {
        null => "",
        double d => SpectralResult.F(d),
        int i => i.ToString(CultureInfo.InvariantCulture),
        _ => v.ToString(),
    }));

    /// <summary>The issue's four questions, answered from the rows as numbers (not asserted).</summary>
    private static Dictionary<string, object?> Observations(List<Dictionary<string, object?>> rows, SpectralTailOptions o)
    {
        var done = rows.Where(r => !double.IsNaN(Num(r["full_test_acc"]))).ToList();
        var atSweep = done.Where(r => (string)r["model"]! == "mlp" && Math.Abs(Num(r["noise_rate"]) - o.SweepNoise) < 1e-9).OrderBy(r => Num(r["width"])).ToList();
        return new Dictionary<string, object?>
        {
            ["probe_best_d_by_run"] = done.ToDictionary(r => (string)r["run"]!, r => r["probe_best_d"]),
            ["probe_valley_drop_by_run"] = done.ToDictionary(r => (string)r["run"]!, r => Num(r["probe_best_test_acc"]) - Num(r["probe_test_acc_at_D"])),
            ["trunc_minus_full_at_sweep_noise"] = atSweep.ToDictionary(r => (string)r["run"]!, r => Num(r["trunc_test_acc_at_best_d"]) - Num(r["full_test_acc"])),
            ["trunc_minus_early_stop_at_sweep_noise"] = atSweep.ToDictionary(r => (string)r["run"]!, r => Num(r["trunc_test_acc_at_best_d"]) - Num(r["best_early_stop_test_acc"])),
            ["noisy_minus_clean_tail_energy_at_k"] = done.ToDictionary(r => (string)r["run"]!, r => Num(r["noisy_tail_energy_at_k"]) - Num(r["clean_tail_energy_at_k"])),
            ["width_effective_rank_at_sweep_noise"] = atSweep.ToDictionary(r => F((int)r["width"]!), r => Num(r["effective_rank"])),
            ["width_clean_tail_energy_at_k_at_sweep_noise"] = atSweep.ToDictionary(r => F((int)r["width"]!), r => Num(r["clean_tail_energy_at_k"])),
            ["width_full_test_acc_at_sweep_noise"] = atSweep.ToDictionary(r => F((int)r["width"]!), r => Num(r["full_test_acc"])),
        };
    }

    private static string F(int v) => v.ToString(CultureInfo.InvariantCulture);
}
