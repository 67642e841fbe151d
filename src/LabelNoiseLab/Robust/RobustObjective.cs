using System.Globalization;
using System.Numerics.Tensors;
using System.Text;
using LabelNoiseLab.Autograd;
using LabelNoiseLab.Data;
using LabelNoiseLab.Losses;
using LabelNoiseLab.Training;
using LabelNoiseLab.Experiments;
using LabelNoiseLab.Tensors;

namespace LabelNoiseLab.Robust;

/// <summary>
/// The loss of a training step for every robust method of issue 7, and the hook that logs it:
/// a robust loss or loss correction (<c>robust.*</c>), small-loss selection (<c>select.*</c>),
/// per-sample gradient pruning (<c>prune.*</c>) and noisy-label detection scores (<c>detection.*</c>).
/// <para>
/// Pruning without a second forward (per_sample.mode=fast): the step's loss is the unweighted
/// mean; before its backward the layers' parameter gradients are deferred, so the backward computes
/// only input gradients, while the layer hooks compute each sample's norm. After the backward the
/// weights wᵢ follow from the norms, and only the parameter-gradient GEMMs run, on diag(w)·G
/// (<see cref="PerSampleGradients.ApplySampleWeights"/>): the exact (1/B)Σ wᵢ∇ℓᵢ.
/// Selection weights multiply the pruning weights. In naive mode the norms come from one backward
/// per sample and the step back-propagates the weighted loss.
/// </para>
/// Columns: pruned_clean, pruned_noisy (mean of 1 − wᵢ over the clean / noisy samples of the
/// steps since the last evaluation: the fraction pruned for truncate and selection, the weight
/// removed for soft), grad_norm_clean, grad_norm_noisy.
/// </summary>
public sealed class RobustObjective : ITrainingObjective, ITrainerHook
{
    private static readonly string[] Scores = ["grad_norm", "loss", "margin", "self_confidence"];
    private readonly ExperimentConfig _config;
    private readonly Dataset _train;
    private readonly Training.TrainingRun _run;
    private RobustLossSpec _spec;
    private readonly GradientPruning? _pruning;
    private readonly PerSampleGradients? _psg;
    private readonly bool _naive;
    private readonly bool _estimateT;
    private bool _tEstimated;
    private readonly Tensor _weights;
    private readonly float[] _pruneWeights;
    private readonly float[] _losses;
    private readonly float[] _naiveNorms;
    private int[] _order = [];
    private Batcher? _batch;
    private float[] _dz = [];
    // Per-sample detection scores over the current epoch (index = training sample); NaN = not seen.
    private readonly double[][] _scores;
    private readonly int[] _predicted;
    private readonly StringBuilder _detection = new("epoch,score,auroc,ap\n");
    private double _prunedClean, _prunedNoisy, _normClean, _normNoisy;
    private long _clean, _noisy;
    private readonly Dictionary<string, double> _lastAuroc = [];
    // Co-teaching's second network.
    private readonly Nn.Model? _peer;
    private readonly Optim.Optimizer? _peerOptimizer;
    private readonly Tape _peerTape = new();
    private readonly Tensor _peerWeights = new(0);
    private Tensor? _peerX;

