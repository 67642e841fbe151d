using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;
using LabelNoiseLab.Data;
using LabelNoiseLab.Nn;
using LabelNoiseLab.Optim;
using LabelNoiseLab.RunFiles;

namespace LabelNoiseLab.Training;

/// <summary>Best-epoch bookkeeping as stored in a checkpoint.</summary>
internal sealed record BestState(double BestTestAcc, int? BestTestEpoch, double BestValLoss, int? BestValEpoch, double TestAccAtBestVal);

/// <summary>
/// Everything a run needs, beyond the model's parameters and the optimizer's buffers, to go on
/// from a step boundary exactly as if it had never stopped: where the batcher stands and its
/// generator, the dropout generators, the optimizer's step count, early-stopping and best
/// bookkeeping, the metrics rows so far, and the state of every training component.
/// Version 2 (this format): adds <see cref="InEpoch"/>, <see cref="EpochSeconds"/> and
/// <see cref="Components"/> (version 1 kept only some components' states, by position).
/// </summary>
internal sealed record ResumeState
{
    public const int CurrentVersion = 2;

    public int Version { get; init; } = CurrentVersion;

    /// <summary>What the run was configured as (the resolved config); a resume under another is refused.</summary>
    public required string Fingerprint { get; init; }

    /// <summary>The epoch in progress (<see cref="InEpoch"/>) or just completed.</summary>
    public required int Epoch { get; init; }

    /// <summary>Written inside an epoch (mid-epoch checkpoint or a signal): the epoch goes on from the batcher's position.</summary>
    public bool InEpoch { get; init; }

    public required long Step { get; init; }
    public required long OptimizerSteps { get; init; }
    public required BatcherState Batcher { get; init; }
    public required ulong[][] DropoutGenerators { get; init; }
    public required int SinceImprovement { get; init; }
    public required bool StoppedEarly { get; init; }
    public required double TrainSeconds { get; init; }

    /// <summary>Training seconds of the epoch in progress so far (inside an epoch).</summary>
    public double EpochSeconds { get; init; }

    public required double TotalSeconds { get; init; }
    public required BestState Best { get; init; }
    public required string MetricsCsv { get; init; }

    /// <summary>Each component's values by its name; its arrays are tensors <c>state.&lt;name&gt;.&lt;key&gt;</c>.</summary>
    public Dictionary<string, Dictionary<string, string>> Components { get; init; } = [];
}

/// <summary>
/// A training checkpoint, <c>checkpoints/epoch-NNNN.safetensors</c> (end of an epoch) or
/// <c>epoch-NNNN-step-SSSSSSSSSS.safetensors</c> (inside epoch NNNN, after step S): the model's
/// parameters under their own names (so the file loads as a model in Python), the optimizer's
/// buffers as <c>optimizer.&lt;name&gt;</c>, the components' arrays as <c>state.&lt;component&gt;.&lt;name&gt;</c>,
/// and the <see cref="ResumeState"/> as JSON in the metadata (<c>lnlab.resume</c>). Written
/// atomically (temporary file, flush, rename): a process killed while writing leaves the
/// previous checkpoint and a <c>.tmp-</c> file that resume ignores. Names sort in step order.
/// </summary>
public static class TrainingCheckpoint
{
    internal const string ResumeKey = "lnlab.resume";
    internal const string ChecksumKey = "lnlab.checksum";
    internal const string FormatVersionKey = "format_version";
    internal const string OptimizerPrefix = "optimizer.";
    internal const string StatePrefix = "state.";
    internal const string EpochPrefix = "epoch-";
    internal const string StepInfix = "-step-";

    private static readonly JsonSerializerOptions Json = new()
    {
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
    };

    internal static void Save(RunDirectory dir, string name, TrainingOptions options, Model model, Optimizer optimizer,
        IReadOnlyList<ITrainingComponent> components, ResumeState state)
    {
        ArgumentNullException.ThrowIfNull(dir);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(optimizer);
        ArgumentNullException.ThrowIfNull(components);
        ArgumentNullException.ThrowIfNull(state);
        var tensors = model.NamedState().ToList();
        foreach (var (bufferName, buffer) in optimizer.StateBuffers())
            tensors.Add((OptimizerPrefix + bufferName, new Tensor(buffer, buffer.Length)));
        var values = new Dictionary<string, Dictionary<string, string>>();
        foreach (var component in components)
        {
            var s = component.SaveState();
            values[component.Name] = s.Values;
            foreach (var (key, array) in s.Arrays)
                tensors.Add((StatePrefix + component.Name + "." + key, new Tensor(array, array.Length)));
        }
        var metadata = new Dictionary<string, string>(options.CheckpointMetadata)
        {
            [FormatVersionKey] = ResumeState.CurrentVersion.ToString(CultureInfo.InvariantCulture),
            ["epoch"] = state.Epoch.ToString(CultureInfo.InvariantCulture),
            ["step"] = state.Step.ToString(CultureInfo.InvariantCulture),
            [ResumeKey] = JsonSerializer.Serialize(state with { Components = values }, Json),
        };
        metadata[ChecksumKey] = Checksum(tensors, metadata);
        dir.SaveCheckpoint(name, tensors, metadata);
    }

