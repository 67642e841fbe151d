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

    /// <summary><c>--data-dir</c> for presets that read a data set (double-descent).</summary>
    public string? DataDir { get; init; }
}

/// <summary>
/// Runs a built-in preset (today: <c>two-phase</c>) into a run directory and writes its final
/// status. Knows nothing of the parser; errors are thrown and <see cref="LnlabCli"/> reports them.
/// </summary>
public sealed class PresetWorker(TextWriter stdout, string runsRoot = "runs")
{
    public static IReadOnlyList<string> Presets { get; } = ["two-phase", "double-descent"];

    public int Run(PresetOptions options)
    {
        if (options.Preset == "double-descent")
            return RunDoubleDescent(options);
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

    private int RunDoubleDescent(PresetOptions options)
    {
        var settings = DoubleDescentPreset.Resolve(options.Quick, options.Sets); // before a run directory exists
        var dir = RunDirectory.Create(options.OutDir, options.Quick ? "double-descent-quick" : "double-descent", options.Overwrite, runsRoot);
        stdout.WriteLine($"run directory: {dir.Path}");
        try
        {
            var result = DoubleDescentPreset.Run(settings, dir, options.DataDir, stdout.WriteLine);
            switch (result.Status)
            {
                case RunStatus.Complete:
                    dir.MarkComplete();
                    stdout.WriteLine($"complete: {dir.Path}");
                    return ExitCodes.Complete;
                case RunStatus.Diverged:
                    dir.MarkDiverged(result.Reason ?? "diverged");
                    stdout.WriteLine($"diverged: {dir.StatusReason} ({dir.Path})");
                    return ExitCodes.Diverged;
                default:
                    dir.MarkFailed(result.Reason ?? "failed");
                    stdout.WriteLine($"failed: {dir.StatusReason} ({dir.Path})");
                    return ExitCodes.Failed;
            }
        }
        catch (Exception e)
        {
            if (dir.Status == RunStatus.Running)
                dir.MarkFailed(e is InputException ? e.Message : $"{e.GetType().Name}: {e.Message}");
            throw;
        }
    }
}
