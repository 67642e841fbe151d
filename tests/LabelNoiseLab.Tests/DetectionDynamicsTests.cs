using System.Globalization;
using System.Text.Json;
using LabelNoiseLab.Robust;
using LabelNoiseLab.Training;
using Parquet;
using Parquet.Schema;

namespace LabelNoiseLab.Tests;

/// <summary>
/// Detection's training-dynamics scores (area under the margin, forgetting events), its AUROC and
/// AP at every evaluation, and ledger.parquet: the scores against a hand computation from each
/// visit's margin, the per-evaluation ranks against the ledger's values, and the ledger read back
/// by Parquet.Net and by an independent reader in Python's standard library and numpy
/// (<c>peers/parquet_plain.py</c>: Debian 12 has no Parquet engine for pandas).
/// </summary>
public sealed class DetectionDynamicsTests : IDisposable
{
    private readonly TempDir _temp = new("detection");

    public void Dispose() => _temp.Dispose();

    [Fact]
    public void Aum_and_forgetting_follow_each_visits_margin()
    {
        var d = new TrainingDynamics(4);
        // Sample 0: right, wrong, right, wrong: two forgetting events; AUM the mean margin.
        foreach (double m in (double[])[1.5, -0.5, 2.0, -1.0])
            d.Record(0, m, m > 0);
        // Sample 1: wrong, then right twice: learned, never forgotten.
        foreach (double m in (double[])[-2.0, 0.25, 0.75])
            d.Record(1, m, m > 0);
        // Sample 2: never predicted as its given label: forgotten "infinitely often".
        foreach (double m in (double[])[-1.0, -3.0])
            d.Record(2, m, m > 0);
        // Sample 3: never seen.
        Assert.Equal(0.5, d.Aum(0));
        Assert.Equal(2, d.Forgetting(0));
        Assert.Equal(-1.0 / 3, d.Aum(1), 15);
        Assert.Equal(0, d.Forgetting(1));
        Assert.Equal(-2.0, d.Aum(2));
        Assert.Equal(double.PositiveInfinity, d.Forgetting(2));
        Assert.True(double.IsNaN(d.Aum(3)));
        Assert.True(double.IsNaN(d.Forgetting(3)));

        // Saved and restored, it goes on exactly.
        var state = new ComponentState();
        d.Save(state, "dyn.");
        var e = new TrainingDynamics(4);
        e.Restore(state, "dyn.");
        d.Record(1, -0.5, false);
        e.Record(1, -0.5, false);
        Assert.Equal(d.Aum(1), e.Aum(1));
        Assert.Equal(1, e.Forgetting(1));
        Assert.Throws<InvalidDataException>(() => new TrainingDynamics(5).Restore(state, "dyn."));
    }

    // Two records of five samples: every kind of value a ledger holds (NaN before a first visit, +∞ never learned).
    private static DetectionLedger SmallLedger()
    {
        var ledger = new DetectionLedger([2, 0, 1, 1, 0], [2, 1, 1, 0, 0], [false, true, false, true, false]);
        float nan = float.NaN, inf = float.PositiveInfinity;
        ledger.Add(1, 3, [0.5f, nan, 1.25f, 2f, 0.001f], [1f, nan, -0.5f, -1f, 3f], [nan, nan, nan, nan, nan], [1f, nan, 0f, 0.5f, 1f], [1f, nan, -0.5f, -1f, 3f], [0f, nan, inf, inf, 0f]);
        ledger.Add(2, 6, [0.25f, 3f, 1f, 2.5f, 0f], [2f, -2f, 0.5f, -1.5f, 4f], [0.1f, 0.2f, 0.3f, 0.4f, 0.5f], [1f, 1f, 1f, 0f, 1f], [1.5f, -2f, 0f, -1.25f, 3.5f], [0f, inf, 1f, inf, 0f]);
        return ledger;
    }

