using System.Diagnostics;
using System.Globalization;
using System.Text;
using LabelNoiseLab.Probes;
using LabelNoiseLab.RunFiles;
using LabelNoiseLab.Training;
using LabelNoiseLab.Experiments;
using static LabelNoiseLab.Experiments.PresetValues;

namespace LabelNoiseLab.Studies;

/// <summary>
/// Settings of the <c>spectral-tail</c> preset (malignant-tail paper). Keys as written in
/// <c>config.yaml</c> and accepted by <c>--set</c>: <c>spectral_tail.&lt;name&gt;</c>; lists are
/// comma-separated (<c>--set spectral_tail.widths=64,256</c>).
/// </summary>
public sealed record SpectralTailOptions
{
    /// <summary><c>spectral_tail.data</c>: the data set of every run (<c>data.name</c>). Default fashion-mnist.</summary>
    public string Data { get; init; } = "fashion-mnist";
    /// <summary><c>spectral_tail.subset</c>: class-stratified training subset (<c>data.subset</c>; 0 = all). Default 10,000.</summary>
    public int Subset { get; init; } = 10_000;
    /// <summary><c>spectral_tail.val_fraction</c>: validation split in (0, 1), on which the truncation dimension d is chosen. Default 0.1.</summary>
    public double ValFraction { get; init; } = 0.1;
    /// <summary>The epoch cap: each run stops earlier once its noisy labels are fitted (<see cref="FitFactor"/>).</summary>
    public int Epochs { get; init; } = 150;

    /// <summary><c>early_stop.noisy_fit_factor</c> of every noisy run (1 = stop at the first evaluation with the noisy labels fitted; 0 = train to the cap).</summary>
    public double FitFactor { get; init; } = 1;

    /// <summary>Seeds of the noise-rate grid (seed, seed + 1, ...); the width and architecture sweeps use one.</summary>
    public int Seeds { get; init; } = 3;
    /// <summary><c>spectral_tail.batch_size</c>: mini-batch size of every run. Default 128.</summary>
    public int BatchSize { get; init; } = 128;
    /// <summary><c>spectral_tail.lr</c>: Adam learning rate of every run. Default 1e-3.</summary>
    public double Lr { get; init; } = 1e-3;
    /// <summary>Hidden layers of the MLP, each <see cref="Width"/> wide (the penultimate width).</summary>
    public int Depth { get; init; } = 2;
    /// <summary><c>spectral_tail.width</c>: the MLP's hidden width in the noise-rate grid. Default 512.</summary>
    public int Width { get; init; } = 512;
    /// <summary><c>spectral_tail.noise_rates</c>: symmetric noise rates of the grid, each in [0, 1). Default 0, 0.2, 0.4, 0.6, 0.8.</summary>
    public IReadOnlyList<double> NoiseRates { get; init; } = [0, 0.2, 0.4, 0.6, 0.8];
    /// <summary><c>spectral_tail.widths</c>: hidden widths of the width sweep at <see cref="SweepNoise"/>. Default 64, 128, 256, 512, 1024, 2048.</summary>
    public IReadOnlyList<int> Widths { get; init; } = [64, 128, 256, 512, 1024, 2048];
    /// <summary><c>spectral_tail.sweep_noise</c>: the noise rate of the width and architecture sweeps, in [0, 1). Default 0.4.</summary>
    public double SweepNoise { get; init; } = 0.4;
    /// <summary>The opt-in architecture sweep at <see cref="SweepNoise"/>, one seed: model kinds (small_cnn, resnet, cnn9, vit; mlp is the grid's).</summary>
    public IReadOnlyList<string> Architectures { get; init; } = [];
    /// <summary><c>spectral_tail.probe_epochs</c>: epochs of each linear probe fitted on the top-d features (<see cref="SpectralOptions.ProbeEpochs"/>). Default 5.</summary>
    public int ProbeEpochs { get; init; } = 5;
    /// <summary><c>spectral_tail.seed</c>: the first seed (the grid uses seed, seed + 1, ...; it seeds the noise too). Default 0.</summary>
    public int Seed { get; init; }
    /// <summary><c>spectral_tail.threads</c>: worker threads of every run (<c>threads</c>; 0 = all cores). Default 0.</summary>
    public int Threads { get; init; }

