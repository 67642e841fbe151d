using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using LabelNoiseLab.Experiments;
using LabelNoiseLab.RunFiles;
using LabelNoiseLab.Studies;
using LabelNoiseLab.Training;

namespace LabelNoiseLab.Tests;

/// <summary>
/// A preset interrupted by a signal (a real `lnlab run` process sent SIGTERM inside its second
/// sub-run) and continued with `lnlab resume DIR` keeps its finished sub-run untouched, resumes the
/// interrupted one from its checkpoint, runs the one never started, and ends with the files of an
/// uninterrupted run (apart from wall-clock fields). Also: what resume refuses, and `lnlab verify`
/// run again on the same --out.
/// </summary>
public sealed class PresetResumeTests : IDisposable
{
    private readonly TempDir _temp = new("presetresume");

    public void Dispose() => _temp.Dispose();

    [DllImport("libc", SetLastError = true)]
    private static extern int kill(int pid, int sig);

    private sealed class Runner(Func<ExperimentConfig, RunDirectory, RunContext, RunResult> body) : IExperimentRunner
    {
        public int Calls { get; private set; }

        public RunResult Run(ExperimentConfig config, RunDirectory directory, RunContext context)
        {
            Calls++;
            return body(config, directory, context);
        }
    }

    private static readonly JsonSerializerOptions SummaryJson = new()
    {
        WriteIndented = true,
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
    };

    [Fact]
    public void A_sub_run_left_complete_is_kept_with_its_report_read_back_and_one_left_unfinished_goes_on_in_its_folder()
    {
        var context = new RunContext(null, NullProgressSink.Instance);
        var config = ExperimentConfig.Default with { Name = "sub" };
        var row = new MetricsRow { Epoch = 1, Step = 10, TestAcc = 0.1 + 0.2, Extra = new Dictionary<string, double> { ["val_loss"] = 1.0 / 3 } };
        var runner = new Runner((_, dir, _) =>
        {
            dir.OpenMetrics(["val_loss"]).Append(row);
            var summary = new Dictionary<string, object?>
            {
                ["final"] = new Dictionary<string, object?> { ["test_acc"] = 0.1 + 0.2 },
                ["epochs_completed"] = 1,
                ["best_val_epoch"] = null,
                ["loss"] = double.NaN,
                ["sizes"] = new List<int> { 3, 4 },
            };
            dir.WriteSummary(summary);
            return RunResult.Complete with { Report = new TrainingReport([row], summary) };
        });
        string path = _temp.Sub("sub");
        var first = SubRun.Execute(path, config, runner, context);
        Assert.False(first.Kept);
        string metrics = File.ReadAllText(Path.Combine(path, "metrics.csv"));

        var again = SubRun.Execute(path, config, runner, context);
        Assert.Equal(1, runner.Calls);
        Assert.True(again.Kept);
        Assert.Equal(RunStatus.Complete, again.Status);
        Assert.Equal(["val_loss"], again.MetricsColumns);
        Assert.Equal(0.1 + 0.2, again.Report!.Number("final.test_acc"));
        Assert.Equal(1, again.Report.Value("epochs_completed")); // a whole number stays an int
        Assert.Null(again.Report.Value("best_val_epoch"));
        Assert.True(double.IsNaN((double)again.Report.Value("loss")!));
        Assert.Equal(MetricsWriter.FormatLine(row, ["val_loss"]), MetricsWriter.FormatLine(again.Report.Rows.Single(), ["val_loss"]));
        Assert.Equal(metrics, File.ReadAllText(Path.Combine(path, "metrics.csv")));
        // Written again, the summary read back is the same text.
        Assert.Equal(File.ReadAllText(Path.Combine(path, "summary.json")), JsonSerializer.Serialize(again.Report.Summary, SummaryJson) + "\n");

        // Left with another config: refused, naming the key.
        var e = Assert.Throws<InputException>(() => SubRun.Execute(path, config with { Epochs = 7 }, runner, context));
        Assert.Contains("(epochs)", e.Message, StringComparison.Ordinal);

        // Interrupted without a checkpoint: run again from the start in the same folder (reopened, not replaced).
        string cut = _temp.Sub("cut");
        SubRun.Execute(cut, config, new Runner((_, _, _) => RunResult.Interrupted(3)), context);
        File.WriteAllText(Path.Combine(cut, "marker"), "x");
        string? resumeFrom = "not called";
        var resumed = SubRun.Execute(cut, config, new Runner((c, dir, ctx) =>
        {
            resumeFrom = ctx.ResumeFrom;
            return runner.Run(c, dir, ctx);
        }), context);
        Assert.Null(resumeFrom);
        Assert.False(resumed.Kept);
        Assert.True(File.Exists(Path.Combine(cut, "marker")));
        Assert.Equal(RunStatus.Complete, RunDirectory.ReadStatus(cut)!.Value.Status);
    }

