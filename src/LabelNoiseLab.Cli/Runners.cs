using LabelNoiseLab.Experiments;

namespace LabelNoiseLab.Cli;

/// <summary>Which <see cref="IExperimentRunner"/> the lnlab executable uses.</summary>
internal static class Runners
{
    /// <summary>
    /// The trainer (issue 3) is not in this build yet: `lnlab train` validates the config and
    /// then says so.
    /// </summary>
    public static IExperimentRunner? Default() => new ExperimentRunner();
}
