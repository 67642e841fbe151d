using System.Globalization;
using System.Text.Json;
using LabelNoiseLab.Experiments;
using LabelNoiseLab.Robust;
using LabelNoiseLab.RunFiles;
using LabelNoiseLab.Studies;
using LabelNoiseLab.Tensors;
using LabelNoiseLab.Training;

namespace LabelNoiseLab.Tests;

/// <summary>lnlab audit: confident learning's math (by hand and against the peer's code), the audit end to end, resume, bad input.</summary>
public class AuditTests
{
    // Six samples, two classes (p0, p1), given labels 0,0,0,1,1,1. Worked by hand:
    // t0 = (0.9+0.8+0.25)/3 = 0.65, t1 = (0.8+0.9+0.4)/3 = 0.7; confident joint [[2,1],[0,2]] (sample 5
    // reaches no threshold); calibrated to the label counts 3,3: [[2,1],[0,3]]; Q = that / 6; noise rate
    // 1 − 5/6 = 1/6; prior (1/3, 2/3); T[true][given] = [[1, 0], [0.25, 0.75]]; round(6·Q[0][1]) = 1
    // sample labelled 0 with the largest p1 − p0 (sample 2) is flagged, and by every filter.
    private static readonly float[] HandProbs = [0.9f, 0.1f, 0.8f, 0.2f, 0.25f, 0.75f, 0.2f, 0.8f, 0.1f, 0.9f, 0.6f, 0.4f];
    private static readonly int[] HandLabels = [0, 0, 0, 1, 1, 1];

    [Fact]
    public void Confident_learning_matches_a_hand_computed_example()
    {
        var r = ConfidentLearning.Run(HandProbs, HandLabels, 2, CleanFilter.PruneByNoiseRate, IssueRank.SelfConfidence);
        Assert.Equal(0.65, r.Thresholds[0], 6);
        Assert.Equal(0.7, r.Thresholds[1], 6);
        Assert.Equal(new long[,] { { 2, 1 }, { 0, 2 } }, r.ConfidentJoint);
        Assert.Equal(2 / 6.0, r.Joint[0, 0], 12);
        Assert.Equal(1 / 6.0, r.Joint[0, 1], 12);
        Assert.Equal(0, r.Joint[1, 0], 12);
        Assert.Equal(3 / 6.0, r.Joint[1, 1], 12);
        Assert.Equal(1 / 6.0, r.NoiseRate, 12);
        Assert.Equal(1 / 3.0, r.Prior[0], 12);
        Assert.Equal(2 / 3.0, r.Prior[1], 12);
        Assert.Equal(1, r.Transition[0, 0], 12);
        Assert.Equal(0, r.Transition[0, 1], 12);
        Assert.Equal(0.25, r.Transition[1, 0], 12);
        Assert.Equal(0.75, r.Transition[1, 1], 12);
        Assert.Equal([false, false, true, false, false, false], r.IsIssue);
        Assert.Equal([0, 0, 1, 1, 1, 0], r.Suggested);
        Assert.Equal([0.1, 0.2, 0.75, 0.2, 0.1, 0.6], r.Score.Select(s => Math.Round(s, 6)));
        foreach (var filter in new[] { CleanFilter.PruneByClass, CleanFilter.Both, CleanFilter.OffDiagonal })
            Assert.Equal([false, false, true, false, false, false], ConfidentLearning.Run(HandProbs, HandLabels, 2, filter, IssueRank.SelfConfidence).IsIssue);

        var margin = ConfidentLearning.Run(HandProbs, HandLabels, 2, CleanFilter.PruneByNoiseRate, IssueRank.NormalizedMargin).Score;
        Assert.Equal(1 - (0.25 - 0.75 + 1) / 2, margin[2], 6);
        Assert.Equal(1 - (0.9 - 0.1 + 1) / 2, margin[0], 6);
        var entropy = ConfidentLearning.Run(HandProbs, HandLabels, 2, CleanFilter.PruneByNoiseRate, IssueRank.Entropy).Score;
        Assert.Equal(-(0.9 * Math.Log(0.9) + 0.1 * Math.Log(0.1)) / Math.Log(2), entropy[0], 6);
    }

