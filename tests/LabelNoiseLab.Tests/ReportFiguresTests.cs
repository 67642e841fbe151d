using System.Text.Json.Nodes;
using LabelNoiseLab.Reports;

namespace LabelNoiseLab.Tests;

/// <summary>
/// `lnlab report`'s own figures: the summary card and transition heatmap of a run, each preset's
/// figures on its paper's axes, checked in headless Chromium (every chart drawn, every Vega dataset
/// holding at least one row).
/// </summary>
public sealed class ReportFiguresTests : IDisposable
{
    private readonly TempDir _temp = new("figures");

    private string _dir => _temp.Path;

    public void Dispose() => _temp.Dispose();

    private (int Code, string Out, string Err) Cli(params string[] args) => TestCli.Run(_dir, args);

    /// <summary>Reports <paramref name="dir"/> and renders it: every chart rendered, none with an empty dataset, no script errors.</summary>
    private string ReportRendered(string dir, int charts, params string[] contains)
    {
        var (code, stdout, stderr) = Cli("report", dir);
        Assert.True(code == 0, stderr + stdout);
        string page = Path.Combine(dir, "report.html");
        string html = File.ReadAllText(page);
        Assert.Contains($"data-charts=\"{charts}\"", html);
        foreach (var c in contains)
            Assert.Contains(c, html);
        string chromium = MachineTools.RequireChromium("the report page was written and its figures checked; its rendering was not");
        var (dom, _) = SweepReportTests.Render(chromium, page, Path.Combine(dir, "report.png"));
        Assert.Contains($"data-rendered=\"{charts}\"", dom);
        Assert.Contains("data-failed=\"0\"", dom);
        Assert.DoesNotContain("data-empty=", dom);
        Assert.DoesNotContain("data-errors=", dom);
        Assert.Contains("data-datasets=\"", dom);
        return html;
    }

    [Fact]
    public void A_run_report_has_the_summary_card_and_the_transition_heatmap()
    {
        string config = Path.Combine(_dir, "c.yaml");
        File.WriteAllText(config, """
            name: card
            epochs: 2
            batch_size: 32
            data: {name: gaussian-mixture}
            noise: {kind: pairflip, rate: 0.3, seed: 5}
            model: {kind: mlp, hidden: [16]}
            optim: {kind: sgd, lr: 0.1}
            """);
        string run = Path.Combine(_dir, "run");
        Assert.Equal(0, Cli("train", "--config", config, "--out", run).Code);
        var summary = JsonNode.Parse(File.ReadAllText(Path.Combine(run, "summary.json")))!.AsObject();
        // metrics.csv's two charts and the heatmap.
        string html = ReportRendered(run, 3, "best test accuracy", "memorisation (noisy_given_acc)", "noise realised", "realised transition matrix");
        double realised = summary["noise"]!["realised_rate"]!.GetValue<double>();
        Assert.Contains((realised * 100).ToString("F1", System.Globalization.CultureInfo.InvariantCulture) + "%", html);
        // Each cell of the matrix is a row of the heatmap's data.
        int k = summary["noise"]!["realised_transition"]!.AsArray().Count;
        Assert.Equal(k * k, System.Text.RegularExpressions.Regex.Matches(html, "\"given\":").Count);
    }

    [Fact]
    public void A_chart_with_an_empty_dataset_does_not_count_as_rendered()
    {
        var spec = (string values) => JsonNode.Parse("{\"$schema\": \"https://vega.github.io/schema/vega-lite/v5.json\", \"data\": {\"values\": " + values
            + "}, \"mark\": \"line\", \"encoding\": {\"x\": {\"field\": \"a\", \"type\": \"quantitative\"}, \"y\": {\"field\": \"b\", \"type\": \"quantitative\"}}}")!.AsObject();
        string page = HtmlReport.WritePage(Path.Combine(_dir, "empty.html"), "empty", HtmlReport.ChartSlot(0) + HtmlReport.ChartSlot(1),
            [spec("[{\"a\": 1, \"b\": 2}, {\"a\": 2, \"b\": 3}]"), spec("[]")]);
        string chromium = MachineTools.RequireChromium("the page was written; the empty-dataset check was not run");
        var (dom, _) = SweepReportTests.Render(chromium, page, Path.Combine(_dir, "empty.png"));
        Assert.Contains("data-rendered=\"1\"", dom);
        Assert.Contains("data-failed=\"1\"", dom);
        Assert.Contains("data-empty=\"", dom);
    }

