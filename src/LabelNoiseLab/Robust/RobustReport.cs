using System.Globalization;
using System.Numerics.Tensors;
using System.Text;
using LabelNoiseLab.Data;
using LabelNoiseLab.Training;

namespace LabelNoiseLab.Robust;

/// <summary>What the robust report writes into summary.json → robust (the settings as configured).</summary>
public sealed record RobustSettings(string Loss, string Prune, string Select, string PerSampleMode, bool Detection, int Suspects);

/// <summary>
/// What robust training did, and which samples look mislabelled (<c>detection</c>):
/// metrics.csv columns pruned_clean, pruned_noisy (mean of 1 − wᵢ over the clean / noisy samples
/// of the steps since the last evaluation: the fraction dropped for truncation and selection, the
/// weight removed for soft pruning), grad_norm_clean, grad_norm_noisy; with detection, per-sample
/// scores from each step's own forward (loss, margin, self-confidence against the given label,
/// and the gradient norm when measured), ranked against the noise mask after every epoch into
/// detection.csv (AUROC, average precision) and, at the end, detection_curves.csv (the last
/// epoch's ROC and precision–recall curve per score) and suspects.csv. summary.json gets
/// <c>robust</c>. <see cref="ITrainingComponent.Acted"/> counts the epochs scored.
/// </summary>
public sealed class RobustReport : ITrainingCallback
{
    private static readonly string[] Scores = ["grad_norm", "loss", "margin", "self_confidence"];
    private readonly RobustSettings _settings;
    private readonly Dataset _train;
    private readonly RobustLoss? _loss;
    private readonly bool _norms;
    private readonly double[][] _scores;
    private readonly int[] _predicted;
    private StringBuilder _detection = new("epoch,score,auroc,ap\n");
    private double _prunedClean, _prunedNoisy, _normClean, _normNoisy;
    private long _clean, _noisy;
    private Dictionary<string, double> _lastAuroc = [];

    /// <param name="settings">As configured.</param>
    /// <param name="train">The training set (its noise mask is the truth detection is scored against).</param>
    /// <param name="loss">The robust loss, for its estimated T (null: none).</param>
    /// <param name="norms">Whether per-sample gradient norms are measured (a grad_norm score).</param>
    public RobustReport(RobustSettings settings, Dataset train, RobustLoss? loss, bool norms)
    {
        ArgumentNullException.ThrowIfNull(settings);
        ArgumentNullException.ThrowIfNull(train);
        (_settings, _train, _loss, _norms) = (settings, train, loss, norms);
        _scores = [.. Scores.Select(_ => Enumerable.Repeat(double.NaN, train.Count).ToArray())];
        _predicted = new int[train.Count];
    }

    /// <summary><c>detection</c> when detection is on (it ranks the scores each epoch), else <c>robust_report</c> (the columns only).</summary>
    public string Name => _settings.Detection || _settings.Suspects > 0 ? "detection" : "robust_report";

    public long Acted { get; private set; }

    public IReadOnlyList<string> MetricsColumns => ["pruned_clean", "pruned_noisy", "grad_norm_clean", "grad_norm_noisy"];

    /// <summary>Loss (CE), margin and self-confidence of each sample from the step's own forward.</summary>
    public void OnOutput(TrainingRun run, StepContext step)
    {
        ArgumentNullException.ThrowIfNull(step);
        var output = step.Output!;
        var batch = step.Batch;
        int k = output.RowLength;
        for (int i = 0; i < batch.Length; i++)
        {
            var z = output.Span.Slice(i * k, k);
            int y = batch.Labels[i], s = batch.Indices[i];
            float max = TensorPrimitives.Max(z);
            double sum = 0;
            int hat = 0;
            float other = float.NegativeInfinity;
            for (int j = 0; j < k; j++)
            {
                sum += Math.Exp(z[j] - max);
                if (z[j] > z[hat])
                    hat = j;
                if (j != y && z[j] > other)
                    other = z[j];
            }
            double logPy = z[y] - max - Math.Log(sum);
            _scores[1][s] = -logPy;                 // loss: high = suspicious
            _scores[2][s] = -(z[y] - other);        // margin, negated
            _scores[3][s] = -Math.Exp(logPy);       // self-confidence, negated
            _predicted[s] = hat;
        }
    }

