using LabelNoiseLab.Experiments;
using LabelNoiseLab.Studies;

namespace LabelNoiseLab.Tests;

public class ConfigExperimentFilesTests
{
    /// <summary>The folder holding LabelNoiseLab.slnx, found by walking up from the test binaries.</summary>
    public static string RepoRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "LabelNoiseLab.slnx")))
                return dir.FullName;
        }
        throw new InvalidOperationException("LabelNoiseLab.slnx not found above " + AppContext.BaseDirectory);
    }

    public static TheoryData<string> Files()
    {
        var data = new TheoryData<string>();
        foreach (var f in Directory.GetFiles(Path.Combine(RepoRoot(), "experiments"), "*.yaml").Order())
            data.Add(Path.GetFileName(f));
        return data;
    }

    [Theory]
    [MemberData(nameof(Files))]
    public void Config_Every_experiment_file_loads_and_validates(string file)
    {
        string path = Path.Combine(RepoRoot(), "experiments", file);
        if (File.ReadAllLines(path).Any(l => l.StartsWith("grid:", StringComparison.Ordinal)))
        {
            // A sweep file: its base config and every grid point must validate.
            Assert.NotEmpty(Sweep.Load(path).Points);
            return;
        }
        var config = ExperimentConfig.Load(path);
        Assert.Equal(Path.GetFileNameWithoutExtension(file), config.Name);
        Assert.Equal(config, ExperimentConfig.Parse(config.ToYaml()));
    }

    [Fact]
    public void Config_Fmnist_mlp_is_the_documented_experiment()
    {
        var c = ExperimentConfig.Load(Path.Combine(RepoRoot(), "experiments", "fmnist-mlp.yaml"));
        Assert.Equal(("fashion-mnist", "mlp", "relu"), (c.DataName, c.ModelKind, c.ModelActivation));
        Assert.Equal([512, 512], c.ModelHidden);
        Assert.Equal(("symmetric", 0.4), (c.NoiseKind, c.NoiseRate));
        Assert.Equal(("sgd", 0.05, 0.9), (c.OptimKind, c.OptimLr, c.OptimMomentum));
        Assert.Equal((128, 20, 0.1, "standardize"), (c.BatchSize, c.Epochs, c.DataValFraction, c.DataNormalize));
    }

    [Fact]
    public void Config_Demo_is_fmnist_mlp_briefly()
    {
        var demo = ExperimentConfig.Load(Path.Combine(RepoRoot(), "experiments", "demo.yaml"));
        var full = ExperimentConfig.Load(Path.Combine(RepoRoot(), "experiments", "fmnist-mlp.yaml"));
        Assert.Equal(full with { Name = "demo", Epochs = 2, DataSubset = 10000 }, demo);
    }
}