    /// <summary>
    /// A signal that arrives before a run's first step (in a preset: while the run before it was
    /// probed, or while its data loaded) checkpoints at step 0, and that checkpoint resumes.
    /// </summary>
    [Fact]
    public void A_run_interrupted_before_its_first_step_resumes_from_its_step_0_checkpoint()
    {
        const string yaml = """
            name: step0
            seed: 3
            epochs: 3
            batch_size: 32
            threads: 1
            data: {name: gaussian-mixture, samples: 300, test_samples: 100}
            noise: {kind: symmetric, rate: 0.3, seed: 1}
            model: {kind: mlp, hidden: [16]}
            optim: {kind: sgd, lr: 0.05, momentum: 0.9}
            """;
        string config = _temp.Sub("step0.yaml"), full = _temp.Sub("full"), cut = _temp.Sub("cut");
        File.WriteAllText(config, yaml);
        Assert.Equal(0, TestCli.Run(_temp.Path, "train", "-c", config, "--out", full).Code);
        using var signalled = new CancellationTokenSource();
        signalled.Cancel();
        var stdout = new StringWriter();
        int code = Cli.LnlabCli.Run(["train", "-c", config, "--out", cut], stdout, new StringWriter(),
            new Cli.CliHost(new ExperimentRunner(), Interactive: false, RunsRoot: _temp.Sub("runs"), Cancellation: signalled.Token));
        Assert.True(code == 5, stdout.ToString());
        Assert.Equal(["epoch-0001-step-0000000000.safetensors"], Directory.GetFiles(Path.Combine(cut, "checkpoints")).Select(Path.GetFileName));

        var (resumed, output, err) = TestCli.Run(_temp.Path, "resume", cut);
        Assert.True(resumed == 0, output + err);
        Assert.Equal(RunFilesComparison.MetricsWithoutTiming(File.ReadAllText(Path.Combine(full, "metrics.csv"))),
            RunFilesComparison.MetricsWithoutTiming(File.ReadAllText(Path.Combine(cut, "metrics.csv"))));
        Assert.Equal(File.ReadAllBytes(Path.Combine(full, "checkpoints", "final.safetensors")), File.ReadAllBytes(Path.Combine(cut, "checkpoints", "final.safetensors")));
    }

    // Robust, tiny: three methods on the Gaussian mixture, the second one interrupted.
    private static readonly string[] Robust = ["run", "robust", "--quick", "--set", "data.name=gaussian-mixture", "--set", "data.subset=0", "--set", "model.hidden=32",
        "--set", "epochs=200", "--set", "preset.methods=ce,gce,sce", "--set", "threads=1"];

    private static readonly string[] Spectral = ["run", "spectral-tail", "--quick", "--set", "spectral_tail.data=gaussian-mixture", "--set", "spectral_tail.subset=0",
        "--set", "spectral_tail.epochs=400", "--set", "spectral_tail.fit_factor=0", "--set", "spectral_tail.threads=1"];

    [Fact]
    public void An_interrupted_robust_preset_resumes_keeping_its_first_sub_run_and_ends_as_an_uninterrupted_run()
    {
        string[] subRuns = ["ce_symmetric0.4_s0", "gce_symmetric0.4_s0", "sce_symmetric0.4_s0"];
        InterruptAndResume(Robust, [.. subRuns.Select(s => Path.Combine("runs", s))], ["results.csv", "table.md", "metrics.csv", "summary.json", "config.yaml"]);
    }

    [Fact]
    public void An_interrupted_spectral_tail_preset_resumes_keeping_its_first_sub_run_and_its_probes_and_ends_as_an_uninterrupted_run()
    {
        string[] subRuns = ["mlp-w128-noise0", "mlp-w128-noise40", "mlp-w32-noise40"];
        InterruptAndResume(Spectral, [.. subRuns.Select(s => Path.Combine("runs", s))],
            ["results.csv", "aggregate.csv", "per_d.csv", "per_d_early_stopped.csv", "widths.csv", "metrics.csv", "summary.json", "config.yaml"]);
    }

