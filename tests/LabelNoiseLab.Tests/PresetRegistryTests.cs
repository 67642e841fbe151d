using System.Text.RegularExpressions;
using LabelNoiseLab.Experiments;
using LabelNoiseLab.RunFiles;
using LabelNoiseLab.Studies;
using LabelNoiseLab.Training;

namespace LabelNoiseLab.Tests;

/// <summary>The preset registry (<see cref="Presets.All"/>) behind `lnlab run`, and the sub-run helper every preset uses.</summary>
public sealed class PresetRegistryTests : IDisposable
{
    private readonly TempDir _temp = new("presets");

    private string _dir => _temp.Path;

    public void Dispose() => _temp.Dispose();

    /// <summary>Help text with every run of whitespace (line wrapping included) as one space.</summary>
    private static string Flat(string text) => Regex.Replace(text, @"\s+", " ");

    private sealed class Runner(Func<ExperimentConfig, RunDirectory, RunContext, RunResult> body) : IExperimentRunner
    {
        public int Calls { get; private set; }

        public RunResult Run(ExperimentConfig config, RunDirectory directory, RunContext context)
        {
            Calls++;
            return body(config, directory, context);
        }
    }

    /// <summary>Writes what the trainer would (metrics, summary) and returns it as its report.</summary>
    private static RunResult Trained(RunDirectory dir, IReadOnlyList<string> columns, params MetricsRow[] rows)
    {
        var metrics = dir.OpenMetrics(columns);
        foreach (var row in rows)
            metrics.Append(row);
        var summary = new Dictionary<string, object?> { ["best_test_acc"] = 0.5, ["final"] = new Dictionary<string, object?> { ["test_acc"] = 0.25 } };
        dir.WriteSummary(summary);
        return RunResult.Complete with { Report = new TrainingReport(rows, summary) };
    }

    [Fact]
    public void Preset_names_are_unique_and_each_has_a_description()
    {
        Assert.Equal(["two-phase", "two-phase-fmnist", "two-phase-paper", "spectral-tail", "double-descent", "robust"], Presets.Names);
        Assert.Equal(Presets.All.Count, Presets.All.Select(p => p.Name).Distinct().Count());
        Assert.All(Presets.All, p => Assert.False(string.IsNullOrWhiteSpace(p.Description)));
    }

