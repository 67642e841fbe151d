using LabelNoiseLab.Cli;
using LabelNoiseLab.Training;

namespace LabelNoiseLab.Tests;

/// <summary>Runs `lnlab train` in-process with the real trainer, as the tests of several features need.</summary>
internal static class TestCli
{
    /// <summary>Writes <paramref name="yaml"/> to DIR/config.yaml and trains it; runs without --out go to DIR/runs.</summary>
    public static (int Code, string Out, string Err) Train(string dir, string yaml, params string[] extra)
    {
        string config = Path.Combine(dir, "config.yaml");
        File.WriteAllText(config, yaml);
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        int code = LnlabCli.Run(["train", "--config", config, .. extra], stdout, stderr,
            new CliHost(new Trainer(), Interactive: false, RunsRoot: Path.Combine(dir, "runs")));
        return (code, stdout.ToString(), stderr.ToString());
    }
}