    /// <summary>
    /// Runs the preset uninterrupted (in-process), then as a process sent SIGTERM once the second
    /// sub-run has written two evaluations, then `lnlab resume`; compares the preset's files and
    /// every sub-run's metrics, summary and final weights.
    /// </summary>
    private void InterruptAndResume(string[] args, string[] subRuns, string[] presetFiles)
    {
        string full = _temp.Sub("full"), cut = _temp.Sub("cut");
        var (code, output, err) = TestCli.Run(_temp.Path, [.. args, "--out", full]);
        Assert.True(code == 0, output + err);

        using (var process = TestCli.Start([.. args, "--out", cut]))
        {
            string second = Path.Combine(cut, subRuns[1], "metrics.csv");
            var clock = Stopwatch.StartNew();
            while ((!File.Exists(second) || File.ReadAllLines(second).Length < 3) && clock.Elapsed.TotalSeconds < 120 && !process.HasExited)
                Thread.Sleep(20);
            Assert.False(process.HasExited, "the preset ended before it could be signalled; make its runs longer");
            Assert.Equal(0, kill(process.Id, 15));
            Assert.True(process.WaitForExit(120_000));
            Assert.Equal(5, process.ExitCode);
        }
        Assert.Equal("interrupted", File.ReadAllLines(Path.Combine(cut, "status"))[0]);
        Assert.Equal("complete", File.ReadAllLines(Path.Combine(cut, subRuns[0], "status"))[0]);
        Assert.Equal("interrupted", File.ReadAllLines(Path.Combine(cut, subRuns[1], "status"))[0]);
        Assert.NotEmpty(Directory.GetFiles(Path.Combine(cut, subRuns[1], "checkpoints"), "epoch-*.safetensors"));
        Assert.False(Directory.Exists(Path.Combine(cut, subRuns[2])));
        // The finished sub-run's files, to show it is not run (or probed) again.
        var kept = Directory.EnumerateFiles(Path.Combine(cut, subRuns[0]), "*", SearchOption.AllDirectories)
            .ToDictionary(f => f, f => (File.GetLastWriteTimeUtc(f), File.ReadAllBytes(f)));

        (code, output, err) = TestCli.Run(_temp.Path, "resume", cut);
        Assert.True(code == 0, output + err);
        Assert.Contains("resuming preset ", output, StringComparison.Ordinal);
        Assert.Equal("complete", File.ReadAllLines(Path.Combine(cut, "status"))[0]);
        foreach (var (file, (time, bytes)) in kept)
        {
            Assert.Equal(time, File.GetLastWriteTimeUtc(file));
            Assert.Equal(bytes, File.ReadAllBytes(file));
        }

        foreach (var file in presetFiles)
            Assert.Equal(WithoutTiming(Path.Combine(full, file)), WithoutTiming(Path.Combine(cut, file)));
        foreach (var sub in subRuns)
        {
            foreach (var file in (string[])["metrics.csv", "summary.json"])
                Assert.Equal(WithoutTiming(Path.Combine(full, sub, file)), WithoutTiming(Path.Combine(cut, sub, file)));
            Assert.Equal(File.ReadAllBytes(Path.Combine(full, sub, "checkpoints", "final.safetensors")), File.ReadAllBytes(Path.Combine(cut, sub, "checkpoints", "final.safetensors")));
            // What a kept sub-run's report is read from gives the summary's text back.
            string summary = File.ReadAllText(Path.Combine(full, sub, "summary.json"));
            Assert.Equal(summary, JsonSerializer.Serialize(SubRun.Plain(JsonNode.Parse(summary)), SummaryJson) + "\n");
        }

        // Complete now: resume says so (exit 2, as for a complete run) and changes nothing.
        (code, _, err) = TestCli.Run(_temp.Path, "resume", cut);
        Assert.Equal(2, code);
        Assert.Contains("already complete", err, StringComparison.Ordinal);
    }

