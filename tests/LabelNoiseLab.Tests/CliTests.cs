using LabelNoiseLab.Cli;
using LabelNoiseLab.RunFiles;
using LabelNoiseLab.Training;
using LabelNoiseLab.Experiments;
using Spectre.Console;

namespace LabelNoiseLab.Tests;

public sealed class CliTests : IDisposable
{
    private readonly TempDir _temp = new("cli");

    private string _dir => _temp.Path;

    public void Dispose() => _temp.Dispose();

    private string Sub(string name) => _temp.Sub(name);

    private string WriteConfig(string yaml)
    {
        string path = Sub("c-" + Guid.NewGuid().ToString("N")[..6] + ".yaml");
        File.WriteAllText(path, yaml);
        return path;
    }

    private (int Code, string Out, string Err) Cli(IExperimentRunner? runner, params string[] args) => TestCli.RunWith(runner, _dir, args);

    /// <summary>Records what it was given and does what it is told.</summary>
    private sealed class FakeRunner(Func<ExperimentConfig, RunDirectory, RunContext, RunResult> body) : IExperimentRunner
    {
        public ExperimentConfig? Config { get; private set; }
        public RunContext? Context { get; private set; }

        public RunResult Run(ExperimentConfig config, RunDirectory directory, RunContext context)
        {
            Config = config;
            Context = context;
            return body(config, directory, context);
        }

        public static FakeRunner Completing() => new((c, d, ctx) =>
        {
            ctx.Progress.OnRunStart(c.Epochs, 10);
            var m = d.OpenMetrics();
            for (int e = 1; e <= c.Epochs; e++)
            {
                for (int s = 1; s <= 10; s++)
                    ctx.Progress.OnStep(e, (e - 1) * 10 + s, 1.0 / s);
                var row = new MetricsRow { Epoch = e, Step = e * 10, TrainAcc = 0.5, CleanAcc = 0.75, TestAcc = 0.625, Seconds = e };
                m.Append(row);
                ctx.Progress.OnEvaluation(row);
            }
            d.WriteSummary(new Dictionary<string, object?> { ["final_test_acc"] = 0.625 });
            return RunResult.Complete;
        });
    }

    private static void AssertOneLine(string text, string prefix)
    {
        var lines = text.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Single(lines);
        Assert.StartsWith(prefix, lines[0], StringComparison.Ordinal);
    }

    [Fact]
    public void Unknown_config_key_exits_2_with_one_line()
    {
        string cfg = WriteConfig("name: t\noptim:\n  lrr: 0.1\n");
        var runner = FakeRunner.Completing();
        var (code, stdout, stderr) = Cli(runner, "train", "--config", cfg, "--out", Sub("out"));
        Assert.Equal(2, code);
        AssertOneLine(stderr, "lnlab: config key 'optim.lrr': unknown key (did you mean 'optim.lr'?)");
        Assert.Equal("", stdout);
        Assert.Null(runner.Config);
        Assert.False(Directory.Exists(Sub("out")));
    }

    [Fact]
    public void Bad_value_exits_2_naming_the_key()
    {
        string cfg = WriteConfig("noise:\n  kind: symmetric\n  rate: 1.5\n");
        var (code, _, stderr) = Cli(FakeRunner.Completing(), "train", "--config", cfg);
        Assert.Equal(2, code);
        AssertOneLine(stderr, "lnlab: config key 'noise.rate': must be in [0, 1]");
    }

    [Fact]
    public void Bad_set_value_exits_2()
    {
        string cfg = WriteConfig("name: t\n");
        var (code, _, stderr) = Cli(FakeRunner.Completing(), "train", "--config", cfg, "--set", "epochs=many");
        Assert.Equal(2, code);
        AssertOneLine(stderr, "lnlab: config key 'epochs': expected an integer");
    }

    [Fact]
    public void Missing_config_file_exits_2_naming_the_file()
    {
        string missing = Sub("does-not-exist.yaml");
        var (code, _, stderr) = Cli(FakeRunner.Completing(), "train", "--config", missing);
        Assert.Equal(2, code);
        AssertOneLine(stderr, $"lnlab: {missing}: config file not found");
    }

    [Fact]
    public void Malformed_yaml_exits_2_naming_file_and_line()
    {
        string cfg = WriteConfig("name: t\noptim:\n  lr: 0.1\n momentum: 0.9\n");
        var (code, _, stderr) = Cli(FakeRunner.Completing(), "train", "--config", cfg);
        Assert.Equal(2, code);
        AssertOneLine(stderr, $"lnlab: {cfg}: malformed YAML at line 4");
    }