    [Fact]
    public void The_two_phase_presets_reports_draw_their_papers_figures()
    {
        string twoPhase = Path.Combine(_dir, "two-phase");
        var (code, stdout, stderr) = Cli("run", "two-phase", "--quick", "--out", twoPhase);
        Assert.True(code == 0, stderr + stdout);
        // norms and alignment per method, then dynamics.csv and metrics.csv's generic charts
        ReportRendered(twoPhase, 4, "mean neuron norm against step", "alignment with the ground truth against step", "claims held", "two_phase.");

        MachineTools.RequireFashionMnist();
        string paper = Path.Combine(_dir, "paper");
        (code, stdout, stderr) = Cli("run", "two-phase-paper", "--quick", "--out", paper,
            "--set", "two_phase_paper.width=32", "--set", "two_phase_paper.steps=40", "--set", "two_phase_paper.eval_every=20");
        Assert.True(code == 0, stderr + stdout);
        string html = ReportRendered(paper, 7, "train loss (clean labels)", "tangent-kernel distance from the start", "linearised");
        Assert.Contains("\"strokeDash\"", html);
    }

    [Fact]
    public void The_robust_reports_accuracy_table_and_detection_curves()
    {
        string outDir = Path.Combine(_dir, "robust");
        var (code, stdout, stderr) = Cli("run", "robust", "--quick", "--seeds", "2", "--out", outDir, "--set", "data.name=gaussian-mixture", "--set", "data.subset=0",
            "--set", "model.hidden=32", "--set", "epochs=2", "--set", "preset.methods=ce,prune_truncate,gce");
        Assert.True(code == 0, stderr + stdout);
        // ROC, precision-recall, then metrics.csv (2) and results.csv
        string html = ReportRendered(outDir, 5, "last-epoch test accuracy, mean ± std over seeds", "\"title\":\"ROC\"", "\"title\":\"recall\"", "<th>prune_truncate</th>");
        Assert.Matches(@"<td>0\.\d{4} (±|&#177;) 0\.\d{4} \(", html); // HtmlEncode writes ± as &#177;
        // A robust run's own report has its heatmap too.
        ReportRendered(Path.Combine(outDir, "runs", "ce_symmetric0.4_s0"), 5, "realised transition matrix");
    }

    /// <summary>The Vega-Lite specs embedded in a report page, and the one titled <paramref name="title"/>.</summary>
    private static JsonObject Chart(string html, string title)
    {
        int start = html.IndexOf("var specs=", StringComparison.Ordinal) + "var specs=".Length;
        int end = html.IndexOf(";\n", start, StringComparison.Ordinal);
        var specs = JsonNode.Parse(html[start..end].Replace("<\\/", "</", StringComparison.Ordinal))!.AsArray();
        return specs.Single(s => s!["title"]!.GetValue<string>() == title)!.AsObject();
    }

    private static List<JsonObject> Values(JsonObject chart) => [.. chart["data"]!["values"]!.AsArray().Select(v => v!.AsObject())];

    private static double Num(JsonNode? node) => node!.GetValue<double>();

    [Fact]
    public void The_double_descent_report_draws_the_papers_figures()
    {
        string outDir = Path.Combine(_dir, "dd");
        var (code, stdout, stderr) = Cli("run", "double-descent", "--quick", "--out", outDir, "--set", "data.name=gaussian-mixture", "--set", "epochs=3");
        Assert.True(code == 0, stderr + stdout);
        // test error, error and loss split four ways, separation per layer, ratio and largest |a|; then
        // ablation.csv, layers.csv, metrics.csv (2) and phases.csv
        string html = ReportRendered(outDir, 11, "test error against epoch, per network", "error split four ways, per network", "loss split four ways, per network",
            "clean/noisy cosine per hidden layer against epoch (0 = initialisation)", "the large activation in the shallowest probed layer");

        // Test error on a log epoch axis: one point per network and evaluation, 1 − test_acc of that run's metrics.csv.
        var test = Chart(html, "test error against epoch, per network");
        Assert.Equal("log", test["encoding"]!["x"]!["scale"]!["type"]!.GetValue<string>());
        var rows = Values(test);
        Assert.Equal(9, rows.Count); // 3 networks × 3 epochs
        var mlp7 = File.ReadAllLines(Path.Combine(outDir, "mlp7", "metrics.csv"));
        int testAcc = Array.IndexOf(mlp7[0].Split(','), "test_acc");
        double last = double.Parse(mlp7[^1].Split(',')[testAcc], System.Globalization.CultureInfo.InvariantCulture);
        Assert.Equal(1 - last, Num(rows.Single(r => r["c"]!.GetValue<string>() == "mlp7" && Num(r["x"]) == 3)["y"]), 12);
        // The decomposition: four parts per network and epoch, one panel per network.
        var split = Chart(html, "error split four ways, per network");
        Assert.Equal("f", split["facet"]!["column"]!["field"]!.GetValue<string>());
        Assert.Equal(36, Values(split).Count);
        Assert.Equal(["clean training samples", "noisy, given label", "noisy, true label", "test"], Values(split).Select(r => r["c"]!.GetValue<string>()).Distinct().Order());

        // Separation: every layers.csv row, by given and by true label (2 + 4 + 6 hidden layers, epochs 0..3).
        var cosine = Values(Chart(html, "clean/noisy cosine per hidden layer against epoch (0 = initialisation)"));
        Assert.Equal(2 * 12 * 4, cosine.Count);
        Assert.Equal(["layer 0", "layer 1", "layer 2", "layer 3", "layer 4", "layer 5"], cosine.Select(r => r["c"]!.GetValue<string>()).Distinct().Order());
        // The large activation: the shallowest layer only, one row per network and evaluation.
        var ratio = Values(Chart(html, "top unit's largest |activation| / median |activation|"));
        Assert.Equal(12, ratio.Count);
        var layers = File.ReadAllLines(Path.Combine(outDir, "layers.csv")).Skip(1).Select(l => l.Split(',')).Where(c => c[0] == "mlp5" && c[2] == "0").ToList();
        var header = File.ReadAllLines(Path.Combine(outDir, "layers.csv"))[0].Split(',');
        Assert.Equal(layers.Select(c => double.Parse(c[Array.IndexOf(header, "max_to_median_ratio")], System.Globalization.CultureInfo.InvariantCulture)),
            ratio.Where(r => r["c"]!.GetValue<string>() == "mlp5").Select(r => Num(r["y"])));
    }

