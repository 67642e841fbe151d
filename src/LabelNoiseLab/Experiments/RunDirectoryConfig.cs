using LabelNoiseLab.RunFiles;

namespace LabelNoiseLab.Experiments;

/// <summary>
/// Writes a run's config into its run directory. It lives here, not in <see cref="RunDirectory"/>,
/// because run files sit below the config layer (issue 11): the folder knows the file name,
/// the config knows its YAML.
/// </summary>
public static class RunDirectoryConfig
{
    /// <summary>Writes the fully resolved config to <see cref="RunDirectory.ConfigFile"/>.</summary>
    public static void WriteConfig(this RunDirectory dir, ExperimentConfig config)
    {
        ArgumentNullException.ThrowIfNull(dir);
        ArgumentNullException.ThrowIfNull(config);
        dir.WriteText(RunDirectory.ConfigFile, config.ToYaml());
    }
}
