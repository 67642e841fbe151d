using LabelNoiseLab.Runs;

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

    /// <summary>Seeds per setting (robust preset); null = the preset's default.</summary>
    public int? Seeds { get; init; }
}

/// <summary>
/// Runs a built-in preset (today: <c>two-phase</c>) into a run directory and writes its final
/// status. Knows nothing of the parser; errors are thrown and <see cref="LnlabCli"/> reports them.
/// </summary>
public sealed class PresetWorker(TextWriter stdout, string runsRoot = "runs")
{
    public static IReadOnlyList<string> Presets { get; } = ["two-phase", "robust"];

    public int Run(PresetOptions options)
    {
        if (options.Preset == "robust")
            return RunRobust(options);
        if (options.Preset != "two-phase")
            throw new InputException($"preset '{options.Preset}': unknown; expected one of {string.Join(", ", Presets)}");
        var settings = options.Quick ? TwoPhaseOptions.Quick : new TwoPhaseOptions();
        foreach (var set in options.Sets)
            settings = settings.With(set);
        settings.Validate(); // before a run directory exists: bad input leaves nothing behind

        var dir = RunDirectory.Create(options.OutDir, options.Quick ? "two-phase-quick" : "two-phase", options.Overwrite, runsRoot);
        stdout.WriteLine($"run directory: {dir.Path}");
        try
        {
            var result = TwoPhasePreset.Run(settings, dir, stdout.WriteLine, options.Quick);
            if (result.Status == RunStatus.Complete)
            {
                dir.MarkComplete();
                stdout.WriteLine($"complete: {dir.Path}");
                return ExitCodes.Complete;
            }
            dir.MarkDiverged(result.Reason ?? "diverged");
            stdout.WriteLine($"diverged: {dir.StatusReason} ({dir.Path})");
            return ExitCodes.Diverged;
        }
        catch (Exception e)
        {
            if (dir.Status == RunStatus.Running)
                dir.MarkFailed(e is InputException ? e.Message : $"{e.GetType().Name}: {e.Message}");
            throw;
        }
    }

    /// <summary>`lnlab run robust`: the grid of robust-training runs (issue 7), 3 seeds unless --seeds.</summary>
    private int RunRobust(PresetOptions options)
    {
        int seeds = options.Seeds ?? (options.Quick ? 1 : 3);
        if (seeds < 1)
            throw new ConfigException("--seeds", $"must be at least 1, got {seeds}");
        RobustPreset.Resolve(options.Quick, options.Sets); // validates before a run directory exists
        var dir = RunDirectory.Create(options.OutDir, options.Quick ? "robust-quick" : "robust", options.Overwrite, runsRoot);
        stdout.WriteLine($"run directory: {dir.Path}");
        try
        {
            RobustPreset.Run(dir, options.Quick, seeds, options.Sets, null, stdout.WriteLine);
            dir.MarkComplete();
            stdout.WriteLine($"complete: {dir.Path} (results.csv, table.md)");
            return ExitCodes.Complete;
        }
        catch (Exception e)
        {
            if (dir.Status == RunStatus.Running)
                dir.MarkFailed(e is InputException ? e.Message : $"{e.GetType().Name}: {e.Message}");
            throw;
        }
    }
}