    [Fact]
    public void Every_filter_flags_the_confidently_mislabelled_sample_and_off_diagonal_skips_the_unconfident_one()
    {
        // Class 0 holds two doubtful samples: 2 (confidently class 1) and 3 (reaches no threshold).
        // Q[0][1] = 1/8 → prune_by_noise_rate flags the one with the largest p1 − p0 (sample 2);
        // prune_by_class flags the round(8·1/8) = 1 lowest p0 (sample 2 too); off_diagonal counts
        // only confident samples (sample 2).
        float[] p = [0.9f, 0.1f, 0.85f, 0.15f, 0.1f, 0.9f, 0.45f, 0.55f, 0.2f, 0.8f, 0.1f, 0.9f, 0.15f, 0.85f, 0.3f, 0.7f];
        int[] s = [0, 0, 0, 0, 1, 1, 1, 1];
        var a = ConfidentLearning.Run(p, s, 2, CleanFilter.PruneByNoiseRate, IssueRank.SelfConfidence);
        var b = ConfidentLearning.Run(p, s, 2, CleanFilter.PruneByClass, IssueRank.SelfConfidence);
        var c = ConfidentLearning.Run(p, s, 2, CleanFilter.OffDiagonal, IssueRank.SelfConfidence);
        Assert.True(a.IsIssue[2]);
        Assert.True(b.IsIssue[2]);
        Assert.True(c.IsIssue[2]);
        Assert.False(c.IsIssue[3]);
        Assert.Equal(a.IsIssue.Count(x => x), (int)Math.Round(8 * a.NoiseRate));
    }

    [Fact]
    public void Confident_learning_agrees_with_the_peer_reference_on_the_same_probabilities()
    {
        MachineTools.RequirePythonWithNumpy();
        const int n = 600, k = 4;
        var rng = Rng.ForPurpose(5, "cl-peer");
        var probs = new float[n * k];
        var given = new int[n];
        for (int i = 0; i < n; i++)
        {
            int truth = i % k;
            given[i] = rng.NextDouble() < 0.3 ? (truth + 1 + rng.NextInt(k - 1)) % k : truth;
            double sum = 0;
            var logits = new double[k];
            for (int j = 0; j < k; j++)
            {
                logits[j] = rng.NextNormal() + (j == truth ? 2.0 : 0) + (j == given[i] ? 0.7 : 0);
                sum += Math.Exp(logits[j]);
            }
            for (int j = 0; j < k; j++)
                probs[i * k + j] = (float)(Math.Exp(logits[j]) / sum);
        }
        using var t = new TempDir("clpeer");
        Npy.Write(t.Sub("p.npy"), probs, n, k);
        Npy.Write(t.Sub("y.npy"), given, n);
        string peer = Path.Combine(ConfigExperimentFilesTests.RepoRoot(), "tests", "LabelNoiseLab.Tests", "peers", "cl_reference.py");
        string script = $$"""
            import numpy as np
            src = open({{Py(peer)}}).read()
            block = src[src.index("t = np.array"):src.index("tp = (issues")]
            P = np.load({{Py(t.Sub("p.npy"))}}).astype(np.float64)
            y = np.load({{Py(t.Sub("y.npy"))}}).astype(np.int64)
            class A: pass
            a = A(); a.n = len(y); k = P.shape[1]
            exec(block)
            np.save({{Py(t.Sub("issues.npy"))}}, issues.astype(np.int32))
            print(repr(1 - np.trace(Q)))
            print(" ".join(repr(v) for v in Q.ravel()))
            """;
        File.WriteAllText(t.Sub("run.py"), script);
        Assert.True(MachineTools.RunPython([t.Sub("run.py")], out var output), output);
        var lines = output.Trim().Split('\n');
        var ours = ConfidentLearning.Run(probs, given, k, CleanFilter.PruneByNoiseRate, IssueRank.SelfConfidence);
        Assert.Equal(double.Parse(lines[0], CultureInfo.InvariantCulture), ours.NoiseRate, 9);
        var q = lines[1].Split(' ').Select(v => double.Parse(v, CultureInfo.InvariantCulture)).ToArray();
        for (int i = 0; i < k; i++)
            for (int j = 0; j < k; j++)
                Assert.Equal(q[i * k + j], ours.Joint[i, j], 9);
        var peerIssues = ReadInts(t.Sub("issues.npy"));
        Assert.True(peerIssues.Sum() > 50, $"the example should flag a good number of samples, got {peerIssues.Sum()}");
        Assert.Equal(peerIssues.Select(v => v != 0), ours.IsIssue);
    }

    private static string Py(string path) => "r'" + path + "'";

    private static int[] ReadInts(string npy)
    {
        var bytes = File.ReadAllBytes(npy);
        int headerLength = BitConverter.ToUInt16(bytes, 8);
        var values = new int[(bytes.Length - 10 - headerLength) / 4];
        Buffer.BlockCopy(bytes, 10 + headerLength, values, 0, values.Length * 4);
        return values;
    }