    /// <summary>The CI version: MLP only, small subset, few epochs, two noise rates, two widths (under a minute).</summary>
    public static SpectralTailOptions Quick { get; } = new()
    {
        Subset = 2000, Epochs = 12, Width = 128, Widths = [32, 128], NoiseRates = [0, 0.4], Seeds = 1, ProbeEpochs = 3,
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
        ("spectral_tail.architectures", o => string.Join(",", o.Architectures), (o, v) => o with { Architectures = List(v, x => x) }),
        ("spectral_tail.seeds", o => F(o.Seeds), (o, v) => o with { Seeds = I(v) }),
        ("spectral_tail.fit_factor", o => F(o.FitFactor), (o, v) => o with { FitFactor = D(v) }),
        ("spectral_tail.probe_epochs", o => F(o.ProbeEpochs), (o, v) => o with { ProbeEpochs = I(v) }),
        ("spectral_tail.seed", o => F(o.Seed), (o, v) => o with { Seed = I(v) }),
        ("spectral_tail.threads", o => F(o.Threads), (o, v) => o with { Threads = I(v) }),
    ];

    /// <summary>Applies <c>key=value</c>; an unknown key or a value of the wrong type is a <see cref="ConfigException"/>.</summary>
    public SpectralTailOptions With(string assignment) => PresetSettings.Apply(this, assignment, "spectral-tail", Table);

    /// <summary>The experiment config of one run of the preset (validated).</summary>
    public ExperimentConfig RunConfig(string model, double noiseRate, int width, int seed)
    {
        var config = ExperimentConfig.Default with
        {
            Name = Name(model, noiseRate, width, seed == Seed ? null : seed),
            Seed = seed,
            EarlyStopSaveBest = true,
            EarlyStopNoisyFitFactor = noiseRate > 0 ? FitFactor : 0,
            Epochs = Epochs,
            BatchSize = BatchSize,
            Threads = Threads,
            DataName = Data,
            DataSubset = Subset,
            DataValFraction = ValFraction,
            NoiseKind = noiseRate > 0 ? "symmetric" : "none",
            NoiseRate = noiseRate,
            NoiseSeed = seed,
            ModelKind = model,
            ModelHidden = Enumerable.Repeat(width > 0 ? width : Width, Depth).ToList(),
            OptimKind = "adam",
            OptimLr = Lr,
        };
        config.Validate();
        return config;
    }