    // The small ledger's columns as the parquet_plain.py prints them: integers, booleans 0/1, floats as their bits.
    private static Dictionary<string, long[]> SmallLedgerColumns()
    {
        float nan = float.NaN, inf = float.PositiveInfinity;
        static long[] F(params float[] v) => [.. v.Select(x => (long)BitConverter.SingleToInt32Bits(x))];
        return new Dictionary<string, long[]>
        {
            ["sample"] = [0, 1, 2, 3, 4, 0, 1, 2, 3, 4],
            ["epoch"] = [1, 1, 1, 1, 1, 2, 2, 2, 2, 2],
            ["step"] = [3, 3, 3, 3, 3, 6, 6, 6, 6, 6],
            ["loss"] = F(0.5f, nan, 1.25f, 2f, 0.001f, 0.25f, 3f, 1f, 2.5f, 0f),
            ["margin"] = F(1f, nan, -0.5f, -1f, 3f, 2f, -2f, 0.5f, -1.5f, 4f),
            ["grad_norm"] = F(nan, nan, nan, nan, nan, 0.1f, 0.2f, 0.3f, 0.4f, 0.5f),
            ["weight"] = F(1f, nan, 0f, 0.5f, 1f, 1f, 1f, 1f, 0f, 1f),
            ["aum"] = F(1f, nan, -0.5f, -1f, 3f, 1.5f, -2f, 0f, -1.25f, 3.5f),
            ["forgetting"] = F(0f, nan, inf, inf, 0f, 0f, inf, 1f, inf, 0f),
            ["given_label"] = [2, 0, 1, 1, 0, 2, 0, 1, 1, 0],
            ["true_label"] = [2, 1, 1, 0, 0, 2, 1, 1, 0, 0],
            ["is_noisy"] = [0, 1, 0, 1, 0, 0, 1, 0, 1, 0],
        };
    }

    [Theory]
    [InlineData(CompressionMethod.None)]
    [InlineData(CompressionMethod.Gzip)]
    public void A_ledger_reads_back_in_Parquet_Net_and_in_an_independent_standard_library_reader(CompressionMethod compression)
    {
        MachineTools.RequirePythonWithNumpy();
        string path = _temp.Sub($"ledger-{compression}.parquet");
        using (var file = File.Create(path))
            SmallLedger().Write(file, compression);
        var expected = SmallLedgerColumns();
        AssertColumns(expected, ReadWithPython(path));
        AssertColumns(expected, ReadWithParquetNet(path));

        // Saved into a component state and restored, it writes the same bytes.
        var state = new ComponentState();
        SmallLedger().Save(state, "ledger.");
        var restored = new DetectionLedger([2, 0, 1, 1, 0], [2, 1, 1, 0, 0], [false, true, false, true, false]);
        restored.Restore(state, "ledger.");
        Assert.Equal(2, restored.Count);
        using var again = new MemoryStream();
        restored.Write(again, compression);
        Assert.Equal(File.ReadAllBytes(path), again.ToArray());
    }

    [Fact]
    public void The_independent_reader_refuses_what_it_cannot_decode_in_one_line()
    {
        MachineTools.RequirePythonWithNumpy();
        string path = _temp.Sub("snappy.parquet");
        using (var file = File.Create(path))
            SmallLedger().Write(file, CompressionMethod.Snappy);
        Assert.False(MachineTools.RunPython([PeerScript, path], out string output));
        Assert.Contains("codec 1", output);
        Assert.Single(output.Trim().Split('\n'));
    }

    // The combination tests' run (288 training samples, 9 steps of 32 an epoch, 4 epochs), evaluated every 3 steps.
    private static readonly string[] Settings =
        ["--set", "eval_every_steps=3", "--set", "detection.enabled=true", "--set", "probe.learning_events=true"];

    private static readonly string[] AllScores = ["grad_norm", "loss", "margin", "self_confidence", "aum", "forgetting"];