    /// <summary>A CSV of 3 Gaussian classes in 4 dimensions; returns (true labels, noisy labels: 25% moved to the next class).</summary>
    private static (int[] Truth, int[] Noisy, string[] Rows) Blobs(int n, int seed)
    {
        var rng = Rng.ForPurpose(seed, "blobs");
        var truth = new int[n];
        var noisy = new int[n];
        var rows = new string[n];
        for (int i = 0; i < n; i++)
        {
            truth[i] = i % 3;
            noisy[i] = rng.NextDouble() < 0.25 ? (truth[i] + 1) % 3 : truth[i];
            var x = Enumerable.Range(0, 4).Select(j => (j == truth[i] ? 2.5 : 0) + rng.NextNormal());
            rows[i] = string.Join(",", x.Select(v => v.ToString("R", CultureInfo.InvariantCulture)));
        }
        return (truth, noisy, rows);
    }

    private static string Yaml(string train, string test, string extra = "") =>
        $"name: blobs\nepochs: 6\nbatch_size: 32\ndata:\n  name: csv\n  path: {train}\n  test_path: {test}\n{extra}model:\n  hidden: [16]\noptim:\n  kind: adam\n  lr: 0.01\naudit:\n  folds: 3\n";

    [Fact]
    public void An_audit_never_reads_the_truth_clearing_it_gives_identical_flags_and_scores_it_when_known()
    {
        using var t = new TempDir("audit");
        var (truth, noisy, rows) = Blobs(300, 1);
        var (testTruth, _, testRows) = Blobs(90, 2);
        string H = "a,b,c,d,label\n";
        File.WriteAllText(t.Sub("noisy.csv"), H + string.Concat(rows.Select((r, i) => $"{r},{noisy[i]}\n")));
        File.WriteAllText(t.Sub("true.csv"), H + string.Concat(rows.Select((r, i) => $"{r},{truth[i]}\n")));
        File.WriteAllText(t.Sub("test.csv"), H + string.Concat(testRows.Select((r, i) => $"{r},{testTruth[i]}\n")));
        File.WriteAllText(t.Sub("noisy_labels.txt"), string.Join("\n", noisy) + "\n");

        // Without the truth: the labels as the user has them.
        File.WriteAllText(t.Sub("plain.yaml"), Yaml(t.Sub("noisy.csv"), t.Sub("test.csv")));
        var (code, output, err) = TestCli.Run(t.Path, "audit", "--config", t.Sub("plain.yaml"), "--out", t.Sub("plain"));
        Assert.True(code == 0, output + err);
        // With the truth: the true labels, and the same noisy labels given through data.noisy_labels.
        File.WriteAllText(t.Sub("truth.yaml"), Yaml(t.Sub("true.csv"), t.Sub("test.csv"), $"  noisy_labels: {t.Sub("noisy_labels.txt")}\n"));
        (code, output, err) = TestCli.Run(t.Path, "audit", "--config", t.Sub("truth.yaml"), "--out", t.Sub("truth"));
        Assert.True(code == 0, output + err);
        Assert.Equal("complete", File.ReadAllLines(t.Sub("truth/status"))[0]);

        var plain = File.ReadAllLines(t.Sub("plain/label_issues.csv"));
        var known = File.ReadAllLines(t.Sub("truth/label_issues.csv"));
        Assert.Equal("index,given_label,suggested_label,score,is_issue", plain[0]);
        Assert.Equal("index,given_label,suggested_label,score,is_issue,true_label,is_noisy", known[0]);
        Assert.Equal(301, plain.Length);
        // Identical flags, suggestions and scores: the truth only adds the last two columns.
        Assert.Equal(plain.Skip(1), known.Skip(1).Select(l => string.Join(',', l.Split(',')[..5])));
        Assert.Equal(File.ReadAllBytes(t.Sub("plain/probabilities.npy")), File.ReadAllBytes(t.Sub("truth/probabilities.npy")));
        for (int i = 0; i < 300; i++)
        {
            var cells = known[i + 1].Split(',');
            Assert.Equal(noisy[i].ToString(CultureInfo.InvariantCulture), cells[1]);
            Assert.Equal(truth[i].ToString(CultureInfo.InvariantCulture), cells[5]);
            Assert.Equal(noisy[i] != truth[i] ? "1" : "0", cells[6]);
        }

        using var plainSummary = JsonDocument.Parse(File.ReadAllText(t.Sub("plain/summary.json")));
        var pa = plainSummary.RootElement.GetProperty("audit");
        Assert.False(pa.GetProperty("truth_known").GetBoolean());
        Assert.False(pa.TryGetProperty("f1", out _));
        using var knownSummary = JsonDocument.Parse(File.ReadAllText(t.Sub("truth/summary.json")));
        var a = knownSummary.RootElement.GetProperty("audit");
        Assert.True(a.GetProperty("truth_known").GetBoolean());
        int flagged = a.GetProperty("flagged").GetInt32();
        Assert.Equal(known.Skip(1).Count(l => l.Split(',')[4] == "1"), flagged);
        int tp = known.Skip(1).Count(l => l.Split(',')[4] == "1" && l.Split(',')[6] == "1");
        int noisyCount = noisy.Zip(truth).Count(p => p.First != p.Second);
        Assert.Equal((double)tp / flagged, a.GetProperty("precision").GetDouble(), 12);
        Assert.Equal((double)tp / noisyCount, a.GetProperty("recall").GetDouble(), 12);
        // Well-separated blobs: the audit finds most of the moved labels.
        Assert.True(a.GetProperty("f1").GetDouble() > 0.7, $"F1 {a.GetProperty("f1").GetDouble()}");
        Assert.True(a.GetProperty("auroc").GetDouble() > 0.85, $"AUROC {a.GetProperty("auroc").GetDouble()}");
        Assert.Equal((double)noisyCount / 300, a.GetProperty("realised_noise_rate").GetDouble(), 12);
        Assert.Equal(3, a.GetProperty("estimated_transition").GetArrayLength());
        Assert.InRange(a.GetProperty("estimated_noise_rate").GetDouble(), 0.1, 0.4);
        Assert.Equal(pa.GetProperty("estimated_noise_rate").GetDouble(), a.GetProperty("estimated_noise_rate").GetDouble());
        for (int f = 1; f <= 3; f++)
            Assert.Equal("complete", File.ReadAllLines(t.Sub($"truth/folds/fold-{f}/status"))[0]);

        // Cleaning with the audit's file: data.exclude drops exactly the flagged rows.
        var c = ExperimentConfig.Load(t.Sub("truth.yaml")) with { DataExclude = t.Sub("truth/label_issues.csv") };
        Assert.Equal(300 - flagged, ExperimentSetup.PrepareData(c, null).Train.Count);
    }

