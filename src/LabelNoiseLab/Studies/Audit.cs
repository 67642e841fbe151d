using System.Diagnostics;
using System.Globalization;
using System.Text;
using LabelNoiseLab.Autograd;
using LabelNoiseLab.Data;
using LabelNoiseLab.Experiments;
using LabelNoiseLab.Robust;
using LabelNoiseLab.RunFiles;
using LabelNoiseLab.Tensors;
using LabelNoiseLab.Training;

namespace LabelNoiseLab.Studies;

/// <summary>
/// <c>lnlab audit</c>: K-fold cross-validated, out-of-sample predicted probabilities for every
/// training sample (fold i is an ordinary, resumable run under <c>folds/fold-i/</c> that trains
/// the configured model from scratch without fold i: <c>audit.fold: i</c>), then confident
/// learning (<see cref="ConfidentLearning"/>). Writes <c>probabilities.npy</c> (n × K float32),
/// <c>label_issues.csv</c> and <c>summary.json</c> → <c>audit</c>. Confident learning reads only
/// the given labels and the probabilities; the true labels and the noise mask are read only to
/// score the audit when the truth is known (<see cref="Dataset.TruthKnown"/>).
/// </summary>
public static class Audit
{
    /// <summary>
    /// The audit's verdict, one row per training sample in index order: <c>index, given_label, suggested_label,
    /// score, is_issue</c> (and <c>true_label, is_noisy</c> when the truth is known); <c>data.exclude</c> and <c>data.relabel</c> read it.
    /// </summary>
    public const string IssuesFile = "label_issues.csv";
    /// <summary>The out-of-sample predicted probabilities, n × K float32 (row i: training sample i, predicted by the fold run that did not train on it).</summary>
    public const string ProbabilitiesFile = "probabilities.npy";
    /// <summary>The folder of the fold runs, <c>folds/fold-i/</c>.</summary>
    public const string FoldsFolder = "folds";

    /// <summary>Whether <paramref name="path"/> is an audit's folder (it has <c>folds/</c> beside its config).</summary>
    public static bool IsAuditDirectory(string path) =>
        Directory.Exists(Path.Combine(path, FoldsFolder)) && File.Exists(Path.Combine(path, RunDirectory.ConfigFile));

    /// <summary>Checks what can be checked before any folder exists (keys that make no sense for an audit).</summary>
    public static void Validate(ExperimentConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        if (config.AuditFold != 0)
            throw new ConfigException("audit.fold", "is set by lnlab audit for its folds; leave it 0");
        if (config.DataName is "linear-teacher")
            throw new ConfigException("data.name", "lnlab audit needs a classification data set");
        if (config.LossKind != "cross_entropy")
            throw new ConfigException("loss.kind", "lnlab audit needs probabilities: use cross_entropy");
    }

    /// <summary>The config of fold <paramref name="fold"/> (1-based).</summary>
    public static ExperimentConfig FoldConfig(ExperimentConfig config, int fold)
    {
        ArgumentNullException.ThrowIfNull(config);
        return config with { AuditFold = fold, Name = $"{config.Name}-fold{fold}" };
    }

    /// <summary>Runs (or continues) every fold, then confident learning; returns how it ended.</summary>
    public static RunResult Run(ExperimentConfig config, RunDirectory dir, PresetContext context)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(dir);
        ArgumentNullException.ThrowIfNull(context);
        Validate(config);
        var clock = Stopwatch.StartNew();
        // The pool: the training set every index refers to (after subset, noise and cleaning, before any split).
        var pool = ExperimentSetup.PrepareData(config with { DataValFraction = 0 }, context.DataDir).Train;
        if (pool.NumClasses < 2)
            throw new ConfigException("data.name", $"lnlab audit needs a classification data set with at least 2 classes; {config.DataName} has {pool.NumClasses}");
        int[] folds;
        try
        {
            folds = Splits.StratifiedFolds(pool, config.AuditFolds, Rng.ForPurpose(config.Seed, "folds"), "DataOptions.FoldCount");
        }
        catch (ArgumentException e)
        {
            throw ExperimentSetup.AsConfigError(e);
        }