    [Fact]
    public void Every_evaluation_ranks_every_score_and_the_ledger_holds_what_was_ranked()
    {
        MachineTools.RequirePythonWithNumpy();
        string run = _temp.Sub("run");
        var (code, stdout, stderr) = TestCli.Train(_temp.Path, ComponentCombinationTests.Config, [.. Settings, "--out", run]);
        Assert.True(code == 0, stderr + stdout);

        // 288 training samples, 9 steps an epoch, an evaluation every 3 steps: 3 an epoch, 12 in all.
        const int n = 288, evaluations = 12, stepsPerEpoch = 9;
        var metrics = File.ReadAllLines(Path.Combine(run, "metrics.csv"));
        var mh = metrics[0].Split(',');
        var points = metrics[1..].Select(l => l.Split(',')).Select(r => (Epoch: int.Parse(r[Array.IndexOf(mh, "epoch")], CultureInfo.InvariantCulture),
            Step: long.Parse(r[Array.IndexOf(mh, "step")], CultureInfo.InvariantCulture))).ToList();
        Assert.Equal(evaluations, points.Count);

        var detection = File.ReadAllLines(Path.Combine(run, "detection.csv"));
        Assert.Equal("epoch,step,score,auroc,ap", detection[0]);
        Assert.Equal(evaluations * AllScores.Length, detection.Length - 1);

        // The ledger as Parquet.Net and as the independent reader read it: the same, one row per sample per evaluation.
        string ledgerPath = Path.Combine(run, "ledger.parquet");
        var ledger = ReadWithPython(ledgerPath);
        AssertColumns(ledger, ReadWithParquetNet(ledgerPath));
        Assert.Equal(evaluations * n, ledger["sample"].Length);

        for (int r = 0; r < evaluations; r++)
        {
            var rows = Enumerable.Range(r * n, n).ToArray();
            Assert.Equal(Enumerable.Range(0, n).Select(i => (long)i), rows.Select(i => ledger["sample"][i]));
            Assert.All(rows, i => Assert.Equal(points[r], ((int)ledger["epoch"][i], ledger["step"][i])));
            // Each score's AUROC and AP at this evaluation, recomputed from the ledger's values (oriented high = suspicious).
            var noisy = rows.Select(i => ledger["is_noisy"][i] == 1).ToArray();
            var fromLedger = new Dictionary<string, double[]>
            {
                ["grad_norm"] = Column(ledger, "grad_norm", rows, v => v),
                ["loss"] = Column(ledger, "loss", rows, v => v),
                ["margin"] = Column(ledger, "margin", rows, v => -v),
                ["self_confidence"] = Column(ledger, "loss", rows, v => -Math.Exp(-v)),
                ["aum"] = Column(ledger, "aum", rows, v => -v),
                ["forgetting"] = Column(ledger, "forgetting", rows, v => v),
            };
            foreach (var score in AllScores)
            {
                var line = detection[1 + r * AllScores.Length + Array.IndexOf(AllScores, score)].Split(',');
                Assert.Equal([points[r].Epoch.ToString(CultureInfo.InvariantCulture), points[r].Step.ToString(CultureInfo.InvariantCulture), score], line[..3]);
                var seen = Enumerable.Range(0, n).Where(i => !double.IsNaN(fromLedger[score][i])).ToArray();
                // Before its first visit a sample has no score: at the first evaluation (step 3) 96 samples were seen.
                Assert.Equal(Math.Min(n, 32 * (int)points[r].Step), seen.Length);
                double auroc = Detection.Auroc(seen.Select(i => fromLedger[score][i]).ToArray(), seen.Select(i => noisy[i]).ToArray());
                double ap = Detection.AveragePrecision(seen.Select(i => fromLedger[score][i]).ToArray(), seen.Select(i => noisy[i]).ToArray());
                // The ledger holds floats of the scores: a near-tie may turn into a tie.
                Assert.Equal(auroc, Parse(line[3]), 1e-3);
                Assert.Equal(ap, Parse(line[4]), 1e-3);
            }
            // No robust method: every seen sample has weight 1.
            Assert.All(rows.Where(i => !float.IsNaN(Float(ledger, "loss", i))), i => Assert.Equal(1f, Float(ledger, "weight", i)));
        }

        // summary.json: the last evaluation's AUROC and AP of every score.
        using (var summary = JsonDocument.Parse(File.ReadAllText(Path.Combine(run, "summary.json"))))
        {
            var robust = summary.RootElement.GetProperty("robust");
            foreach (var score in AllScores)
            {
                var line = detection[^AllScores.Length..].Single(l => l.Split(',')[2] == score).Split(',');
                Assert.Equal(Parse(line[3]), robust.GetProperty("detection_auroc_" + score).GetDouble(), 1e-5); // detection.csv: 6 significant digits
                Assert.Equal(Parse(line[4]), robust.GetProperty("detection_ap_" + score).GetDouble(), 1e-5);
            }
            Assert.Equal(evaluations, summary.RootElement.GetProperty("components").GetProperty("detection").GetProperty("acted").GetInt64());
        }

        // The hand computation: every sample is in exactly one batch an epoch, so the epoch-end
        // records hold the margin of each visit; AUM = their running mean, a forgetting event = a
        // positive margin (predicted as given) followed by a negative one, never positive = +∞.
        var events = File.ReadAllLines(Path.Combine(run, "learning_events.csv"));
        var eh = events[0].Split(',');
        var ends = Enumerable.Range(0, evaluations).Where(r => points[r].Step == points[r].Epoch * stepsPerEpoch).ToArray();
        Assert.Equal(4, ends.Length);
        for (int s = 0; s < n; s++)
        {
            double sum = 0;
            int forgets = 0, last = -1;
            bool learned = false;
            for (int e = 0; e < ends.Length; e++)
            {
                int row = ends[e] * n + s;
                double margin = Float(ledger, "margin", row);
                Assert.NotEqual(0, margin); // no tie between the given label's logit and another
                sum += margin;
                int right = margin > 0 ? 1 : 0;
                if (right == 0 && last == 1)
                    forgets++;
                last = right;
                learned |= right == 1;
                Assert.Equal(sum / (e + 1), Float(ledger, "aum", row), 1e-5 * Math.Max(1, Math.Abs(sum)));
                Assert.Equal(learned ? forgets : float.PositiveInfinity, Float(ledger, "forgetting", row));
            }
            // The learning-events probe counts forgetting events from the same passes, by its own code.
            var ev = events[1 + s].Split(',');
            Assert.Equal(forgets, int.Parse(ev[Array.IndexOf(eh, "forgetting_events")], CultureInfo.InvariantCulture));
            Assert.Equal(last, int.Parse(ev[Array.IndexOf(eh, "final_given_correct")], CultureInfo.InvariantCulture));
            Assert.Equal(ev[Array.IndexOf(eh, "given_label")], ledger["given_label"][s].ToString(CultureInfo.InvariantCulture));
            Assert.Equal(ev[Array.IndexOf(eh, "true_label")], ledger["true_label"][s].ToString(CultureInfo.InvariantCulture));
            Assert.Equal(ev[Array.IndexOf(eh, "noisy")], ledger["is_noisy"][s].ToString(CultureInfo.InvariantCulture));
        }
    }

