using System.Globalization;
using System.Text;
using LabelNoiseLab.RunFiles;
using LabelNoiseLab.Training;
using LabelNoiseLab.Experiments;

namespace LabelNoiseLab.Studies;

/// <summary>
/// The <c>robust</c> preset (issue 7): one training run per (method, noise setting, seed) with the
/// trainer (<see cref="PresetContext.Runner"/>, a <see cref="Trainer"/> in lnlab), each a <see cref="SubRun"/> in <c>runs/&lt;method&gt;_&lt;kind&gt;&lt;rate&gt;_s&lt;seed&gt;/</c>, then
/// <c>results.csv</c> (one row per run), <c>table.md</c> (mean ± std over seeds) and <c>metrics.csv</c>
/// (each run's last metrics row with its name in a final <c>run</c> column). Every run
/// logs detection scores, so <c>detection_auroc</c> is the last epoch's AUROC of the per-sample
/// gradient norm against the noise mask.
/// </summary>
public sealed class RobustPreset : IPreset
{
    /// <inheritdoc/>
    public string Name => "robust";

    /// <inheritdoc/>
    public string Description => "robust training methods on Fashion-MNIST";

    /// <inheritdoc/>
    public string SeedsHelp => "default 3, 1 with --quick";

    /// <summary><c>--seeds</c> and <c>--set</c> (see <see cref="Resolve"/>), checked before the run folder exists.</summary>
    public PresetPlan Prepare(PresetRequest request)
    {
        ArgumentNullException.ThrowIfNull(request);
        int seeds = request.Seeds ?? (request.Quick ? 1 : 3);
        if (seeds < 1)
            throw new ConfigException("--seeds", $"must be at least 1, got {seeds}");
        var (config, methods, settings) = Resolve(request.Quick, request.Sets);
        return new PresetPlan(request.Quick ? "robust-quick" : "robust", (dir, context) => Run(dir, config, methods, settings, seeds, context, request.Quick));
    }

    /// <summary>Method name → config overrides. SAM and label-noise SGD are not trainer options yet, so absent.</summary>
    public static IReadOnlyList<(string Method, Func<ExperimentConfig, double, ExperimentConfig> Apply)> Methods { get; } =
    [
        ("ce", (c, _) => c),
        ("prune_truncate", (c, _) => c with { PruneKind = "truncate" }),
        ("prune_soft", (c, _) => c with { PruneKind = "soft" }),
        ("gce", (c, _) => c with { RobustLoss = "gce" }),
        ("sce", (c, _) => c with { RobustLoss = "sce" }),
        // T estimated from anchor points after the first fifth of training (at least one epoch).
        ("forward_t", (c, _) => c with { RobustLoss = "forward", RobustEstimateAfter = Math.Max(1, c.Epochs / 5) }),
        // Han et al.: τ = the noise rate, reached after T_k = 10 epochs (or all epochs when fewer).
        ("co_teaching", (c, rate) => c with { SelectKind = "co_teaching", SelectForgetRate = rate, SelectForgetEpochs = Math.Min(10, c.Epochs) }),
        // SAM with the common ρ = 0.05 (Foret et al.) around the same base optimizer.
        ("sam", (c, _) => c with { SamRho = 0.05 }),
        // Label-noise SGD, the classification setting of the two-phase paper's authors: each label
        // redrawn uniformly with probability 0.5 at every step. It is its own training objective,
        // so the detection scores (another objective) are off for it: no AUROC in its rows.
        ("label_noise_sgd", (c, _) => c with { LabelNoiseKind = "classification", LabelNoiseP = 0.5, DetectionEnabled = false, DetectionSuspects = 0 }),
        // Confident learning, then plain training on the cleaned set: Run audits each (setting, seed)
        // once (audits/<kind><rate>_s<seed>/, lnlab audit with the run's config) and points
        // data.exclude / data.relabel at its label_issues.csv.
        ("cl_prune", (c, _) => c),
        ("cl_relabel", (c, _) => c),
    ];

    /// <summary>The methods that train on an audit's label_issues.csv.</summary>
    private static bool Audited(string method) => method is "cl_prune" or "cl_relabel";

