using System.Diagnostics;
using System.Globalization;
using System.Text;
using LabelNoiseLab.Autograd;
using LabelNoiseLab.Data;
using LabelNoiseLab.Nn;
using LabelNoiseLab.RunFiles;
using LabelNoiseLab.Training;
using LabelNoiseLab.Tensors;

namespace LabelNoiseLab.Probes;

/// <summary>Activation-probe settings: every N epochs (and the last), the probe-set size, the layers (empty = all), the seed, the run's epochs.</summary>
public sealed record ActivationProbeOptions(int Every, int SetSize, IReadOnlyList<int> Layers, long Seed, int Epochs)
{
    /// <summary>How many of the largest |activations| per layer go to activations_topk.csv.</summary>
    public int TopK { get; init; } = 5;

    /// <summary>Sun et al.'s rule: massive when |a| &gt; MassiveAbs and |a| / median &gt; MassiveRatio.</summary>
    public double MassiveAbs { get; init; } = 100;

    /// <summary>
    /// Sun et al.'s ratio threshold: |a| / median |a| above it (with |a| above MassiveAbs) is massive;
    /// default 1000.
    /// </summary>
    public double MassiveRatio { get; init; } = 1000;

    /// <summary>none, zero or mean: the ablation of each layer's top units at every probe (ablation.csv).</summary>
    public string Ablate { get; init; } = "none";

    /// <summary>How many of each layer's top units are ablated together; default 1.</summary>
    public int AblateUnits { get; init; } = 1;

    /// <summary>The ablation is scored on the first N test samples; 0 = all.</summary>
    public int AblateTestSamples { get; init; }

    /// <summary>Principal components of the probe inputs that the input R² regresses on (with the input norm).</summary>
    public int InputComponents { get; init; } = 10;
}

/// <summary>
/// The activation probe of the epoch-wise double-descent study (<c>probe.activations_every</c>):
/// on a fixed, stratified set of training samples (clean and noisy samples of every given class,
/// <c>probe.set_size</c> in all) it reads the output of every hidden activation module through the
/// modules' forward hooks, at initialisation and every E epochs (and after the last), and writes
/// one row per (epoch, layer) to <c>activations.csv</c>:
/// clean/noisy cosine of class means (grouped by given and by true label), the largest
/// |activation|, its unit, the median |activation| (nonzero entries) and their ratio, and how the
/// top unit's magnitude correlates with the input's L2 norm and with the logit margin.
/// <c>summary.json</c> gets per-layer figures, among them how often the top unit stayed the same.
/// The hooks are attached only for the probe's own forward pass, so training steps pay nothing.
/// </summary>
public sealed class ActivationProbe : ITrainingCallback
{
    /// <summary>The per-(epoch, layer) file this probe writes in the run folder.</summary>
    public const string FileName = "activations.csv";

    /// <summary>Columns of <see cref="FileName"/>.</summary>
    public const string Header = "epoch,layer,clean_noisy_cosine_given,clean_noisy_cosine_true,max_abs_activation,max_unit,"
        + "median_abs_activation,max_to_median_ratio,max_unit_input_corr,max_unit_output_corr,max_sample,massive,max_unit_input_r2,max_unit_eta2_given,max_unit_eta2_true";

    /// <summary>
    /// The file of each layer's largest activations (<see cref="ActivationProbeOptions.TopK"/> per layer).
    /// </summary>
    public const string TopKFileName = "activations_topk.csv";

    /// <summary>Columns of <see cref="TopKFileName"/>.</summary>
    public const string TopKHeader = "epoch,layer,rank,abs_activation,unit,sample";

    /// <summary>The ablation file, written when <see cref="ActivationProbeOptions.Ablate"/> is not none.</summary>
    public const string AblationFileName = "ablation.csv";

    /// <summary>Columns of <see cref="AblationFileName"/>.</summary>
    public const string AblationHeader = "epoch,layer,mode,units,test_loss,test_acc,ablated_test_loss,ablated_test_acc,delta_test_loss,delta_test_acc";

    private const int Chunk = 500;