    [Fact]
    public void The_spectral_tail_report_draws_the_papers_figures()
    {
        string outDir = Path.Combine(_dir, "st");
        var (code, stdout, stderr) = Cli("run", "spectral-tail", "--quick", "--out", outDir,
            "--set", "spectral_tail.data=gaussian-mixture", "--set", "spectral_tail.subset=0", "--set", "spectral_tail.epochs=3", "--set", "spectral_tail.seeds=2");
        Assert.True(code == 0, stderr + stdout);
        // probe against d, truncation vs full vs early stopping, tail energy against width; then
        // aggregate.csv, metrics.csv, per_d.csv, per_d_early_stopped.csv, results.csv, widths.csv
        string html = ReportRendered(outDir, 9, "probe test accuracy against d, per noise rate", // the specs' JSON writes ± as \u00B1
            "test accuracy against noise rate", "tail energy at d = classes against width", "explicit spectral truncation against the full model and early stopping");

        // The probe: width 128 only (not the width sweep's 32), mean and std over the two seeds per (noise rate, d), log d axis.
        var probe = Chart(html, "probe test accuracy against d, per noise rate (mean ± std over seeds)");
        Assert.Equal("log", probe["encoding"]!["x"]!["scale"]!["type"]!.GetValue<string>());
        var perD = File.ReadAllLines(Path.Combine(outDir, "per_d.csv"));
        int acc = Array.IndexOf(perD[0].Split(','), "probe_test_acc");
        double At(string run, int d) => double.Parse(perD.Single(l => l.StartsWith(run + "," + d + ",", StringComparison.Ordinal)).Split(',')[acc], System.Globalization.CultureInfo.InvariantCulture);
        double a = At("mlp-w128-noise40", 5), b = At("mlp-w128-noise40-s1", 5);
        var point = Values(probe).Single(r => r["c"]!.GetValue<string>() == "noise 0.4" && Num(r["x"]) == 5);
        Assert.Equal((a + b) / 2, Num(point["mean"]), 12);
        Assert.Equal((a + b) / 2 + Math.Abs(a - b) / Math.Sqrt(2), Num(point["hi"]), 12);
        Assert.Equal(["noise 0", "noise 0.4"], Values(probe).Select(r => r["c"]!.GetValue<string>()).Distinct().Order());

        // Truncation vs full vs early stopping: aggregate.csv's means and stds at width 128, as error bars.
        var compare = Chart(html, "test accuracy against noise rate (mean ± std over seeds)");
        Assert.Equal("errorbar", compare["layer"]![0]!["mark"]!["type"]!.GetValue<string>());
        var bars = Values(compare);
        Assert.Equal(6, bars.Count); // 3 models × 2 noise rates
        var aggregate = File.ReadAllLines(Path.Combine(outDir, "aggregate.csv"));
        var cols = aggregate[0].Split(',');
        var row = aggregate.Skip(1).Select(l => l.Split(',')).Single(c => c[1] == "128" && c[2] == "0.4");
        double F(string column) => double.Parse(row[Array.IndexOf(cols, column)], System.Globalization.CultureInfo.InvariantCulture);
        var trunc = bars.Single(r => r["c"]!.GetValue<string>() == "truncation (d on noisy validation)" && Num(r["x"]) == 0.4);
        Assert.Equal(F("trunc_test_acc_at_best_d_mean"), Num(trunc["mean"]), 12);
        Assert.Equal(F("trunc_test_acc_at_best_d_mean") - F("trunc_test_acc_at_best_d_std"), Num(trunc["lo"]), 12);

        // Tail energy against width (32 and 128 at 40%): all, clean and noisy samples.
        var tail = Values(Chart(html, "tail energy at d = classes against width"));
        Assert.Equal(6, tail.Count);
        Assert.Equal([32.0, 128.0], tail.Select(r => Num(r["x"])).Distinct().Order());
    }
}