        string foldsRoot = Path.Combine(dir.Path, FoldsFolder);
        Directory.CreateDirectory(foldsRoot);
        var foldSeconds = new List<double>();
        for (int f = 1; f <= config.AuditFolds; f++)
        {
            var foldClock = Stopwatch.StartNew();
            var result = RunFold(FoldConfig(config, f), Path.Combine(foldsRoot, $"fold-{f}"), context);
            foldSeconds.Add(foldClock.Elapsed.TotalSeconds);
            if (result.Status != RunStatus.Complete)
                return result with { Reason = $"fold {f}: {result.Reason}" };
        }

        // Out-of-sample probabilities: each fold's final model on the fold it never saw.
        int n = pool.Count, k = pool.NumClasses;
        var probs = new float[(long)n * k];
        var filled = new bool[n];
        for (int f = 1; f <= config.AuditFolds; f++)
        {
            var foldConfig = FoldConfig(config, f);
            var data = ExperimentSetup.PrepareData(foldConfig, context.DataDir);
            var heldOut = data.HeldOut ?? throw new InvalidOperationException("a fold config without a held-out fold");
            var indices = data.HeldOutIndices!;
            var model = ExperimentSetup.CreateModel(foldConfig, data.Train);
            string final = Path.Combine(foldsRoot, $"fold-{f}", RunDirectory.CheckpointsFolder, "final" + RunDirectory.CheckpointExtension);
            Safetensors.LoadInto(final, model.NamedState());
            var p = Predict(model, heldOut);
            for (int j = 0; j < indices.Length; j++)
            {
                int i = indices[j];
                if (folds[i] != f - 1 || filled[i] || heldOut.Labels[j] != pool.Labels[i])
                    throw new InvalidOperationException($"fold {f}: held-out sample {i} does not match the audit's folds");
                filled[i] = true;
                p.AsSpan(j * k, k).CopyTo(probs.AsSpan(i * k, k));
            }
        }
        if (filled.Any(x => !x))
            throw new InvalidOperationException("a sample was held out by no fold");

        var filter = config.AuditFilter switch
        {
            "prune_by_class" => CleanFilter.PruneByClass,
            "both" => CleanFilter.Both,
            "off_diagonal" => CleanFilter.OffDiagonal,
            _ => CleanFilter.PruneByNoiseRate,
        };
        var rank = config.AuditRank switch
        {
            "normalized_margin" => IssueRank.NormalizedMargin,
            "entropy" => IssueRank.Entropy,
            _ => IssueRank.SelfConfidence,
        };
        var cl = ConfidentLearning.Run(probs, pool.Labels, k, filter, rank);

