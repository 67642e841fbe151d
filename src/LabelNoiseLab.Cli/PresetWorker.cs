using LabelNoiseLab.Experiments;
using LabelNoiseLab.RunFiles;
using LabelNoiseLab.Studies;
using LabelNoiseLab.Training;

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
/// interrupted (exit 5); <see cref="Resume"/> continues it.
/// </summary>
public sealed class PresetWorker(TextWriter stdout, string runsRoot = "runs", IExperimentRunner? runner = null, CancellationToken cancellation = default)
{
    /// <summary><c>lnlab run PRESET</c>: records the request in <c>preset.json</c>, then runs the preset.</summary>
    public int Run(PresetOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var request = new PresetRequest
        {
            Quick = options.Quick,
            Sets = options.Sets,
            Seeds = options.Seeds,
        };
        var plan = Presets.Find(options.Preset).Prepare(request);
        using var dir = RunDirectory.Create(options.OutDir, plan.RunName, options.Overwrite, runsRoot);
        dir.Publish(); // the settings are valid; a preset's sub-runs are folders inside dir.Path, so it replaces an older run at once
        PresetFolder.Write(dir, options.Preset, request);
        stdout.WriteLine($"run directory: {dir.Path}");
        return RunEnding.Run(dir, stdout, () => plan.Run(dir, Context(options.DataDir)));
    }

    /// <summary>
    /// <c>lnlab resume PRESET_DIR</c>: runs the preset again in its folder with the request its
    /// <c>preset.json</c> recorded. Its sub-runs that ended (complete or diverged) are kept, a
    /// started one resumes from its newest checkpoint, the others run (<see cref="SubRun.Execute"/>);
    /// a preset without sub-runs (two-phase, two-phase-paper) runs again from the start. Then the
    /// preset writes its own files as an uninterrupted run would. A complete folder, a folder
    /// without <c>preset.json</c> or of another format: bad input, the folder untouched.
    /// </summary>
    public int Resume(string path, string? dataDir)
    {
        ArgumentNullException.ThrowIfNull(path);
        var (preset, request, startedAs, commit) = PresetFolder.Read(path);
        var plan = Presets.Find(preset).Prepare(request);
        // The path as the preset was started with, when it names the same folder: the sub-runs'
        // configs may hold paths inside it (robust's cl_* methods read their audit's label_issues.csv).
        if (startedAs is not null && startedAs != path && SameFolder(startedAs, path))
            path = startedAs;
        using var dir = RunDirectory.Reopen(path);
        var subRuns = PresetFolder.SubRuns(path);
        stdout.WriteLine($"resuming preset {preset}{(request.Quick ? " (quick)" : "")} in {path}: "
            + (subRuns.Count == 0 ? "no sub-runs on disk yet, it runs from the start"
                : string.Join(", ", subRuns.Select(p => $"{p.Value} {p.Key.ToString().ToLowerInvariant()}")) + " sub-run(s) on disk (complete and diverged ones are kept, the others continue)"));
        if (commit is not null && commit != Provenance.GitCommit)
            stdout.WriteLine($"note: the preset was started by lnlab {commit}, this is {Provenance.GitCommit}; kept sub-runs are not recomputed");
        return RunEnding.Run(dir, stdout, () => plan.Run(dir, Context(dataDir)));
    }

    private PresetContext Context(string? dataDir) => new(runner ?? new ExperimentRunner(), dataDir, stdout.WriteLine, cancellation);

    private static bool SameFolder(string a, string b) =>
        Path.TrimEndingDirectorySeparator(Path.GetFullPath(a)) == Path.TrimEndingDirectorySeparator(Path.GetFullPath(b));
}
