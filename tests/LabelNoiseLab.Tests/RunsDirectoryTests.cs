using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using LabelNoiseLab.RunFiles;
using LabelNoiseLab.Experiments;

namespace LabelNoiseLab.Tests;

public sealed class RunsDirectoryTests : IDisposable
{
    private readonly TempDir _temp = new("runs");

    private string _root => _temp.Path;

    public void Dispose() => _temp.Dispose();

    private string Sub(string name) => _temp.Sub(name);

    private static void WriteAllRequired(RunDirectory run)
    {
        run.WriteConfig(ExperimentConfig.Default);
        run.OpenMetrics();
        run.WriteSummary(new Dictionary<string, object?> { ["final_test_acc"] = 0.5 });
    }

    [Fact]
    public void Default_path_is_runs_name_timestamp()
    {
        var now = new DateTime(2025, 3, 4, 5, 6, 7, DateTimeKind.Local);
        var run = RunDirectory.Create(null, "fmnist", runsRoot: _root, now: now);
        Assert.Equal(Sub("fmnist-20250304-050607"), run.Path);
        Assert.True(Directory.Exists(run.CheckpointsPath));
        var second = RunDirectory.Create(null, "fmnist", runsRoot: _root, now: now);
        Assert.Equal(Sub("fmnist-20250304-050607-2"), second.Path);
    }

    [Fact]
    public void New_run_is_running_and_status_file_says_so()
    {
        var run = RunDirectory.Create(Sub("r"), "x");
        Assert.Equal(RunStatus.Running, run.Status);
        Assert.Equal("running\n", File.ReadAllText(Path.Combine(run.Path, "status")));
        Assert.Equal((RunStatus.Running, (string?)null), RunDirectory.ReadStatus(run.Path));
    }

    [Fact]
    public void Complete_is_the_last_write()
    {
        var run = RunDirectory.Create(Sub("r"), "x");
        WriteAllRequired(run);
        run.MarkComplete();
        Assert.Equal("complete\n", File.ReadAllText(Path.Combine(run.Path, "status")));
        Assert.Throws<InvalidOperationException>(() => run.WriteText("late.csv", "x"));
        Assert.Throws<InvalidOperationException>(() => run.WriteConfig(ExperimentConfig.Default));
        Assert.Throws<InvalidOperationException>(() => run.Metrics!.Append(new MetricsRow()));
        Assert.Throws<InvalidOperationException>(() => run.MarkFailed("late"));
        Assert.Throws<InvalidOperationException>(run.MarkComplete);
        Assert.False(File.Exists(run.FilePath("late.csv")));
    }

    [Theory]
    [InlineData("config.yaml")]
    [InlineData("metrics.csv")]
    [InlineData("summary.json")]
    public void Complete_needs_config_metrics_and_summary(string missing)
    {
        var run = RunDirectory.Create(Sub("r"), "x");
        WriteAllRequired(run);
        File.Delete(run.FilePath(missing));
        var e = Assert.Throws<InvalidOperationException>(run.MarkComplete);
        Assert.Contains(missing, e.Message, StringComparison.Ordinal);
        Assert.Equal(RunStatus.Running, RunDirectory.ReadStatus(run.Path)!.Value.Status);
    }

    [Fact]
    public void Diverged_keeps_reason_on_second_line_and_metrics()
    {
        var run = RunDirectory.Create(Sub("r"), "x");
        var metrics = run.OpenMetrics();
        metrics.Append(new MetricsRow { Epoch = 1, Step = 100, TrainLoss = 0.5 });
        run.MarkDiverged("diverged at step 123");
        Assert.Equal("diverged\ndiverged at step 123\n", File.ReadAllText(run.FilePath("status")));
        Assert.Equal((RunStatus.Diverged, "diverged at step 123"), RunDirectory.ReadStatus(run.Path));
        Assert.Equal(2, File.ReadAllLines(run.FilePath("metrics.csv")).Length);
        Assert.Equal("diverged at step 123", run.StatusReason);
    }

    [Fact]
    public void Failed_reason_is_kept_on_one_line()
    {
        var run = RunDirectory.Create(Sub("r"), "x");
        run.MarkFailed("data file\nmissing");
        Assert.Equal((RunStatus.Failed, "data file missing"), RunDirectory.ReadStatus(run.Path));
    }