    private RobustObjective(ExperimentConfig c, Training.TrainingRun run)
    {
        _config = c;
        _run = run;
        _train = run.Data.Train;
        int k = _train.NumClasses;
        _spec = CreateSpec(c, k, out _estimateT);
        if (c.PruneKind != "none")
            _pruning = new GradientPruning(c.PruneStat == "median_iqr" ? PruneStatistic.MedianIqr : PruneStatistic.MeanStd,
                c.PruneKind == "soft" ? PruneWeighting.Soft : PruneWeighting.Truncate, (float)c.PruneAlpha, (float)c.PruneBeta);
        _naive = c.PerSampleMode == "naive";
        if (_pruning is not null || c.DetectionEnabled || c.DetectionSuspects > 0)
            _psg = new PerSampleGradients(run.Model, c.PerSampleConv switch
            {
                "gram" => ConvNormMethod.Gram,
                "materialise" => ConvNormMethod.Materialise,
                _ => ConvNormMethod.Auto,
            });
        int b = c.BatchSize;
        _weights = new Tensor(b);
        _pruneWeights = new float[b];
        _losses = new float[b];
        _naiveNorms = new float[b];
        _scores = Scores.Select(_ => Enumerable.Repeat(double.NaN, _train.Count).ToArray()).ToArray();
        _predicted = new int[_train.Count];
        if (c.SelectKind == "co_teaching")
        {
            _peer = ExperimentSetup.CreateModel(c, _train);
            Nn.Init.Apply(_peer, c.ModelInit == "ntk" ? Nn.InitKind.Ntk : Nn.InitKind.Default, Rng.ForPurpose(c.Seed, "init-co-teaching-peer"), (float)c.ModelInitScale);
            _peerOptimizer = ExperimentSetup.CreateOptimizer(c, _peer.Parameters());
        }
    }

    /// <summary>The objective when any robust feature is on, else null (the plain loss).</summary>
    public static RobustObjective? TryCreate(ExperimentConfig c, Training.TrainingRun run)
    {
        bool on = c.RobustLoss != "ce" || c.PruneKind != "none" || c.SelectKind != "none" || c.DetectionEnabled || c.DetectionSuspects > 0;
        if (!on)
            return null;
        if (run.Data.Train.NumClasses == 0)
            throw new ConfigException(c.PruneKind != "none" ? "prune.kind" : "robust.loss", "robust training needs a classification data set");
        if (c.LossKind != "cross_entropy")
            throw new ConfigException("loss.kind", "robust training replaces the loss; keep loss.kind=cross_entropy");
        return new RobustObjective(c, run);
    }

    /// <summary>The loss spec of a config; T validated (size; invertible for backward correction).</summary>
    public static RobustLossSpec CreateSpec(ExperimentConfig c, int classes, out bool estimateT)
    {
        estimateT = false;
        float[]? matrix = null;
        if (c.RobustLoss is "forward" or "backward")
        {
            if (c.RobustTransition.Count == 0)
                estimateT = true;
            else
            {
                if (c.RobustTransition.Count != classes)
                    throw new ConfigException("robust.T", $"must be {classes}×{classes} for this data set, got {c.RobustTransition.Count} rows");
                matrix = c.RobustTransition.SelectMany(r => r.Select(v => (float)v)).ToArray();
                if (c.RobustLoss == "backward")
                    matrix = TransitionMatrix.Inverse(matrix, classes) ?? throw new ConfigException("robust.T", "is singular; backward correction needs an invertible T");
            }
        }
        var kind = c.RobustLoss switch
        {
            "gce" => RobustLossKind.Gce,
            "sce" => RobustLossKind.Sce,
            "mae" => RobustLossKind.Mae,
            "nce_rce" => RobustLossKind.NceRce,
            "label_smoothing" => RobustLossKind.LabelSmoothing,
            "bootstrap_soft" => RobustLossKind.BootstrapSoft,
            "bootstrap_hard" => RobustLossKind.BootstrapHard,
            "forward" => estimateT ? RobustLossKind.CrossEntropy : RobustLossKind.ForwardCorrection,
            "backward" => estimateT ? RobustLossKind.CrossEntropy : RobustLossKind.BackwardCorrection,
            _ => RobustLossKind.CrossEntropy,
        };
        var (alpha, beta) = kind switch
        {
            RobustLossKind.NceRce => (c.RobustNceAlpha, c.RobustRceBeta),
            RobustLossKind.Sce => (c.RobustSceAlpha, c.RobustSceBeta),
            _ => (1.0, c.RobustBootstrapBeta),
        };
        return new RobustLossSpec(kind, (float)c.RobustGceQ, (float)alpha, (float)beta, (float)c.RobustSmoothing, matrix);
    }

    /// <summary>The estimated T (row-major), once estimated.</summary>
    public float[]? EstimatedT { get; private set; }

