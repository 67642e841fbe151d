using System.Diagnostics;
using System.Globalization;
using LabelNoiseLab.RunFiles;
using LabelNoiseLab.Experiments;
using LabelNoiseLab.Studies;

namespace LabelNoiseLab.Tests;

/// <summary>`lnlab sweep`, `summarize` and `report`: real child processes, skipping, shards, bad input, and the page in headless Chromium.</summary>
public sealed class SweepReportTests : IDisposable
{
    private readonly TempDir _temp = new("sweep");

    private string _dir => _temp.Path;

    public void Dispose() => _temp.Dispose();

    private const string SweepYaml = """
        name: tiny
        config:
          epochs: 2
          batch_size: 32
          data: {name: gaussian-mixture, val_fraction: 0.1}
          noise: {kind: symmetric, seed: 5}
          model: {kind: mlp, hidden: [16]}
          optim: {kind: sgd, lr: 0.1}
        grid:
          noise.rate: [0.0, 0.4]
        seeds: [0, 1]
        """;

    private (int Code, string Out, string Err) Cli(params string[] args) => TestCli.Run(_dir, args);

    private string Write(string name, string text)
    {
        string path = Path.Combine(_dir, name);
        File.WriteAllText(path, text);
        return path;
    }

    [Fact]
    public void A_sweep_runs_every_point_skips_complete_ones_and_summarizes()
    {
        string file = Write("s.yaml", SweepYaml);
        string outDir = Path.Combine(_dir, "S");
        var (code, stdout, stderr) = Cli("sweep", file, "--jobs", "2", "--out", outDir);
        Assert.True(code == 0, stderr + stdout);
        foreach (var rate in (string[])["0.0", "0.4"])
        {
            foreach (var seed in (int[])[0, 1])
            {
                string run = Path.Combine(outDir, $"noise.rate={rate}", $"seed-{seed}");
                Assert.Equal(RunStatus.Complete, RunDirectory.ReadStatus(run)!.Value.Status);
                var config = ExperimentConfig.Load(Path.Combine(run, "config.yaml"));
                Assert.Equal(seed, config.Seed);
                Assert.Equal(double.Parse(rate, CultureInfo.InvariantCulture), config.NoiseRate);
                Assert.Equal(1, config.Threads);
            }
        }
        // A second run finds everything complete and runs nothing.
        var stamp = File.GetLastWriteTimeUtc(Path.Combine(outDir, "noise.rate=0.4", "seed-1", "metrics.csv"));
        (code, stdout, _) = Cli("sweep", file, "--out", outDir);
        Assert.Equal(0, code);
        Assert.Contains("0 to run", stdout);
        Assert.Equal(stamp, File.GetLastWriteTimeUtc(Path.Combine(outDir, "noise.rate=0.4", "seed-1", "metrics.csv")));

        (code, stdout, stderr) = Cli("summarize", outDir);
        Assert.True(code == 0, stderr);
        var lines = File.ReadAllLines(Path.Combine(outDir, "summary.csv"));
        Assert.Equal(3, lines.Length);
        var header = lines[0].Split(',');
        Assert.Equal(["point", "noise.rate", "runs", "complete", "seeds"], header[..5]);
        int mean = Array.IndexOf(header, "final_noisy_given_acc_mean");
        int std = Array.IndexOf(header, "final_test_acc_std");
        var clean = lines[1].Split(',');
        var noisy = lines[2].Split(',');
        Assert.Equal("2", clean[2]);
        Assert.Equal("", clean[mean]); // no noisy samples at rate 0
        Assert.True(double.Parse(noisy[mean], CultureInfo.InvariantCulture) is >= 0 and <= 1);
        Assert.True(double.Parse(noisy[std], CultureInfo.InvariantCulture) >= 0);
        // The terminal shows mean ± std over seeds per point.
        Assert.Contains($"test acc {double.Parse(noisy[Array.IndexOf(header, "final_test_acc_mean")], CultureInfo.InvariantCulture):F4} ± ", stdout);

        // The sweep's report: the summary over noise.rate (a dotted field name), curves of all runs.
        (code, _, stderr) = Cli("report", outDir);
        Assert.True(code == 0, stderr);
        string page = Path.Combine(outDir, "report.html");
        Assert.Contains("data-charts=\"3\"", File.ReadAllText(page));
        Assert.Contains("\"errorband\"", File.ReadAllText(page)); // mean ± std as bands
        string chromium = MachineTools.RequireChromium("the sweep ran and its report page was written; the page's rendering was not checked");
        var (dom, _) = Render(chromium, page, Path.Combine(outDir, "report.png"));
        Assert.Contains("data-rendered=\"3\"", dom);
        Assert.DoesNotContain("data-empty=", dom);
        Assert.DoesNotContain("data-errors=", dom);
    }