    [Fact]
    public void Complete_run_is_not_reused_without_overwrite()
    {
        var run = RunDirectory.Create(Sub("r"), "x");
        WriteAllRequired(run);
        run.MarkComplete();
        var e = Assert.Throws<InputException>(() => RunDirectory.Create(Sub("r"), "x"));
        Assert.Contains(Sub("r"), e.Message, StringComparison.Ordinal);
        Assert.Contains("complete", e.Message, StringComparison.Ordinal);
        Assert.Equal(RunStatus.Complete, RunDirectory.ReadStatus(Sub("r"))!.Value.Status);
        Assert.True(File.Exists(run.FilePath("summary.json")));

        // --overwrite: the new run is built beside the old one until it is ready
        using var again = RunDirectory.Create(Sub("r"), "x", overwrite: true);
        Assert.True(again.Staged);
        again.WriteConfig(ExperimentConfig.Default);
        Assert.Equal(RunStatus.Complete, RunDirectory.ReadStatus(Sub("r"))!.Value.Status);
        Assert.True(File.Exists(Path.Combine(Sub("r"), "summary.json")));
        again.Publish();
        Assert.False(again.Staged);
        Assert.Equal(RunStatus.Running, RunDirectory.ReadStatus(again.Path)!.Value.Status);
        Assert.False(File.Exists(again.FilePath("summary.json")), "old files of an overwritten run are removed");
        Assert.True(File.Exists(Path.Combine(Sub("r"), "config.yaml")));
        Assert.True(Directory.Exists(again.CheckpointsPath));
        Assert.Equal(["r"], Directory.EnumerateFileSystemEntries(_root).Select(Path.GetFileName));
    }

    [Theory]
    [InlineData(RunStatus.Failed)]
    [InlineData(RunStatus.Diverged)]
    [InlineData(RunStatus.Interrupted)]
    [InlineData(RunStatus.Running)]
    public void Unfinished_run_needs_overwrite_and_is_named_resumable(RunStatus previous)
    {
        using (var run = RunDirectory.Create(Sub("r"), "x"))
        {
            run.WriteConfig(ExperimentConfig.Default);
            run.WriteText("spectral.csv", "old");
            if (previous == RunStatus.Failed)
                run.MarkFailed("boom");
            else if (previous == RunStatus.Diverged)
                run.MarkDiverged("diverged at step 1");
            else if (previous == RunStatus.Interrupted)
                run.MarkInterrupted("interrupted at step 7");
        }
        var e = Assert.Throws<InputException>(() => RunDirectory.Create(Sub("r"), "x"));
        Assert.Contains("--overwrite", e.Message, StringComparison.Ordinal);
        Assert.Contains($"lnlab resume {Sub("r")}", e.Message, StringComparison.Ordinal);
        Assert.Contains(previous.ToString().ToLowerInvariant(), e.Message, StringComparison.Ordinal);
        Assert.False(File.Exists(Path.Combine(Sub("r"), RunLock.FileName)), "a refused start leaves no lock");

        using var again = RunDirectory.Create(Sub("r"), "x", overwrite: true);
        again.Publish();
        Assert.Equal(RunStatus.Running, RunDirectory.ReadStatus(Sub("r"))!.Value.Status);
        Assert.False(File.Exists(again.FilePath("spectral.csv")));
    }

    [Fact]
    public void A_replacement_that_never_gets_ready_leaves_the_old_run_and_nothing_beside_it()
    {
        using (var run = RunDirectory.Create(Sub("r"), "x"))
        {
            WriteAllRequired(run);
            run.MarkComplete();
        }
        var before = Directory.GetFiles(Sub("r"), "*", SearchOption.AllDirectories).Order(StringComparer.Ordinal).Select(File.ReadAllText).ToList();
        using (var again = RunDirectory.Create(Sub("r"), "x", overwrite: true))
        {
            again.WriteConfig(ExperimentConfig.Default);
            Assert.True(File.Exists(Path.Combine(Sub("r"), RunLock.FileName)), "the old run is locked while it may be replaced");
        }
        Assert.Equal(before, Directory.GetFiles(Sub("r"), "*", SearchOption.AllDirectories).Order(StringComparer.Ordinal).Select(File.ReadAllText).ToList());
        Assert.Equal(["r"], Directory.EnumerateFileSystemEntries(_root).Select(Path.GetFileName));
    }