    /// <summary>The newest resumable checkpoint of a run folder (temporary files ignored); null when there is none.</summary>
    public static string? Latest(string runDir)
    {
        string folder = Path.Combine(runDir, RunDirectory.CheckpointsFolder);
        if (File.Exists(folder))
            throw new DataException(folder, "is a file; a run's checkpoints folder must be a folder");
        if (!Directory.Exists(folder))
            return null;
        return Directory.EnumerateFileSystemEntries(folder, EpochPrefix + "*" + RunDirectory.CheckpointExtension)
            .Where(f => IsResumableName(Path.GetFileNameWithoutExtension(f)))
            .OrderBy(f => Path.GetFileName(f), StringComparer.Ordinal)
            .LastOrDefault(); // a folder by that name is refused by ReadState
    }

    /// <summary><c>epoch-NNNN</c> or <c>epoch-NNNN-step-SSSSSSSSSS</c> (digits only): names that sort in step order.</summary>
    public static bool IsResumableName(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        if (!name.StartsWith(EpochPrefix, StringComparison.Ordinal))
            return false;
        var rest = name.AsSpan(EpochPrefix.Length);
        int infix = rest.IndexOf(StepInfix, StringComparison.Ordinal);
        return infix < 0 ? IsDigits(rest)
            : infix == 4 && IsDigits(rest[..infix]) && rest.Length == infix + StepInfix.Length + 10 && IsDigits(rest[(infix + StepInfix.Length)..]);

        static bool IsDigits(ReadOnlySpan<char> s) => s.Length > 0 && !s.ContainsAnyExcept("0123456789");
    }