    public Tensor Loss(Tape tape, Tensor output, Batcher batch, long step)
    {
        _batch = batch;
        int n = batch.Length, k = output.RowLength;
        if (_estimateT && !_tEstimated && batch.Epoch > _config.RobustEstimateAfter)
            EstimateT(k);
        _weights.Resize([n]);
        var w = _weights.Span;
        w.Fill(1f);
        RecordScores(output, batch);
        if (_config.SelectKind == "small_loss")
            SmallLossWeights(output, batch, w);
        else if (_peer is not null)
            CoTeachingStep(output, batch, w);
        if (_pruning is not null && _naive)
        {
            // Reference mode: the norms from one backward per sample, then the weighted loss.
            _psg!.NaiveNorms(CopyFeatures(batch), batch.Labels, _naiveNorms, _naiveTape);
            var norms = _naiveNorms.AsSpan(0, n);
            _pruning.Weights(norms, _pruneWeights.AsSpan(0, n));
            Tally(batch, norms, _pruneWeights.AsSpan(0, n), w);
            NormaliseSelection(w);
            TensorPrimitives.Multiply(w, _pruneWeights.AsSpan(0, n), w);
            return RobustLossOp.Forward(tape, output, batch.LabelBuffer, _spec, _weights).Mean;
        }
        if (_psg is not null)
        {
            _psg.DeferParameterGradients();
            return RobustLossOp.Forward(tape, output, batch.LabelBuffer, _spec).Mean;
        }
        Tally(batch, default, default, w);
        NormaliseSelection(w);
        return RobustLossOp.Forward(tape, output, batch.LabelBuffer, _spec, _weights).Mean;
    }

    public void AfterBackward(Tape tape, Batcher batch, long step)
    {
        if (_psg is null || _naive && _pruning is not null)
            return;
        int n = batch.Length;
        var norms = _psg.Norms;
        var w = _weights.Span;
        var pw = _pruneWeights.AsSpan(0, n);
        if (_pruning is not null)
            _pruning.Weights(norms, pw);
        else
            pw.Fill(1f);
        Tally(batch, norms, pw, w);
        NormaliseSelection(w);
        TensorPrimitives.Multiply(w, pw, w);
        _psg.ApplySampleWeights(w);
    }

    private Tensor? _x;
    private readonly Tape _naiveTape = new();

    private Tensor CopyFeatures(Batcher batch)
    {
        int d = _train.FeatureLength, n = batch.Length;
        if (_x is null || _x.Rows != n)
            _x = new Tensor(n, d); // only when the batch size changes (the last batch of an epoch)
        batch.Features.CopyTo(_x.Span);
        return _x;
    }

    /// <summary>
    /// Selection trains on the mean over the kept samples (as Co-teaching's reference code does),
    /// so kept weights become n/kept; pruning weights are not renormalised ((1/B)Σ wᵢ∇ℓᵢ).
    /// </summary>
    private void NormaliseSelection(Span<float> w)
    {
        if (_config.SelectKind == "none")
            return;
        int kept = 0;
        foreach (float v in w)
            kept += v > 0 ? 1 : 0;
        if (kept > 0)
            TensorPrimitives.Multiply(w, (float)w.Length / kept, w);
    }

    /// <summary>The forget rate of an epoch: τ·min((epoch − 1)/T_k, 1), so the first epoch keeps everything.</summary>
    private double ForgetRate(int epoch) => _config.SelectForgetRate * Math.Min(1.0, (epoch - 1) / (double)_config.SelectForgetEpochs);

