using System.CommandLine;
using System.Globalization;
using LabelNoiseLab.Experiments;
using LabelNoiseLab.RunFiles;
using LabelNoiseLab.Studies;

namespace LabelNoiseLab.Cli;

/// <summary>
/// <c>lnlab audit --config FILE [--folds K] [--out DIR] [--set ...] [--data-dir DIR] [--overwrite]</c>
/// and <c>lnlab resume DIR</c> of an audit: the folds as resumable sub-runs, then confident learning
/// (<see cref="Audit"/>). Errors are thrown; <see cref="LnlabCli"/> reports them.
/// </summary>
public sealed class AuditWorker(TextWriter stdout, string runsRoot = "runs", IExperimentRunner? runner = null, CancellationToken cancellation = default)
{
    public static Command Command(TextWriter stdout, CliHost host)
    {
        var config = new Option<string>("--config", "-c") { Description = "experiment config (YAML): data, noise, model and training of every fold", Required = true };
        var folds = new Option<int?>("--folds", "-k") { Description = "cross-validation folds (audit.folds, default 5)" };
        var set = new Option<string[]>("--set") { Description = "override a config key: --set audit.filter=both (repeatable)" };
        var outDir = new Option<string?>("--out", "-o") { Description = "audit directory (default runs/<name>-audit-<timestamp>)" };
        var dataDir = new Option<string?>("--data-dir") { Description = "data folder (default $LNLAB_DATA, then /usr/share/datasets)" };
        var overwrite = new Option<bool>("--overwrite") { Description = "replace an existing run in --out" };
        var command = new Command("audit", "find mislabelled training samples: K-fold out-of-sample probabilities (each fold a resumable run), then confident learning; writes label_issues.csv and summary.json")
        {
            config, folds, set, outDir, dataDir, overwrite,
        };
        command.SetAction(p =>
        {
            var sets = (p.GetValue(set) ?? []).ToList();
            if (p.GetValue(folds) is int k)
                sets.Add(string.Create(CultureInfo.InvariantCulture, $"audit.folds={k}"));
            return new AuditWorker(stdout, host.RunsRoot, host.Runner, host.Cancellation)
                .Run(p.GetRequiredValue(config), sets, p.GetValue(outDir), p.GetValue(dataDir), p.GetValue(overwrite));
        });
        return command;
    }

    public int Run(string configPath, IReadOnlyList<string> sets, string? outDir, string? dataDir, bool overwrite)
    {
        var config = ExperimentConfig.Load(configPath, sets);
        Audit.Validate(config);
        using var dir = RunDirectory.Create(outDir, config.Name + "-audit", overwrite, runsRoot);
        dir.WriteConfig(config);
        dir.Publish();
        stdout.WriteLine($"run directory: {dir.Path}");
        return RunEnding.Run(dir, stdout, () => Audit.Run(config, dir, Context(dataDir)));
    }

    /// <summary>Continues an audit: complete folds are kept, a started fold resumes from its newest checkpoint.</summary>
    public int Resume(string path, string? dataDir)
    {
        using var dir = RunDirectory.Reopen(path);
        var config = ExperimentConfig.Load(Path.Combine(path, RunDirectory.ConfigFile));
        Audit.Validate(config);
        stdout.WriteLine($"resuming audit {path}");
        return RunEnding.Run(dir, stdout, () => Audit.Run(config, dir, Context(dataDir)));
    }

    private PresetContext Context(string? dataDir) =>
        new(runner ?? new ExperimentRunner(), dataDir, stdout.WriteLine, cancellation);
}
