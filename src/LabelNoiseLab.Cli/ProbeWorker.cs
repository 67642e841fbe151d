using System.CommandLine;
using System.Globalization;
using LabelNoiseLab.Probes;
using LabelNoiseLab.Studies;

namespace LabelNoiseLab.Cli;

/// <summary>Everything `lnlab probe spectral RUN_DIR` was asked to do, as plain values.</summary>
public sealed record SpectralProbeOptions
{
    public required string RunDir { get; init; }

    public string Layer { get; init; } = FeatureExtractor.Penultimate;

    /// <summary>Comma-separated d values; null = the default grid.</summary>
    public string? DGrid { get; init; }

    public string? DataDir { get; init; }

    public int ProbeEpochs { get; init; } = 5;

    /// <summary>Also probe the untrained network (the control).</summary>
    public bool Control { get; init; } = true;
}

/// <summary>
/// `lnlab probe spectral`: maps plain options to <see cref="SpectralRunProbe.Run"/>. The command
/// is built here so that <see cref="LnlabCli"/> only adds it to the root.
/// </summary>
public sealed class ProbeWorker(TextWriter stdout)
{
    public static Command Command(TextWriter stdout)
    {
        var runDir = new Argument<string>("RUN_DIR") { Description = "a run directory written by lnlab train (config.yaml, checkpoints/final.safetensors)" };
        var layer = new Option<string>("--layer") { Description = "penultimate (default) or a named module (layers.1, features.8)", DefaultValueFactory = _ => FeatureExtractor.Penultimate };
        var grid = new Option<string?>("--d-grid") { Description = "d values, e.g. 1,2,5,10,20 (default: log-spaced 1..D plus every d near the class count)" };
        var dataDir = new Option<string?>("--data-dir") { Description = "data folder (default $LNLAB_DATA, then /usr/share/datasets)" };
        var epochs = new Option<int>("--probe-epochs") { Description = "epochs of each linear-probe fit (default 5)", DefaultValueFactory = _ => 5 };
        var noControl = new Option<bool>("--no-control") { Description = "skip the probe of the untrained network" };
        var spectral = new Command("spectral", "spectral linear probe and explicit spectral truncation of a trained run: spectrum.csv, spectral.csv, summary.json")
        {
            runDir, layer, grid, dataDir, epochs, noControl,
        };
        spectral.SetAction(p => new ProbeWorker(stdout).Spectral(new SpectralProbeOptions
        {
            RunDir = p.GetRequiredValue(runDir),
            Layer = p.GetValue(layer) ?? FeatureExtractor.Penultimate,
            DGrid = p.GetValue(grid),
            DataDir = p.GetValue(dataDir),
            ProbeEpochs = p.GetValue(epochs),
            Control = !p.GetValue(noControl),
        }));
        return new Command("probe", "probe a trained run") { spectral };
    }

    public int Spectral(SpectralProbeOptions options)
    {
        if (options.ProbeEpochs < 1)
            throw new InputException($"--probe-epochs: {options.ProbeEpochs}; expected at least 1");
        var spectralOptions = new SpectralOptions { Grid = ParseGrid(options.DGrid), ProbeEpochs = options.ProbeEpochs };
        var report = SpectralRunProbe.Run(options.RunDir, options.Layer, spectralOptions, options.DataDir, options.Control, stdout.WriteLine);
        stdout.WriteLine($"wrote {SpectralRunProbe.SpectrumFile}, {SpectralRunProbe.SpectralFile}{(report.Init is null ? "" : $", {SpectralRunProbe.SpectrumInitFile}, {SpectralRunProbe.SpectralInitFile}")} and summary.json figures in {options.RunDir}");
        return ExitCodes.Complete;
    }

    public static IReadOnlyList<int>? ParseGrid(string? text)
    {
        if (string.IsNullOrWhiteSpace(text))
            return null;
        var grid = new List<int>();
        foreach (var part in text.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
        {
            if (!int.TryParse(part, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out int d))
                throw new InputException($"--d-grid: '{part}' is not an integer; expected d values like 1,2,5,10");
            grid.Add(d);
        }
        return grid;
    }
}