    [Fact]
    public void Shards_split_the_points_without_overlap()
    {
        var plan = Sweep.Load(Write("s.yaml", SweepYaml));
        Assert.Equal(4, plan.Points.Count);
        var one = plan.Points.Where(new Shard(1, 3).Takes).Select(p => p.Index).ToList();
        var two = plan.Points.Where(new Shard(2, 3).Takes).Select(p => p.Index).ToList();
        var three = plan.Points.Where(new Shard(3, 3).Takes).Select(p => p.Index).ToList();
        Assert.Equal([0, 3], one);
        Assert.Equal([1], two);
        Assert.Equal([2], three);

        Assert.Equal(new Shard(2, 3), Shard.Resolve(null, n => n switch { "SLURM_ARRAY_TASK_ID" => "1", "SLURM_ARRAY_TASK_COUNT" => "3", _ => null }));
        Assert.Equal(new Shard(3, 3), Shard.Resolve(null, n => n switch { "SLURM_ARRAY_TASK_ID" => "3", "SLURM_ARRAY_TASK_MIN" => "1", "SLURM_ARRAY_TASK_COUNT" => "3", _ => null }));
        Assert.Equal(new Shard(1, 4), Shard.Resolve(null, n => n switch { "JOB_COMPLETION_INDEX" => "0", "LNLAB_SHARDS" => "4", _ => null }));
        Assert.Equal(new Shard(2, 2), Shard.Resolve("2/2", _ => "99"));
        Assert.Throws<InputException>(() => Shard.Resolve(null, n => n switch { "JOB_COMPLETION_INDEX" => "4", "LNLAB_SHARDS" => "4", _ => null }));
    }

    [Fact]
    public void Bad_sweep_input_is_one_line_exit_2_and_runs_nothing()
    {
        string outDir = Path.Combine(_dir, "S");
        string good = Write("good.yaml", SweepYaml);
        var cases = new (string[] Args, string Expected)[]
        {
            (["sweep", Write("unknown.yaml", SweepYaml.Replace("noise.rate:", "noise.rat:", StringComparison.Ordinal)), "--out", outDir], "noise.rat"),
            (["sweep", Write("top.yaml", SweepYaml + "\nsed: [1]\n"), "--out", outDir], "sed"),
            (["sweep", Write("empty.yaml", SweepYaml.Replace("[0.0, 0.4]", "[]", StringComparison.Ordinal)), "--out", outDir], "noise.rate"),
            (["sweep", Write("nogrid.yaml", SweepYaml.Replace("grid:\n  noise.rate: [0.0, 0.4]\n", "", StringComparison.Ordinal)), "--out", outDir], "grid"),
            (["sweep", Write("value.yaml", SweepYaml.Replace("[0.0, 0.4]", "[0.0, 1.5]", StringComparison.Ordinal)), "--out", outDir], "noise.rate"),
            (["sweep", good, "--shard", "3/2", "--out", outDir], "--shard"),
            (["sweep", good, "--shard", "0/2", "--out", outDir], "--shard"),
            (["summarize", Path.Combine(_dir, "missing")], "missing"),
            (["report", Path.Combine(_dir, "missing")], "missing"),
            (["report", Directory.CreateDirectory(Path.Combine(_dir, "plain")).FullName], "plain"),
        };
        foreach (var (args, expected) in cases)
        {
            var (code, _, err) = Cli(args);
            Assert.True(code == 2, string.Join(" ", args) + ": " + err);
            Assert.Single(err.Trim().Split('\n'));
            Assert.Contains(expected, err);
        }
        Assert.False(Directory.Exists(outDir));
    }