    private readonly ActivationProbeOptions _config;
    private StringBuilder _csv = new(Header + "\n");
    private StringBuilder _topCsv = new(TopKHeader + "\n");
    private StringBuilder _ablationCsv = new(AblationHeader + "\n");
    private List<AblationRow> _ablations = [];
    private double[] _inputDesign = [];
    private int _inputRegressors;
    private double[] _signedUnit = [];
    private int[] _topScratch = [];
    private Evaluator? _evaluator;
    private int _ablateLayer = -1;
    private int[] _ablateUnits = [];
    private float[] _ablateValues = [];
    private ForwardHook? _ablationHook;
    private readonly Tape _tape = new(recording: false);
    private List<ProbeRow> _rows = [];
    private int[] _indices = [];
    private int[] _given = [];
    private int[] _true = [];
    private bool[] _noisy = [];
    private double[] _inputNorms = [];
    private double[] _margins = [];
    private double[] _unitMagnitude = [];
    private Tensor _x = new(0, 1);
    private Tensor _chunk = new(0, 1);
    private (string Name, Module Module)[] _layers = [];
    private int[] _layerIndex = [];
    private ForwardHook[] _captures = [];
    private float[]?[] _acts = [];
    private int[] _units = [];
    private float[] _absScratch = [];
    private float[] _sumScratch = [];
    private int[] _countScratch = [];
    private int _chunkStart;
    private int _classes;
    private double _seconds;
    private double _forwardSeconds;

    /// <summary>A probe with these settings; throws <see cref="ArgumentNullException"/> for null options.</summary>
    public ActivationProbe(ActivationProbeOptions options) => _config = options ?? throw new ArgumentNullException(nameof(options));

    /// <inheritdoc/>
    public string Name => "probe.activations";

    /// <inheritdoc/>
    public long Acted { get; private set; }

    /// <summary>One (epoch, layer) row of activations.csv.</summary>
    public sealed record ProbeRow(int Epoch, int Layer, double CosineGiven, double CosineTrue, MassiveActivation Massive,
        double InputCorr, double OutputCorr)
    {
        /// <summary>Training index of the sample with the largest |activation|.</summary>
        public int MaxSample { get; init; } = -1;

        /// <summary>Sun et al.'s rule on this layer's largest activation.</summary>
        public bool IsMassive { get; init; }

        /// <summary>R² of the top unit's activation on the input norm and the inputs' top principal components.</summary>
        public double InputR2 { get; init; } = double.NaN;

        /// <summary>η² of the top unit's activation over the given labels, and over the true labels.</summary>
        public double Eta2Given { get; init; } = double.NaN;

        /// <summary>η² of the top unit's activation over the true labels.</summary>
        public double Eta2True { get; init; } = double.NaN;
    }

    /// <summary>One (epoch, layer) ablation: the layer's top units set to zero or their mean, test loss and accuracy before and after.</summary>
    public sealed record AblationRow(int Epoch, int Layer, string Mode, int[] Units, double TestLoss, double TestAcc, double AblatedTestLoss, double AblatedTestAcc);

    /// <summary>The ablation rows so far, in the order measured.</summary>
    public IReadOnlyList<AblationRow> Ablations => _ablations;

    /// <summary>The activations.csv rows so far, in the order measured.</summary>
    public IReadOnlyList<ProbeRow> Rows => _rows;

    /// <summary>Indices (into the training set) of the probe samples, ascending.</summary>
    public IReadOnlyList<int> ProbeIndices => _indices;