    /// <summary>A file as compared: CSV without columns whose name holds "seconds", JSON without such keys, other text as it is.</summary>
    private static string WithoutTiming(string path)
    {
        string text = File.ReadAllText(path);
        if (path.EndsWith(".json", StringComparison.Ordinal))
            return RunFilesComparison.JsonWithoutTiming(text);
        return path.EndsWith(".csv", StringComparison.Ordinal) && text.Length > 0
            ? RunFilesComparison.CsvWithout(text, c => c.Contains("seconds", StringComparison.Ordinal)) : text;
    }

    [Fact]
    public void Resume_refuses_a_folder_that_is_no_run_and_a_preset_folder_without_or_with_another_preset_json()
    {
        Directory.CreateDirectory(_temp.Sub("empty"));
        var (code, _, err) = TestCli.Run(_temp.Path, "resume", _temp.Sub("empty"));
        Assert.Equal(2, code);
        Assert.Contains("not a run directory", err, StringComparison.Ordinal);

        // A preset cut short (simulated: its status says interrupted), then its preset.json removed or changed.
        string dir = _temp.Sub("tp");
        Assert.Equal(0, TestCli.Run(_temp.Path, "run", "two-phase", "--quick", "--out", dir).Code);
        File.WriteAllText(Path.Combine(dir, "status"), "interrupted\ninterrupted at step 5\n");
        string request = File.ReadAllText(Path.Combine(dir, PresetFolder.FileName));
        File.WriteAllText(Path.Combine(dir, PresetFolder.FileName), request.Replace("\"format_version\": 1", "\"format_version\": 99", StringComparison.Ordinal));
        (code, _, err) = TestCli.Run(_temp.Path, "resume", dir);
        Assert.Equal(2, code);
        Assert.Single(err.Trim().Split('\n'));
        Assert.Contains("format_version 99", err, StringComparison.Ordinal);
        File.Delete(Path.Combine(dir, PresetFolder.FileName));
        (code, _, err) = TestCli.Run(_temp.Path, "resume", dir);
        Assert.Equal(2, code);
        Assert.Contains("without preset.json", err, StringComparison.Ordinal);
        Assert.Equal("interrupted", File.ReadAllLines(Path.Combine(dir, "status"))[0]);

        // With its preset.json back, a preset without sub-runs runs again from the start.
        File.WriteAllText(Path.Combine(dir, PresetFolder.FileName), request);
        var (resumed, output, err2) = TestCli.Run(_temp.Path, "resume", dir);
        Assert.True(resumed == 0, output + err2);
        Assert.Contains("no sub-runs on disk yet", output, StringComparison.Ordinal);
        Assert.Equal("complete", File.ReadAllLines(Path.Combine(dir, "status"))[0]);
    }

    [Fact]
    public void Verify_run_again_on_its_out_reads_complete_presets_resumes_an_unfinished_one_and_refuses_another_size()
    {
        string outDir = _temp.Sub("v");
        var (code, output, err) = TestCli.Run(_temp.Path, "verify", "--quick", "--only", "two-phase", "--out", outDir);
        Assert.True(code == 0, output + err);
        string claims = File.ReadAllText(Path.Combine(outDir, "claims.csv"));
        var stamp = File.GetLastWriteTimeUtc(Path.Combine(outDir, "two-phase", "summary.json"));

        (code, output, err) = TestCli.Run(_temp.Path, "verify", "--quick", "--only", "two-phase", "--out", outDir);
        Assert.True(code == 0, output + err);
        Assert.Contains("read (not run again)", output, StringComparison.Ordinal);
        Assert.Equal(stamp, File.GetLastWriteTimeUtc(Path.Combine(outDir, "two-phase", "summary.json")));
        Assert.Equal(claims, File.ReadAllText(Path.Combine(outDir, "claims.csv")));

        File.WriteAllText(Path.Combine(outDir, "two-phase", "status"), "interrupted\ninterrupted at step 5\n");
        (code, output, err) = TestCli.Run(_temp.Path, "verify", "--quick", "--only", "two-phase", "--out", outDir);
        Assert.True(code == 0, output + err);
        Assert.Contains("two-phase: resuming", output, StringComparison.Ordinal);
        Assert.Equal("complete", File.ReadAllLines(Path.Combine(outDir, "two-phase", "status"))[0]);

        (code, _, err) = TestCli.Run(_temp.Path, "verify", "--only", "two-phase", "--out", outDir);
        Assert.Equal(2, code);
        Assert.Contains("holds a quick run of two-phase, verify was asked for a full one", err, StringComparison.Ordinal);
    }
}
