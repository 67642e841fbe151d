using System.Text.Json;
using LabelNoiseLab.Studies;

namespace LabelNoiseLab.Tests;

/// <summary>`lnlab verify`: the table, claims.csv, the report page and the exit codes, on small finished preset folders (--from), and one real quick preset.</summary>
public sealed class VerifyTests : IDisposable
{
    private readonly TempDir _temp = new("verify");

    private string _dir => _temp.Path;

    public void Dispose() => _temp.Dispose();

    private (int Code, string Out, string Err) Cli(params string[] args) => TestCli.Run(_dir, args);

    /// <summary>A finished preset folder FROM/NAME: status complete, summary.json with <paramref name="claims"/> (null: no claims key).</summary>
    private static string Preset(string from, string name, object[]? claims, string status = "complete")
    {
        string dir = Path.Combine(from, name);
        Directory.CreateDirectory(dir);
        File.WriteAllText(Path.Combine(dir, "status"), status + "\n");
        var summary = new Dictionary<string, object?> { ["preset"] = name, ["quick"] = false };
        if (claims is not null)
            summary["claims"] = claims;
        File.WriteAllText(Path.Combine(dir, "summary.json"), JsonSerializer.Serialize(summary));
        return dir;
    }

    private static Dictionary<string, object?> C(string id, double measured, bool pass, int seeds = 1, double? spread = null) =>
        Claims.Claim(id, $"statement of {id}, with a comma", measured, "> 0.5", pass, quick: false, seeds, spread);

    private string Finished(bool allPass)
    {
        string from = Path.Combine(_dir, "from");
        Preset(from, "two-phase", [C("aligns", 0.91, true), C("lazy", 0.01, true)]);
        Preset(from, "robust", [C("prune_above_ce", 0.6123, allPass, 3, 0.0123)]);
        Preset(from, "double-descent", null); // writes no claims yet
        return from;
    }

