using LabelNoiseLab.Autograd;
using LabelNoiseLab.Data;
using LabelNoiseLab.Nn;
using LabelNoiseLab.RunFiles;
using LabelNoiseLab.Training;
using LabelNoiseLab.Experiments;

namespace LabelNoiseLab.Studies;

/// <summary>What <c>lnlab export features</c> was asked for.</summary>
public sealed record FeatureExportOptions
{
    /// <summary>The run folder: its <c>config.yaml</c> rebuilds the data and model, its <c>checkpoints/</c> give the weights.</summary>
    public required string RunDir { get; init; }

    /// <summary>A module path (<c>layers.1</c>), <c>features</c> (the head's input) or <c>logits</c>.</summary>
    public required string Layer { get; init; }

    /// <summary><c>train</c>, <c>validation</c> or <c>test</c>.</summary>
    public string Split { get; init; } = "train";

    /// <summary>Checkpoint name in <c>checkpoints/</c>; null = <c>final</c>, else the newest <c>epoch-NNNN</c>.</summary>
    public string? Checkpoint { get; init; }

    /// <summary>Where the <c>.npy</c> files go; null = <c>RUN_DIR/exports/&lt;split&gt;/</c>.</summary>
    public string? OutDir { get; init; }

    /// <summary>Where the data set's files are (<c>--data-dir</c>); null = the default locations.</summary>
    public string? DataDir { get; init; }
}

/// <summary>
/// Writes a layer's activations for every sample of a split as <c>.npy</c>, with the given
/// labels, the true labels and the noise mask beside them, from a run's config (the data and its
/// noise are rebuilt from the seeds) and a checkpoint. Default output:
/// <c>RUN_DIR/exports/&lt;split&gt;/</c>.
/// </summary>
public static class FeatureExport
{
    /// <summary>
    /// Writes <c>features-&lt;layer&gt;.npy</c> (samples × width, float32), <c>labels.npy</c>, <c>true_labels.npy</c> and
    /// <c>noise_mask.npy</c>; returns their paths in that order. An unknown split or layer, or a missing run file, is an <see cref="InputException"/>.
    /// </summary>
    public static IReadOnlyList<string> Export(FeatureExportOptions o)
    {
        var config = RunFolder.ReadConfig(o.RunDir);
        string checkpoint = RunFolder.Checkpoint(o.RunDir, o.Checkpoint);
        if (o.Split is not ("train" or "validation" or "test"))
            throw new InputException($"--split '{o.Split}': expected train, validation or test");
        var data = ExperimentSetup.PrepareData(config, o.DataDir);
        var set = o.Split switch
        {
            "train" => data.Train,
            "test" => data.Test,
            _ => data.Validation ?? throw new InputException($"{o.RunDir}: the run has no validation split (data.val_fraction = 0)"),
        };
        var model = ExperimentSetup.CreateModel(config, data.Train);
        Safetensors.LoadInto(checkpoint, model.NamedState(), strict: false); // epoch checkpoints also hold optimizer state
        var (values, width) = Activations(model, set, o.Layer);

        string outDir = o.OutDir ?? Path.Combine(o.RunDir, "exports", o.Split);
        Directory.CreateDirectory(outDir);
        string featuresPath = Path.Combine(outDir, $"features-{o.Layer}.npy");
        Npy.Write(featuresPath, values, set.Count, width);
        string labels = Path.Combine(outDir, "labels.npy");
        string trueLabels = Path.Combine(outDir, "true_labels.npy");
        string mask = Path.Combine(outDir, "noise_mask.npy");
        Npy.Write(labels, set.Labels, set.Count);
        Npy.Write(trueLabels, set.TrueLabels, set.Count);
        Npy.Write(mask, set.NoiseMask, set.Count);
        return [featuresPath, labels, trueLabels, mask];
    }

    /// <summary>The layer's output for every sample (flattened per sample), in chunks, in evaluation mode.</summary>
    internal static (float[] Values, int Width) Activations(Model model, Dataset set, string layer)
    {
        var modules = model.NamedModules().Where(m => m.Name.Length > 0).ToList();
        Module? target = null;
        if (layer is not ("features" or "logits"))
        {
            target = modules.FirstOrDefault(m => m.Name == layer).Module
                ?? throw new InputException($"--layer '{layer}': no such layer; expected features, logits or one of {string.Join(", ", modules.Select(m => m.Name))}");
        }
        const int chunk = 512;
        var tape = new Tape(recording: false);
        var x = new Tensor(chunk, set.FeatureLength);
        float[]? values = null;
        int width = 0, start = 0;
        Tensor? captured = null;
        void Capture(Module module, Tensor input, Tensor output) => captured = output;
        target?.AddForwardHook(Capture);
        model.SetTraining(false);
        try
        {
            for (; start < set.Count; start += chunk)
            {
                int len = Math.Min(chunk, set.Count - start);
                x.Resize([len, set.FeatureLength]);
                set.Features.AsSpan(start * set.FeatureLength, len * set.FeatureLength).CopyTo(x.Span);
                tape.Reset();
                var output = layer == "features" ? model.Features(tape, x) : model.Forward(tape, x);
                var rows = target is null ? output : captured!;
                if (values is null)
                {
                    width = rows.Length / len;
                    values = new float[(long)set.Count * width];
                }
                rows.Span[..(len * width)].CopyTo(values.AsSpan(start * width, len * width));
            }
        }
        finally
        {
            target?.RemoveForwardHook(Capture);
        }
        return (values ?? [], width);
    }
}

/// <summary>Reading a finished (or unfinished) run folder for exports, summaries and reports.</summary>
public static class RunFolder
{
    /// <summary>The folder must hold a status file; its config.yaml is loaded and validated.</summary>
    public static ExperimentConfig ReadConfig(string runDir)
    {
        if (!Directory.Exists(runDir))
            throw new InputException($"{runDir}: no such run directory");
        if (RunDirectory.ReadStatus(runDir) is null)
            throw new InputException($"{runDir}: not a run directory (no status file)");
        return ExperimentConfig.Load(Path.Combine(runDir, RunDirectory.ConfigFile));
    }

    /// <summary>A named checkpoint, or <c>final</c>, or the newest <c>epoch-NNNN</c>.</summary>
    public static string Checkpoint(string runDir, string? name)
    {
        string folder = Path.Combine(runDir, RunDirectory.CheckpointsFolder);
        if (name is not null)
        {
            string path = Path.Combine(folder, name.EndsWith(RunDirectory.CheckpointExtension, StringComparison.Ordinal) ? name : name + RunDirectory.CheckpointExtension);
            return File.Exists(path) ? path : throw new InputException($"{path}: no such checkpoint");
        }
        string final = Path.Combine(folder, "final" + RunDirectory.CheckpointExtension);
        return File.Exists(final) ? final
            : TrainingCheckpoint.Latest(runDir) ?? throw new InputException($"{runDir}: the run has no checkpoint yet");
    }
}