    [Fact]
    public void Non_empty_folder_without_status_is_refused_even_with_overwrite()
    {
        Directory.CreateDirectory(Sub("mine"));
        File.WriteAllText(Path.Combine(Sub("mine"), "thesis.tex"), "precious");
        var e = Assert.Throws<InputException>(() => RunDirectory.Create(Sub("mine"), "x", overwrite: true));
        Assert.Contains("not a run directory", e.Message, StringComparison.Ordinal);
        Assert.True(File.Exists(Path.Combine(Sub("mine"), "thesis.tex")));
    }

    [Fact]
    public void Empty_existing_folder_is_used()
    {
        Directory.CreateDirectory(Sub("empty"));
        Assert.Equal(RunStatus.Running, RunDirectory.Create(Sub("empty"), "x").Status);
    }

    [Fact]
    public void Atomic_writes_leave_no_temp_files()
    {
        var run = RunDirectory.Create(Sub("r"), "x");
        run.WriteConfig(ExperimentConfig.Default);
        var metrics = run.OpenMetrics(["val_loss"]);
        for (int i = 0; i < 5; i++)
            metrics.Append(new MetricsRow { Epoch = i, Step = i * 10 });
        run.WriteSummary(new Dictionary<string, object?> { ["a"] = 1 });
        run.WriteText("spectral.csv", "k,v\n");
        run.SaveCheckpoint("final", [("w", new Tensor(2, 2))]);
        run.MarkComplete();
        var all = Directory.GetFiles(run.Path, "*", SearchOption.AllDirectories).Select(Path.GetFileName).Order().ToList();
        Assert.Equal(["config.yaml", "final.safetensors", "metrics.csv", "spectral.csv", "status", "summary.json"], all);
    }

    [Fact]
    public void Failed_write_leaves_old_content_and_no_temp_file()
    {
        var run = RunDirectory.Create(Sub("r"), "x");
        run.WriteText("a.txt", "old");
        Assert.Throws<InvalidDataException>(() => run.WriteFile("a.txt", s =>
        {
            s.Write("partial"u8);
            throw new InvalidDataException("writer crashed");
        }));
        Assert.Equal("old", File.ReadAllText(run.FilePath("a.txt")));
        Assert.Empty(Directory.GetFiles(run.Path, AtomicFile.TempPrefix + "*"));
    }

    [Fact]
    public void File_names_must_be_plain()
    {
        var run = RunDirectory.Create(Sub("r"), "x");
        Assert.Throws<ArgumentException>(() => run.WriteText("../escape.txt", "x"));
        Assert.Throws<ArgumentException>(() => run.WriteText("", "x"));
    }

    [Fact]
    public void Config_yaml_is_the_resolved_config_and_loads_back()
    {
        var config = ExperimentConfig.Parse("epochs: 3\nnoise: {kind: symmetric, rate: 0.4}\n");
        var run = RunDirectory.Create(Sub("r"), config.Name);
        run.WriteConfig(config);
        Assert.Equal(config, ExperimentConfig.Load(run.FilePath("config.yaml")));
    }

    [Fact]
    public void Metrics_header_is_the_design_order_then_extras()
    {
        var run = RunDirectory.Create(Sub("r"), "x");
        run.OpenMetrics(["val_loss", "val_acc"]);
        Assert.Equal(
            "epoch,step,lr,train_loss,train_acc,clean_loss,clean_acc,noisy_given_loss,noisy_given_acc," +
            "noisy_true_loss,noisy_true_acc,test_loss,test_acc,seconds,val_loss,val_acc",
            File.ReadAllLines(run.FilePath("metrics.csv")).Single());
    }