    [Fact]
    public void Parse_errors_exit_2_with_one_line()
    {
        var (code, _, stderr) = Cli(null, "train");
        Assert.Equal(2, code);
        AssertOneLine(stderr, "lnlab: ");
        Assert.Contains("--config", stderr, StringComparison.Ordinal);

        (code, _, stderr) = Cli(null, "frobnicate");
        Assert.Equal(2, code);
        AssertOneLine(stderr, "lnlab: ");
    }

    [Fact]
    public void Help_exits_0()
    {
        var (code, stdout, stderr) = Cli(null, "train", "--help");
        Assert.Equal(0, code);
        Assert.Contains("--set", stdout, StringComparison.Ordinal);
        Assert.Equal("", stderr);
    }

    [Fact]
    public void No_runner_wired_is_a_clear_internal_error_and_creates_nothing()
    {
        string cfg = WriteConfig("name: t\n");
        var (code, _, stderr) = Cli(null, "train", "--config", cfg, "--out", Sub("out"));
        Assert.Equal(1, code);
        AssertOneLine(stderr, "lnlab: internal error: ");
        Assert.Contains("no experiment runner", stderr, StringComparison.Ordinal);
        Assert.False(Directory.Exists(Sub("out")));
    }

    [Fact]
    public void Complete_run_writes_config_with_overrides_and_marks_complete()
    {
        string cfg = WriteConfig("name: t\nepochs: 5\n");
        var runner = FakeRunner.Completing();
        var (code, stdout, stderr) = Cli(runner, "train", "--config", cfg, "--set", "epochs=2", "--set", "optim.lr=0.25",
            "--out", Sub("out"), "--data-dir", "/data/here");
        Assert.Equal("", stderr);
        Assert.Equal(0, code);
        Assert.Equal(2, runner.Config!.Epochs);
        Assert.Equal(0.25, runner.Config.OptimLr);
        Assert.Equal("/data/here", runner.Context!.DataDir);
        Assert.Equal(runner.Config, ExperimentConfig.Load(Path.Combine(Sub("out"), "config.yaml")));
        Assert.Equal((RunStatus.Complete, (string?)null), RunDirectory.ReadStatus(Sub("out")));
        Assert.Equal(3, File.ReadAllLines(Path.Combine(Sub("out"), "metrics.csv")).Length);
        // plain display: one line per evaluation
        Assert.Contains("epoch 1 step 10 train_acc 0.5000 clean_acc 0.7500 test_acc 0.6250 1.0s", stdout, StringComparison.Ordinal);
        Assert.Contains("epoch 2 step 20", stdout, StringComparison.Ordinal);

        // the same --out again: refused, the complete run untouched; --overwrite replaces it
        (code, _, stderr) = Cli(FakeRunner.Completing(), "train", "--config", cfg, "--out", Sub("out"));
        Assert.Equal(2, code);
        AssertOneLine(stderr, $"lnlab: {Sub("out")}: holds a complete run");
        (code, _, _) = Cli(FakeRunner.Completing(), "train", "--config", cfg, "--out", Sub("out"), "--overwrite");
        Assert.Equal(0, code);
        Assert.Equal(6, File.ReadAllLines(Path.Combine(Sub("out"), "metrics.csv")).Length);
    }

    [Fact]
    public void Default_run_directory_is_under_runs_root()
    {
        string cfg = WriteConfig("name: named\nepochs: 1\n");
        var (code, stdout, _) = Cli(FakeRunner.Completing(), "train", "--config", cfg);
        Assert.Equal(0, code);
        var dir = Assert.Single(Directory.GetDirectories(Sub("runs")));
        Assert.StartsWith("named-", Path.GetFileName(dir), StringComparison.Ordinal);
        Assert.Contains("run directory: " + dir, stdout, StringComparison.Ordinal);
    }

    [Fact]
    public void Diverged_run_exits_3_and_keeps_status_reason()
    {
        string cfg = WriteConfig("name: t\n");
        var runner = new FakeRunner((c, d, ctx) =>
        {
            d.OpenMetrics().Append(new MetricsRow { Epoch = 1, Step = 5 });
            return RunResult.Diverged(123);
        });
        var (code, _, _) = Cli(runner, "train", "--config", cfg, "--out", Sub("out"));
        Assert.Equal(3, code);
        Assert.Equal((RunStatus.Diverged, "diverged at step 123"), RunDirectory.ReadStatus(Sub("out")));
        Assert.Equal(2, File.ReadAllLines(Path.Combine(Sub("out"), "metrics.csv")).Length);
    }