    /// <summary>Sets up the probe set and the capture hooks (every start and resume); the layers were checked by the config layer.</summary>
    public void Attach(TrainingRun run)
    {
        ArgumentNullException.ThrowIfNull(run);
        var train = run.Data.Train;
        if (train.NumClasses == 0)
            throw new ArgumentException("the activation probe needs a classification data set", nameof(run));
        var all = run.Model.NamedModules().Where(m => m.Module is Activation).ToArray();
        if (all.Length == 0 || _config.Layers.Any(l => l >= all.Length) || _config.SetSize > train.Count)
            throw new ArgumentException($"activation probe: layers {string.Join(",", _config.Layers)} or set size {_config.SetSize} do not fit a model with {all.Length} activation layers and {train.Count} samples", nameof(run));
        _layerIndex = _config.Layers.Count == 0 ? [.. Enumerable.Range(0, all.Length)] : [.. _config.Layers.Distinct().Order()];
        _layers = [.. _layerIndex.Select(i => all[i])];

        _classes = train.NumClasses;
        _indices = StratifiedSample(train, _config.SetSize, Rng.ForPurpose(_config.Seed, "activation-probe-set"));
        int n = _indices.Length, d = train.FeatureLength;
        _x = new Tensor(n, d);
        _chunk = new Tensor(Math.Min(Chunk, n), d);
        _given = new int[n];
        _true = new int[n];
        _noisy = new bool[n];
        _inputNorms = new double[n];
        _margins = new double[n];
        _unitMagnitude = new double[n];
        for (int i = 0; i < n; i++)
        {
            int s = _indices[i];
            var sample = train.Sample(s);
            sample.CopyTo(_x.Span.Slice(i * d, d));
            _given[i] = train.Labels[s];
            _true[i] = train.TrueLabels[s];
            _noisy[i] = train.NoiseMask[s];
            double sq = 0;
            foreach (float v in sample)
                sq += (double)v * v;
            _inputNorms[i] = Math.Sqrt(sq);
        }
        BuildInputDesign(n, d);
        _signedUnit = new double[n];
        _topScratch = new int[Math.Max(1, _config.TopK)];
        _evaluator = _config.Ablate == "none" ? null : new Evaluator(run.Model, "cross_entropy");
        _ablationHook = (_, _, output) => AblateInPlace(output);
        _acts = new float[]?[_layers.Length];
        _units = new int[_layers.Length];
        _captures = new ForwardHook[_layers.Length];
        for (int l = 0; l < _layers.Length; l++)
        {
            int slot = l;
            _captures[l] = (_, _, output) => Capture(slot, output);
        }
    }

    /// <summary>A fresh start: the untrained network is epoch 0.</summary>
    public void OnStart(TrainingRun run) => Probe(run, 0);

    /// <inheritdoc/>
    public ComponentState SaveState() => new ComponentState()
        .Set("acted", Acted)
        .Set("csv", _csv.ToString())
        .Set("topk_csv", _topCsv.ToString())
        .Set("ablation_csv", _ablationCsv.ToString())
        .SetJson("ablations", _ablations)
        .SetJson("rows", _rows)
        .Set("seconds", _seconds)
        .Set("seconds_forward", _forwardSeconds);

    /// <inheritdoc/>
    public void RestoreState(ComponentState state)
    {
        ArgumentNullException.ThrowIfNull(state);
        Acted = state.Long("acted");
        _csv = new StringBuilder(state.Text("csv"));
        _topCsv = new StringBuilder(state.Text("topk_csv"));
        _ablationCsv = new StringBuilder(state.Text("ablation_csv"));
        _ablations = state.Json<List<AblationRow>>("ablations");
        _rows = state.Json<List<ProbeRow>>("rows");
        _seconds = state.Double("seconds");
        _forwardSeconds = state.Double("seconds_forward");
    }

    /// <inheritdoc/>
    public void OnEvaluation(TrainingRun run, int epoch, long step, IDictionary<string, double> extra)
    {
        // Only the evaluation that ends an epoch (not the eval_every_steps ones inside it).
        bool epochEnd = step == (long)epoch * run.Batcher.BatchesPerEpoch;
        if (epochEnd && (epoch % _config.Every == 0 || epoch == _config.Epochs))
            Probe(run, epoch);
    }

    /// <inheritdoc/>
    public void OnEnd(TrainingRun run, IDictionary<string, object?> summary) => summary["activations"] = Summary();

