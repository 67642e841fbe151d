using System.CommandLine;
using LabelNoiseLab.Reports;
using LabelNoiseLab.Studies;

namespace LabelNoiseLab.Cli;

/// <summary>
/// The commands that work on run directories after (or around) training: export, sweep,
/// summarize, report. Each maps its parsed options to one plain worker method.
/// </summary>
internal static class StudyCommands
{
    public static void Add(RootCommand root, TextWriter stdout, CliHost host)
    {
        root.Add(ExportCommand(stdout));
        root.Add(SweepCommand(stdout, host));
        root.Add(DirCommand("summarize", "aggregate every run under DIR into DIR/summary.csv (mean ± std over seeds per point)", stdout, dir =>
        {
            string path = SweepSummary.Write(dir);
            return SweepSummary.Describe(path) + path;
        }));
        root.Add(VerifyCommand(stdout, host));
        root.Add(DirCommand("report", "write DIR/report.html: one self-contained page of charts and tables for a run, a preset or a sweep", stdout, Reports.HtmlReport.Write));
    }

    private static Command SweepCommand(TextWriter stdout, CliHost host)
    {
        var file = new Argument<string>("file") { Description = "sweep file (YAML: base, config, grid, seeds)" };
        var jobs = new Option<int>("--jobs", "-j") { Description = "points run at once, each a single-threaded lnlab process", DefaultValueFactory = _ => 1 };
        var shard = new Option<string?>("--shard") { Description = "run every n-th point: i/n (default from SLURM_ARRAY_TASK_ID/COUNT or JOB_COMPLETION_INDEX with LNLAB_SHARDS)" };
        var outDir = new Option<string?>("--out", "-o") { Description = "sweep directory (default runs/sweep-<name>)" };
        var dataDir = new Option<string?>("--data-dir") { Description = "data folder passed to every point" };
        var slurm = new Option<bool>("--slurm") { Description = "write DIR/sweep.sbatch (a Slurm job array, one shard per task) and submit it with sbatch" };
        var tasks = new Option<int?>("--tasks") { Description = "with --slurm: array tasks (default: points / --jobs, rounded up)" };
        var slurmOpt = new Option<string[]>("--slurm-opt") { Description = "with --slurm: one extra #SBATCH option, e.g. --slurm-opt=--partition=gpu (repeatable)" };
        var dryRun = new Option<bool>("--dry-run") { Description = "with --slurm: write DIR/sweep.sbatch but do not submit it" };
        var sweep = new Command("sweep", "run a grid of configs and seeds, one run directory per point; complete points are skipped (--slurm: submit it as a Slurm job array)")
        {
            file, jobs, shard, outDir, dataDir, slurm, tasks, slurmOpt, dryRun,
        };
        sweep.SetAction(p => new SweepWorker(stdout, host.RunsRoot, host.Cancellation).Run(new SweepOptions
        {
            File = p.GetRequiredValue(file),
            Jobs = p.GetValue(jobs),
            Shard = p.GetValue(shard),
            OutDir = p.GetValue(outDir),
            DataDir = p.GetValue(dataDir),
            Slurm = p.GetValue(slurm),
            Tasks = p.GetValue(tasks),
            SlurmOptions = p.GetValue(slurmOpt) ?? [],
            DryRun = p.GetValue(dryRun),
        }));
        var statusDir = new Argument<string>("dir") { Description = "the sweep directory" };
        var status = new Command("status", "each point of the sweep in DIR: complete, running, interrupted, failed, diverged or pending; then the totals") { statusDir };
        status.SetAction(p =>
        {
            stdout.WriteLine(SweepManifest.Format(SweepManifest.Status(p.GetRequiredValue(statusDir))));
            return ExitCodes.Complete;
        });
        sweep.Add(status);
        return sweep;
    }

    private static Command VerifyCommand(TextWriter stdout, CliHost host)
    {
        var quick = new Option<bool>("--quick") { Description = "run each preset's quick version (a few minutes in all): checks that everything runs and writes its claims, not that the papers reproduce" };
        var only = new Option<string[]>("--only") { Description = "only these presets: --only robust,two-phase (default all: " + string.Join(", ", Presets.Names) + ")" };
        var from = new Option<string?>("--from") { Description = "read finished preset folders (DIR/<preset>/, as verify --out writes, or one preset's folder) instead of running" };
        var outDir = new Option<string?>("--out", "-o") { Description = "folder for the preset runs (DIR/<preset>/), claims.csv and report.html (default runs/verify-<timestamp>; with --from, that folder)" };
        var strict = new Option<bool>("--strict") { Description = "exit 6 when a claim failed" };
        var dataDir = new Option<string?>("--data-dir") { Description = "data folder for the presets (default $LNLAB_DATA, then /usr/share/datasets)" };
        var verify = new Command("verify", "run the presets (or read them with --from) and check their claims: one table, claims.csv, report.html; exit 0 when everything ran, 2 bad input, 4 a preset failed, 6 a claim failed (--strict)")
        {
            quick, only, from, outDir, strict, dataDir,
        };
        verify.SetAction(p => new VerifyWorker(stdout, p.InvocationConfiguration.Error, host).Run(new VerifyOptions
        {
            Quick = p.GetValue(quick),
            Only = p.GetValue(only) ?? [],
            From = p.GetValue(from),
            OutDir = p.GetValue(outDir),
            Strict = p.GetValue(strict),
            DataDir = p.GetValue(dataDir),
        }));
        return verify;
    }

    private static Command DirCommand(string name, string description, TextWriter stdout, Func<string, string> write)
    {
        var dir = new Argument<string>("dir") { Description = "a run directory or a folder of runs" };
        var command = new Command(name, description) { dir };
        command.SetAction(p =>
        {
            stdout.WriteLine(write(p.GetRequiredValue(dir)));
            return ExitCodes.Complete;
        });
        return command;
    }

    private static Command ExportCommand(TextWriter stdout)
    {
        var what = new Argument<string>("what") { Description = "what to export: features" };
        var runDir = new Argument<string>("run-dir") { Description = "the run directory" };
        var layer = new Option<string>("--layer", "-l") { Description = "a module path (layers.1), features (the head's input) or logits", Required = true };
        var split = new Option<string>("--split") { Description = "train, validation or test", DefaultValueFactory = _ => "train" };
        var checkpoint = new Option<string?>("--checkpoint") { Description = "checkpoint name (default final, else the newest epoch-NNNN)" };
        var outDir = new Option<string?>("--out", "-o") { Description = "output folder (default RUN_DIR/exports/<split>)" };
        var dataDir = new Option<string?>("--data-dir") { Description = "data folder (default $LNLAB_DATA, then /usr/share/datasets)" };
        var export = new Command("export", "write a layer's activations as .npy with labels, true labels and the noise mask")
        {
            what, runDir, layer, split, checkpoint, outDir, dataDir,
        };
        export.SetAction(p =>
        {
            if (p.GetRequiredValue(what) != "features")
                throw new InputException($"export '{p.GetRequiredValue(what)}': unknown; expected features");
            var files = FeatureExport.Export(new FeatureExportOptions
            {
                RunDir = p.GetRequiredValue(runDir),
                Layer = p.GetRequiredValue(layer),
                Split = p.GetRequiredValue(split),
                Checkpoint = p.GetValue(checkpoint),
                OutDir = p.GetValue(outDir),
                DataDir = p.GetValue(dataDir),
            });
            foreach (var f in files)
                stdout.WriteLine(f);
            return ExitCodes.Complete;
        });
        return export;
    }
}