    /// <summary>
    /// The audit of one (setting, seed): the run's config without detection, K folds as resumable
    /// runs, then confident learning; its label_issues.csv, or null when the audit did not complete.
    /// A complete audit is kept; one an earlier process started is continued.
    /// </summary>
    private static string? AuditFor(RunDirectory dir, ExperimentConfig c, string name, PresetContext context)
    {
        string path = Path.Combine(dir.Path, "audits", name);
        string issues = Path.Combine(path, Audit.IssuesFile);
        if (RunDirectory.ReadStatus(path)?.Status == RunStatus.Complete && File.Exists(issues))
            return issues;
        var config = c with { Name = name, DetectionEnabled = false, DetectionSuspects = 0 };
        // An audit an earlier process started goes on (its complete folds kept, a started fold resumed).
        bool started = RunDirectory.ReadStatus(path) is not null && File.Exists(Path.Combine(path, RunDirectory.ConfigFile));
        if (started && !ExperimentConfig.Load(Path.Combine(path, RunDirectory.ConfigFile)).Equals(config))
            throw new InputException($"{path}: was run with another config than the preset asks for now; start the preset again with --overwrite");
        using var audit = started ? RunDirectory.Reopen(path) : RunDirectory.Create(path, name, overwrite: true);
        try
        {
            if (!started)
            {
                audit.WriteConfig(config);
                audit.Publish();
            }
            var result = Audit.Run(config, audit, context);
            RunOutcome.Record(audit, result);
            return result.Status == RunStatus.Complete ? issues : null;
        }
        catch (Exception e)
        {
            RunOutcome.RecordException(audit, e);
            throw;
        }
    }

    /// <summary>The noise settings of a full run (<c>kind:rate</c>, comma-separated; <c>--set preset.settings=...</c> replaces them, <c>--quick</c> runs symmetric:0.4 only).</summary>
    public const string DefaultSettings = "symmetric:0.2,symmetric:0.4,symmetric:0.6,symmetric:0.8,asymmetric:0.4";

    /// <summary>The base config of every run: Fashion-MNIST, MLP 512-512, SGD with momentum, detection on.</summary>
    public static ExperimentConfig Base(bool quick) => ExperimentConfig.Default with
    {
        Name = "robust",
        DataName = "fashion-mnist",
        ModelKind = "mlp",
        ModelHidden = [512, 512],
        OptimKind = "sgd",
        OptimLr = 0.01,
        OptimMomentum = 0.9,
        Epochs = quick ? 3 : 20,
        DataSubset = quick ? 3000 : 0,
        EvalTrainSamples = quick ? 3000 : 10000,
        DetectionEnabled = true,
        DetectionLedger = false, // about 50 MB a run on the full set; --set detection.ledger=true for it
    };

    /// <summary>Runs the grid (<paramref name="config"/>, <paramref name="methods"/>, <paramref name="settings"/> from <see cref="Resolve"/>); <paramref name="quick"/> marks the claims.</summary>
    public static RunResult Run(RunDirectory dir, ExperimentConfig config, IReadOnlyList<string> methods, IReadOnlyList<(string Kind, double Rate)> settings, int seeds, PresetContext context, bool quick = false)
    {
        ArgumentNullException.ThrowIfNull(dir);
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(methods);
        ArgumentNullException.ThrowIfNull(settings);
        ArgumentNullException.ThrowIfNull(context);
        if (seeds < 1)
            throw new ConfigException("--seeds", $"must be at least 1, got {seeds}");
        dir.WriteText("config.yaml", config.ToYaml() + $"# preset\npreset.methods: {string.Join(",", methods)}\npreset.settings: {string.Join(",", settings.Select(s => $"{s.Kind}:{F(s.Rate)}"))}\npreset.seeds: {seeds}\n");
        var rows = new List<Row>();
        var metrics = new CombinedMetrics("run"); // each run's last metrics row, the run's name appended
        var csv = new StringBuilder("method,noise_kind,noise_rate,seed,best_test_acc,last_test_acc,detection_auroc,epoch_seconds\n");
        foreach (var (kind, rate) in settings)
            for (int seed = 0; seed < seeds; seed++)
            {
                string? issues = null;
                if (methods.Any(Audited))
                {
                    var plain = config with { Seed = seed, NoiseSeed = seed, NoiseKind = kind, NoiseRate = rate };
                    issues = AuditFor(dir, plain, $"audit_{kind}{F(rate)}_s{seed}", context);
                }
                foreach (var method in methods)
                {
                    var apply = Methods.First(m => m.Method == method).Apply;
                    var c = apply(config with { Seed = seed, NoiseSeed = seed, NoiseKind = kind, NoiseRate = rate, Name = $"{method}_{kind}{F(rate)}_s{seed}" }, rate);
                    if (Audited(method))
                    {
                        if (issues is null)
                        {
                            context.Log($"{method} {kind} {F(rate)} seed {seed}: skipped, the audit did not complete");
                            rows.Add(MakeRow(null, method, kind, rate, seed));
                            continue;
                        }
                        c = method == "cl_prune" ? c with { DataExclude = issues } : c with { DataRelabel = issues };
                    }
                    c.Validate();
                    var run = SubRun.Execute(Path.Combine(dir.Path, "runs", c.Name), c, context.Runner, context.ForSubRun());
                    var result = run.Result;
                    if (run.Report is { } report)
                        metrics.Add(run, report.Final is { } last ? [last] : [], c.Name);
                    dir.WriteText(RunDirectory.MetricsFile, metrics.Text);
                    if (result.Status == RunStatus.Interrupted)
                        return result with { Reason = $"{c.Name}: {result.Reason}" }; // a signal: the runs so far are in results.csv
                    var row = MakeRow(run.Report, method, kind, rate, seed);
                    rows.Add(row);
                    csv.Append(string.Create(CultureInfo.InvariantCulture,
                        $"{method},{kind},{F(rate)},{seed},{row.Best:G5},{row.Last:G5},{row.Auroc:G5},{row.EpochSeconds:G4}\n"));
                    dir.WriteText("results.csv", csv.ToString());
                    context.Log(string.Create(CultureInfo.InvariantCulture,
                        $"{method,-15} {kind} {F(rate)} seed {seed}: best {row.Best:F4} last {row.Last:F4} grad-norm AUROC {row.Auroc:F3} ({row.EpochSeconds:F2} s/epoch){(result.Status == RunStatus.Complete ? "" : " " + result.Reason)}"));
                }
            }
        dir.WriteText("table.md", Table(rows, methods, settings, config, seeds));
        var summary = new Dictionary<string, object?>
        {
            ["preset"] = "robust",
            ["quick"] = quick,
            ["runs"] = rows.Count,
            ["epochs"] = config.Epochs,
            ["subset"] = config.DataSubset,
            ["model"] = config.ModelKind,
            ["seeds"] = seeds,
        };
        foreach (var method in methods)
        {
            var mine = rows.Where(r => r.Method == method).ToList();
            summary[method] = new Dictionary<string, object?>
            {
                ["mean_best_test_acc"] = mine.Average(r => r.Best),
                ["mean_last_test_acc"] = mine.Average(r => r.Last),
                ["mean_detection_auroc"] = mine.Average(r => r.Auroc),
            };
        }
        summary["claims"] = RobustClaims(rows.Select(r => (r.Method, r.Kind, r.Rate, r.Last, r.Auroc)).ToList(), quick);
        dir.WriteSummary(summary);
        return RunResult.Complete;
    }