    /// <summary>
    /// Reads and checks a checkpoint's resume state against the run's config, without touching a
    /// model: a truncated or foreign file, or one written for another config, is a <see cref="DataException"/>.
    /// </summary>
    internal static ResumeState ReadState(string path, string fingerprint)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (Directory.Exists(path))
            throw new DataException(path, "is a directory, not a checkpoint file");
        var file = Safetensors.Load(path);
        if (!file.Metadata.TryGetValue(ResumeKey, out var json))
            throw new DataException(path, $"not a resumable checkpoint (no '{ResumeKey}' metadata)");
        int version;
        try
        {
            using var doc = JsonDocument.Parse(json);
            version = doc.RootElement.TryGetProperty("Version", out var v) && v.TryGetInt32(out int n) ? n : 0;
        }
        catch (JsonException e)
        {
            throw new DataException(path, $"'{ResumeKey}' metadata is not valid ({e.Message})");
        }
        if (version != ResumeState.CurrentVersion)
            throw new DataException(path, $"resume state version {version}, expected {ResumeState.CurrentVersion} (written by an older lnlab; start the run again)");
        ResumeState? state;
        try
        {
            state = JsonSerializer.Deserialize<ResumeState>(json, Json);
        }
        catch (JsonException e)
        {
            throw new DataException(path, $"'{ResumeKey}' metadata is not valid ({e.Message})");
        }
        if (state is null)
            throw new DataException(path, $"'{ResumeKey}' metadata is empty");
        // Integrity: every tensor and every metadata entry, as written.
        if (!file.Metadata.TryGetValue(ChecksumKey, out var stored))
            throw new DataException(path, $"has no '{ChecksumKey}'; the file is damaged or not written by lnlab");
        string actual = Checksum(file.Tensors.Select(t => (t.Key, t.Value)), file.Metadata);
        if (stored != actual)
            throw new DataException(path, $"checksum mismatch (stored {Short(stored)}, contents {Short(actual)}): the file is damaged");
        if (state.Fingerprint != fingerprint)
            throw new DataException(path, "was written for another config than the run's config.yaml");
        string Meta(string key) => file.Metadata.TryGetValue(key, out var v) ? v : "";
        if (Meta("epoch") != state.Epoch.ToString(CultureInfo.InvariantCulture) || Meta("step") != state.Step.ToString(CultureInfo.InvariantCulture))
            throw new DataException(path, $"metadata epoch {Meta("epoch")} / step {Meta("step")} disagree with the resume state's {state.Epoch} / {state.Step}");
        if (state.Epoch < 0 || state.Step < 0 || state.Batcher is null || state.Best is null || state.MetricsCsv is null || state.DropoutGenerators is null)
            throw new DataException(path, "resume state is incomplete");
        if (MetricsWriter.Check(state.MetricsCsv) is { } problem)
            throw new DataException(path, $"the metrics rows it holds are damaged: {problem}");
        return state;
    }

    /// <summary>
    /// Loads a checkpoint into a freshly built model, optimizer and components and restores the
    /// generators; any name or shape that does not match, or a component without its state, is a
    /// <see cref="DataException"/> naming the file.
    /// </summary>
    internal static ResumeState Restore(string path, TrainingOptions options, Model model, Optimizer optimizer,
        Batcher batcher, IReadOnlyList<Tensors.Rng> dropoutGenerators, IReadOnlyList<ITrainingComponent> components)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(optimizer);
        ArgumentNullException.ThrowIfNull(batcher);
        ArgumentNullException.ThrowIfNull(dropoutGenerators);
        ArgumentNullException.ThrowIfNull(components);
        var state = ReadState(path, options.Fingerprint);
        CheckPosition(path, state, options, batcher);
        var targets = model.NamedState().ToList();
        foreach (var (bufferName, buffer) in optimizer.StateBuffers())
            targets.Add((OptimizerPrefix + bufferName, new Tensor(buffer, buffer.Length)));
        var file = Safetensors.Load(path);
        Safetensors.LoadInto(path, targets, strict: false); // the optimizer tensors wrap its buffers: loaded in place
        var expected = targets.Select(t => t.Name).ToHashSet();
        foreach (var name in file.Tensors.Keys)
        {
            if (!expected.Contains(name) && !name.StartsWith(StatePrefix, StringComparison.Ordinal))
                throw new DataException(path, $"holds tensor '{name}', which the model and optimizer do not have");
        }
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
        foreach (var component in components)
        {
            if (!state.Components.TryGetValue(component.Name, out var values))
                throw new DataException(path, $"holds no state for the training component '{component.Name}'");
            var restored = new ComponentState { Values = values };
            string prefix = StatePrefix + component.Name + ".";
            foreach (var (name, tensor) in file.Tensors)
            {
                if (name.StartsWith(prefix, StringComparison.Ordinal))
                    restored.Arrays[name[prefix.Length..]] = tensor.Span.ToArray();
            }
            try
            {
                component.RestoreState(restored);
            }
            catch (Exception e) when (e is FormatException or InvalidDataException or ArgumentException or KeyNotFoundException)
            {
                throw new DataException(path, $"state of the training component '{component.Name}' does not fit ({e.Message})");
            }
        }
        optimizer.StepCount = state.OptimizerSteps;
        return state;
    }

    /// <summary>
    /// The epoch, step and batcher position must describe one point of this run: epoch within the
    /// configured epochs, the batcher in the same epoch, and the step count the position implies.
    /// </summary>
    private static void CheckPosition(string path, ResumeState state, TrainingOptions options, Batcher batcher)
    {
        int bpe = batcher.BatchesPerEpoch, b = batcher.BatchSize, n = batcher.Data.Count;
        var p = state.Batcher;
        string? problem =
            state.Epoch > options.Epochs ? $"epoch {state.Epoch} is beyond the run's {options.Epochs} epochs"
            : p.Epoch != state.Epoch ? $"the batcher is in epoch {p.Epoch}, the state says {state.Epoch}"
            : state.InEpoch && (state.Epoch < 1 || p.Position < 0 || p.Position >= n || p.Position % b != 0) ? $"batcher position {p.Position} is not inside epoch {state.Epoch} ({n} samples, batches of {b})"
            : state.InEpoch && state.Step != (long)(state.Epoch - 1) * bpe + p.Position / b ? $"step {state.Step} does not match epoch {state.Epoch}, position {p.Position}"
            : !state.InEpoch && state.Step != (long)state.Epoch * bpe ? $"step {state.Step} does not match the end of epoch {state.Epoch} ({bpe} steps an epoch)"
            : null;
        if (problem is not null)
            throw new DataException(path, problem);
    }

    /// <summary>SHA-256 over every tensor (name, shape, bytes; by name) and every metadata entry but the checksum itself (by key).</summary>
    internal static string Checksum(IEnumerable<(string Name, Tensor Tensor)> tensors, IReadOnlyDictionary<string, string> metadata)
    {
        ArgumentNullException.ThrowIfNull(tensors);
        ArgumentNullException.ThrowIfNull(metadata);
        using var sha = System.Security.Cryptography.IncrementalHash.CreateHash(System.Security.Cryptography.HashAlgorithmName.SHA256);
        foreach (var (name, tensor) in tensors.OrderBy(t => t.Name, StringComparer.Ordinal))
        {
            sha.AppendData(System.Text.Encoding.UTF8.GetBytes($"tensor {name} {tensor.ShapeString}\n"));
            sha.AppendData(System.Runtime.InteropServices.MemoryMarshal.AsBytes(tensor.Span));
        }
        foreach (var (key, value) in metadata.Where(m => m.Key != ChecksumKey).OrderBy(m => m.Key, StringComparer.Ordinal))
            sha.AppendData(System.Text.Encoding.UTF8.GetBytes($"meta {key.Length} {key} {value.Length} {value}\n"));
        return "sha256:" + Convert.ToHexStringLower(sha.GetHashAndReset());
    }

    private static string Short(string checksum) => checksum.Length > 19 ? checksum[..19] + "…" : checksum;

    /// <summary>The distinct dropout generators of a model, in module order.</summary>
    internal static IReadOnlyList<Tensors.Rng> DropoutGenerators(Model model) =>
        model.NamedModules().Select(m => m.Module).OfType<IRandomLayer>().Select(d => d.Generator).Distinct().ToList();
}