    /// <summary>Runs the probe set through the model (evaluation mode, hooks on) and appends one row per layer.</summary>
    public void Probe(TrainingRun run, int epoch)
    {
        long t0 = Stopwatch.GetTimestamp();
        var model = run.Model;
        int n = _indices.Length, d = _x.RowLength;
        bool wasTraining = model.Training;
        model.SetTraining(false);
        for (int l = 0; l < _layers.Length; l++)
            _layers[l].Module.AddForwardHook(_captures[l]);
        try
        {
            for (_chunkStart = 0; _chunkStart < n; _chunkStart += Chunk)
            {
                int len = Math.Min(Chunk, n - _chunkStart);
                _chunk.Resize([len, d]);
                _x.Span.Slice(_chunkStart * d, len * d).CopyTo(_chunk.Span);
                _tape.Reset();
                var logits = model.Forward(_tape, _chunk);
                int k = logits.RowLength;
                for (int i = 0; i < len; i++)
                    _margins[_chunkStart + i] = ActivationStats.LogitMargin(logits.Span.Slice(i * k, k));
            }
        }
        finally
        {
            for (int l = 0; l < _layers.Length; l++)
                _layers[l].Module.RemoveForwardHook(_captures[l]);
            model.SetTraining(wasTraining);
        }
        _forwardSeconds += Stopwatch.GetElapsedTime(t0).TotalSeconds;

        for (int l = 0; l < _layers.Length; l++)
        {
            var acts = _acts[l]!;
            int units = _units[l];
            double cosGiven = ActivationStats.CleanNoisyCosine(acts, units, _given, _noisy, _classes, _sumScratch, _countScratch);
            double cosTrue = ActivationStats.CleanNoisyCosine(acts, units, _true, _noisy, _classes, _sumScratch, _countScratch);
            var massive = ActivationStats.Massive(acts, units, _absScratch);
            for (int i = 0; i < n; i++)
            {
                _unitMagnitude[i] = Math.Abs(acts[i * units + massive.Unit]);
                _signedUnit[i] = acts[i * units + massive.Unit];
            }
            var row = new ProbeRow(epoch, _layerIndex[l], cosGiven, cosTrue, massive,
                ActivationStats.Pearson(_unitMagnitude, _inputNorms), ActivationStats.Pearson(_unitMagnitude, _margins))
            {
                MaxSample = massive.Sample >= 0 ? _indices[massive.Sample] : -1,
                IsMassive = massive.MaxAbs > _config.MassiveAbs && massive.Ratio > _config.MassiveRatio,
                InputR2 = ActivationStats.RSquared(_signedUnit, _inputDesign, _inputRegressors),
                Eta2Given = ActivationStats.EtaSquared(_signedUnit, _given, _classes),
                Eta2True = ActivationStats.EtaSquared(_signedUnit, _true, _classes),
            };
            _rows.Add(row);
            Acted += l == 0 ? 1 : 0;
            AppendCsv(_csv, row);
            int top = ActivationStats.TopK(acts, _config.TopK, _topScratch);
            for (int r = 0; r < top; r++)
            {
                int at = _topScratch[r];
                _topCsv.Append(string.Create(CultureInfo.InvariantCulture, $"{epoch},{_layerIndex[l]},{r + 1},"))
                    .Append(MetricsWriter.Format(Math.Abs(acts[at]))).Append(',')
                    .Append((at % units).ToString(CultureInfo.InvariantCulture)).Append(',')
                    .Append(_indices[at / units].ToString(CultureInfo.InvariantCulture)).Append('\n');
            }
        }
        if (_evaluator is not null)
            Ablate(run, epoch);
        run.Directory.WriteText(FileName, _csv.ToString());
        run.Directory.WriteText(TopKFileName, _topCsv.ToString());
        if (_evaluator is not null)
            run.Directory.WriteText(AblationFileName, _ablationCsv.ToString());
        _seconds += Stopwatch.GetElapsedTime(t0).TotalSeconds;
    }