    /// <summary>Tallies the step's weights (before the selection's n/kept factor) and norms by clean and noisy samples.</summary>
    public void OnStep(TrainingRun run, StepContext step)
    {
        ArgumentNullException.ThrowIfNull(step);
        var batch = step.Batch;
        var norms = step.Norms.Span;
        var w = step.Weights;
        for (int i = 0; i < batch.Length; i++)
        {
            int s = batch.Indices[i];
            float norm = norms.IsEmpty ? float.NaN : norms[i];
            if (!norms.IsEmpty)
                _scores[0][s] = norm;
            if (_train.NoiseMask[s])
            {
                _noisy++;
                _prunedNoisy += 1 - w[i];
                _normNoisy += norm;
            }
            else
            {
                _clean++;
                _prunedClean += 1 - w[i];
                _normClean += norm;
            }
        }
    }

    public void OnEvaluation(TrainingRun run, int epoch, long step, IDictionary<string, double> extra)
    {
        ArgumentNullException.ThrowIfNull(run);
        ArgumentNullException.ThrowIfNull(extra);
        extra["pruned_clean"] = _clean == 0 ? double.NaN : _prunedClean / _clean;
        extra["pruned_noisy"] = _noisy == 0 ? double.NaN : _prunedNoisy / _noisy;
        extra["grad_norm_clean"] = _clean == 0 || !_norms ? double.NaN : _normClean / _clean;
        extra["grad_norm_noisy"] = _noisy == 0 || !_norms ? double.NaN : _normNoisy / _noisy;
        _prunedClean = _prunedNoisy = _normClean = _normNoisy = 0;
        _clean = _noisy = 0;
        if (!_settings.Detection || run.Batcher.Epoch == 0 || !run.Batcher.EpochDone)
            return;
        Acted++;
        for (int s = 0; s < Scores.Length; s++)
        {
            if (s == 0 && !_norms)
                continue;
            var (auroc, ap) = Rank(_scores[s]);
            _lastAuroc[Scores[s]] = auroc;
            _detection.Append(string.Create(CultureInfo.InvariantCulture, $"{epoch},{Scores[s]},{auroc:G6},{ap:G6}\n"));
        }
        run.Directory.WriteText("detection.csv", _detection.ToString());
    }

    private (double Auroc, double Ap) Rank(double[] scores)
    {
        var seen = Enumerable.Range(0, scores.Length).Where(i => !double.IsNaN(scores[i])).ToArray();
        var sc = seen.Select(i => scores[i]).ToArray();
        var mask = seen.Select(i => _train.NoiseMask[i]).ToArray();
        return (Detection.Auroc(sc, mask), Detection.AveragePrecision(sc, mask));
    }

    public void OnEnd(TrainingRun run, IDictionary<string, object?> summary)
    {
        ArgumentNullException.ThrowIfNull(run);
        ArgumentNullException.ThrowIfNull(summary);
        var robust = new Dictionary<string, object?>
        {
            ["loss"] = _settings.Loss,
            ["prune"] = _settings.Prune,
            ["select"] = _settings.Select,
            ["per_sample_mode"] = _settings.PerSampleMode,
        };
        foreach (var (score, auroc) in _lastAuroc)
            robust["detection_auroc_" + score] = auroc;
        if (_loss?.EstimatedT is { } t)
        {
            int k = _train.NumClasses;
            robust["estimated_T"] = Enumerable.Range(0, k).Select(i => t.AsSpan(i * k, k).ToArray().Select(v => (double)v).ToArray()).ToArray();
        }
        summary["robust"] = robust;
        if (_settings.Detection && Acted > 0)
            WriteCurves(run);
        if (_settings.Suspects > 0)
            WriteSuspects(run);
    }

