using LabelNoiseLab.Training;

namespace LabelNoiseLab.Probes;

/// <summary>
/// <c>probe.neuron_norms</c>: metrics.csv columns <c>neuron_norm_mean, neuron_norm_std</c> (rows of
/// the first weight matrix) at each evaluation; summary.json gets the initial, final and smallest
/// mean under <c>neuron_norms</c>.
/// </summary>
public sealed class NeuronNormHook : ITrainingCallback
{
    private NeuronNormStats _initial;
    private double _minMean = double.PositiveInfinity;
    private long _minStep;
    private NeuronNormStats _last;

    /// <inheritdoc/>
    public string Name => "probe.neuron_norms";

    /// <inheritdoc/>
    public long Acted { get; private set; }

    /// <inheritdoc/>
    public ComponentState SaveState() => new ComponentState()
        .Set("acted", Acted)
        .SetJson("initial", _initial)
        .SetJson("last", _last)
        .Set("min_mean", _minMean).Set("min_step", _minStep);

    /// <inheritdoc/>
    public void RestoreState(ComponentState state)
    {
        ArgumentNullException.ThrowIfNull(state);
        Acted = state.Long("acted");
        _initial = state.Json<NeuronNormStats>("initial");
        _last = state.Json<NeuronNormStats>("last");
        _minMean = state.Double("min_mean");
        _minStep = state.Long("min_step");
    }

    /// <inheritdoc/>
    public IReadOnlyList<string> MetricsColumns { get; } = ["neuron_norm_mean", "neuron_norm_std"];

    /// <inheritdoc/>
    public void OnStart(TrainingRun run)
    {
        ArgumentNullException.ThrowIfNull(run);
        _initial = NeuronNorms.Measure(NeuronNorms.FirstWeight(run.Model).Weight);
        _last = _initial;
        Acted++;
    }

    /// <inheritdoc/>
    public void OnEvaluation(TrainingRun run, int epoch, long step, IDictionary<string, double> extra)
    {
        ArgumentNullException.ThrowIfNull(run);
        ArgumentNullException.ThrowIfNull(extra);
        _last = NeuronNorms.Measure(NeuronNorms.FirstWeight(run.Model).Weight);
        Acted++;
        if (_last.Mean < _minMean)
            (_minMean, _minStep) = (_last.Mean, step);
        extra["neuron_norm_mean"] = _last.Mean;
        extra["neuron_norm_std"] = _last.Std;
    }

    /// <inheritdoc/>
    public void OnEnd(TrainingRun run, IDictionary<string, object?> summary)
    {
        ArgumentNullException.ThrowIfNull(run);
        ArgumentNullException.ThrowIfNull(summary);
        summary["neuron_norms"] = new Dictionary<string, object?>
        {
            ["weight"] = NeuronNorms.FirstWeight(run.Model).Name,
            ["initial_mean"] = _initial.Mean,
            ["initial_std"] = _initial.Std,
            ["final_mean"] = _last.Mean,
            ["final_std"] = _last.Std,
            ["final_ratio"] = _last.Mean / _initial.Mean,
            ["min_mean"] = double.IsFinite(_minMean) ? _minMean : null,
            ["min_step"] = double.IsFinite(_minMean) ? _minStep : null,
        };
    }
}
