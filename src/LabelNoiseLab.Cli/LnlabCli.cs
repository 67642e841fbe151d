using System.CommandLine;
using LabelNoiseLab.Experiments;
using LabelNoiseLab.Studies;

namespace LabelNoiseLab.Cli;

/// <summary>What the process provides: the runner (trainer), whether stdout is a terminal, and the token its signals cancel.</summary>
public sealed record CliHost(IExperimentRunner? Runner, bool Interactive, string RunsRoot = "runs", CancellationToken Cancellation = default);

/// <summary>
/// `lnlab`: parses arguments and hands plain options to a worker (dotnet-counters style). All error
/// reporting is here: bad input (<see cref="InputException"/>, parse errors) → one line
/// <c>lnlab: message</c> on stderr, exit 2; anything else → <c>lnlab: internal error: ...</c>, exit 1.
/// </summary>
public static class LnlabCli
{
    public static int Run(string[] args, TextWriter stdout, TextWriter stderr, CliHost host)
    {
        try
        {
            var root = BuildCommands(stdout, host);
            var parsed = root.Parse(args);
            if (parsed.Errors.Count > 0)
            {
                stderr.WriteLine("lnlab: " + OneLine(string.Join(" ", parsed.Errors.Select(e => e.Message))) + " (see lnlab --help)");
                return ExitCodes.BadInput;
            }
            return parsed.Invoke(new InvocationConfiguration
            {
                Output = stdout,
                Error = stderr,
                EnableDefaultExceptionHandler = false,
            });
        }
        catch (InputException e)
        {
            stderr.WriteLine("lnlab: " + OneLine(e.Message));
            return ExitCodes.BadInput;
        }
#pragma warning disable CA1031 // the one place that turns any other failure into a message and exit code 1
        catch (Exception e)
#pragma warning restore CA1031
        {
            stderr.WriteLine($"lnlab: internal error: {e.GetType().Name}: {OneLine(e.Message)}");
            return ExitCodes.InternalError;
        }
    }

    /// <summary>The parse errors of an lnlab command line (none: lnlab accepts it); nothing runs.</summary>
    public static IReadOnlyList<string> ParseErrors(string[] args) =>
        [.. BuildCommands(TextWriter.Null, new CliHost(null, Interactive: false)).Parse(args).Errors.Select(e => e.Message)];