    [Fact]
    public void The_report_renders_every_chart_in_headless_chromium()
    {
        // A run with metrics.csv plus probe-like CSVs of other shapes (a curve and a table with a category).
        string config = Write("c.yaml", """
            name: report
            epochs: 3
            batch_size: 32
            eval_every_steps: 10
            data: {name: gaussian-mixture, val_fraction: 0.1}
            noise: {kind: symmetric, rate: 0.3, seed: 5}
            model: {kind: mlp, hidden: [16]}
            optim: {kind: sgd, lr: 0.1}
            """);
        string run = Path.Combine(_dir, "run");
        Assert.Equal(0, Cli("train", "--config", config, "--out", run).Code);
        File.WriteAllText(Path.Combine(run, "spectral.csv"), "k,tail_energy,probe_acc\n" + string.Join("\n", Enumerable.Range(1, 30).Select(k => $"{k},{1.0 / k},{0.5 + k / 100.0}")) + "\n");
        File.WriteAllText(Path.Combine(run, "detection.csv"), "method,auroc,ap\nloss,0.91,0.8\n\"grad, norm\",0.85,0.7\n");
        var (code, stdout, stderr) = Cli("report", run);
        Assert.True(code == 0, stderr + stdout);
        string page = Path.Combine(run, "report.html");
        string html = File.ReadAllText(page);
        Assert.DoesNotContain("src=\"http", html, StringComparison.Ordinal); // nothing fetched at view time
        Assert.Contains("data-charts=\"5\"", html); // the transition heatmap, metrics.csv (2), spectral.csv, detection.csv

        string chromium = MachineTools.RequireChromium("the report page was written and checked; its rendering was not");
        var (dom, log) = Render(chromium, page, Path.Combine(run, "report.png"));
        Assert.Contains("data-rendered=\"5\"", dom);
        Assert.Contains("data-failed=\"0\"", dom);
        Assert.DoesNotContain("data-errors=", dom);
        Assert.DoesNotContain("Uncaught", log);
        Assert.True(new FileInfo(Path.Combine(run, "report.png")).Length > 10_000);
    }

    internal static (string Dom, string Log) Render(string chromium, string page, string screenshot)
    {
        string dom = Chromium(chromium, page, "--dump-dom").Out;
        var (_, log) = Chromium(chromium, page, "--screenshot=" + screenshot, "--window-size=1400,1800");
        return (dom, log);
    }

    private static (string Out, string Err) Chromium(string chromium, string page, params string[] extra)
    {
        var start = new ProcessStartInfo(chromium) { RedirectStandardOutput = true, RedirectStandardError = true };
        using var profile = new TempDir("chromium"); // deleted when chromium is done (a helper process may hold it a moment: then left)
        foreach (var a in (string[])["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run", "--user-data-dir=" + profile.Path,
            "--enable-logging=stderr", "--v=0", "--virtual-time-budget=10000", .. extra, new Uri(page).AbsoluteUri])
            start.ArgumentList.Add(a);
        using var p = Process.Start(start)!;
        var err = p.StandardError.ReadToEndAsync();
        string output = p.StandardOutput.ReadToEnd();
        Assert.True(p.WaitForExit(120_000), "chromium did not finish");
        p.WaitForExit(); // and its output streams closed
        return (output, err.Result);
    }
}
