using System.Globalization;
using System.Numerics.Tensors;
using System.Text;
using LabelNoiseLab.Data;
using LabelNoiseLab.Training;

namespace LabelNoiseLab.Robust;

/// <summary>What the robust report writes into summary.json → robust (the settings as configured).</summary>
public sealed record RobustSettings(string Loss, string Prune, string Select, string PerSampleMode, bool Detection, int Suspects, bool Ledger = true);

/// <summary>
/// What robust training did, and which samples look mislabelled (<c>detection</c>):
/// metrics.csv columns pruned_clean, pruned_noisy (mean of 1 − wᵢ over the clean / noisy samples
/// of the steps since the last evaluation: the fraction dropped for truncation and selection, the
/// weight removed for soft pruning), grad_norm_clean, grad_norm_noisy; with detection, per-sample
/// scores from each step's own forward (loss, margin, self-confidence against the given label,
/// the gradient norm when measured, and the training dynamics of <see cref="TrainingDynamics"/>:
/// area under the margin and forgetting events), ranked against the noise mask at every
/// evaluation into detection.csv (AUROC, average precision) and ledger.parquet (each sample's
/// latest values, <see cref="DetectionLedger"/>), and at the end detection_curves.csv (the last
/// values' ROC and precision–recall curve per score) and suspects.csv. summary.json gets
/// <c>robust</c>. <see cref="ITrainingComponent.Acted"/> counts the evaluations scored.
/// </summary>
public sealed class RobustReport : ITrainingCallback
{
    // The first four are the latest training step's values (saved as they are); aum and forgetting
    // are filled from the training dynamics before each ranking.
    private static readonly string[] Scores = ["grad_norm", "loss", "margin", "self_confidence", "aum", "forgetting"];
    private const int Latest = 4, Aum = 4, Forgetting = 5;
    private readonly RobustSettings _settings;
    private readonly Dataset _train;
    private readonly RobustLoss? _loss;
    private readonly bool _norms;
    private readonly double[][] _scores;
    private readonly int[] _predicted;
    private readonly float[] _weights;
    private readonly TrainingDynamics _dynamics;
    private readonly DetectionLedger _ledger;
    private readonly string? _normsUnavailable;
    private StringBuilder _detection = new("epoch,step,score,auroc,ap\n");
    private double _prunedClean, _prunedNoisy, _normClean, _normNoisy;
    private long _clean, _noisy;
    private Dictionary<string, double> _lastAuroc = [];
    private Dictionary<string, double> _lastAp = [];

    /// <param name="settings">As configured.</param>
    /// <param name="train">The training set (its noise mask is the truth detection is scored against).</param>
    /// <param name="loss">The robust loss, for its estimated T (null: none).</param>
    /// <param name="norms">Whether per-sample gradient norms are measured (a grad_norm score).</param>
    /// <param name="normsUnavailable">Why they are not, when they cannot be (summary.json → robust.detection_grad_norm).</param>
    public RobustReport(RobustSettings settings, Dataset train, RobustLoss? loss, bool norms, string? normsUnavailable = null)
    {
        ArgumentNullException.ThrowIfNull(settings);
        ArgumentNullException.ThrowIfNull(train);
        (_settings, _train, _loss, _norms, _normsUnavailable) = (settings, train, loss, norms, normsUnavailable);
        _scores = [.. Scores.Select(_ => Enumerable.Repeat(double.NaN, train.Count).ToArray())];
        _predicted = new int[train.Count];
        _weights = Enumerable.Repeat(float.NaN, train.Count).ToArray();
        _dynamics = new TrainingDynamics(train.Count);
        _ledger = new DetectionLedger(train);
    }

    /// <summary><c>detection</c> when detection is on (it ranks the scores at each evaluation), else <c>robust_report</c> (the columns only).</summary>
    public string Name => _settings.Detection || _settings.Suspects > 0 ? "detection" : "robust_report";

    /// <inheritdoc/>
    public long Acted { get; private set; }

    /// <inheritdoc/>
    public IReadOnlyList<string> MetricsColumns => ["pruned_clean", "pruned_noisy", "grad_norm_clean", "grad_norm_noisy"];

    /// <summary>Loss (CE), margin and self-confidence of each sample from the step's own forward; its visit in the training dynamics.</summary>
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
            _dynamics.Record(s, z[y] - other, hat == y);
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
            _weights[s] = w[i];
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