    /// <summary>
    /// Co-teaching (Han et al. 2018): the peer network scores the batch; each network is updated on
    /// the small-loss samples of the other. The peer's step happens here (its own tape and
    /// optimizer, the trainer's learning rate); the returned weights select for the trainer's model.
    /// </summary>
    private void CoTeachingStep(Tensor output, Batcher batch, Span<float> w)
    {
        int n = batch.Length, k = output.RowLength, d = _train.FeatureLength;
        int drop = (int)Math.Round(ForgetRate(batch.Epoch) * n);
        if (_peerX is null || _peerX.Rows != n)
            _peerX = new Tensor(n, d); // only when the batch size changes
        batch.Features.CopyTo(_peerX.Span);
        _peerTape.Reset();
        _peerOptimizer!.ZeroGrad();
        var peerOut = _peer!.Forward(_peerTape, _peerX);
        Grow(ref _dz, k);
        // The peer's small-loss samples train the model (w); the model's train the peer.
        SmallLossMask(peerOut, batch, drop, w);
        _peerWeights.Resize([n]);
        SmallLossMask(output, batch, drop, _peerWeights.Span);
        NormaliseSelection(_peerWeights.Span);
        var peerLoss = RobustLossOp.Forward(_peerTape, peerOut, batch.LabelBuffer, _spec, _peerWeights).Mean;
        _peerTape.Backward(peerLoss);
        _peerOptimizer.LearningRate = _run.Optimizer.LearningRate;
        _peerOptimizer.Step();
    }

    private void SmallLossMask(Tensor output, Batcher batch, int drop, Span<float> mask)
    {
        int n = batch.Length, k = output.RowLength;
        mask.Fill(1f);
        if (drop == 0)
            return;
        for (int i = 0; i < n; i++)
            _losses[i] = RobustLossOp.Row(output.Span.Slice(i * k, k), batch.Labels[i], _spec, _dz.AsSpan(0, k));
        if (_order.Length < n)
            _order = new int[n];
        for (int i = 0; i < n; i++)
            _order[i] = i;
        Array.Sort(_losses, _order, 0, n);
        for (int r = n - drop; r < n; r++)
            mask[_order[r]] = 0f;
    }

    /// <summary>Keeps the (1 − r) fraction with the smallest loss, r rising linearly to τ over T_k epochs.</summary>
    private void SmallLossWeights(Tensor output, Batcher batch, Span<float> w)
    {
        Grow(ref _dz, output.RowLength);
        SmallLossMask(output, batch, (int)Math.Round(ForgetRate(batch.Epoch) * batch.Length), w);
    }

    private void Tally(Batcher batch, ReadOnlySpan<float> norms, ReadOnlySpan<float> pruneWeights, ReadOnlySpan<float> selectWeights)
    {
        for (int i = 0; i < batch.Length; i++)
        {
            int s = batch.Indices[i];
            float wi = selectWeights[i] * (pruneWeights.IsEmpty ? 1f : pruneWeights[i]);
            float norm = norms.IsEmpty ? float.NaN : norms[i];
            if (!norms.IsEmpty)
                _scores[0][s] = norm;
            if (_train.NoiseMask[s])
            {
                _noisy++;
                _prunedNoisy += 1 - wi;
                _normNoisy += norm;
            }
            else
            {
                _clean++;
                _prunedClean += 1 - wi;
                _normClean += norm;
            }
        }
    }

