using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using LabelNoiseLab.Probes;
using LabelNoiseLab.RunFiles;
using LabelNoiseLab.Experiments;

namespace LabelNoiseLab.Studies;

/// <summary>The trained model's probe and the untrained control of one run directory.</summary>
public sealed record SpectralRunReport(SpectralResult Trained, SpectralResult? Init, string Layer);

/// <summary>
/// <c>lnlab probe spectral RUN_DIR</c>: rebuilds the run's data (same noise, from its
/// config.yaml) and model, probes the untrained network (same init seed: the control) and the
/// final checkpoint, and writes into the run folder <c>spectrum.csv</c>, <c>spectral.csv</c>,
/// <c>spectrum_init.csv</c>, <c>spectral_init.csv</c>, and the figures into <c>summary.json</c>
/// (merged: the training summary stays, keys are added at the top level; the control's keys end
/// in <c>_at_init</c>).
/// </summary>
public static class SpectralRunProbe
{
    /// <summary>The trained model's feature spectrum: singular values and explained variance of the probed layer's features (<see cref="SpectralResult.SpectrumHeader"/>).</summary>
    public const string SpectrumFile = "spectrum.csv";
    /// <summary>The trained model's probe per truncation dimension d: linear-probe and truncation accuracies, clean and noisy tail energies (<see cref="SpectralResult.SpectralHeader"/>).</summary>
    public const string SpectralFile = "spectral.csv";
    /// <summary>As <see cref="SpectrumFile"/>, for the untrained control (same init seed).</summary>
    public const string SpectrumInitFile = "spectrum_init.csv";
    /// <summary>As <see cref="SpectralFile"/>, for the untrained control (same init seed).</summary>
    public const string SpectralInitFile = "spectral_init.csv";

    private static readonly JsonSerializerOptions Json = new()
    {
        WriteIndented = true,
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
    };

    /// <summary>Probes the final checkpoint of <paramref name="runDir"/> at <paramref name="layer"/> and, with <paramref name="control"/>, the untrained network; writes the four files and merges the figures into <c>summary.json</c>.</summary>
    public static SpectralRunReport Run(string runDir, string layer, SpectralOptions options, string? dataDir = null, bool control = true, Action<string>? log = null) =>
        Run(runDir, layer, options, dataDir, control, log, "final", "");

