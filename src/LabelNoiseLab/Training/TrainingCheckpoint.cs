using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;
using LabelNoiseLab.Data;
using LabelNoiseLab.Nn;
using LabelNoiseLab.Optim;
using LabelNoiseLab.RunFiles;
using LabelNoiseLab.Experiments;

namespace LabelNoiseLab.Training;

/// <summary>
/// Something beside the model and optimizer that keeps state across steps (a per-step noise
/// generator, a probe's accumulated rows): objectives and trainer hooks that implement it are
/// saved in checkpoints and restored on resume, so a resumed run matches an uninterrupted one.
/// </summary>
public interface IResumable
{
    string SaveState();

    void RestoreState(string state);
}

/// <summary>Best-epoch bookkeeping as stored in a checkpoint.</summary>
public sealed record BestState(double BestTestAcc, int? BestTestEpoch, double BestValLoss, int? BestValEpoch, double TestAccAtBestVal);

/// <summary>
/// Everything a run needs, beyond the model's parameters and the optimizer's buffers, to go on
/// from the end of an epoch exactly as if it had never stopped: where the batcher stands and
/// its generator, the dropout generator, the optimizer's step count, early-stopping and best
/// bookkeeping, the metrics rows so far, and the states of resumable objectives and hooks.
/// </summary>
public sealed record ResumeState
{
    public const int CurrentVersion = 1;

    public int Version { get; init; } = CurrentVersion;
    public required string ConfigYaml { get; init; }
    public required int Epoch { get; init; }
    public required long Step { get; init; }
    public required long OptimizerSteps { get; init; }
    public required BatcherState Batcher { get; init; }
    public required ulong[][] DropoutGenerators { get; init; }
    public required int SinceImprovement { get; init; }
    public required bool StoppedEarly { get; init; }
    public required double TrainSeconds { get; init; }
    public required double TotalSeconds { get; init; }
    public required BestState Best { get; init; }
    public required string MetricsCsv { get; init; }
    public string? ObjectiveState { get; init; }
    public required string?[] HookStates { get; init; }
}

/// <summary>
/// A training checkpoint, <c>checkpoints/epoch-NNNN.safetensors</c>: the model's parameters under
/// their own names (so the file loads as a model in Python), the optimizer's buffers as
/// <c>optimizer.&lt;name&gt;</c>, and the <see cref="ResumeState"/> as JSON in the metadata
/// (<c>lnlab.resume</c>). Written atomically (temporary file, flush, rename): a process killed
/// while writing leaves the previous checkpoint and a <c>.tmp-</c> file that resume ignores.
/// </summary>
public static class TrainingCheckpoint
{
    public const string ResumeKey = "lnlab.resume";
    public const string OptimizerPrefix = "optimizer.";
    public const string EpochPrefix = "epoch-";

    private static readonly JsonSerializerOptions Json = new()
    {
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
    };

    public static void Save(RunDirectory dir, string name, ExperimentConfig config, Model model, Optimizer optimizer, ResumeState state)
    {
        var tensors = model.NamedParameters().ToList();
        foreach (var (bufferName, buffer) in optimizer.StateBuffers())
            tensors.Add((OptimizerPrefix + bufferName, new Tensor(buffer, buffer.Length)));
        dir.SaveCheckpoint(name, tensors, new Dictionary<string, string>
        {
            ["model.kind"] = config.ModelKind,
            ["epoch"] = state.Epoch.ToString(CultureInfo.InvariantCulture),
            ["step"] = state.Step.ToString(CultureInfo.InvariantCulture),
            [ResumeKey] = JsonSerializer.Serialize(state, Json),
        });
    }

    /// <summary>The newest <c>epoch-NNNN</c> checkpoint of a run folder (temporary files ignored); null when there is none.</summary>
    public static string? Latest(string runDir)
    {
        string folder = Path.Combine(runDir, RunDirectory.CheckpointsFolder);
        if (!Directory.Exists(folder))
            return null;
        return Directory.EnumerateFiles(folder, EpochPrefix + "*" + RunDirectory.CheckpointExtension)
            .Where(f => int.TryParse(Path.GetFileNameWithoutExtension(f).AsSpan(EpochPrefix.Length), NumberStyles.None, CultureInfo.InvariantCulture, out _))
            .OrderBy(f => Path.GetFileName(f), StringComparer.Ordinal)
            .LastOrDefault();
    }

    /// <summary>
    /// Reads and checks a checkpoint's resume state against the run's config, without touching a
    /// model: a truncated or foreign file, or one written for another config, is a <see cref="DataException"/>.
    /// </summary>
    public static ResumeState ReadState(string path, ExperimentConfig config)
    {
        var file = Safetensors.Load(path);
        if (!file.Metadata.TryGetValue(ResumeKey, out var json))
            throw new DataException(path, $"not a resumable checkpoint (no '{ResumeKey}' metadata)");
        ResumeState? state;
        try
        {
            state = JsonSerializer.Deserialize<ResumeState>(json, Json);
        }
        catch (JsonException e)
        {
            throw new DataException(path, $"'{ResumeKey}' metadata is not valid ({e.Message})");
        }
        if (state is null || state.Version != ResumeState.CurrentVersion)
            throw new DataException(path, $"resume state version {state?.Version}, expected {ResumeState.CurrentVersion}");
        if (state.ConfigYaml != config.ToYaml())
            throw new DataException(path, "was written for another config than the run's config.yaml");
        return state;
    }

    /// <summary>
    /// Loads a checkpoint into a freshly built model and optimizer and restores the generators;
    /// any name or shape that does not match is a <see cref="DataException"/> naming the file.
    /// </summary>
    public static ResumeState Restore(string path, ExperimentConfig config, Model model, Optimizer optimizer,
        Batcher batcher, IReadOnlyList<Tensors.Rng> dropoutGenerators)
    {
        var state = ReadState(path, config);
        var targets = model.NamedParameters().ToList();
        foreach (var (bufferName, buffer) in optimizer.StateBuffers())
            targets.Add((OptimizerPrefix + bufferName, new Tensor(buffer, buffer.Length)));
        Safetensors.LoadInto(path, targets, strict: true); // the optimizer tensors wrap its buffers: loaded in place
        if (state.DropoutGenerators.Length != dropoutGenerators.Count)
            throw new DataException(path, $"holds {state.DropoutGenerators.Length} dropout generator(s), the model has {dropoutGenerators.Count}");
        try
        {
            for (int i = 0; i < dropoutGenerators.Count; i++)
                dropoutGenerators[i].SetState(state.DropoutGenerators[i]);
            batcher.SetState(state.Batcher);
        }
        catch (ArgumentException e)
        {
            throw new DataException(path, $"generator state does not fit ({e.Message})");
        }
        optimizer.StepCount = state.OptimizerSteps;
        return state;
    }

    /// <summary>The distinct dropout generators of a model, in module order.</summary>
    public static IReadOnlyList<Tensors.Rng> DropoutGenerators(Model model) =>
        model.NamedModules().Select(m => m.Module).OfType<Dropout>().Select(d => d.Generator).Distinct().ToList();
}
