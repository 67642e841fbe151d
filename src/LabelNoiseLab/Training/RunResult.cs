using LabelNoiseLab.RunFiles;

namespace LabelNoiseLab.Training;

/// <summary>What a runner gets besides the config and the directory.</summary>
/// <param name="DataDir">
/// <c>--data-dir</c> as given, or null. The data loaders resolve it: <c>--data-dir</c>, then
/// <c>$LNLAB_DATA</c>, then the Debian package folders (DESIGN.md).
/// </param>
/// <param name="Progress">Where to report steps and evaluations; never null (<see cref="NullProgressSink"/>).</param>
/// <param name="Cancellation">Signalled by SIGTERM, SIGINT or SIGHUP; the trainer then writes a checkpoint at the next step boundary and ends with <see cref="RunStatus.Interrupted"/>.</param>
/// <param name="ResumeFrom">A training checkpoint to go on from (<c>lnlab resume</c>); null = start afresh.</param>
public sealed record RunContext(string? DataDir, IProgressSink Progress, CancellationToken Cancellation = default, string? ResumeFrom = null);

/// <summary>How a run ended: <see cref="RunStatus.Complete"/>, or diverged/failed/interrupted with a one-line reason.</summary>
public sealed record RunResult(RunStatus Status, string? Reason = null)
{
    /// <summary>What the trainer measured (null for runners that do not train, or a run that failed early).</summary>
    public TrainingReport? Report { get; init; }

    /// <summary>A run that ended complete.</summary>
    public static RunResult Complete { get; } = new(RunStatus.Complete);

    /// <summary>A NaN or infinite loss: <c>RunResult.Diverged(step)</c> → "diverged at step 123".</summary>
    public static RunResult Diverged(long step) => new(RunStatus.Diverged, $"diverged at step {step}");

    /// <summary>A run that failed for <paramref name="reason"/>.</summary>
    public static RunResult Failed(string reason) => new(RunStatus.Failed, reason);

    /// <summary>Stopped by a signal after writing a checkpoint: "interrupted at step 123".</summary>
    public static RunResult Interrupted(long step) => new(RunStatus.Interrupted, $"interrupted at step {step}");
}

/// <summary>
/// What a training run measured, as the trainer holds it: every metrics row, the last one, and
/// the summary written to <c>summary.json</c> (nested dictionaries, lists and numbers). Presets and
/// sweeps read their figures here instead of parsing the run's files back.
/// </summary>
public sealed record TrainingReport(IReadOnlyList<MetricsRow> Rows, IReadOnlyDictionary<string, object?> Summary)
{
    /// <summary>The last evaluation, or null when none ran.</summary>
    public MetricsRow? Final => Rows.Count > 0 ? Rows[^1] : null;

    /// <summary>A number of the summary by dotted path (<c>"neuron_norms.final_ratio"</c>); NaN when absent, null or not a number.</summary>
    public double Number(string path) => Value(path) switch
    {
        double v => v,
        float v => v,
        int v => v,
        long v => v,
        bool v => v ? 1 : 0,
        _ => double.NaN,
    };

    /// <summary>The value at a dotted path of the summary, or null.</summary>
    public object? Value(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        object? node = Summary;
        foreach (var part in path.Split('.'))
        {
            node = node switch
            {
                IReadOnlyDictionary<string, object?> r => r.TryGetValue(part, out var v) ? v : null,
                IDictionary<string, object?> m => m.TryGetValue(part, out var v) ? v : null,
                _ => null,
            };
        }
        return node;
    }
}
