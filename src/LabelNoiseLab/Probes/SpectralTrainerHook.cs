using System.Globalization;
using System.Text;
using LabelNoiseLab.Training;

namespace LabelNoiseLab.Probes;

/// <summary>
/// <c>probe.spectral_every = E</c>: the spectral probe of the penultimate layer on the
/// untrained network (epoch 0, the control) and after every E-th epoch, each appended to
/// <c>spectral_epochs.csv</c> (the file is rewritten whole, atomically) so the tail can be
/// watched forming. Columns: <c>epoch, step, effective_rank, stable_rank, full_test_acc,
/// best_d_by_val</c>, then those of spectral.csv. It reads the model in evaluation mode and has
/// its own generator, so training is unchanged by it.
/// </summary>
public sealed class SpectralTrainerHook(int every, long seed) : ITrainingCallback
{
    /// <summary>The file this hook writes in the run folder.</summary>
    public const string FileName = "spectral_epochs.csv";
    /// <summary>Columns of <see cref="FileName"/>.</summary>
    public const string Header = "epoch,step,effective_rank,stable_rank,full_test_acc,best_d_by_val," + SpectralResult.SpectralHeader;

    private StringBuilder _csv = new StringBuilder(Header).Append('\n');
    private Figures? _first;
    private Figures? _last;
    private int _lastEpoch = -1;

    /// <summary>The figures of one probe that the summary reports.</summary>
    private sealed record Figures(double EffectiveRank, int? BestDByVal, double TruncTestAccAtBestD);

    /// <inheritdoc/>
    public string Name => "probe.spectral";

    /// <inheritdoc/>
    public long Acted { get; private set; }

    /// <inheritdoc/>
    public void OnStart(TrainingRun run) => Probe(run, 0, 0);

    /// <inheritdoc/>
    public ComponentState SaveState()
    {
        var state = new ComponentState().Set("acted", Acted).Set("csv", _csv.ToString()).Set("last_epoch", _lastEpoch);
        if (_first is not null)
            state.SetJson("first", _first).SetJson("last", _last);
        return state;
    }

    /// <inheritdoc/>
    public void RestoreState(ComponentState state)
    {
        ArgumentNullException.ThrowIfNull(state);
        Acted = state.Long("acted");
        _csv = new StringBuilder(state.Text("csv"));
        _lastEpoch = (int)state.Long("last_epoch");
        (_first, _last) = state.Values.ContainsKey("first") ? (state.Json<Figures>("first"), state.Json<Figures>("last")) : (null, null);
    }

    /// <inheritdoc/>
    public void OnEvaluation(TrainingRun run, int epoch, long step, IDictionary<string, double> extra)
    {
        // Only the end-of-epoch evaluation (mid-epoch ones come with eval_every_steps).
        if (run.Batcher.EpochDone && epoch % every == 0 && epoch != _lastEpoch)
            Probe(run, epoch, step);
    }

    /// <inheritdoc/>
    public void OnEnd(TrainingRun run, IDictionary<string, object?> summary) =>
        summary["spectral_epochs"] = new Dictionary<string, object?>
        {
            ["every"] = every,
            ["epochs_probed"] = _lastEpoch,
            ["effective_rank_at_init"] = _first?.EffectiveRank,
            ["effective_rank_last"] = _last?.EffectiveRank,
            ["best_d_by_val_last"] = _last?.BestDByVal,
            ["trunc_test_acc_at_best_d_last"] = _last?.TruncTestAccAtBestD,
        };

    private void Probe(TrainingRun run, int epoch, long step)
    {
        var result = SpectralProbe.ProbeModel(run.Model, run.Data, FeatureExtractor.Penultimate, new SpectralOptions { Seed = seed });
        var figures = new Figures(result.EffectiveRank, result.BestDByVal, result.TruncTestAccAtBestD);
        _first ??= figures;
        _last = figures;
        Acted++;
        _lastEpoch = epoch;
        string prefix = string.Create(CultureInfo.InvariantCulture,
            $"{epoch},{step},{SpectralResult.F(result.EffectiveRank)},{SpectralResult.F(result.StableRank)},{SpectralResult.F(result.FullTestAcc)},{result.BestDByVal},");
        _csv.Append(result.SpectralCsv(prefix));
        run.Directory.WriteText(FileName, _csv.ToString());
        run.Progress.OnMessage(result.Describe($"spectral probe, epoch {epoch}"));
    }
}
