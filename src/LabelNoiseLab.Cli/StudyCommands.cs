using System.CommandLine;
using LabelNoiseLab.Runs;

namespace LabelNoiseLab.Cli;

/// <summary>
/// The commands that work on run directories after (or around) training: export, sweep,
/// summarize, report. Each maps its parsed options to one plain worker method.
/// </summary>
internal static class StudyCommands
{
    public static void Add(RootCommand root, TextWriter stdout, CliHost host)
    {
        _ = host;
        root.Add(ExportCommand(stdout));
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