    private static RootCommand BuildCommands(TextWriter stdout, CliHost host)
    {
        var config = new Option<string>("--config", "-c") { Description = "experiment config (YAML)", Required = true };
        var set = new Option<string[]>("--set") { Description = "override a config key: --set optim.lr=0.1 (repeatable)" };
        var outDir = new Option<string?>("--out", "-o") { Description = "run directory (default runs/<name>-<timestamp>)" };
        var dataDir = new Option<string?>("--data-dir") { Description = "data folder (default $LNLAB_DATA, then /usr/share/datasets)" };
        var overwrite = new Option<bool>("--overwrite") { Description = "replace an existing run in --out (swapped in once the new run is ready)" };

        var train = new Command("train", "train one experiment; exit code 0 complete, 2 bad input, 3 diverged, 4 failed, 5 interrupted (resumable), 1 internal error")
        {
            config, set, outDir, dataDir, overwrite,
        };
        train.SetAction(p => Worker(stdout, host).Run(new TrainOptions
        {
            ConfigPath = p.GetRequiredValue(config),
            Sets = p.GetValue(set) ?? [],
            OutDir = p.GetValue(outDir),
            DataDir = p.GetValue(dataDir),
            Overwrite = p.GetValue(overwrite),
        }));

        var demoOut = new Option<string?>("--out", "-o") { Description = "run directory (default runs/demo-<timestamp>)" };
        var demo = new Command("demo", "a short built-in run: MLP on 10,000 Fashion-MNIST samples with 40% symmetric noise") { demoOut };
        demo.SetAction(p => Worker(stdout, host).Run(new TrainOptions
        {
            ConfigYaml = DemoConfig.Text,
            ConfigSource = DemoConfig.Source,
            OutDir = p.GetValue(demoOut),
        }));

        var preset = new Argument<string>("preset") { Description = "preset name: " + string.Join(", ", Presets.Names) };
        var quick = new Option<bool>("--quick") { Description = "the short CI version of the preset (under a minute)" };
        var presetOut = new Option<string?>("--out", "-o") { Description = "run directory (default runs/<preset>-<timestamp>)" };
        var presetSet = new Option<string[]>("--set") { Description = "override a preset setting: --set two_phase.rho=0.1 (repeatable)" };
        var presetOverwrite = new Option<bool>("--overwrite") { Description = "replace an existing run in --out (swapped in once the new run is ready)" };
        var presetDataDir = new Option<string?>("--data-dir") { Description = "data folder for presets that load data (default $LNLAB_DATA, then /usr/share/datasets)" };
        var presetSeeds = new Option<int?>("--seeds")
        {
            Description = "seeds per setting (" + string.Join("; ", Presets.All.Where(p => p.SeedsHelp is not null).Select(p => $"{p.Name} preset; {p.SeedsHelp}")) + ")",
        };
        var run = new Command("run", "run a built-in preset: " + string.Join(", ", Presets.All.Select(p => $"{p.Name} ({p.Description})")))
        {
            preset, quick, presetOut, presetSet, presetOverwrite, presetDataDir, presetSeeds,
        };
        run.SetAction(p => new PresetWorker(stdout, host.RunsRoot, host.Runner, host.Cancellation).Run(new PresetOptions
        {
            Preset = p.GetRequiredValue(preset),
            Quick = p.GetValue(quick),
            OutDir = p.GetValue(presetOut),
            Sets = p.GetValue(presetSet) ?? [],
            Overwrite = p.GetValue(presetOverwrite),
            DataDir = p.GetValue(presetDataDir),
            Seeds = p.GetValue(presetSeeds),
        }));

        var resumeDir = new Argument<string>("run-dir") { Description = "the run directory to continue" };
        var resumeData = new Option<string?>("--data-dir") { Description = "data folder (default $LNLAB_DATA, then /usr/share/datasets)" };
        var resume = new Command("resume", "continue a killed, failed or interrupted run, audit or preset from its newest checkpoint (checkpoint_every, checkpoint_every_steps, or the one a signal wrote); metrics end as in an uninterrupted run; a preset keeps its finished sub-runs")
        {
            resumeDir, resumeData,
        };
        resume.SetAction(p =>
        {
            string dir = p.GetRequiredValue(resumeDir);
            if (PresetFolder.IsPresetFolder(dir))
                return new PresetWorker(stdout, host.RunsRoot, host.Runner, host.Cancellation).Resume(dir, p.GetValue(resumeData));
            if (Audit.IsAuditDirectory(dir))
                return new AuditWorker(stdout, host.RunsRoot, host.Runner, host.Cancellation).Resume(dir, p.GetValue(resumeData));
            if (PresetFolder.LooksLikeOldPresetFolder(dir))
                throw new InputException($"{dir}: a preset's folder without {PresetFolder.FileName} (written before presets could be resumed); run the preset again with --overwrite");
            return Worker(stdout, host).Resume(dir, p.GetValue(resumeData));
        });

        var root = new RootCommand("lnlab: deep learning with wrong labels") { train, demo, run, resume, ProbeWorker.Command(stdout), AuditWorker.Command(stdout, host) };
        StudyCommands.Add(root, stdout, host);
        return root;
    }

    private static TrainWorker Worker(TextWriter stdout, CliHost host)
    {
        IProgressDisplay display = host.Interactive ? new SpectreProgressDisplay(stdout) : new PlainProgressDisplay(stdout);
        return new TrainWorker(host.Runner, display, stdout, host.RunsRoot, host.Cancellation);
    }

    private static string OneLine(string message) => message.ReplaceLineEndings(" ").Trim();
}

/// <summary>The built-in demo config (experiments/demo.yaml, embedded at build time).</summary>
public static class DemoConfig
{
    public const string Source = "demo.yaml (built in)";

    public static string Text { get; } = Read();

    private static string Read()
    {
        using var stream = typeof(DemoConfig).Assembly.GetManifestResourceStream("LabelNoiseLab.Cli.demo.yaml")
            ?? throw new InvalidOperationException("demo.yaml is not embedded in lnlab");
        using var reader = new StreamReader(stream);
        return reader.ReadToEnd();
    }
}