    [Fact]
    public void Verify_from_finished_presets_prints_the_table_and_writes_claims_csv_and_a_page()
    {
        string from = Finished(allPass: false);
        var (code, stdout, stderr) = Cli("verify", "--from", from);
        Assert.True(code == 0, stderr + stdout); // everything ran: 0 even with a failed claim
        Assert.Equal("", stderr);
        var lines = stdout.Split('\n');
        Assert.StartsWith("preset", lines[0]);
        Assert.Contains(lines, l => l.StartsWith("two-phase ", StringComparison.Ordinal) && l.Contains("aligns") && l.Contains("0.91") && l.EndsWith("PASS", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.StartsWith("robust", StringComparison.Ordinal) && l.Contains("0.6123 ± 0.012 (3 seeds)") && l.EndsWith("FAIL", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.StartsWith("double-descent", StringComparison.Ordinal) && l.Contains("the preset wrote no claims"));
        Assert.Contains("2 of 3 claims held; 1 preset(s) wrote no claims", stdout);
        // Table rows in the presets' order.
        Assert.True(stdout.IndexOf("two-phase ", StringComparison.Ordinal) < stdout.IndexOf("double-descent", StringComparison.Ordinal));
        Assert.True(stdout.IndexOf("double-descent", StringComparison.Ordinal) < stdout.IndexOf("robust ", StringComparison.Ordinal));

        var csv = File.ReadAllLines(Path.Combine(from, "claims.csv"));
        Assert.Equal("preset,id,statement,measured,expected,pass,n_seeds,spread,quick", csv[0]);
        Assert.Equal(4, csv.Length);
        Assert.Equal("two-phase,aligns,\"statement of aligns, with a comma\",0.91,> 0.5,true,1,,false", csv[1]);
        Assert.StartsWith("robust,prune_above_ce,", csv[3]);
        Assert.EndsWith(",false,3,0.0123,false", csv[3]);
        var md = File.ReadAllText(Path.Combine(from, "claims.md"));
        Assert.Contains("| robust | prune_above_ce | 0.6123 ± 0.012 (3 seeds) | > 0.5 | FAIL |", md);
        Assert.Contains("| double-descent | (the preset wrote no claims) |", md);
        string page = File.ReadAllText(Path.Combine(from, "report.html"));
        Assert.Contains("statement of aligns, with a comma", page);
        Assert.Contains("the preset wrote no claims", page);
        Assert.Contains("data-charts=\"1\"", page);

        // --strict: a failed claim is exit 6; with --out the files go there.
        string outDir = Path.Combine(_dir, "out");
        (code, _, _) = Cli("verify", "--from", from, "--strict", "--out", outDir);
        Assert.Equal(6, code);
        Assert.True(File.Exists(Path.Combine(outDir, "claims.csv")));
        (code, _, stderr) = Cli("verify", "--from", Finished(allPass: true), "--strict");
        Assert.True(code == 0, stderr);
        // --only picks presets; one preset's own folder works as --from too.
        (code, stdout, _) = Cli("verify", "--from", from, "--only", "two-phase");
        Assert.Equal(0, code);
        Assert.DoesNotContain("robust", stdout);
        (code, stdout, _) = Cli("verify", "--from", Path.Combine(from, "robust"), "--out", outDir);
        Assert.Equal(0, code);
        Assert.Contains("prune_above_ce", stdout);
        Assert.DoesNotContain("aligns", stdout);
    }

    [Fact]
    public void Bad_verify_input_is_one_line_naming_it_and_the_others_are_still_listed()
    {
        string from = Finished(allPass: true);
        var (code, stdout, stderr) = Cli("verify", "--from", from, "--only", "two-phase,robust,magic");
        Assert.Equal(2, code);
        Assert.Single(stderr.Trim().Split('\n'));
        Assert.Contains("'magic'", stderr);
        Assert.Contains("aligns", stdout);
        Assert.Contains("prune_above_ce", stdout);

        // A --from preset folder that is not a preset's (no status), and one with malformed claims.
        Directory.CreateDirectory(Path.Combine(from, "spectral-tail"));
        string paper = Preset(from, "two-phase-paper", []);
        File.WriteAllText(Path.Combine(paper, "summary.json"), """{"preset": "two-phase-paper", "claims": [{"id": "x", "statement": "s", "measured": "high", "expected": "e", "pass": true, "n_seeds": 1, "spread": null, "quick": false}]}""");
        (code, stdout, stderr) = Cli("verify", "--from", from);
        Assert.Equal(2, code);
        var errors = stderr.Trim().Split('\n');
        Assert.Equal(2, errors.Length);
        Assert.Contains(errors, e => e.Contains(Path.Combine(from, "spectral-tail"), StringComparison.Ordinal) && e.Contains("no status file"));
        Assert.Contains(errors, e => e.Contains("summary.json", StringComparison.Ordinal) && e.Contains("claims[0].measured"));
        Assert.Contains("aligns", stdout);
        Assert.Contains("ERROR", stdout);

        // A preset that ended failed: exit 4, named.
        string failedFrom = Path.Combine(_dir, "failed");
        Preset(failedFrom, "two-phase", [C("aligns", 0.9, true)]);
        Preset(failedFrom, "robust", null, status: "failed\nout of memory");
        (code, stdout, stderr) = Cli("verify", "--from", failedFrom);
        Assert.Equal(4, code);
        Assert.Contains("robust", stderr);
        Assert.Contains("out of memory", stderr);
        Assert.Contains("aligns", stdout);

        foreach (var args in new[] { new[] { "verify", "--from", Path.Combine(_dir, "missing") }, ["verify", "--from", Directory.CreateDirectory(Path.Combine(_dir, "empty")).FullName] })
        {
            (code, _, stderr) = Cli(args);
            Assert.Equal(2, code);
            Assert.Single(stderr.Trim().Split('\n'));
            Assert.Contains(args[2], stderr);
        }
    }

    [Fact]
    public void Claims_are_read_against_the_contract()
    {
        var summary = System.Text.Json.Nodes.JsonNode.Parse("""{"claims": [{"id": "a", "statement": "s", "measured": "NaN", "expected": "e", "pass": false, "n_seeds": 2, "spread": 0.1, "quick": true}]}""")!.AsObject();
        var claim = Assert.Single(Claims.Read(summary, "f")!);
        Assert.True(double.IsNaN(claim.Measured));
        Assert.Equal((2, 0.1, true, false), (claim.Seeds, claim.Spread, claim.Quick, claim.Pass));
        Assert.Null(Claims.Read(new System.Text.Json.Nodes.JsonObject(), "f"));
        foreach (var (bad, field) in new[] { ("\"pass\": \"yes\"", "pass"), ("\"n_seeds\": 0", "n_seeds"), ("\"n_seeds\": 1.5", "n_seeds"), ("\"id\": 3", "id") })
        {
            string text = """{"id": "a", "statement": "s", "measured": 1, "expected": "e", "pass": false, "n_seeds": 1, "spread": null, "quick": true}""";
            string key = bad.Split(':')[0];
            int start = text.IndexOf(key, StringComparison.Ordinal);
            int end = text.IndexOfAny([',', '}'], start);
            text = text[..start] + bad + text[end..];
            var e = Assert.Throws<DataException>(() => Claims.Read(System.Text.Json.Nodes.JsonNode.Parse("{\"claims\": [" + text + "]}")!.AsObject(), "f.json"));
            Assert.Contains("claims[0]." + field, e.Message);
            Assert.Contains("f.json", e.Message);
        }
        Assert.Equal((2.0, (double?)Math.Sqrt(2)), Claims.MeanStd([1.0, 3.0]));
        Assert.Equal((1.0, (double?)null), Claims.MeanStd([1.0]));
    }

    [Fact]
    public void Verify_runs_the_presets_and_a_failing_one_is_named_while_the_others_are_listed()
    {
        // two-phase runs for real (about 10 s); two-phase-paper finds no data in an empty --data-dir.
        string outDir = Path.Combine(_dir, "run");
        string empty = Directory.CreateDirectory(Path.Combine(_dir, "nodata")).FullName;
        var (code, stdout, stderr) = Cli("verify", "--quick", "--only", "two-phase,two-phase-paper", "--out", outDir, "--data-dir", empty);
        Assert.Equal(2, code);
        var errors = stderr.Trim().Split('\n');
        Assert.Single(errors);
        Assert.Contains("two-phase-paper", errors[0]);
        Assert.Contains("verify [1/2] two-phase: running", stdout);
        Assert.Contains("verify [1/2] two-phase: done", stdout);
        Assert.Contains("two-phase | ", stdout); // the preset's own lines, as progress
        Assert.Contains("label_noise_aligns", stdout);
        Assert.Contains("sgd_stays_lazy", stdout);
        var csv = File.ReadAllLines(Path.Combine(outDir, "claims.csv"));
        Assert.Equal(3, csv.Length);
        Assert.All(csv[1..], l => Assert.EndsWith(",true", l)); // quick
        Assert.True(File.Exists(Path.Combine(outDir, "two-phase", "summary.json")));

        // Reading the same folder back gives the same claims; the failed preset's folder says failed (exit 4).
        (code, _, stderr) = Cli("verify", "--from", outDir, "--out", Path.Combine(_dir, "back"));
        Assert.Equal(4, code);
        Assert.Contains("two-phase-paper ended failed", stderr);
        (code, var again, _) = Cli("verify", "--from", outDir, "--only", "two-phase", "--out", Path.Combine(_dir, "again"));
        Assert.Equal(0, code);
        Assert.Equal(csv, File.ReadAllLines(Path.Combine(_dir, "again", "claims.csv")));
        Assert.Contains("sgd_stays_lazy", again);

        string chromium = MachineTools.RequireChromium("verify ran and wrote its page; the page's rendering was not checked");
        var (dom, _) = SweepReportTests.Render(chromium, Path.Combine(outDir, "report.html"), Path.Combine(outDir, "report.png"));
        Assert.Contains("data-rendered=\"1\"", dom);
        Assert.Contains("data-failed=\"0\"", dom);
        Assert.DoesNotContain("data-empty=", dom);
        Assert.DoesNotContain("data-errors=", dom);
    }

    [System.Runtime.InteropServices.DllImport("libc", SetLastError = true)]
    private static extern int kill(int pid, int sig);

    [Fact]
    public void Ctrl_C_during_verify_interrupts_the_running_preset_starts_no_other_and_writes_what_finished()
    {
        MachineTools.RequireFashionMnist();
        string outDir = Path.Combine(_dir, "signalled");
        var output = new System.Text.StringBuilder();
        using (var process = TestCli.Start(null, output, "verify", "--quick", "--only", "two-phase,spectral-tail,double-descent", "--out", outDir))
        {
            // two-phase finished, spectral-tail's first run training (its first evaluation written): then SIGINT.
            var clock = System.Diagnostics.Stopwatch.StartNew();
            string metrics = Path.Combine(outDir, "spectral-tail", "runs", "mlp-w128-noise0", "metrics.csv");
            while ((!File.Exists(metrics) || File.ReadAllLines(metrics).Length < 2) && clock.Elapsed.TotalSeconds < 300 && !process.HasExited)
                Thread.Sleep(20);
            Assert.False(process.HasExited, "verify ended before it could be signalled");
            Assert.Equal(0, kill(process.Id, 2));
            Assert.True(process.WaitForExit(120_000));
            process.WaitForExit();
            Assert.True(process.ExitCode == 5, output.ToString());
        }
        Assert.Equal("complete", File.ReadAllLines(Path.Combine(outDir, "two-phase", "status"))[0]);
        // The preset ended interrupted with the run the signal reached, which wrote its checkpoint.
        var status = File.ReadAllLines(Path.Combine(outDir, "spectral-tail", "status"));
        Assert.Equal("interrupted", status[0]);
        Assert.Matches("^mlp-w(128|32)-noise(0|40): interrupted at step ", status[1]);
        string run = Path.Combine(outDir, "spectral-tail", "runs", status[1].Split(':')[0]);
        Assert.Equal("interrupted", File.ReadAllLines(Path.Combine(run, "status"))[0]);
        Assert.NotEmpty(Directory.GetFiles(Path.Combine(run, "checkpoints"), "epoch-*.safetensors"));
        // No further preset started; the table and files hold what finished.
        Assert.False(Directory.Exists(Path.Combine(outDir, "double-descent")));
        var csv = File.ReadAllLines(Path.Combine(outDir, "claims.csv"));
        Assert.Contains(csv, l => l.StartsWith("two-phase,", StringComparison.Ordinal));
        Assert.DoesNotContain(csv, l => l.StartsWith("spectral-tail,", StringComparison.Ordinal));
        Assert.True(File.Exists(Path.Combine(outDir, "report.html")));
        string text = output.ToString();
        Assert.Contains("preset double-descent: not started (verify was interrupted)", text);
        Assert.Contains("ended interrupted", text);
    }
}