    /// <summary>Interrupts fold 2 the first time it starts (as a signal would), then runs normally.</summary>
    private sealed class InterruptFold2Once : IExperimentRunner
    {
        private readonly ExperimentRunner _inner = new();
        public int Fold2Starts { get; private set; }

        public RunResult Run(ExperimentConfig config, RunDirectory directory, RunContext context)
        {
            if (config.AuditFold == 2 && Fold2Starts++ == 0)
            {
                directory.Publish();
                directory.OpenMetrics();
                return new RunResult(RunStatus.Interrupted, "interrupted at step 0");
            }
            return _inner.Run(config, directory, context);
        }
    }

    [Fact]
    public void An_interrupted_audit_resumes_keeping_complete_folds_and_ends_as_the_uninterrupted_one()
    {
        using var t = new TempDir("auditresume");
        var (truth, noisy, rows) = Blobs(150, 3);
        string H = "a,b,c,d,label\n";
        File.WriteAllText(t.Sub("train.csv"), H + string.Concat(rows.Select((r, i) => $"{r},{noisy[i]}\n")));
        File.WriteAllText(t.Sub("test.csv"), H + string.Concat(rows.Take(30).Select((r, i) => $"{r},{truth[i]}\n")));
        File.WriteAllText(t.Sub("a.yaml"), Yaml(t.Sub("train.csv"), t.Sub("test.csv")));
        var (code, output, err) = TestCli.Run(t.Path, "audit", "-c", t.Sub("a.yaml"), "--out", t.Sub("whole"));
        Assert.True(code == 0, output + err);

        var runner = new InterruptFold2Once();
        (code, output, _) = TestCli.RunWith(runner, t.Path, "audit", "-c", t.Sub("a.yaml"), "--out", t.Sub("cut"));
        Assert.Equal(5, code);
        Assert.Contains("fold 2: interrupted at step 0", output);
        Assert.Equal("interrupted", File.ReadAllLines(t.Sub("cut/status"))[0]);
        Assert.Equal("complete", File.ReadAllLines(t.Sub("cut/folds/fold-1/status"))[0]);
        Assert.False(File.Exists(t.Sub("cut/label_issues.csv")));
        var fold1 = File.ReadAllBytes(t.Sub("cut/folds/fold-1/checkpoints/final.safetensors"));

        (code, output, err) = TestCli.RunWith(runner, t.Path, "resume", t.Sub("cut"));
        Assert.True(code == 0, output + err);
        Assert.Contains("fold-1: complete, kept", output);
        Assert.Equal(2, runner.Fold2Starts);
        Assert.Equal(fold1, File.ReadAllBytes(t.Sub("cut/folds/fold-1/checkpoints/final.safetensors")));
        Assert.Equal(File.ReadAllText(t.Sub("whole/label_issues.csv")), File.ReadAllText(t.Sub("cut/label_issues.csv")));
        Assert.Equal(File.ReadAllBytes(t.Sub("whole/probabilities.npy")), File.ReadAllBytes(t.Sub("cut/probabilities.npy")));
    }

