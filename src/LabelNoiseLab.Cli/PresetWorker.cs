using LabelNoiseLab.Experiments;
using LabelNoiseLab.RunFiles;
using LabelNoiseLab.Studies;

namespace LabelNoiseLab.Cli;

/// <summary>Everything `lnlab run PRESET` was asked to do, as plain values.</summary>
public sealed record PresetOptions
{
    public required string Preset { get; init; }

    public bool Quick { get; init; }

    public string? OutDir { get; init; }

    /// <summary><c>key=value</c> overrides of the preset's settings, applied in order.</summary>
    public IReadOnlyList<string> Sets { get; init; } = [];

    public bool Overwrite { get; init; }

    /// <summary><c>--data-dir</c> for presets that load data.</summary>
    public string? DataDir { get; init; }
    /// <summary>Seeds per setting (presets with seeds); null = the preset's default.</summary>
    public int? Seeds { get; init; }
}

/// <summary>
/// Runs a built-in preset (<see cref="Presets.All"/>) into a run directory and writes its final
/// status. Knows nothing of the parser; errors are thrown and <see cref="LnlabCli"/> reports them.
/// Each preset checks its settings (<see cref="IPreset.Prepare"/>) before the run directory
/// exists, so bad input leaves nothing behind. A signal (<paramref name="cancellation"/>) reaches
/// the running sub-run, which checkpoints and ends interrupted; the preset stops there and ends
/// interrupted (exit 5).
/// </summary>
public sealed class PresetWorker(TextWriter stdout, string runsRoot = "runs", IExperimentRunner? runner = null, CancellationToken cancellation = default)
{
    public int Run(PresetOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var plan = Presets.Find(options.Preset).Prepare(new PresetRequest
        {
            Quick = options.Quick,
            Sets = options.Sets,
            Seeds = options.Seeds,
        });
        using var dir = RunDirectory.Create(options.OutDir, plan.RunName, options.Overwrite, runsRoot);
        dir.Publish(); // the settings are valid; a preset's sub-runs are folders inside dir.Path, so it replaces an older run at once
        stdout.WriteLine($"run directory: {dir.Path}");
        var context = new PresetContext(runner ?? new ExperimentRunner(), options.DataDir, stdout.WriteLine, cancellation);
        return RunEnding.Run(dir, stdout, () => plan.Run(dir, context), resumable: false);
    }
}
