using LabelNoiseLab.RunFiles;
using LabelNoiseLab.Training;
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

    /// <summary><c>--data-dir</c> for presets that load data (two-phase-fmnist, spectral-tail).</summary>
    public string? DataDir { get; init; }
    /// <summary>Seeds per setting (robust preset); null = the preset's default.</summary>
    public int? Seeds { get; init; }
}

/// <summary>
/// Runs a built-in preset into a run directory and writes its final status. Knows nothing of
/// the parser; errors are thrown and <see cref="LnlabCli"/> reports them. Each preset checks its
/// settings before the run directory exists, so bad input leaves nothing behind.
/// </summary>
public sealed class PresetWorker(TextWriter stdout, string runsRoot = "runs")
{
    public static IReadOnlyList<string> Presets { get; } = ["two-phase", "two-phase-fmnist", "spectral-tail", "double-descent", "robust"];

    public int Run(PresetOptions options) => options.Preset switch
    {
        "two-phase" => RunTwoPhase(options),
        "two-phase-fmnist" => RunTwoPhaseFmnist(options),
        "spectral-tail" => RunSpectralTail(options),
        "double-descent" => RunDoubleDescent(options),
        "robust" => RunRobust(options),
        _ => throw new InputException($"preset '{options.Preset}': unknown; expected one of {string.Join(", ", Presets)}"),
    };

    /// <summary><c>two-phase</c>: label-noise SGD, SAM and the two phases of a two-layer linear network.</summary>
    private int RunTwoPhase(PresetOptions options)
    {
        var settings = options.Quick ? TwoPhaseOptions.Quick : new TwoPhaseOptions();
        foreach (var set in options.Sets)
            settings = settings.With(set);
        settings.Validate();
        var dir = RunDirectory.Create(options.OutDir, options.Quick ? "two-phase-quick" : "two-phase", options.Overwrite, runsRoot);
        return Finish(dir, () => TwoPhasePreset.Run(settings, dir, stdout.WriteLine, options.Quick));
    }

    /// <summary><c>two-phase-fmnist</c>: plain SGD versus label-noise SGD on Fashion-MNIST (experiments/two-phase-fmnist.yaml).</summary>
    private int RunTwoPhaseFmnist(PresetOptions options)
    {
        var config = TwoPhaseFmnistPreset.Configure(TwoPhaseFmnistConfig.Text, TwoPhaseFmnistConfig.Source, options.Quick, options.Sets);
        var dir = RunDirectory.Create(options.OutDir, config.Name, options.Overwrite, runsRoot);
        var context = new RunContext(options.DataDir, NullProgressSink.Instance);
        return Finish(dir, () => TwoPhaseFmnistPreset.Run(config, dir, context, stdout.WriteLine, options.Quick));
    }

    /// <summary><c>spectral-tail</c>: spectral probe and truncation under label noise.</summary>
    private int RunSpectralTail(PresetOptions options)
    {
        var settings = options.Quick ? SpectralTailOptions.Quick : new SpectralTailOptions();
        foreach (var set in options.Sets)
            settings = settings.With(set);
        settings.Validate();
        var dir = RunDirectory.Create(options.OutDir, options.Quick ? "spectral-tail-quick" : "spectral-tail", options.Overwrite, runsRoot);
        return Finish(dir, () =>
        {
            SpectralTailPreset.Run(settings, dir, options.DataDir, stdout.WriteLine, options.Quick);
            return RunResult.Complete;
        });
    }

    private int Finish(RunDirectory dir, Func<RunResult> body)
    {
        stdout.WriteLine($"run directory: {dir.Path}");
        return RunEnding.Run(dir, stdout, body);
    }

    /// <summary><c>double-descent</c>: MLP3/5/7 under 30% label noise, with the activation probe and phase detection.</summary>
    private int RunDoubleDescent(PresetOptions options)
    {
        var settings = DoubleDescentPreset.Resolve(options.Quick, options.Sets);
        var dir = RunDirectory.Create(options.OutDir, options.Quick ? "double-descent-quick" : "double-descent", options.Overwrite, runsRoot);
        return Finish(dir, () => DoubleDescentPreset.Run(settings, dir, options.DataDir, stdout.WriteLine));
    }

    /// <summary><c>robust</c>: robust training methods compared on one benchmark (results.csv, table.md).</summary>
    private int RunRobust(PresetOptions options)
    {
        int seeds = options.Seeds ?? (options.Quick ? 1 : 3);
        if (seeds < 1)
            throw new ConfigException("--seeds", $"must be at least 1, got {seeds}");
        RobustPreset.Resolve(options.Quick, options.Sets);
        var dir = RunDirectory.Create(options.OutDir, options.Quick ? "robust-quick" : "robust", options.Overwrite, runsRoot);
        return Finish(dir, () => RobustPreset.Run(dir, options.Quick, seeds, options.Sets, options.DataDir, stdout.WriteLine));
    }
}

/// <summary>The two-phase-fmnist preset's config (experiments/two-phase-fmnist.yaml, embedded at build time).</summary>
public static class TwoPhaseFmnistConfig
{
    public const string Source = "two-phase-fmnist.yaml (built in)";

    public static string Text { get; } = Read();

    private static string Read()
    {
        using var stream = typeof(TwoPhaseFmnistConfig).Assembly.GetManifestResourceStream("LabelNoiseLab.Cli.two-phase-fmnist.yaml")
            ?? throw new InvalidOperationException("two-phase-fmnist.yaml is not embedded in lnlab");
        using var reader = new StreamReader(stream);
        return reader.ReadToEnd();
    }
}
