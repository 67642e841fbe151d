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
}
