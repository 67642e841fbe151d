using LabelNoiseLab.RunFiles;

namespace LabelNoiseLab.Tests;

/// <summary>
/// Issue 12, item 5: `lnlab report` and `lnlab summarize` check what they read; a malformed
/// metrics.csv or summary.json is exit 2 naming the file and what is wrong, never a silent exit 0.
/// </summary>
public class ReportInputCheckTests
{
    private const string Metrics = "epoch,step,lr,train_loss,train_acc,clean_loss,clean_acc,noisy_given_loss,noisy_given_acc,noisy_true_loss,noisy_true_acc,test_loss,test_acc,seconds\n"
        + "1,10,0.01,2.1,0.3,2.1,0.3,,,,,2.2,0.28,0.5\n";

    private const string Summary = "{\"final\": {\"test_acc\": 0.28, \"train_acc\": 0.3}, \"best_test_acc\": 0.28}\n";

    /// <summary>A complete run folder, written by hand: status, config.yaml, metrics.csv, summary.json.</summary>
    private static string CompleteRun(string root, string name, string metrics = Metrics, string summary = Summary)
    {
        string dir = Path.Combine(root, name);
        Directory.CreateDirectory(dir);
        File.WriteAllText(Path.Combine(dir, RunDirectory.StatusFile), "complete\n");
        File.WriteAllText(Path.Combine(dir, RunDirectory.ConfigFile), $"name: {name}\n");
        File.WriteAllText(Path.Combine(dir, RunDirectory.MetricsFile), metrics);
        File.WriteAllText(Path.Combine(dir, RunDirectory.SummaryFile), summary);
        return dir;
    }

    private static void ExitTwo(string dir, string command, string file, string problem)
    {
        var (code, _, err) = TestCli.Run(dir, command, dir);
        Assert.Equal(2, code);
        Assert.Equal($"lnlab: {file}: {problem}\n", err.ReplaceLineEndings("\n"));
    }

    [Fact]
    public void A_valid_run_still_reports_and_summarizes()
    {
        using var t = new TempDir("report-ok");
        string run = CompleteRun(t.Path, "a");
        Assert.Equal(0, TestCli.Run(t.Path, "report", run).Code);
        Assert.Equal(0, TestCli.Run(t.Path, "summarize", t.Path).Code);
        Assert.Equal(0, TestCli.Run(t.Path, "report", t.Path).Code);
    }

    [Theory]
    [InlineData("\u0001\u0002garbage\u00ff\n\u0000\u0000", "header '\\u0001\\u0002garbage\u00ff' is not metrics.csv's; expected epoch,step,lr,train_loss,train_acc,clean_loss,clean_acc,noisy_given_loss,noisy_given_acc,noisy_true_loss,noisy_true_acc,test_loss,test_acc,seconds and any extra columns")]
    [InlineData("", "empty; expected a header starting epoch,step")]
    [InlineData(Metrics + "2,20,0.01,abc,0.3,2.1,0.3,,,,,2.2,0.28,0.5\n", "data line 3, column 'train_loss': 'abc' is not a number")]
    [InlineData(Metrics + "2,20,0.01\n", "data line 3 has 3 cells; the header has 14")]
    [InlineData("epoch,epoch\n1,2\n", "header: column 'epoch' appears twice")]
    [InlineData("epoch,,step\n1,2,3\n", "header: column 2 has no name")]
    public void Report_on_a_complete_run_with_a_malformed_metrics_csv_is_exit_2(string metrics, string problem)
    {
        using var t = new TempDir("report-metrics");
        string run = CompleteRun(t.Path, "a", metrics: metrics);
        ExitTwo(run, "report", Path.Combine(run, RunDirectory.MetricsFile), problem);
        Assert.False(File.Exists(Path.Combine(run, "report.html")));
        // a folder of runs reads the same file
        ExitTwo(t.Path, "report", Path.Combine(run, RunDirectory.MetricsFile), problem);
    }

    [Fact]
    public void Any_csv_with_more_cells_than_its_header_is_exit_2()
    {
        using var t = new TempDir("report-csv");
        string run = CompleteRun(t.Path, "a");
        string probe = Path.Combine(run, "probe.csv");
        File.WriteAllText(probe, "k,value\n1,2\n3,4,5\n");
        ExitTwo(run, "report", probe, "data line 3 has 3 cells; the header has 2");
    }

    [Theory]
    [InlineData("{\"final\": ", "not valid JSON")]
    [InlineData("[1, 2]", "holds JSON array; expected an object of figures")]
    [InlineData("null", "holds JSON null; expected an object of figures")]
    public void A_malformed_summary_json_is_exit_2_for_report_and_summarize(string summary, string problem)
    {
        using var t = new TempDir("report-summary");
        string run = CompleteRun(t.Path, "a", summary: summary);
        string file = Path.Combine(run, RunDirectory.SummaryFile);
        foreach (var (command, dir) in (ReadOnlySpan<(string, string)>)[("report", run), ("summarize", t.Path), ("report", t.Path)])
        {
            var (code, _, err) = TestCli.Run(t.Path, command, dir);
            Assert.Equal(2, code);
            Assert.StartsWith($"lnlab: {file}: {problem}", err, StringComparison.Ordinal);
            Assert.Single(err.TrimEnd().Split('\n'));
        }
        Assert.False(File.Exists(Path.Combine(t.Path, "summary.csv")));
    }

    [Fact]
    public void A_summary_figure_that_is_not_a_number_is_exit_2_for_summarize()
    {
        using var t = new TempDir("summarize-figure");
        string run = CompleteRun(t.Path, "a", summary: "{\"final\": {\"test_acc\": \"abc\"}}");
        ExitTwo(t.Path, "summarize", Path.Combine(run, RunDirectory.SummaryFile), "'final.test_acc' is \"abc\"; expected a number");
        // numbers written as strings (NaN, Infinity) are numbers
        File.WriteAllText(Path.Combine(run, RunDirectory.SummaryFile), "{\"final\": {\"test_acc\": \"NaN\", \"train_acc\": 0.5}}");
        Assert.Equal(0, TestCli.Run(t.Path, "summarize", t.Path).Code);
    }
}
