using System.Globalization;
using System.Text;
using LabelNoiseLab.Training;

namespace LabelNoiseLab.Probes;

/// <summary>
/// <c>probe.learning_events</c>: per-sample learning events read from the training passes
/// themselves (the first forward of every step, training mode, the batch as trained on), not from
/// evaluations. For every training sample: the first epoch in which a step predicted its given
/// label, the first epoch it predicted its true label, and how often it was forgotten (predicted
/// as its given label at one visit and not at the next: Toneva et al.'s forgetting event).
/// <c>learning_events.csv</c> (one row per training sample) is written at the end;
/// <c>summary.json → learning_events</c> gets the median first-fit epoch of clean and of noisy samples.
/// </summary>
public sealed class LearningEvents : ITrainingCallback
{
    /// <summary>The per-sample file written at the end, in the run folder.</summary>
    public const string FileName = "learning_events.csv";

    /// <summary>Columns of <see cref="FileName"/>.</summary>
    public const string Header = "index,noisy,given_label,true_label,first_given_epoch,first_true_epoch,forgetting_events,final_given_correct";

    private int[] _firstGiven = [];
    private int[] _firstTrue = [];
    private int[] _forgets = [];
    // Per sample: -1 not yet seen in a step; 0 last seen predicted wrongly (given label); 1 last seen right.
    private int[] _last = [];
    private int[] _given = [];
    private int[] _true = [];
    private bool[] _noisy = [];

    /// <inheritdoc/>
    public string Name => "probe.learning_events";

    /// <inheritdoc/>
    public long Acted { get; private set; }

    /// <summary>First epoch each sample was predicted as its given label in a training step (0 = never).</summary>
    public IReadOnlyList<int> FirstGivenEpoch => _firstGiven;

    /// <summary>First epoch each sample was predicted as its true label in a training step (0 = never).</summary>
    public IReadOnlyList<int> FirstTrueEpoch => _firstTrue;

    /// <summary>Forgetting events per sample (given label right at one visit, wrong at the next).</summary>
    public IReadOnlyList<int> Forgets => _forgets;

    /// <inheritdoc/>
    public void Attach(TrainingRun run)
    {
        ArgumentNullException.ThrowIfNull(run);
        var train = run.Data.Train;
        if (train.NumClasses == 0)
            throw new ArgumentException("learning events need a classification data set", nameof(run));
        Reset(train.Labels, train.TrueLabels, train.NoiseMask, keepCounts: _firstGiven.Length == train.Count);
    }

    /// <summary>Sets up the per-sample arrays for a training set (counts kept on a resume, whose state was restored first).</summary>
    public void Reset(IReadOnlyList<int> given, IReadOnlyList<int> trueLabels, IReadOnlyList<bool> noisy, bool keepCounts = false)
    {
        ArgumentNullException.ThrowIfNull(given);
        ArgumentNullException.ThrowIfNull(trueLabels);
        ArgumentNullException.ThrowIfNull(noisy);
        int n = given.Count;
        _given = [.. given];
        _true = [.. trueLabels];
        _noisy = [.. noisy];
        if (keepCounts)
            return;
        _firstGiven = new int[n];
        _firstTrue = new int[n];
        _forgets = new int[n];
        _last = new int[n];
        Array.Fill(_last, -1);
    }

    /// <inheritdoc/>
    public void OnOutput(TrainingRun run, StepContext step)
    {
        ArgumentNullException.ThrowIfNull(run);
        ArgumentNullException.ThrowIfNull(step);
        var output = step.Output!;
        int epoch = (int)(step.Step / run.Batcher.BatchesPerEpoch) + 1;
        Record(epoch, run.Batcher.IndexBuffer.AsSpan(0, step.Length), output.Span[..(step.Length * output.RowLength)], output.RowLength);
    }

    /// <summary>One step's forward: <paramref name="indices"/> are the batch's training indices, <paramref name="logits"/> its [n, classes] outputs.</summary>
    public void Record(int epoch, ReadOnlySpan<int> indices, ReadOnlySpan<float> logits, int classes)
    {
        for (int i = 0; i < indices.Length; i++)
        {
            int s = indices[i];
            int predicted = System.Numerics.Tensors.TensorPrimitives.IndexOfMax(logits.Slice(i * classes, classes));
            bool right = predicted == _given[s];
            if (right && _firstGiven[s] == 0)
                _firstGiven[s] = epoch;
            if (predicted == _true[s] && _firstTrue[s] == 0)
                _firstTrue[s] = epoch;
            if (!right && _last[s] == 1)
                _forgets[s]++;
            _last[s] = right ? 1 : 0;
        }
        Acted++;
    }