    private void Capture(int slot, Tensor output)
    {
        int rows = output.Shape[0];
        int units = output.Length / rows;
        if (_acts[slot] is null)
        {
            _units[slot] = units;
            _acts[slot] = new float[_indices.Length * units];
            int cells = 2 * _classes * units;
            if (_sumScratch.Length < cells)
                _sumScratch = new float[cells];
            if (_absScratch.Length < _acts[slot]!.Length)
                _absScratch = new float[_acts[slot]!.Length];
            _countScratch = new int[2 * _classes];
        }
        output.Span[..(rows * units)].CopyTo(_acts[slot].AsSpan(_chunkStart * units, rows * units));
    }

    internal static void AppendCsv(StringBuilder csv, ProbeRow r)
    {
        var inv = CultureInfo.InvariantCulture;
        csv.Append(r.Epoch.ToString(inv)).Append(',').Append(r.Layer.ToString(inv)).Append(',')
            .Append(MetricsWriter.Format(r.CosineGiven)).Append(',')
            .Append(MetricsWriter.Format(r.CosineTrue)).Append(',')
            .Append(MetricsWriter.Format(r.Massive.MaxAbs)).Append(',')
            .Append(r.Massive.Unit.ToString(inv)).Append(',')
            .Append(MetricsWriter.Format(r.Massive.MedianAbs)).Append(',')
            .Append(MetricsWriter.Format(r.Massive.Ratio)).Append(',')
            .Append(MetricsWriter.Format(r.InputCorr)).Append(',')
            .Append(MetricsWriter.Format(r.OutputCorr)).Append(',')
            .Append(r.MaxSample.ToString(inv)).Append(',')
            .Append(r.IsMassive ? '1' : '0').Append(',')
            .Append(MetricsWriter.Format(r.InputR2)).Append(',')
            .Append(MetricsWriter.Format(r.Eta2Given)).Append(',')
            .Append(MetricsWriter.Format(r.Eta2True)).Append('\n');
    }

    /// <summary>
    /// The input side of the paper's question: per probe sample, the input's L2 norm and its
    /// coordinates on the probe inputs' top principal components (row-major n × (1 + m)).
    /// </summary>
    private void BuildInputDesign(int n, int d)
    {
        int m = Math.Max(0, Math.Min(_config.InputComponents, Math.Min(n - 2, d)));
        _inputRegressors = 1 + m;
        _inputDesign = new double[n * _inputRegressors];
        SpectralBasis? basis = m > 0 ? SpectralBasis.Fit(_x.Span, n, d) : null;
        var xs = _x.Span;
        for (int i = 0; i < n; i++)
        {
            _inputDesign[i * _inputRegressors] = _inputNorms[i];
            for (int j = 0; j < m; j++)
            {
                double dot = 0;
                for (int k = 0; k < d; k++)
                    dot += (xs[i * d + k] - basis!.Mean[k]) * (double)basis.Vectors[k * d + j];
                _inputDesign[i * _inputRegressors + 1 + j] = dot;
            }
        }
    }