    /// <summary>
    /// Probes the checkpoint <paramref name="checkpointName"/>; with a <paramref name="suffix"/>
    /// (e.g. <c>_early_stopped</c>) its files are <c>spectrum{suffix}.csv</c>, <c>spectral{suffix}.csv</c>
    /// and its summary keys end in the suffix, leaving the final model's probe and the control alone.
    /// </summary>
    public static SpectralRunReport Run(string runDir, string layer, SpectralOptions options, string? dataDir, bool control, Action<string>? log,
        string checkpointName, string suffix)
    {
        if (!Directory.Exists(runDir))
            throw new InputException($"{runDir}: no such run directory");
        string configPath = Path.Combine(runDir, RunDirectory.ConfigFile);
        if (!File.Exists(configPath))
            throw new DataException(configPath, "not found; RUN_DIR must be a run directory written by lnlab train");
        string checkpoint = Path.Combine(runDir, RunDirectory.CheckpointsFolder, checkpointName + RunDirectory.CheckpointExtension);
        if (!File.Exists(checkpoint))
            throw new DataException(checkpoint, $"no {checkpointName} checkpoint in this run directory (was the run trained to the end?)");
        var config = ExperimentConfig.Load(configPath);
        var data = ExperimentSetup.PrepareData(config, dataDir);
        var model = ExperimentSetup.CreateModel(config, data.Train);
        FeatureExtractor.ResolveLayer(model, layer); // an unknown layer fails before any work
        options = options with { Seed = config.Seed };

        // The model is at its initialisation now (same seed as the run): the paper's control.
        SpectralResult? init = null;
        if (control)
        {
            init = SpectralProbe.ProbeModel(model, data, layer, options);
            log?.Invoke(Describe("init", init));
        }
        Safetensors.LoadInto(checkpoint, model.NamedState());
        var trained = SpectralProbe.ProbeModel(model, data, layer, options);
        log?.Invoke(Describe("trained", trained));

        if (suffix.Length > 0)
        {
            Write(runDir, $"spectrum{suffix}.csv", trained.SpectrumCsv());
            Write(runDir, $"spectral{suffix}.csv", SpectralResult.SpectralHeader + "\n" + trained.SpectralCsv());
            MergeSummary(runDir, trained.Summary(suffix));
            return new SpectralRunReport(trained, null, layer);
        }
        Write(runDir, SpectrumFile, trained.SpectrumCsv());
        Write(runDir, SpectralFile, SpectralResult.SpectralHeader + "\n" + trained.SpectralCsv());
        var figures = trained.Summary();
        if (init is not null)
        {
            Write(runDir, SpectrumInitFile, init.SpectrumCsv());
            Write(runDir, SpectralInitFile, SpectralResult.SpectralHeader + "\n" + init.SpectralCsv());
            foreach (var (k, v) in init.Summary("_at_init"))
                figures[k] = v;
        }
        else
        {
            // No control this time: a control left by an earlier probe (maybe of another layer) must not pass for this one's.
            foreach (var file in new[] { SpectrumInitFile, SpectralInitFile })
                File.Delete(Path.Combine(runDir, file));
            foreach (var k in trained.Summary("_at_init").Keys)
                figures[k] = null;
        }
        figures["spectral_probe"] = new Dictionary<string, object?>
        {
            ["layer"] = layer,
            ["dim"] = trained.Basis.Dim,
            ["classes"] = trained.Classes,
            ["grid"] = trained.Rows.Select(r => r.D).ToList(),
            ["probe_epochs"] = options.ProbeEpochs,
            ["probe_batch_size"] = options.ProbeBatchSize,
            ["probe_lr"] = options.ProbeLr,
            ["seconds_spectrum"] = trained.SpectrumSeconds,
            ["seconds_truncation"] = trained.TruncationSeconds,
            ["seconds_probes"] = trained.ProbeSeconds,
            ["notes"] = "best_d_by_val: arg-max of trunc_val_acc (validation scored against its noisy given labels), smallest d on ties; "
                + "probe_best_d: arg-max of probe_test_acc (an oracle locating the valley). Probe: softmax regression on the top-d principal "
                + "coordinates whitened by 1/sqrt(eigenvalue), zero init, Adam, fixed epochs, given labels.",
        };
        MergeSummary(runDir, figures);
        return new SpectralRunReport(trained, init, layer);
    }

    /// <summary>Adds (or replaces) top-level keys of the run's summary.json, keeping the rest.</summary>
    public static void MergeSummary(string runDir, IReadOnlyDictionary<string, object?> figures)
    {
        string path = Path.Combine(runDir, RunDirectory.SummaryFile);
        JsonObject summary;
        try
        {
            summary = File.Exists(path) ? JsonNode.Parse(File.ReadAllText(path)) as JsonObject ?? [] : [];
        }
        catch (JsonException e)
        {
            throw new DataException(path, $"not valid JSON ({e.Message})");
        }
        foreach (var (key, value) in figures)
            summary[key] = JsonSerializer.SerializeToNode(value, Json);
        Write(runDir, RunDirectory.SummaryFile, summary.ToJsonString(Json) + "\n");
    }

    /// <summary>One line for a log: <paramref name="what"/> was probed, and its figures (<see cref="SpectralResult.Describe"/>).</summary>
    public static string Describe(string what, SpectralResult r) => r.Describe(what);

    private static void Write(string runDir, string file, string text) => AtomicFile.WriteAllText(Path.Combine(runDir, file), text);
}