    /// <summary>
    /// The claims at 40% symmetric noise (none when that setting was not run), each judged on the
    /// mean over seeds with the standard deviation as spread: gradient pruning (truncation, soft)
    /// ends above cross-entropy; cross-entropy's gradient-norm detection AUROC is above 0.5; each
    /// robust loss (GCE, SCE, forward T) ends above cross-entropy. A method not run has no claim.
    /// </summary>
    public static List<Dictionary<string, object?>> RobustClaims(IReadOnlyList<(string Method, string Kind, double Rate, double Last, double Auroc)> rows, bool quick)
    {
        ArgumentNullException.ThrowIfNull(rows);
        var claims = new List<Dictionary<string, object?>>();
        var at40 = rows.Where(r => r.Kind == "symmetric" && Math.Abs(r.Rate - 0.4) < 1e-12).ToList();
        List<double> Of(string method, bool auroc) => [.. at40.Where(r => r.Method == method).Select(r => auroc ? r.Auroc : r.Last)];
        var ce = Of("ce", false);
        if (ce.Count == 0)
            return claims;
        var (ceMean, _) = Claims.MeanStd(ce);
        var (ceAuroc, ceAurocStd) = Claims.MeanStd(Of("ce", true));
        claims.Add(Claims.Claim("grad_norm_auroc_above_chance", "the per-sample gradient norm ranks mislabelled samples above clean ones (cross-entropy, 40% symmetric)",
            ceAuroc, "> 0.5 (AUROC)", ceAuroc > 0.5, quick, ce.Count, ceAurocStd));
        foreach (var (method, name) in (ReadOnlySpan<(string, string)>)[("prune_truncate", "gradient pruning (truncation)"), ("prune_soft", "gradient pruning (soft)"),
            ("gce", "generalised cross-entropy"), ("sce", "symmetric cross-entropy"), ("forward_t", "forward correction with an estimated T")])
        {
            var mine = Of(method, false);
            if (mine.Count == 0)
                continue;
            var (mean, std) = Claims.MeanStd(mine);
            claims.Add(Claims.Claim(method + "_above_ce", $"{name} ends with a higher last-epoch test accuracy than cross-entropy at 40% symmetric noise",
                mean, string.Create(CultureInfo.InvariantCulture, $"> {ceMean:F4} (ce)"), mean > ceMean, quick, mine.Count, std));
        }
        return claims;
    }