    [Fact]
    public void Input_error_inside_the_runner_exits_2_and_marks_failed()
    {
        string cfg = WriteConfig("name: t\n");
        var runner = new FakeRunner((c, d, ctx) => throw new DataException("/data/train-images.gz", "truncated: 12 of 47040016 bytes"));
        var (code, _, stderr) = Cli(runner, "train", "--config", cfg, "--out", Sub("out"));
        Assert.Equal(2, code);
        AssertOneLine(stderr, "lnlab: /data/train-images.gz: truncated");
        var status = RunDirectory.ReadStatus(Sub("out"))!.Value;
        Assert.Equal(RunStatus.Failed, status.Status);
        Assert.Contains("truncated", status.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public void Crash_inside_the_runner_exits_1_and_marks_failed()
    {
        string cfg = WriteConfig("name: t\n");
        var runner = new FakeRunner((c, d, ctx) => throw new InvalidOperationException("bug\nwith two lines"));
        var (code, _, stderr) = Cli(runner, "train", "--config", cfg, "--out", Sub("out"));
        Assert.Equal(1, code);
        AssertOneLine(stderr, "lnlab: internal error: InvalidOperationException: bug with two lines");
        Assert.Equal(RunStatus.Failed, RunDirectory.ReadStatus(Sub("out"))!.Value.Status);
    }

    [Fact]
    public void Runner_that_forgets_the_summary_cannot_leave_a_complete_run()
    {
        string cfg = WriteConfig("name: t\n");
        var runner = new FakeRunner((c, d, ctx) =>
        {
            d.OpenMetrics();
            return RunResult.Complete;
        });
        var (code, _, stderr) = Cli(runner, "train", "--config", cfg, "--out", Sub("out"));
        Assert.Equal(1, code);
        Assert.Contains("summary.json", stderr, StringComparison.Ordinal);
        Assert.Equal(RunStatus.Failed, RunDirectory.ReadStatus(Sub("out"))!.Value.Status);
    }

    [Fact]
    public void Runner_reported_failure_exits_4()
    {
        string cfg = WriteConfig("name: t\n");
        var (code, stdout, _) = Cli(new FakeRunner((c, d, ctx) => RunResult.Failed("early stop broke")), "train", "--config", cfg, "--out", Sub("out"));
        Assert.Equal(4, code);
        Assert.Equal((RunStatus.Failed, "early stop broke"), RunDirectory.ReadStatus(Sub("out")));
        Assert.Contains("failed: early stop broke", stdout, StringComparison.Ordinal);
    }

    [Fact]
    public void Demo_runs_the_built_in_demo_config()
    {
        var runner = FakeRunner.Completing();
        var (code, _, stderr) = Cli(runner, "demo", "--out", Sub("demo"));
        Assert.Equal("", stderr);
        Assert.Equal(0, code);
        Assert.Equal(2, runner.Config!.Epochs);
        Assert.Equal(10000, runner.Config.DataSubset);
        Assert.Equal(ExperimentConfig.Load(Path.Combine(ConfigExperimentFilesTests.RepoRoot(), "experiments", "demo.yaml")), runner.Config);
        Assert.Equal(RunStatus.Complete, RunDirectory.ReadStatus(Sub("demo"))!.Value.Status);
    }

    [Fact]
    public void Spectre_display_draws_progress_and_evaluations()
    {
        var output = new StringWriter();
        var console = AnsiConsole.Create(new AnsiConsoleSettings
        {
            Out = new AnsiConsoleOutput(output),
            Ansi = AnsiSupport.No,
            ColorSystem = ColorSystemSupport.NoColors,
        });
        console.Profile.Width = 160;
        var display = new SpectreProgressDisplay(console);
        int result = display.Show(() =>
        {
            display.OnRunStart(2, 100);
            for (int s = 1; s <= 150; s++)
                display.OnStep(s <= 100 ? 1 : 2, s, 0.5);
            display.OnEvaluation(new MetricsRow { Epoch = 1, Step = 100, CleanAcc = 0.9, NoisyGivenAcc = 0.125, TestAcc = 0.8 });
            display.OnMessage("checkpoint written");
            return 7;
        });
        Assert.Equal(7, result);
        string text = output.ToString();
        Assert.Contains("epoch 2/2", text, StringComparison.Ordinal);
        Assert.Contains("step 150/200", text, StringComparison.Ordinal);
        Assert.Contains("noisy(given) 12.5%", text, StringComparison.Ordinal);
        Assert.Contains("checkpoint written", text, StringComparison.Ordinal);
        Assert.Contains("ETA", text, StringComparison.Ordinal);
    }

    [Fact]
    public void Plain_format_leaves_out_missing_metrics()
    {
        string line = PlainProgressDisplay.Format(new MetricsRow { Epoch = 3, Step = 7, TestAcc = 0.5, Extra = new Dictionary<string, double> { ["val_acc"] = 0.25 } });
        Assert.Equal("epoch 3 step 7 test_acc 0.5000 val_acc 0.2500", line);
    }
}
