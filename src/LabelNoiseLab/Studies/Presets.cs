using LabelNoiseLab.Experiments;
using LabelNoiseLab.RunFiles;
using LabelNoiseLab.Training;

namespace LabelNoiseLab.Studies;

/// <summary>What <c>lnlab run PRESET</c> was asked for, before anything exists on disk.</summary>
public sealed record PresetRequest
{
    /// <summary><c>--quick</c>: the preset's short CI version.</summary>
    public bool Quick { get; init; }

    /// <summary><c>--set key=value</c> overrides of the preset's settings, applied in order.</summary>
    public IReadOnlyList<string> Sets { get; init; } = [];

    /// <summary><c>--seeds N</c>; null = the preset's default. Only presets with <see cref="IPreset.SeedsHelp"/> read it.</summary>
    public int? Seeds { get; init; }
}

/// <summary>What a preset's run gets besides its folder: the runner of its sub-runs, <c>--data-dir</c>, a line log, Ctrl+C.</summary>
public sealed record PresetContext(IExperimentRunner Runner, string? DataDir, Action<string> Log, CancellationToken Cancellation = default)
{
    /// <summary>The context of one sub-run (progress to <paramref name="progress"/>, or nowhere).</summary>
    public RunContext ForSubRun(IProgressSink? progress = null) => new(DataDir, progress ?? NullProgressSink.Instance, Cancellation);
}

/// <summary>
/// A preset whose settings are parsed and checked: <see cref="Run"/> writes into a run folder the
/// caller created (status <c>running</c>) and returns how it ended; the caller writes the final status.
/// </summary>
public sealed class PresetPlan(string runName, Func<RunDirectory, PresetContext, RunResult> run)
{
    /// <summary>The default folder name: <c>runs/&lt;RunName&gt;-&lt;timestamp&gt;</c>.</summary>
    public string RunName { get; } = runName;

    /// <summary>Runs the preset into <paramref name="dir"/> and returns how it ended; the caller records the final status (<see cref="RunOutcome.Record"/>).</summary>
    public RunResult Run(RunDirectory dir, PresetContext context)
    {
        ArgumentNullException.ThrowIfNull(dir);
        ArgumentNullException.ThrowIfNull(context);
        return run(dir, context);
    }
}

/// <summary>
/// A built-in study, <c>lnlab run NAME</c>. <see cref="Prepare"/> parses <c>--set</c>,
/// <c>--quick</c> (and <c>--seeds</c>) and checks everything before any folder exists, so bad
/// settings (a <see cref="InputException"/>, usually a <see cref="ConfigException"/> naming the
/// key) leave nothing behind. To add one: a class implementing this, and one line in <see cref="Presets.All"/>.
/// </summary>
public interface IPreset
{
    /// <summary>The name on the command line (<c>two-phase</c>).</summary>
    string Name { get; }

    /// <summary>One line for <c>lnlab run --help</c>.</summary>
    string Description { get; }

    /// <summary>What <c>--seeds</c> means for this preset (its default), or null when it has no seeds (the option is then ignored).</summary>
    string? SeedsHelp => null;

    /// <summary>Parses and checks the request's settings and returns the plan to run; throws <see cref="ConfigException"/> (or <see cref="InputException"/>) for a bad setting.</summary>
    PresetPlan Prepare(PresetRequest request);
}

/// <summary>The built-in presets: the one list <c>lnlab run</c> dispatches on and prints in its help.</summary>
public static class Presets
{
    /// <summary>Every built-in preset, in the order <c>lnlab run --help</c> lists them.</summary>
    public static IReadOnlyList<IPreset> All { get; } =
    [
        new TwoPhasePreset(),
        new TwoPhaseFmnistPreset(),
        new TwoPhasePaperPreset(),
        new SpectralTailPreset(),
        new DoubleDescentPreset(),
        new RobustPreset(),
    ];

    /// <summary>The names of <see cref="All"/>, in order.</summary>
    public static IReadOnlyList<string> Names { get; } = [.. All.Select(p => p.Name)];

    /// <summary>The preset called <paramref name="name"/>; an unknown name is an <see cref="InputException"/> listing the known ones.</summary>
    public static IPreset Find(string name) =>
        All.FirstOrDefault(p => p.Name == name)
        ?? throw new InputException($"preset '{name}': unknown; expected one of {string.Join(", ", Names)}");
}