    [Fact]
    public void Metrics_rows_are_round_trip_invariant_and_missing_is_empty()
    {
        // The build sets InvariantGlobalization, so no other culture can be tried here; the
        // writer formats with the invariant culture explicitly regardless.
        var run = RunDirectory.Create(Sub("r"), "x");
        var metrics = run.OpenMetrics(["val_loss", "val_acc"]);
        double third = 1.0 / 3.0;
        metrics.Append(new MetricsRow
        {
            Epoch = 2, Step = 938, Lr = 0.05, TrainLoss = third, TrainAcc = 0.9, CleanLoss = 1e-7, CleanAcc = 1,
            NoisyGivenLoss = double.NaN, NoisyGivenAcc = double.NaN, NoisyTrueLoss = double.PositiveInfinity,
            TestLoss = 0.1f, TestAcc = 0.875, Seconds = 12.5,
            Extra = new Dictionary<string, double> { ["val_acc"] = 0.25 },
        });
        var lines = File.ReadAllLines(run.FilePath("metrics.csv"));
        Assert.Equal(2, lines.Length);
        var cells = lines[1].Split(',');
        Assert.Equal(16, cells.Length);
        Assert.Equal("2", cells[0]);
        Assert.Equal("938", cells[1]);
        Assert.Equal(third, double.Parse(cells[3], CultureInfo.InvariantCulture));
        Assert.Equal("1E-07", cells[5]);
        Assert.Equal("", cells[7]);
        Assert.Equal("", cells[8]);
        Assert.Equal("inf", cells[9]);
        Assert.Equal("", cells[10]); // never set: NaN by default
        Assert.Equal((double)0.1f, double.Parse(cells[11], CultureInfo.InvariantCulture));
        Assert.Equal("", cells[14]); // val_loss not given
        Assert.Equal("0.25", cells[15]);
        Assert.Single(metrics.Rows);
    }

    [Fact]
    public void Metrics_file_holds_every_row_after_each_append()
    {
        var run = RunDirectory.Create(Sub("r"), "x");
        var metrics = run.OpenMetrics();
        for (int i = 1; i <= 3; i++)
        {
            metrics.Append(new MetricsRow { Epoch = i, Step = i * 100, TestAcc = i / 10.0 });
            Assert.Equal(1 + i, File.ReadAllLines(run.FilePath("metrics.csv")).Length);
        }
    }

    [Fact]
    public void Undeclared_extra_column_is_a_programming_error()
    {
        var run = RunDirectory.Create(Sub("r"), "x");
        var metrics = run.OpenMetrics(["val_loss"]);
        Assert.Throws<ArgumentException>(() => metrics.Append(new MetricsRow { Extra = new Dictionary<string, double> { ["val_acc"] = 1 } }));
        Assert.Throws<InvalidOperationException>(() => run.OpenMetrics());
    }

    [Fact]
    public void Summary_json_is_indented_and_readable_including_nan()
    {
        var run = RunDirectory.Create(Sub("r"), "x");
        run.WriteSummary(new Dictionary<string, object?>
        {
            ["final_test_acc"] = 0.8125,
            ["best_epoch"] = 7,
            ["noisy_given_acc"] = double.NaN,
            ["status"] = "complete",
            ["hidden"] = new[] { 512, 512 },
            ["nested"] = new Dictionary<string, object?> { ["x"] = null },
        });
        string text = File.ReadAllText(run.FilePath("summary.json"));
        Assert.Contains("\n  \"best_epoch\": 7", text, StringComparison.Ordinal);
        using var doc = JsonDocument.Parse(text);
        Assert.Equal(0.8125, doc.RootElement.GetProperty("final_test_acc").GetDouble());
        Assert.Equal("NaN", doc.RootElement.GetProperty("noisy_given_acc").GetString());
        Assert.Equal(JsonValueKind.Null, doc.RootElement.GetProperty("nested").GetProperty("x").ValueKind);

        run.WriteSummary(new JsonObject { ["a"] = 1.5, ["b"] = new JsonArray(1, 2) });
        using var doc2 = JsonDocument.Parse(File.ReadAllText(run.FilePath("summary.json")));
        Assert.Equal(1.5, doc2.RootElement.GetProperty("a").GetDouble());
    }

    [Fact]
    public void Checkpoint_goes_to_checkpoints_folder_and_loads_back()
    {
        var run = RunDirectory.Create(Sub("r"), "x");
        var w = new Tensor(new float[] { 1, 2, 3 }, 3);
        string path = run.SaveCheckpoint("epoch-0001", [("w", w)]);
        Assert.Equal(Path.Combine(run.Path, "checkpoints", "epoch-0001.safetensors"), path);
        var back = new Tensor(3);
        Safetensors.LoadInto(path, [("w", back)]);
        Assert.Equal(w.ToArray(), back.ToArray());
    }
}