    [Fact]
    public void Run_help_lists_every_registered_preset_with_its_description()
    {
        var (code, stdout, stderr) = TestCli.Run(_dir, "run", "--help");
        Assert.Equal(0, code);
        Assert.Equal("", stderr);
        string help = Flat(stdout);
        foreach (var preset in Presets.All)
        {
            Assert.Contains($"{preset.Name} ({Flat(preset.Description)})", help, StringComparison.Ordinal);
            if (preset.SeedsHelp is { } seeds)
                Assert.Contains($"{preset.Name} preset; {Flat(seeds)}", help, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void An_unknown_preset_is_exit_2_listing_every_registered_one()
    {
        var (code, _, stderr) = TestCli.Run(_dir, "run", "no-such-preset", "--out", _temp.Sub("out"));
        Assert.Equal(2, code);
        Assert.Single(stderr.Trim().Split('\n'));
        Assert.Contains("'no-such-preset'", stderr, StringComparison.Ordinal);
        Assert.Contains(string.Join(", ", Presets.Names), stderr, StringComparison.Ordinal);
        Assert.False(Directory.Exists(_temp.Sub("out")));
    }

    [Fact]
    public void A_sub_run_whose_runner_throws_ends_failed_not_running()
    {
        string path = _temp.Sub("sub");
        var runner = new Runner((_, _, _) => throw new InvalidOperationException("boom"));
        var e = Assert.Throws<InvalidOperationException>(() =>
            SubRun.Execute(path, ExperimentConfig.Default with { Name = "sub" }, runner, new RunContext(null, NullProgressSink.Instance)));
        Assert.Equal("boom", e.Message);
        var status = RunDirectory.ReadStatus(path)!.Value;
        Assert.Equal(RunStatus.Failed, status.Status);
        Assert.Equal("InvalidOperationException: boom", status.Reason);
        Assert.True(File.Exists(Path.Combine(path, RunDirectory.ConfigFile)));
    }

    [Fact]
    public void A_sub_run_ends_with_the_status_its_runner_reports()
    {
        var context = new RunContext(null, NullProgressSink.Instance);
        var config = ExperimentConfig.Default with { Name = "sub" };

        var diverged = SubRun.Execute(_temp.Sub("diverged"), config, new Runner((_, _, _) => RunResult.Diverged(7)), context);
        Assert.Equal(RunStatus.Diverged, diverged.Status);
        Assert.Equal((RunStatus.Diverged, "diverged at step 7"), RunDirectory.ReadStatus(_temp.Sub("diverged"))!.Value);

        SubRun.Execute(_temp.Sub("failed"), config, new Runner((_, _, _) => RunResult.Failed("interrupted")), context);
        Assert.Equal((RunStatus.Failed, "interrupted"), RunDirectory.ReadStatus(_temp.Sub("failed"))!.Value);

        bool probed = false;
        var complete = SubRun.Execute(_temp.Sub("complete"), config, new Runner((_, dir, _) => Trained(dir, [], new MetricsRow { Epoch = 1 })), context,
            beforeComplete: (dir, _) =>
            {
                // Runs before the status is final: the folder still takes files.
                Assert.Equal(RunStatus.Running, dir.Status);
                dir.WriteText("probe.csv", "x\n");
                probed = true;
            });
        Assert.True(probed);
        Assert.Equal(RunStatus.Complete, RunDirectory.ReadStatus(_temp.Sub("complete"))!.Value.Status);
        Assert.Equal(0.25, complete.Report!.Number("final.test_acc"));

        // A probe that throws after training leaves the sub-run failed, not running.
        Assert.Throws<InputException>(() => SubRun.Execute(_temp.Sub("probe-fails"), config,
            new Runner((_, dir, _) => Trained(dir, [])), context, beforeComplete: (_, _) => throw new InputException("no checkpoint")));
        Assert.Equal((RunStatus.Failed, "no checkpoint"), RunDirectory.ReadStatus(_temp.Sub("probe-fails"))!.Value);
    }

    [Theory]
    [InlineData("robust", "runs/ce_symmetric0.4_s0", "preset.methods=ce")]
    [InlineData("double-descent", "mlp3", "double_descent.models=mlp3")]
    [InlineData("two-phase-fmnist", "sgd", null)]
    public void A_preset_whose_runner_throws_leaves_its_sub_run_and_itself_failed(string preset, string sub, string? set)
    {
        string outDir = _temp.Sub("out");
        var runner = new Runner((_, _, _) => throw new InputException("data.path: missing"));
        string[] sets = set is null ? [] : ["--set", set];
        var (code, _, stderr) = TestCli.RunWith(runner, _dir, ["run", preset, "--quick", "--out", outDir, .. sets]);
        Assert.Equal(2, code);
        Assert.Contains("data.path: missing", stderr, StringComparison.Ordinal);
        Assert.Equal(1, runner.Calls); // the preset's sub-runs use the host's runner
        Assert.Equal((RunStatus.Failed, "data.path: missing"), RunDirectory.ReadStatus(Path.Combine(outDir, sub))!.Value);
        Assert.Equal(RunStatus.Failed, RunDirectory.ReadStatus(outDir)!.Value.Status);
    }

    [Fact]
    public void Combined_metrics_keep_every_sub_runs_columns_in_place()
    {
        var context = new RunContext(null, NullProgressSink.Instance);
        var config = ExperimentConfig.Default with { Name = "sub" };
        var a = SubRun.Execute(_temp.Sub("a"), config, new Runner((_, dir, _) =>
            Trained(dir, ["val_loss"], new MetricsRow { Epoch = 1, Extra = new Dictionary<string, double> { ["val_loss"] = 0.5 } })), context);
        var b = SubRun.Execute(_temp.Sub("b"), config, new Runner((_, dir, _) =>
            Trained(dir, ["grad_norm"], new MetricsRow { Epoch = 2, Extra = new Dictionary<string, double> { ["grad_norm"] = 3 } })), context);
        var combined = new CombinedMetrics("run");
        Assert.Equal("", combined.Text);
        combined.Add(a, a.Report!.Rows, "a");
        combined.Add(b, b.Report!.Rows, "b");
        var lines = combined.Text.TrimEnd('\n').Split('\n');
        Assert.Equal(string.Join(',', [.. MetricsWriter.StandardColumns, "val_loss", "grad_norm", "run"]), lines[0]);
        Assert.EndsWith(",0.5,,a", lines[1], StringComparison.Ordinal);
        Assert.EndsWith(",,3,b", lines[2], StringComparison.Ordinal);
        Assert.All(lines, l => Assert.Equal(MetricsWriter.StandardColumns.Count + 3, l.Split(',').Length));
    }
}