    [Theory]
    [InlineData("--folds", "1", "audit.folds")]
    [InlineData("--folds", "60", "audit.folds")]
    [InlineData("--set", "audit.fold=1", "audit.fold")]
    [InlineData("--set", "audit.filter=sideways", "audit.filter")]
    public void Bad_audit_settings_are_one_line_naming_the_key_and_leave_nothing_complete(string option, string value, string key)
    {
        using var t = new TempDir("auditbad");
        var (truth, _, rows) = Blobs(150, 4);
        File.WriteAllText(t.Sub("train.csv"), "a,b,c,d,label\n" + string.Concat(rows.Select((r, i) => $"{r},{truth[i]}\n")));
        File.WriteAllText(t.Sub("a.yaml"), Yaml(t.Sub("train.csv"), t.Sub("train.csv")));
        var (code, output, err) = TestCli.Run(t.Path, "audit", "-c", t.Sub("a.yaml"), "--out", t.Sub("r"), option, value);
        Assert.True(code == 2, output + err);
        var lines = err.Trim().Split('\n');
        Assert.Single(lines);
        Assert.StartsWith($"lnlab: config key '{key}': ", lines[0], StringComparison.Ordinal);
        Assert.NotEqual(RunStatus.Complete, RunDirectory.ReadStatus(t.Sub("r"))?.Status);
    }

    [Fact]
    public void The_robust_preset_audits_once_per_setting_and_trains_cl_prune_and_cl_relabel_on_its_file()
    {
        MachineTools.RequireFashionMnist();
        using var t = new TempDir("robustcl");
        var (code, output, err) = TestCli.Run(t.Path, "run", "robust", "--quick", "--out", t.Sub("r"),
            "--set", "preset.methods=ce,cl_prune,cl_relabel", "--set", "data.subset=900", "--set", "epochs=2", "--set", "audit.folds=3");
        Assert.True(code == 0, output + err);
        string audit = t.Sub("r/audits/audit_symmetric0.4_s0");
        Assert.Equal("complete", File.ReadAllLines(Path.Combine(audit, "status"))[0]);
        var issues = File.ReadAllLines(Path.Combine(audit, Audit.IssuesFile)).Skip(1).Select(l => l.Split(',')).ToList();
        int flagged = issues.Count(c => c[4] == "1");
        Assert.InRange(flagged, 100, 800);

        var prune = ExperimentConfig.Load(t.Sub("r/runs/cl_prune_symmetric0.4_s0/config.yaml"));
        Assert.Equal(Path.Combine(audit, Audit.IssuesFile), prune.DataExclude);
        using var pruneSummary = JsonDocument.Parse(File.ReadAllText(t.Sub("r/runs/cl_prune_symmetric0.4_s0/summary.json")));
        using var ceSummary = JsonDocument.Parse(File.ReadAllText(t.Sub("r/runs/ce_symmetric0.4_s0/summary.json")));
        int Train(JsonDocument d) => d.RootElement.GetProperty("data").GetProperty("train").GetInt32();
        Assert.Equal(Train(ceSummary) - flagged, Train(pruneSummary));
        var relabel = ExperimentConfig.Load(t.Sub("r/runs/cl_relabel_symmetric0.4_s0/config.yaml"));
        Assert.Equal(Path.Combine(audit, Audit.IssuesFile), relabel.DataRelabel);
        var results = File.ReadAllLines(t.Sub("r/results.csv"));
        Assert.Contains(results, l => l.StartsWith("cl_prune,symmetric,0.4,0,", StringComparison.Ordinal) && !l.Contains("NaN", StringComparison.Ordinal));
        Assert.Contains(results, l => l.StartsWith("cl_relabel,symmetric,0.4,0,", StringComparison.Ordinal) && !l.Contains("NaN", StringComparison.Ordinal));
    }
}