    /// <summary>
    /// The massive-activations paper's intervention, at evaluation time: for each probed layer, its
    /// <see cref="ActivationProbeOptions.AblateUnits"/> units with the largest |activation| on the
    /// probe set are set to zero (or to their probe-set mean) in every test sample's forward, and the
    /// test loss and accuracy are compared with the intact model's.
    /// </summary>
    private void Ablate(TrainingRun run, int epoch)
    {
        var test = run.Data.Test;
        int[] subset = _config.AblateTestSamples > 0 && _config.AblateTestSamples < test.Count ? [.. Enumerable.Range(0, _config.AblateTestSamples)] : [];
        var intact = _evaluator!.Score(test, subset).Given;
        int n = _indices.Length;
        for (int l = 0; l < _layers.Length; l++)
        {
            var acts = _acts[l]!;
            int units = _units[l];
            int k = Math.Min(_config.AblateUnits, units);
            var peak = new float[units];
            var mean = new double[units];
            for (int i = 0; i < n; i++)
            {
                for (int u = 0; u < units; u++)
                {
                    float v = acts[i * units + u];
                    peak[u] = Math.Max(peak[u], Math.Abs(v));
                    mean[u] += v;
                }
            }
            var chosen = new int[k];
            ActivationStats.TopK(peak, k, chosen);
            _ablateUnits = chosen;
            _ablateValues = [.. chosen.Select(u => _config.Ablate == "mean" ? (float)(mean[u] / n) : 0f)];
            _ablateLayer = l;
            var module = _layers[l].Module;
            module.AddForwardHook(_ablationHook!);
            GroupScore ablated;
            try
            {
                ablated = _evaluator.Score(test, subset).Given;
            }
            finally
            {
                module.RemoveForwardHook(_ablationHook!);
                _ablateLayer = -1;
            }
            var row = new AblationRow(epoch, _layerIndex[l], _config.Ablate, chosen, intact.Loss, intact.Accuracy, ablated.Loss, ablated.Accuracy);
            _ablations.Add(row);
            _ablationCsv.Append(string.Create(CultureInfo.InvariantCulture, $"{epoch},{row.Layer},{row.Mode},{string.Join(';', chosen)},"))
                .Append(MetricsWriter.Format(row.TestLoss)).Append(',').Append(MetricsWriter.Format(row.TestAcc)).Append(',')
                .Append(MetricsWriter.Format(row.AblatedTestLoss)).Append(',').Append(MetricsWriter.Format(row.AblatedTestAcc)).Append(',')
                .Append(MetricsWriter.Format(row.AblatedTestLoss - row.TestLoss)).Append(',')
                .Append(MetricsWriter.Format(row.AblatedTestAcc - row.TestAcc)).Append('\n');
        }
    }

    /// <summary>Overwrites the chosen units of a hooked layer's output (evaluation only: nothing is differentiated).</summary>
    private void AblateInPlace(Tensor output)
    {
        if (_ablateLayer < 0)
            return;
        int rows = output.Shape[0];
        int units = output.Length / rows;
        var span = output.Span;
        for (int r = 0; r < rows; r++)
        {
            for (int j = 0; j < _ablateUnits.Length; j++)
                span[r * units + _ablateUnits[j]] = _ablateValues[j];
        }
    }

    /// <summary>
    /// A fixed probe set: the same number of samples from every (given class, clean/noisy) cell
    /// where the cell has them, the rest filled at random from what is left, so the set has
    /// exactly <paramref name="size"/> samples. Indices ascending.
    /// </summary>
    public static int[] StratifiedSample(Dataset train, int size, Rng rng)
    {
        if (size > train.Count)
            throw new ArgumentOutOfRangeException(nameof(size), size, $"{size} is larger than the training set ({train.Count} samples)");
        int classes = Math.Max(1, train.NumClasses);
        var cells = new List<int>[2 * classes];
        for (int c = 0; c < cells.Length; c++)
            cells[c] = [];
        for (int i = 0; i < train.Count; i++)
            cells[2 * train.Labels[i] + (train.NoiseMask[i] ? 1 : 0)].Add(i);
        int quota = size / cells.Length;
        var chosen = new List<int>(size);
        var rest = new List<int>();
        foreach (var cell in cells)
        {
            var arr = cell.ToArray();
            rng.Shuffle(arr);
            int take = Math.Min(quota, arr.Length);
            chosen.AddRange(arr[..take]);
            rest.AddRange(arr[take..]);
        }
        var leftover = rest.ToArray();
        rng.Shuffle(leftover);
        chosen.AddRange(leftover[..(size - chosen.Count)]);
        var result = chosen.ToArray();
        Array.Sort(result);
        return result;
    }