    /// <inheritdoc/>
    public ComponentState SaveState() => new ComponentState()
        .Set("acted", Acted)
        .Set("first_given", _firstGiven)
        .Set("first_true", _firstTrue)
        .Set("forgets", _forgets)
        .Set("last", _last);

    /// <inheritdoc/>
    public void RestoreState(ComponentState state)
    {
        ArgumentNullException.ThrowIfNull(state);
        Acted = state.Long("acted");
        _firstGiven = state.Ints("first_given");
        _firstTrue = state.Ints("first_true");
        _forgets = state.Ints("forgets");
        _last = state.Ints("last");
    }

    /// <inheritdoc/>
    public void OnEnd(TrainingRun run, IDictionary<string, object?> summary)
    {
        ArgumentNullException.ThrowIfNull(run);
        ArgumentNullException.ThrowIfNull(summary);
        run.Directory.WriteText(FileName, Csv());
        summary["learning_events"] = Summary();
    }

    /// <summary>learning_events.csv: one row per training sample (epochs 1-based, 0 = never).</summary>
    public string Csv()
    {
        var inv = CultureInfo.InvariantCulture;
        var sb = new StringBuilder(Header).Append('\n');
        for (int s = 0; s < _given.Length; s++)
        {
            sb.Append(s.ToString(inv)).Append(',').Append(_noisy[s] ? '1' : '0').Append(',')
                .Append(_given[s].ToString(inv)).Append(',').Append(_true[s].ToString(inv)).Append(',')
                .Append(_firstGiven[s].ToString(inv)).Append(',').Append(_firstTrue[s].ToString(inv)).Append(',')
                .Append(_forgets[s].ToString(inv)).Append(',').Append(_last[s] == 1 ? '1' : '0').Append('\n');
        }
        return sb.ToString();
    }

    /// <summary>Medians of the first-fit epochs (over the samples ever fitted) and how many never were.</summary>
    public Dictionary<string, object?> Summary()
    {
        var clean = Enumerable.Range(0, _given.Length).Where(s => !_noisy[s]).ToList();
        var noisy = Enumerable.Range(0, _given.Length).Where(s => _noisy[s]).ToList();
        return new Dictionary<string, object?>
        {
            ["file"] = FileName,
            ["median_first_fit_epoch_clean"] = MedianFitted(clean, _firstGiven),
            ["median_first_fit_epoch_noisy"] = MedianFitted(noisy, _firstGiven),
            ["median_first_true_epoch_noisy"] = MedianFitted(noisy, _firstTrue),
            ["never_fitted_clean"] = clean.Count(s => _firstGiven[s] == 0),
            ["never_fitted_noisy"] = noisy.Count(s => _firstGiven[s] == 0),
            ["mean_forgetting_events_clean"] = clean.Count == 0 ? double.NaN : clean.Average(s => (double)_forgets[s]),
            ["mean_forgetting_events_noisy"] = noisy.Count == 0 ? double.NaN : noisy.Average(s => (double)_forgets[s]),
            ["notes"] = "From every training step's first forward (training mode, the batch as trained on). first_*_epoch = the first epoch a step predicted that label (0 = never); a forgetting event = predicted as the given label at one visit, not at the next. Medians over the samples fitted at least once.",
        };
    }

    /// <summary>Median of the nonzero epochs of the chosen samples; NaN when none was fitted.</summary>
    public static double MedianFitted(IEnumerable<int> samples, IReadOnlyList<int> epochs)
    {
        ArgumentNullException.ThrowIfNull(samples);
        ArgumentNullException.ThrowIfNull(epochs);
        var values = samples.Select(s => epochs[s]).Where(e => e > 0).Order().ToArray();
        if (values.Length == 0)
            return double.NaN;
        int m = values.Length / 2;
        return values.Length % 2 == 1 ? values[m] : 0.5 * (values[m - 1] + values[m]);
    }
}