    /// <summary>The run's folder name, <c>&lt;model&gt;-w&lt;width&gt;-noise&lt;percent&gt;[-s&lt;seed&gt;]</c> (the seed only when it is not the first).</summary>
    public static string Name(string model, double noiseRate, int width, int? seed = null) =>
        string.Create(CultureInfo.InvariantCulture, $"{model.Replace('_', '-')}-w{width}-noise{Math.Round(noiseRate * 100)}{(seed is int s ? $"-s{s}" : "")}");

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
        if (Seeds < 1) throw new ConfigException("spectral_tail.seeds", $"expected at least 1, got {Seeds}");
        if (!(FitFactor == 0 || FitFactor >= 1)) throw new ConfigException("spectral_tail.fit_factor", $"expected 0 (train to the epoch cap) or at least 1, got {F(FitFactor)}");
        var kinds = new[] { "mlp", "small_cnn", "resnet", "cnn9", "vit" };
        if (Architectures.FirstOrDefault(a => !kinds.Contains(a)) is { } bad) throw new ConfigException("spectral_tail.architectures", $"expected model kinds among {string.Join(",", kinds)}, got '{bad}'");
        foreach (var (model, rate, width, seed) in Runs())
            RunConfig(model, rate, width, seed); // every run's config is checked before anything is trained
    }

    /// <summary>
    /// The MLP at every noise rate and seed, then the MLP width sweep at <see cref="SweepNoise"/>
    /// (first seed), then the architecture sweep (first seed; width 0 = the kind's own).
    /// </summary>
    public IReadOnlyList<(string Model, double NoiseRate, int Width, int Seed)> Runs()
    {
        var runs = new List<(string, double, int, int)>();
        foreach (double rate in NoiseRates)
            for (int k = 0; k < Seeds; k++)
                runs.Add(("mlp", rate, Width, Seed + k));
        foreach (int w in Widths)
            if (!runs.Contains(("mlp", SweepNoise, w, Seed)))
                runs.Add(("mlp", SweepNoise, w, Seed));
        foreach (var a in Architectures.Where(a => a != "mlp"))
            runs.Add((a, SweepNoise, 0, Seed));
        return runs;
    }

    /// <summary>The settings as YAML (<c>config.yaml</c>), one <c>spectral_tail.*</c> key per line.</summary>
    public string ToYaml() => PresetSettings.ToYaml(this, "spectral-tail preset (spectral linear probe and truncation under label noise)", Table);

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
    /// <summary>One row per run (columns <see cref="ResultsHeader"/>).</summary>
    public const string ResultsFile = "results.csv";

    /// <inheritdoc/>
    public string Name => "spectral-tail";

    /// <inheritdoc/>
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
        + "model,oracle_best_test_acc,probe_best_d,probe_best_test_acc,probe_test_acc_at_D,clean_tail_energy_at_k,noisy_tail_energy_at_k,run,"
        + "seed,epochs_run,noisy_fit_epoch,early_stop_epoch,oracle_d,oracle_trunc_test_acc,early_stop_best_d_by_val,early_stop_trunc_test_acc_at_best_d,early_stop_oracle_trunc_test_acc,probe_test_acc_at_1";

    /// <summary>Per (model, width, noise rate): mean and standard deviation over the seeds.</summary>
    public const string AggregateFile = "aggregate.csv";
    /// <summary>Every run's <c>spectral.csv</c> rows (per truncation dimension d), with a leading run column.</summary>
    public const string PerDFile = "per_d.csv";
    /// <summary>As <see cref="PerDFile"/>, for the early-stopped checkpoint (lowest noisy-validation loss).</summary>
    public const string PerDEarlyFile = "per_d_early_stopped.csv";
    /// <summary>The width sweep: tail energy at d = classes, effective rank and test accuracy per width.</summary>
    public const string WidthsFile = "widths.csv";

    /// <summary>Trains and probes every run of <see cref="SpectralTailOptions.Runs"/> in <paramref name="dir"/>, then writes the tables, <c>metrics.csv</c> and <c>summary.json</c> with the claims; returns how it ended.</summary>
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
        var perD = new CsvConcat("run");
        var perDEarly = new CsvConcat("run");
        for (int i = 0; i < runs.Count; i++)
        {
            var (model, rate, width, seed) = runs[i];
            var config = o.RunConfig(model, rate, width, seed);
            var runClock = Stopwatch.StartNew();
            // The trained model and the early-stopped checkpoint are probed before the run is marked complete.
            SpectralFigures? probe = null, early = null;
            var spectral = new SpectralOptions { ProbeEpochs = o.ProbeEpochs };
            bool HasEarly(string path) => File.Exists(Path.Combine(path, RunDirectory.CheckpointsFolder, "best_val" + RunDirectory.CheckpointExtension));
            var run = SubRun.Execute(Path.Combine(dir.Path, "runs", config.Name), config, context.Runner, context.ForSubRun(),
                beforeComplete: (sub, _) =>
                {
                    probe = SpectralFigures.Of(SpectralRunProbe.Run(sub.Path, FeatureExtractor.Penultimate, spectral, context.DataDir));
                    if (HasEarly(sub.Path))
                        early = SpectralFigures.Of(SpectralRunProbe.Run(sub.Path, FeatureExtractor.Penultimate, spectral, context.DataDir, false, null, "best_val", "_early_stopped"));
                });
            if (run.Kept && run.Status == RunStatus.Complete) // complete in an earlier process: its probes' files are read back
            {
                probe = SpectralFigures.Read(run.Directory.Path, "");
                early = HasEarly(run.Directory.Path) ? SpectralFigures.Read(run.Directory.Path, "_early_stopped") : null;
            }
            Dictionary<string, object?> row;
            if (run.Status != RunStatus.Complete)
            {
                log($"{config.Name}: {run.Result.Reason}; no probe");
                row = Row(model, rate, width, seed, config.Name, null, null, null);
            }
            else
            {
                row = Row(model, rate, width, seed, config.Name, probe, early, run.Report);
                perD.Add(config.Name, Path.Combine(dir.Path, "runs", config.Name, SpectralRunProbe.SpectralFile));
                perDEarly.Add(config.Name, Path.Combine(dir.Path, "runs", config.Name, "spectral_early_stopped.csv"));
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
            if (run.Status == RunStatus.Interrupted)
                return run.Result with { Reason = $"{config.Name}: {run.Result.Reason}" }; // a signal: the runs so far are in results.csv
            log(string.Create(CultureInfo.InvariantCulture,
                $"[{i + 1}/{runs.Count}] {config.Name}: full {Num(row["full_test_acc"]):F4}, trunc at d={row["best_d_by_val"]} {Num(row["trunc_test_acc_at_best_d"]):F4}, early stop {Num(row["best_early_stop_test_acc"]):F4}, erank {Num(row["effective_rank"]):F1} (init {Num(row["effective_rank_at_init"]):F1}), probe best d {row["probe_best_d"]}; {runClock.Elapsed.TotalSeconds:F0} s"));
        }
        var aggregate = Aggregate(rows, o);
        dir.WriteText(AggregateFile, CsvConcat.Table(aggregate));
        dir.WriteText(PerDFile, perD.Text);
        dir.WriteText(PerDEarlyFile, perDEarly.Text);
        var widthRows = rows.Where(r => (string)r["model"]! == "mlp" && Math.Abs(Num(r["noise_rate"]) - o.SweepNoise) < 1e-9 && (int)r["seed"]! == o.Seed)
            .OrderBy(r => Num(r["width"])).Select(r => new Dictionary<string, object?>
            {
                ["width"] = r["width"],
                ["noise_rate"] = r["noise_rate"],
                ["effective_rank"] = r["effective_rank"],
                ["tail_energy_at_k"] = TailEnergy(r),
                ["clean_tail_energy_at_k"] = r["clean_tail_energy_at_k"],
                ["noisy_tail_energy_at_k"] = r["noisy_tail_energy_at_k"],
                ["full_test_acc"] = r["full_test_acc"],
                ["trunc_test_acc_at_best_d"] = r["trunc_test_acc_at_best_d"],
                ["epochs_run"] = r["epochs_run"],
                ["run"] = r["run"],
            }).ToList();
        dir.WriteText(WidthsFile, CsvConcat.Table(widthRows));
        dir.WriteSummary(new Dictionary<string, object?>
        {
            ["preset"] = "spectral-tail",
            ["quick"] = quick,
            ["claims"] = SpectralTailClaims.Evaluate(aggregate, widthRows, rows, o, quick),
            ["aggregate"] = aggregate,
            ["runs"] = rows,
            ["observations"] = Observations(rows, o),
            ["files"] = new Dictionary<string, object?>
            {
                [ResultsFile] = "one row per run",
                [AggregateFile] = "per (model, width, noise rate): mean and std over seeds",
                [PerDFile] = "every run's spectral.csv rows (per d), leading run column",
                [PerDEarlyFile] = "the same for the early-stopped (lowest noisy-validation loss) checkpoint",
                [WidthsFile] = "the width sweep: tail energy at d = classes, effective rank, test accuracy per width",
            },
            ["seconds"] = clock.Elapsed.TotalSeconds,
            ["notes"] = "best_early_stop_test_acc = test accuracy at the epoch of the lowest validation loss (validation labels are noisy); "
                + "oracle_best_test_acc = the best test accuracy of any epoch. Tail energies at d = the number of classes. "
                + "Each run's own folder under runs/ holds metrics.csv, spectrum.csv, spectral.csv, spectral_init.csv and its summary.json.",
        });
        return RunResult.Complete;
    }

    private static Dictionary<string, object?> Row(string model, double rate, int width, int seed, string name, SpectralFigures? t, SpectralFigures? e, TrainingReport? training)
    {
        var atK = t?.RowAt(t.Classes);
        var atD = t?.Rows[^1];
        var oracle = t?.Rows.MaxBy(r => r.TruncTestAcc);
        return new Dictionary<string, object?>
        {
            ["noise_rate"] = rate,
            ["width"] = width,
            ["full_test_acc"] = t?.FullTestAcc ?? double.NaN,
            ["best_d_by_val"] = t?.BestDByVal,
            ["trunc_test_acc_at_best_d"] = t?.TruncTestAccAtBestD ?? double.NaN,
            ["best_early_stop_test_acc"] = training?.Number("test_acc_at_best_val") ?? double.NaN,
            ["effective_rank"] = t?.EffectiveRank ?? double.NaN,
            ["effective_rank_at_init"] = t?.EffectiveRankAtInit ?? double.NaN,
            ["model"] = model,
            ["oracle_best_test_acc"] = training?.Number("best_test_acc") ?? double.NaN,
            ["probe_best_d"] = t?.ProbeBestD,
            ["probe_best_test_acc"] = t?.ProbeBestTestAcc ?? double.NaN,
            ["probe_test_acc_at_D"] = atD?.ProbeTestAcc ?? double.NaN,
            ["clean_tail_energy_at_k"] = atK?.CleanTailEnergy ?? double.NaN,
            ["noisy_tail_energy_at_k"] = atK?.NoisyTailEnergy ?? double.NaN,
            ["run"] = "runs/" + name,
            ["seed"] = seed,
            ["epochs_run"] = training?.Value("epochs_completed") is int ep ? ep : null,
            ["noisy_fit_epoch"] = training?.Value("noisy_fit_epoch") is int nf ? nf : null,
            ["early_stop_epoch"] = training?.Value("best_val_epoch") is int be ? be : null,
            ["oracle_d"] = oracle?.D,
            ["oracle_trunc_test_acc"] = oracle?.TruncTestAcc ?? double.NaN,
            ["early_stop_best_d_by_val"] = e?.BestDByVal,
            ["early_stop_trunc_test_acc_at_best_d"] = e?.TruncTestAccAtBestD ?? double.NaN,
            ["early_stop_oracle_trunc_test_acc"] = e is null ? double.NaN : e.Rows.Max(r => r.TruncTestAcc),
            ["probe_test_acc_at_1"] = t?.RowAt(1)?.ProbeTestAcc ?? double.NaN,
        };
    }

    /// <summary>Tail energy at d = classes over all training samples: clean and noisy weighted by the noise rate.</summary>
    public static double TailEnergy(Dictionary<string, object?> r)
    {
        double rate = Num(r["noise_rate"]), clean = Num(r["clean_tail_energy_at_k"]), noisy = Num(r["noisy_tail_energy_at_k"]);
        return rate == 0 ? clean : (1 - rate) * clean + rate * noisy;
    }

    /// <summary>Per (model, width, noise rate): mean and standard deviation over seeds of the comparison's figures.</summary>
    private static List<Dictionary<string, object?>> Aggregate(List<Dictionary<string, object?>> rows, SpectralTailOptions o)
    {
        string[] figures = ["full_test_acc", "trunc_test_acc_at_best_d", "best_early_stop_test_acc", "early_stop_trunc_test_acc_at_best_d", "oracle_trunc_test_acc",
            "probe_best_d", "best_d_by_val", "effective_rank", "clean_tail_energy_at_k", "noisy_tail_energy_at_k", "epochs_run"];
        var result = new List<Dictionary<string, object?>>();
        foreach (var g in rows.GroupBy(r => ((string)r["model"]!, (int)r["width"]!, Num(r["noise_rate"]))).OrderBy(g => g.Key.Item1).ThenBy(g => g.Key.Item2).ThenBy(g => g.Key.Item3))
        {
            var row = new Dictionary<string, object?> { ["model"] = g.Key.Item1, ["width"] = g.Key.Item2, ["noise_rate"] = g.Key.Item3, ["n_seeds"] = g.Count() };
            foreach (var f in figures)
            {
                var v = g.Select(r => Num(r[f])).Where(double.IsFinite).ToList();
                row[f + "_mean"] = v.Count == 0 ? double.NaN : v.Average();
                row[f + "_std"] = v.Count < 2 ? (v.Count == 1 ? 0 : double.NaN) : Math.Sqrt(v.Sum(x => (x - v.Average()) * (x - v.Average())) / (v.Count - 1));
            }
            var diff = g.Select(r => Num(r["trunc_test_acc_at_best_d"]) - Num(r["full_test_acc"])).Where(double.IsFinite).ToList();
            row["trunc_minus_full_mean"] = diff.Count == 0 ? double.NaN : diff.Average();
            row["trunc_minus_full_std"] = diff.Count < 2 ? (diff.Count == 1 ? 0 : double.NaN) : Math.Sqrt(diff.Sum(x => (x - diff.Average()) * (x - diff.Average())) / (diff.Count - 1));
            var es = g.Select(r => Num(r["trunc_test_acc_at_best_d"]) - Num(r["best_early_stop_test_acc"])).Where(double.IsFinite).ToList();
            row["trunc_minus_early_stop_mean"] = es.Count == 0 ? double.NaN : es.Average();
            row["trunc_minus_early_stop_std"] = es.Count < 2 ? (es.Count == 1 ? 0 : double.NaN) : Math.Sqrt(es.Sum(x => (x - es.Average()) * (x - es.Average())) / (es.Count - 1));
            result.Add(row);
        }
        return result;
    }

    internal static double Num(object? v) => v switch
    {
        double d => d,
        int i => i,
        long l => l,
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
        // Keyed by width: the width sweep's seed only (with several seeds the grid's width appears once per seed at this noise rate).
        var widthSweep = atSweep.Where(r => (int)r["seed"]! == o.Seed).ToList();
        return new Dictionary<string, object?>
        {
            ["probe_best_d_by_run"] = done.ToDictionary(r => (string)r["run"]!, r => r["probe_best_d"]),
            ["probe_valley_drop_by_run"] = done.ToDictionary(r => (string)r["run"]!, r => Num(r["probe_best_test_acc"]) - Num(r["probe_test_acc_at_D"])),
            ["trunc_minus_full_at_sweep_noise"] = atSweep.ToDictionary(r => (string)r["run"]!, r => Num(r["trunc_test_acc_at_best_d"]) - Num(r["full_test_acc"])),
            ["trunc_minus_early_stop_at_sweep_noise"] = atSweep.ToDictionary(r => (string)r["run"]!, r => Num(r["trunc_test_acc_at_best_d"]) - Num(r["best_early_stop_test_acc"])),
            ["noisy_minus_clean_tail_energy_at_k"] = done.ToDictionary(r => (string)r["run"]!, r => Num(r["noisy_tail_energy_at_k"]) - Num(r["clean_tail_energy_at_k"])),
            ["width_effective_rank_at_sweep_noise"] = widthSweep.ToDictionary(r => F((int)r["width"]!), r => Num(r["effective_rank"])),
            ["width_clean_tail_energy_at_k_at_sweep_noise"] = widthSweep.ToDictionary(r => F((int)r["width"]!), r => Num(r["clean_tail_energy_at_k"])),
            ["width_full_test_acc_at_sweep_noise"] = widthSweep.ToDictionary(r => F((int)r["width"]!), r => Num(r["full_test_acc"])),
        };
    }

    private static string F(int v) => v.ToString(CultureInfo.InvariantCulture);
}