    /// <summary>Loss (CE), margin and self-confidence of each sample from the step's own forward.</summary>
    private void RecordScores(Tensor output, Batcher batch)
    {
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

    private void EstimateT(int k)
    {
        var model = _run.Model;
        var tape = new Tape(recording: false);
        var probs = new float[_train.Count * k];
        int chunk = 1000, d = _train.FeatureLength;
        var x = new Tensor(chunk, d);
        bool training = model.Training;
        model.SetTraining(false);
        if (_psg is not null)
            _psg.Enabled = false;
        for (int start = 0; start < _train.Count; start += chunk)
        {
            int len = Math.Min(chunk, _train.Count - start);
            x.Resize([len, d]);
            _train.Features.AsSpan(start * d, len * d).CopyTo(x.Span);
            tape.Reset();
            var z = model.Forward(tape, x);
            for (int i = 0; i < len; i++)
            {
                var row = probs.AsSpan((start + i) * k, k);
                TensorPrimitives.SoftMax(z.Span.Slice(i * k, k), row);
            }
        }
        model.SetTraining(training);
        if (_psg is not null)
            _psg.Enabled = true;
        var t = TransitionMatrix.EstimateFromAnchors(probs, k, _config.RobustAnchorPercentile);
        EstimatedT = t;
        _tEstimated = true;
        if (_config.RobustLoss == "forward")
            _spec = _spec with { Kind = RobustLossKind.ForwardCorrection, Matrix = t };
        else
            _spec = _spec with
            {
                Kind = RobustLossKind.BackwardCorrection,
                Matrix = TransitionMatrix.Inverse(t, k) ?? throw new InvalidOperationException("the estimated transition matrix is singular; backward correction is impossible (give robust.T)"),
            };
        _run.Progress.OnMessage($"transition matrix estimated from anchor points ({_config.RobustAnchorPercentile}th percentile) after epoch {_config.RobustEstimateAfter}");
    }

    // ---- ITrainerHook ----

    public IReadOnlyList<string> MetricsColumns => ["pruned_clean", "pruned_noisy", "grad_norm_clean", "grad_norm_noisy"];

    public void OnEvaluation(Training.TrainingRun run, int epoch, long step, IDictionary<string, double> extra)
    {
        extra["pruned_clean"] = _clean == 0 ? double.NaN : _prunedClean / _clean;
        extra["pruned_noisy"] = _noisy == 0 ? double.NaN : _prunedNoisy / _noisy;
        extra["grad_norm_clean"] = _clean == 0 || _psg is null ? double.NaN : _normClean / _clean;
        extra["grad_norm_noisy"] = _noisy == 0 || _psg is null ? double.NaN : _normNoisy / _noisy;
        _prunedClean = _prunedNoisy = _normClean = _normNoisy = 0;
        _clean = _noisy = 0;
        if (!_config.DetectionEnabled || _batch is null || !_batch.EpochDone)
            return;
        for (int s = 0; s < Scores.Length; s++)
        {
            if (s == 0 && _psg is null)
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

    public void OnEnd(Training.TrainingRun run, IDictionary<string, object?> summary)
    {
        _psg?.RestoreRequiresGrad();
        var robust = new Dictionary<string, object?>
        {
            ["loss"] = _config.RobustLoss,
            ["prune"] = _config.PruneKind,
            ["select"] = _config.SelectKind,
            ["per_sample_mode"] = _config.PerSampleMode,
        };
        foreach (var (score, auroc) in _lastAuroc)
            robust["detection_auroc_" + score] = auroc;
        if (EstimatedT is { } t)
        {
            int k = _train.NumClasses;
            robust["estimated_T"] = Enumerable.Range(0, k).Select(i => t.AsSpan(i * k, k).ToArray().Select(v => (double)v).ToArray()).ToArray();
        }
        summary["robust"] = robust;
        if (_config.DetectionSuspects > 0)
            WriteSuspects(run);
    }

    /// <summary>suspects.csv: the N training samples with the highest loss score of the last epoch (the gradient norm when computed).</summary>
    private void WriteSuspects(Training.TrainingRun run)
    {
        var scores = _psg is not null ? _scores[0] : _scores[1];
        string name = _psg is not null ? "grad_norm" : "loss";
        var top = Enumerable.Range(0, scores.Length).Where(i => !double.IsNaN(scores[i]))
            .OrderByDescending(i => scores[i]).ThenBy(i => i).Take(_config.DetectionSuspects);
        var sb = new StringBuilder($"index,given_label,predicted_label,score,noisy\n");
        foreach (int i in top)
            sb.Append(string.Create(CultureInfo.InvariantCulture, $"{i},{_train.Labels[i]},{_predicted[i]},{scores[i]:G6},{(_train.NoiseMask[i] ? 1 : 0)}\n"));
        run.Directory.WriteText("suspects.csv", sb.ToString());
        run.Progress.OnMessage($"suspects.csv: the {_config.DetectionSuspects} highest {name} scores");
    }

    private static void Grow(ref float[] buffer, int length)
    {
        if (buffer.Length < length)
            buffer = new float[length];
    }
}