    private Dictionary<string, object?> Summary()
    {
        var layers = new List<object?>();
        for (int l = 0; l < _layers.Length; l++)
        {
            int index = _layerIndex[l];
            var rows = _rows.Where(r => r.Layer == index).ToList();
            if (rows.Count == 0)
                continue;
            int same = 0;
            for (int i = 1; i < rows.Count; i++)
                same += rows[i].Massive.Unit == rows[i - 1].Massive.Unit ? 1 : 0;
            var mode = rows.GroupBy(r => r.Massive.Unit).MaxBy(g => g.Count())!;
            var peak = rows.Where(r => !double.IsNaN(r.Massive.Ratio)).MaxBy(r => r.Massive.Ratio);
            var trained = rows.Where(r => r.Epoch > 0).ToList();
            var minGiven = trained.Where(r => !double.IsNaN(r.CosineGiven)).MinBy(r => r.CosineGiven);
            var last = rows[^1];
            layers.Add(new Dictionary<string, object?>
            {
                ["layer"] = index,
                ["module"] = _layers[l].Name,
                ["units"] = _units[l],
                ["top_unit_stability"] = rows.Count < 2 ? double.NaN : (double)same / (rows.Count - 1),
                ["top_unit_most_often"] = mode.Key,
                ["top_unit_most_often_share"] = (double)mode.Count() / rows.Count,
                ["final_max_unit"] = last.Massive.Unit,
                ["final_max_abs_activation"] = last.Massive.MaxAbs,
                ["final_max_to_median_ratio"] = last.Massive.Ratio,
                ["peak_max_to_median_ratio"] = peak?.Massive.Ratio ?? double.NaN,
                ["peak_ratio_epoch"] = peak?.Epoch,
                ["initial_cosine_given"] = rows[0].CosineGiven,
                ["min_cosine_given"] = minGiven?.CosineGiven ?? double.NaN,
                ["min_cosine_given_epoch"] = minGiven?.Epoch,
                ["final_cosine_given"] = last.CosineGiven,
                ["final_cosine_true"] = last.CosineTrue,
                ["final_max_unit_input_corr"] = last.InputCorr,
                ["final_max_unit_output_corr"] = last.OutputCorr,
                ["final_max_sample"] = last.MaxSample,
                ["final_massive"] = last.IsMassive,
                ["massive_epochs"] = rows.Count(r => r.IsMassive),
                ["final_max_unit_input_r2"] = last.InputR2,
                ["final_max_unit_eta2_given"] = last.Eta2Given,
                ["final_max_unit_eta2_true"] = last.Eta2True,
                ["final_ablation"] = _ablations.LastOrDefault(a => a.Layer == index) is { } ab ? new Dictionary<string, object?>
                {
                    ["epoch"] = ab.Epoch,
                    ["mode"] = ab.Mode,
                    ["units"] = ab.Units,
                    ["delta_test_loss"] = ab.AblatedTestLoss - ab.TestLoss,
                    ["delta_test_acc"] = ab.AblatedTestAcc - ab.TestAcc,
                } : null,
            });
        }
        var finals = _rows.Where(r => r.Epoch == (_rows.Count == 0 ? 0 : _rows[^1].Epoch) && !double.IsNaN(r.Massive.Ratio)).ToList();
        return new Dictionary<string, object?>
        {
            ["file"] = FileName,
            ["every_epochs"] = _config.Every,
            ["probe_set"] = new Dictionary<string, object?>
            {
                ["size"] = _indices.Length,
                ["clean"] = _noisy.Count(b => !b),
                ["noisy"] = _noisy.Count(b => b),
            },
            ["most_massive_final_layer"] = finals.Count == 0 ? null : finals.MaxBy(r => r.Massive.Ratio)!.Layer,
            ["massive_final_layers"] = finals.Where(r => r.IsMassive).Select(r => r.Layer).ToList(),
            ["massive_rule"] = new Dictionary<string, object?> { ["abs_above"] = _config.MassiveAbs, ["ratio_above"] = _config.MassiveRatio },
            ["top_k"] = _config.TopK,
            ["ablate"] = _config.Ablate,
            ["ablate_units"] = _config.AblateUnits,
            ["input_regressors"] = _inputRegressors,
            ["seconds"] = _seconds,
            ["seconds_forward"] = _forwardSeconds,
            ["layers"] = layers,
            ["notes"] = "layer = index of the hidden activation module (0 = shallowest). median_abs_activation is over the layer's nonzero entries on the probe set (a ReLU layer is mostly exact zeros). "
                + "top_unit_stability = share of consecutive probes (epoch 0 included) whose max_unit is unchanged. Cosines: per class, clean-mean vs noisy-mean, averaged over classes.",
        };
    }
}