    /// <inheritdoc/>
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
        if (!_settings.Detection || step == 0)
            return;
        Acted++;
        FillDynamics();
        for (int s = 0; s < Scores.Length; s++)
        {
            if (s == 0 && !_norms)
                continue;
            var (auroc, ap) = Rank(_scores[s]);
            _lastAuroc[Scores[s]] = auroc;
            _lastAp[Scores[s]] = ap;
            _detection.Append(string.Create(CultureInfo.InvariantCulture, $"{epoch},{step},{Scores[s]},{auroc:G6},{ap:G6}\n"));
        }
        run.Directory.WriteText("detection.csv", _detection.ToString());
        if (_settings.Ledger)
            AddLedgerRecord(epoch, step);
    }

    private void AddLedgerRecord(int epoch, long step)
    {
        int n = _train.Count;
        var (loss, margin, norm, aum, forgetting) = (new float[n], new float[n], new float[n], new float[n], new float[n]);
        for (int i = 0; i < n; i++)
        {
            loss[i] = (float)_scores[1][i];
            margin[i] = Unnegated(_scores[2][i]);
            norm[i] = (float)_scores[0][i];
            aum[i] = Unnegated(_scores[Aum][i]);
            forgetting[i] = (float)_scores[Forgetting][i];
        }
        _ledger.Add(epoch, step, loss, margin, norm, (float[])_weights.Clone(), aum, forgetting);
    }

    // A score negated for ranking, back as the value itself (NaN kept as the one NaN).
    private static float Unnegated(double score) => double.IsNaN(score) ? float.NaN : (float)-score;

    /// <summary>The area under the margin (negated: high = suspicious) and the forgetting score of every sample, as of now.</summary>
    private void FillDynamics()
    {
        for (int i = 0; i < _train.Count; i++)
        {
            _scores[Aum][i] = -_dynamics.Aum(i);
            _scores[Forgetting][i] = _dynamics.Forgetting(i);
        }
    }

    private (double Auroc, double Ap) Rank(double[] scores)
    {
        var seen = Enumerable.Range(0, scores.Length).Where(i => !double.IsNaN(scores[i])).ToArray();
        var sc = seen.Select(i => scores[i]).ToArray();
        var mask = seen.Select(i => _train.NoiseMask[i]).ToArray();
        return (Detection.Auroc(sc, mask), Detection.AveragePrecision(sc, mask));
    }

    /// <inheritdoc/>
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
        foreach (var (score, ap) in _lastAp)
            robust["detection_ap_" + score] = ap;
        if (_settings.Detection && _normsUnavailable is not null)
            robust["detection_grad_norm"] = "not measured: " + _normsUnavailable;
        if (_loss?.EstimatedT is { } t)
        {
            int k = _train.NumClasses;
            robust["estimated_T"] = Enumerable.Range(0, k).Select(i => t.AsSpan(i * k, k).ToArray().Select(v => (double)v).ToArray()).ToArray();
        }
        summary["robust"] = robust;
        if (_settings.Detection && Acted > 0)
        {
            FillDynamics();
            WriteCurves(run);
            if (_settings.Ledger)
                run.Directory.WriteFile(DetectionLedger.FileName, stream => _ledger.Write(stream));
        }
        if (_settings.Suspects > 0)
            WriteSuspects(run);
    }

    /// <summary>detection_curves.csv: score, fpr, tpr (= recall), precision; each score's curve from its values at the end.</summary>
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

    /// <inheritdoc/>
    public ComponentState SaveState()
    {
        var state = new ComponentState()
            .Set("acted", Acted)
            .Set("tally", [_prunedClean, _prunedNoisy, _normClean, _normNoisy, _clean, _noisy])
            .Set("predicted", _predicted)
            .Set("detection_csv", _detection.ToString())
            .SetJson("last_auroc", _lastAuroc)
            .SetJson("last_ap", _lastAp)
            .SetArray("weights", (float[])_weights.Clone());
        for (int s = 0; s < Latest; s++)
            state.Set("scores." + Scores[s], _scores[s]);
        _dynamics.Save(state, "dynamics.");
        _ledger.Save(state, "ledger.");
        return state;
    }

    /// <inheritdoc/>
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
        _lastAp = state.Json<Dictionary<string, double>>("last_ap");
        var weights = state.Array("weights");
        if (weights.Length != _weights.Length)
            throw new InvalidDataException($"{weights.Length} weights for a training set of {_weights.Length}");
        weights.CopyTo(_weights, 0);
        _dynamics.Restore(state, "dynamics.");
        _ledger.Restore(state, "ledger.");
        for (int s = 0; s < Latest; s++)
        {
            var scores = state.Doubles("scores." + Scores[s]);
            if (scores.Length != _scores[s].Length)
                throw new InvalidDataException($"{scores.Length} {Scores[s]} scores for a training set of {_scores[s].Length}");
            scores.CopyTo(_scores[s], 0);
        }
    }
}