        dir.WriteText(RunDirectory.MetricsFile, FoldMetrics(foldsRoot, config.AuditFolds));
        dir.WriteFile(ProbabilitiesFile, s => WriteNpy(s, probs, n, k));
        dir.WriteText(IssuesFile, IssuesCsv(pool, cl));
        var audit = Figures(config, pool, probs, cl);
        audit["fold_seconds"] = foldSeconds;
        audit["seconds"] = clock.Elapsed.TotalSeconds;
        dir.WriteSummary(new Dictionary<string, object?> { ["audit"] = audit });
        int flagged = cl.IsIssue.Count(x => x);
        string line = string.Create(CultureInfo.InvariantCulture, $"audit: {flagged} of {n} samples flagged ({config.AuditFilter}), estimated noise rate {cl.NoiseRate:F4}");
        if (audit.ContainsKey("f1"))
            line += string.Create(CultureInfo.InvariantCulture,
                $", precision {audit["precision"]:F4} recall {audit["recall"]:F4} F1 {audit["f1"]:F4} AP {audit["average_precision"]:F4} AUROC {audit["auroc"]:F4}");
        context.Log(line);
        return RunResult.Complete;
    }

    /// <summary>A fold: kept when complete, continued from its newest checkpoint when started, else run from scratch (<see cref="SubRun.Execute"/>).</summary>
    private static RunResult RunFold(ExperimentConfig foldConfig, string path, PresetContext context)
    {
        context.Log(RunDirectory.ReadStatus(path) is null ? $"{path}: training fold {foldConfig.AuditFold} of {foldConfig.AuditFolds}" : $"{path}: continuing");
        var run = SubRun.Execute(path, foldConfig, context.Runner, context.ForSubRun(new MessageLog(context.Log)));
        run.Directory.Dispose();
        if (run.Kept)
            context.Log($"{path}: {run.Status.ToString().ToLowerInvariant()}, kept");
        return run.Result;
    }

    /// <summary>Only the runner's messages (resuming from which checkpoint), to the log.</summary>
    private sealed class MessageLog(Action<string> log) : IProgressSink
    {
        public void OnRunStart(int totalEpochs, int stepsPerEpoch)
        {
        }

        public void OnStep(int epoch, long step, double loss)
        {
        }

        public void OnEvaluation(MetricsRow row)
        {
        }

        public void OnMessage(string message) => log(message);
    }

    /// <summary>Softmax probabilities of <paramref name="model"/> on every sample (evaluation mode, no tape), n × K.</summary>
    public static float[] Predict(Nn.Model model, Dataset data, int chunk = 1000)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(data);
        int n = data.Count, d = data.FeatureLength, k = data.NumClasses;
        var probs = new float[(long)n * k];
        var tape = new Tape(recording: false);
        var x = new Tensor(Math.Min(chunk, Math.Max(n, 1)), d);
        bool wasTraining = model.Training;
        model.SetTraining(false);
        try
        {
            for (int start = 0; start < n; start += chunk)
            {
                int len = Math.Min(chunk, n - start);
                x.Resize([len, d]);
                data.Features.AsSpan(start * d, len * d).CopyTo(x.Span);
                tape.Reset();
                var logits = model.Forward(tape, x).Span;
                for (int i = 0; i < len; i++)
                {
                    var row = logits.Slice(i * k, k);
                    float max = float.NegativeInfinity;
                    foreach (float v in row)
                        max = Math.Max(max, v);
                    double sum = 0;
                    foreach (float v in row)
                        sum += Math.Exp(v - max);
                    for (int j = 0; j < k; j++)
                        probs[(long)(start + i) * k + j] = (float)(Math.Exp(row[j] - max) / sum);
                }
            }
        }
        finally
        {
            model.SetTraining(wasTraining);
        }
        return probs;
    }

    /// <summary>The folds' metrics.csv rows, each with a trailing <c>fold</c> column.</summary>
    private static string FoldMetrics(string foldsRoot, int folds)
    {
        var sb = new StringBuilder();
        for (int f = 1; f <= folds; f++)
        {
            var lines = File.ReadAllLines(Path.Combine(foldsRoot, $"fold-{f}", RunDirectory.MetricsFile)).Where(l => l.Length > 0).ToList();
            if (lines.Count == 0)
                continue;
            if (sb.Length == 0)
                sb.Append(lines[0]).Append(",fold\n");
            foreach (var line in lines.Skip(1))
                sb.Append(line).Append(',').Append(f).Append('\n');
        }
        return sb.ToString();
    }

    /// <summary>label_issues.csv: one row per training sample, in index order.</summary>
    internal static string IssuesCsv(Dataset pool, ConfidentLearningResult cl)
    {
        ArgumentNullException.ThrowIfNull(pool);
        ArgumentNullException.ThrowIfNull(cl);
        var sb = new StringBuilder("index,given_label,suggested_label,score,is_issue");
        if (pool.TruthKnown)
            sb.Append(",true_label,is_noisy");
        sb.Append('\n');
        for (int i = 0; i < pool.Count; i++)
        {
            sb.Append(CultureInfo.InvariantCulture, $"{i},{pool.Labels[i]},{cl.Suggested[i]},{cl.Score[i].ToString("R", CultureInfo.InvariantCulture)},{(cl.IsIssue[i] ? 1 : 0)}");
            if (pool.TruthKnown)
                sb.Append(CultureInfo.InvariantCulture, $",{pool.TrueLabels[i]},{(pool.NoiseMask[i] ? 1 : 0)}");
            sb.Append('\n');
        }
        return sb.ToString();
    }

    /// <summary>summary.json → audit: the estimates, and with the truth known the audit's scores.</summary>
    internal static Dictionary<string, object?> Figures(ExperimentConfig config, Dataset pool, ReadOnlySpan<float> probs, ConfidentLearningResult cl)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(pool);
        ArgumentNullException.ThrowIfNull(cl);
        int n = pool.Count, k = pool.NumClasses;
        int flagged = cl.IsIssue.Count(x => x);
        long cvGiven = 0;
        for (int i = 0; i < n; i++)
            cvGiven += cl.Suggested[i] == pool.Labels[i] ? 1 : 0;
        var figures = new Dictionary<string, object?>
        {
            ["folds"] = config.AuditFolds,
            ["filter"] = config.AuditFilter,
            ["rank"] = config.AuditRank,
            ["samples"] = n,
            ["classes"] = k,
            ["flagged"] = flagged,
            ["estimated_noise_rate"] = cl.NoiseRate,
            ["thresholds"] = cl.Thresholds.Select(t => double.IsFinite(t) ? (object?)t : null).ToList(),
            ["estimated_prior"] = cl.Prior.ToList(),
            ["confident_joint"] = Rows(k, (i, j) => cl.ConfidentJoint[i, j]),
            ["estimated_joint"] = Rows(k, (i, j) => cl.Joint[i, j]),
            ["estimated_transition"] = Rows(k, (i, j) => cl.Transition[i, j]),
            ["cv_accuracy_given"] = (double)cvGiven / n,
            ["truth_known"] = pool.TruthKnown,
        };
        if (!pool.TruthKnown)
            return figures;
        var noisy = pool.NoiseMask;
        int tp = 0, positives = 0;
        long cvTrue = 0;
        for (int i = 0; i < n; i++)
        {
            positives += noisy[i] ? 1 : 0;
            tp += noisy[i] && cl.IsIssue[i] ? 1 : 0;
            cvTrue += cl.Suggested[i] == pool.TrueLabels[i] ? 1 : 0;
        }
        double precision = flagged == 0 ? double.NaN : (double)tp / flagged;
        double recall = positives == 0 ? double.NaN : (double)tp / positives;
        var order = Enumerable.Range(0, n).OrderByDescending(i => cl.Score[i]).ThenBy(i => i).Take(flagged);
        int topHits = order.Count(i => noisy[i]);
        var counts = new long[k, k];
        var rowTotals = new long[k];
        for (int i = 0; i < n; i++)
        {
            counts[pool.TrueLabels[i], pool.Labels[i]]++;
            rowTotals[pool.TrueLabels[i]]++;
        }
        figures["realised_noise_rate"] = (double)positives / n;
        figures["realised_transition"] = Rows(k, (t, g) => rowTotals[t] == 0 ? (t == g ? 1.0 : 0.0) : (double)counts[t, g] / rowTotals[t]);
        figures["noisy"] = positives;
        figures["true_positives"] = tp;
        figures["precision"] = Finite(precision);
        figures["recall"] = Finite(recall);
        figures["f1"] = Finite(2 * precision * recall / (precision + recall));
        figures["average_precision"] = Finite(Detection.AveragePrecision(cl.Score, noisy));
        figures["auroc"] = Finite(Detection.Auroc(cl.Score, noisy));
        figures["precision_at_flagged"] = flagged == 0 ? null : (double)topHits / flagged;
        figures["cv_accuracy_true"] = (double)cvTrue / n;
        double maxDiff = 0;
        for (int t = 0; t < k; t++)
            for (int g = 0; g < k; g++)
            {
                double realised = rowTotals[t] == 0 ? (t == g ? 1.0 : 0.0) : (double)counts[t, g] / rowTotals[t];
                maxDiff = Math.Max(maxDiff, Math.Abs(realised - cl.Transition[t, g]));
            }
        figures["transition_max_abs_error"] = maxDiff;
        _ = probs;
        return figures;
    }

    private static double? Finite(double v) => double.IsFinite(v) ? v : null;

    private static List<List<T>> Rows<T>(int k, Func<int, int, T> cell) =>
        Enumerable.Range(0, k).Select(i => Enumerable.Range(0, k).Select(j => cell(i, j)).ToList()).ToList();

    private static void WriteNpy(Stream s, float[] values, int n, int k)
    {
        byte[] header = Encoding.ASCII.GetBytes(Npy.Header("<f4", [n, k]));
        s.Write([0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y', 1, 0]);
        s.Write([(byte)(header.Length & 0xff), (byte)(header.Length >> 8)]);
        s.Write(header);
        s.Write(System.Runtime.InteropServices.MemoryMarshal.AsBytes(values.AsSpan()));
    }
}
