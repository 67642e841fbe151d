namespace LabelNoiseLab.Cli;

/// <summary>
/// Everything `lnlab train` (and `lnlab demo`) was asked to do, as plain values. Exactly one of
/// <see cref="ConfigPath"/> and <see cref="ConfigYaml"/> is set.
/// </summary>
public sealed record TrainOptions
{
    public string? ConfigPath { get; init; }

    /// <summary>Config text given directly (the built-in demo); <see cref="ConfigSource"/> names it in errors.</summary>
    public string? ConfigYaml { get; init; }

    public string ConfigSource { get; init; } = "<config>";

    /// <summary><c>key=value</c> overrides, applied after the file, in order.</summary>
    public IReadOnlyList<string> Sets { get; init; } = [];

    public string? OutDir { get; init; }

    public string? DataDir { get; init; }

    public bool Overwrite { get; init; }
}