    /// <summary>
    /// The base config with the experiment keys of <paramref name="sets"/> applied, the methods (<c>preset.methods=a,b</c>; default all of
    /// <see cref="Methods"/>) and the noise settings (<c>preset.settings=kind:rate,...</c>); a bad value is a
    /// <see cref="ConfigException"/> naming its key.
    /// </summary>
    public static (ExperimentConfig Config, List<string> Methods, List<(string Kind, double Rate)> Settings) Resolve(bool quick, IReadOnlyList<string> sets)
    {
        var config = Base(quick);
        var methods = Methods.Select(m => m.Method).ToList();
        string settingsText = quick ? "symmetric:0.4" : DefaultSettings;
        var rest = new List<string>();
        foreach (var set in sets)
        {
            if (set.StartsWith("preset.methods=", StringComparison.Ordinal))
            {
                methods = set["preset.methods=".Length..].Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries).ToList();
                foreach (var m in methods.Where(m => Methods.All(k => k.Method != m)))
                    throw new ConfigException("preset.methods", $"unknown method '{m}'; known: {string.Join(", ", Methods.Select(k => k.Method))}");
            }
            else if (set.StartsWith("preset.settings=", StringComparison.Ordinal))
                settingsText = set["preset.settings=".Length..];
            else
                rest.Add(set);
        }
        config = config.WithOverrides(rest);
        config.Validate();
        var settings = new List<(string, double)>();
        foreach (var item in settingsText.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
        {
            var parts = item.Split(':');
            if (parts.Length != 2 || parts[0] is not ("symmetric" or "asymmetric" or "pairflip")
                || !double.TryParse(parts[1], NumberStyles.Float, CultureInfo.InvariantCulture, out double rate) || rate is < 0 or > 1)
                throw new ConfigException("preset.settings", $"'{item}': expected kind:rate with kind symmetric, asymmetric or pairflip and rate in [0, 1]");
            settings.Add((parts[0], rate));
        }
        if (methods.Count == 0 || settings.Count == 0)
            throw new ConfigException(methods.Count == 0 ? "preset.methods" : "preset.settings", "must name at least one");
        return (config, methods, settings);
    }

    private sealed record Row(string Method, string Kind, double Rate, int Seed, double Best, double Last, double Auroc, double EpochSeconds);

    /// <summary>A run's figures from what the trainer measured (NaN where it measured nothing, e.g. no gradient norms under SAM).</summary>
    private static Row MakeRow(TrainingReport? report, string method, string kind, double rate, int seed)
    {
        if (report is null)
            return new Row(method, kind, rate, seed, double.NaN, double.NaN, double.NaN, double.NaN);
        double epochs = report.Number("epochs_completed");
        return new Row(method, kind, rate, seed, report.Number("best_test_acc"), report.Number("final.test_acc"),
            report.Number("robust.detection_auroc_grad_norm"), epochs == 0 ? double.NaN : report.Number("seconds_training") / epochs);
    }

    private static string Table(List<Row> rows, IReadOnlyList<string> methods, IReadOnlyList<(string Kind, double Rate)> settings, ExperimentConfig c, int seeds)
    {
        var sb = new StringBuilder();
        sb.Append(string.Create(CultureInfo.InvariantCulture,
            $"# Robust training: test accuracy, mean ± std over {seeds} seed(s)\n\n{c.DataName}{(c.DataSubset > 0 ? $" (first {c.DataSubset} training samples)" : "")}, {c.ModelKind} {string.Join("-", c.ModelHidden)}, {c.Epochs} epochs, {c.OptimKind} lr {F(c.OptimLr)} momentum {F(c.OptimMomentum)}, batch {c.BatchSize}.\n"));
        sb.Append("Each cell: best-epoch / last-epoch test accuracy; AUROC of the per-sample gradient norm (last epoch) in brackets.\n\n");
        sb.Append("| method | ").Append(string.Join(" | ", settings.Select(s => $"{s.Kind} {F(s.Rate)}"))).Append(" |\n");
        sb.Append("|---|").Append(string.Concat(settings.Select(_ => "---|"))).Append('\n');
        foreach (var m in methods)
        {
            sb.Append("| ").Append(m).Append(" |");
            foreach (var (kind, rate) in settings)
            {
                var r = rows.Where(x => x.Method == m && x.Kind == kind && x.Rate == rate).ToList();
                sb.Append(string.Create(CultureInfo.InvariantCulture, $" {Ms(r.Select(x => x.Best))} / {Ms(r.Select(x => x.Last))} [{r.Average(x => x.Auroc):F2}] |"));
            }
            sb.Append('\n');
        }
        return sb.ToString();
    }

    private static string Ms(IEnumerable<double> values)
    {
        var v = values.ToArray();
        double mean = v.Average();
        double std = v.Length > 1 ? Math.Sqrt(v.Sum(x => (x - mean) * (x - mean)) / (v.Length - 1)) : 0;
        return string.Create(CultureInfo.InvariantCulture, $"{mean:F4} ± {std:F4}");
    }

    private static string F(double v) => ConfigTypes.FormatDouble(v);
}