    /// <summary>detection_curves.csv: score, fpr, tpr (= recall), precision; each score's curve from its last-epoch values.</summary>
    private void WriteCurves(TrainingRun run)
    {
        var sb = new StringBuilder("score,fpr,tpr,precision\n");
        for (int s = 0; s < Scores.Length; s++)
        {
            if (s == 0 && !_norms)
                continue;
            var seen = Enumerable.Range(0, _scores[s].Length).Where(i => !double.IsNaN(_scores[s][i])).ToArray();
            var curve = Detection.Curve(seen.Select(i => _scores[s][i]).ToArray(), seen.Select(i => _train.NoiseMask[i]).ToArray());
            foreach (var (fpr, tpr, precision) in curve)
                sb.Append(string.Create(CultureInfo.InvariantCulture, $"{Scores[s]},{fpr:G6},{tpr:G6},{precision:G6}\n"));
        }
        run.Directory.WriteText("detection_curves.csv", sb.ToString());
    }

    /// <summary>suspects.csv: the N training samples with the highest loss score of the last epoch (the gradient norm when measured).</summary>
    private void WriteSuspects(TrainingRun run)
    {
        var scores = _norms ? _scores[0] : _scores[1];
        string name = _norms ? "grad_norm" : "loss";
        var top = Enumerable.Range(0, scores.Length).Where(i => !double.IsNaN(scores[i]))
            .OrderByDescending(i => scores[i]).ThenBy(i => i).Take(_settings.Suspects);
        var sb = new StringBuilder("index,given_label,predicted_label,score,noisy\n");
        foreach (int i in top)
            sb.Append(string.Create(CultureInfo.InvariantCulture, $"{i},{_train.Labels[i]},{_predicted[i]},{scores[i]:G6},{(_train.NoiseMask[i] ? 1 : 0)}\n"));
        run.Directory.WriteText("suspects.csv", sb.ToString());
        run.Progress.OnMessage($"suspects.csv: the {_settings.Suspects} highest {name} scores");
    }

    public ComponentState SaveState()
    {
        var state = new ComponentState()
            .Set("acted", Acted)
            .Set("tally", [_prunedClean, _prunedNoisy, _normClean, _normNoisy, _clean, _noisy])
            .Set("predicted", _predicted)
            .Set("detection_csv", _detection.ToString())
            .SetJson("last_auroc", _lastAuroc);
        for (int s = 0; s < Scores.Length; s++)
            state.Set("scores." + Scores[s], _scores[s]);
        return state;
    }

    public void RestoreState(ComponentState state)
    {
        ArgumentNullException.ThrowIfNull(state);
        Acted = state.Long("acted");
        var tally = state.Doubles("tally");
        if (tally.Length != 6)
            throw new InvalidDataException($"tally has {tally.Length} values, expected 6");
        (_prunedClean, _prunedNoisy, _normClean, _normNoisy, _clean, _noisy) = (tally[0], tally[1], tally[2], tally[3], (long)tally[4], (long)tally[5]);
        var predicted = state.Ints("predicted");
        if (predicted.Length != _predicted.Length)
            throw new InvalidDataException($"{predicted.Length} predictions for a training set of {_predicted.Length}");
        predicted.CopyTo(_predicted, 0);
        _detection = new StringBuilder(state.Text("detection_csv"));
        _lastAuroc = state.Json<Dictionary<string, double>>("last_auroc");
        for (int s = 0; s < Scores.Length; s++)
        {
            var scores = state.Doubles("scores." + Scores[s]);
            if (scores.Length != _scores[s].Length)
                throw new InvalidDataException($"{scores.Length} {Scores[s]} scores for a training set of {_scores[s].Length}");
            scores.CopyTo(_scores[s], 0);
        }
    }
}