    private static double Parse(string s) => double.Parse(s, CultureInfo.InvariantCulture);

    private static float Float(Dictionary<string, long[]> table, string column, int row) => BitConverter.Int32BitsToSingle((int)table[column][row]);

    private static double[] Column(Dictionary<string, long[]> table, string column, int[] rows, Func<double, double> orient) =>
        [.. rows.Select(i => orient(Float(table, column, i)))];

    internal static string PeerScript => Path.Combine(ConfigExperimentFilesTests.RepoRoot(), "tests", "LabelNoiseLab.Tests", "peers", "parquet_plain.py");

    /// <summary>A Parquet file as peers/parquet_plain.py reads it: column → values (integers, booleans 0/1, floats as their bits).</summary>
    internal static Dictionary<string, long[]> ReadWithPython(string path)
    {
        Assert.True(MachineTools.RunPython([PeerScript, path], out string output), output);
        var lines = output.Trim().Split('\n');
        Assert.StartsWith("rows:", lines[0], StringComparison.Ordinal);
        int rows = int.Parse(lines[0]["rows:".Length..], CultureInfo.InvariantCulture);
        var table = new Dictionary<string, long[]>();
        foreach (var line in lines[1..])
        {
            var parts = line.Split(':', 3);
            table[parts[0]] = parts[2].Length == 0 ? [] : [.. parts[2].Split(',').Select(v => long.Parse(v, CultureInfo.InvariantCulture))];
            Assert.Equal(rows, table[parts[0]].Length);
        }
        return table;
    }

    /// <summary>A Parquet file as Parquet.Net reads it, in the same form as <see cref="ReadWithPython"/>.</summary>
    internal static Dictionary<string, long[]> ReadWithParquetNet(string path) => ReadAsync(path).GetAwaiter().GetResult();

    private static async Task<Dictionary<string, long[]>> ReadAsync(string path)
    {
        await using var reader = await ParquetReader.CreateAsync(path);
        var table = reader.Schema.GetDataFields().ToDictionary(f => f.Name, _ => new List<long>());
        for (int g = 0; g < reader.RowGroupCount; g++)
        {
            using var group = reader.OpenRowGroupReader(g);
            int count = (int)group.RowCount;
            foreach (var field in reader.Schema.GetDataFields())
            {
                var values = table[field.Name];
                if (field.ClrType == typeof(int))
                    values.AddRange((await Read<int>(group, field, count)).Select(v => (long)v));
                else if (field.ClrType == typeof(long))
                    values.AddRange(await Read<long>(group, field, count));
                else if (field.ClrType == typeof(float))
                    values.AddRange((await Read<float>(group, field, count)).Select(v => (long)BitConverter.SingleToInt32Bits(v)));
                else if (field.ClrType == typeof(bool))
                    values.AddRange((await Read<bool>(group, field, count)).Select(v => v ? 1L : 0L));
                else
                    Assert.Fail($"{path}: column {field.Name} of type {field.ClrType}");
            }
        }
        return table.ToDictionary(p => p.Key, p => p.Value.ToArray());
    }

    private static async Task<T[]> Read<T>(ParquetRowGroupReader group, DataField field, int count)
        where T : struct
    {
        var values = new T[count];
        await group.ReadAsync<T>(field, values.AsMemory());
        return values;
    }

    private static void AssertColumns(Dictionary<string, long[]> expected, Dictionary<string, long[]> actual)
    {
        Assert.Equal(expected.Keys, actual.Keys);
        foreach (var (name, values) in expected)
            Assert.True(values.SequenceEqual(actual[name]), $"column {name} differs");
    }
}
