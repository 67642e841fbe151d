using LabelNoiseLab.RunFiles;

namespace LabelNoiseLab.Experiments;

/// <summary>Writing a config into a run directory (the run-files layer knows only text).</summary>
public static class RunDirectoryConfig
{
    /// <summary>Writes the fully resolved config as <c>config.yaml</c>.</summary>
    public static void WriteConfig(this RunDirectory directory, ExperimentConfig config)
    {
        ArgumentNullException.ThrowIfNull(directory);
        ArgumentNullException.ThrowIfNull(config);
        directory.WriteConfig(config.ToYaml());
    }
}
