using System.Diagnostics;
using System.Globalization;
using LabelNoiseLab.RunFiles;

namespace LabelNoiseLab.Tests;

/// <summary>
/// Issue 12, item 7 (data, CSV and config): a seeded mutation test. Bit flips, truncations, byte
/// insertions and deletions of a small IDX set (raw and gzip), a CSV file and a config YAML; every
/// `lnlab train` on the mutated input ends with exit 0 (a complete run) or exit 2 (one line on
/// stderr, no run marked complete), never exit 1.
/// </summary>
public class InputFuzzTests
{
    private const string IdxConfig = "name: fz\nseed: 0\nepochs: 1\nbatch_size: 16\nthreads: 1\ndata: {name: mnist}\nmodel: {hidden: [8]}\n";

    private static string CsvConfig(string csv) =>
        $"name: fz\nseed: 0\nepochs: 1\nbatch_size: 16\nthreads: 1\ndata:\n  name: csv\n  path: {csv}\n  csv_label_column: label\nmodel:\n  hidden: [8]\noptim: {{lr: 0.05}}\n";

    private static string Csv()
    {
        var rng = new Random(7);
        var sb = new System.Text.StringBuilder("x0,x1,x2,label\n");
        for (int i = 0; i < 40; i++)
            sb.Append(string.Create(CultureInfo.InvariantCulture, $"{rng.NextDouble():F3},{rng.NextDouble() * 10:F2},{-rng.NextDouble():F4},{i % 3}\n"));
        return sb.ToString();
    }

    /// <summary>One mutation of <paramref name="bytes"/>; a third of them in the first 24 bytes, where headers are.</summary>
    private static (byte[] Bytes, string What) Mutate(byte[] bytes, Random rng)
    {
        int Pos(int length) => length == 0 ? 0 : rng.Next(3) == 0 ? rng.Next(Math.Min(24, length)) : rng.Next(length);
        switch (rng.Next(4))
        {
            case 0:
            {
                var b = (byte[])bytes.Clone();
                int p = Pos(b.Length), bit = rng.Next(8);
                b[p] ^= (byte)(1 << bit);
                return (b, $"flip bit {bit} of byte {p}");
            }
            case 1:
            {
                int n = rng.Next(3) == 0 ? bytes.Length - 1 - rng.Next(Math.Min(12, bytes.Length)) : rng.Next(bytes.Length);
                return (bytes[..n], $"truncate to {n}");
            }
            case 2:
            {
                int p = Pos(bytes.Length + 1);
                byte v = (byte)rng.Next(256);
                return ([.. bytes[..p], v, .. bytes[p..]], $"insert 0x{v:X2} at {p}");
            }
            default:
            {
                int p = Pos(bytes.Length);
                return ([.. bytes[..p], .. bytes[(p + 1)..]], $"delete byte {p}");
            }
        }
    }

    /// <summary>Trains once and checks the outcome: exit 0 and a complete run, or exit 2, one line, no complete run.</summary>
    private static void TrainAndCheck(string dir, string config, string what, params string[] extra)
    {
        string outDir = Path.Combine(dir, "out");
        if (Directory.Exists(outDir))
            Directory.Delete(outDir, recursive: true);
        var (code, _, err) = TestCli.Train(dir, config, ["--out", outDir, .. extra]);
        var status = RunDirectory.ReadStatus(outDir)?.Status;
        string context = $"{what}: exit {code}: {err}";
        Assert.True(code is 0 or 2, context);
        if (code == 0)
        {
            Assert.Equal(RunStatus.Complete, status);
            return;
        }
        Assert.NotEqual(RunStatus.Complete, status);
        var lines = err.ReplaceLineEndings("\n").TrimEnd('\n').Split('\n');
        Assert.True(lines.Length == 1 && lines[0].StartsWith("lnlab: ", StringComparison.Ordinal) && !lines[0].Any(char.IsControl), context);
    }

    [Theory]
    [InlineData(false, 90)]
    [InlineData(true, 90)]
    public void Mutated_idx_files_train_or_are_exit_2(bool gzip, int cases)
    {
        using var f = new DataTestFiles();
        using var work = new TempDir("fuzz-idx");
        DataInputCheckTests.WriteIdxSet(f, gzip);
        var names = Directory.GetFiles(f.Dir).Select(Path.GetFileName).Order(StringComparer.Ordinal).ToArray();
        var originals = names.ToDictionary(n => n!, n => File.ReadAllBytes(Path.Combine(f.Dir, n!)));
        var rng = new Random(gzip ? 12 : 11);
        var watch = Stopwatch.StartNew();
        for (int i = 0; i < cases; i++)
        {
            string name = names[rng.Next(names.Length)]!;
            var (bytes, what) = Mutate(originals[name], rng);
            File.WriteAllBytes(Path.Combine(f.Dir, name), bytes);
            TrainAndCheck(work.Path, IdxConfig, $"case {i}: {name}: {what}", "--data-dir", f.Dir);
            File.WriteAllBytes(Path.Combine(f.Dir, name), originals[name]);
        }
        Assert.True(watch.Elapsed < TimeSpan.FromSeconds(60), $"{cases} cases took {watch.Elapsed}");
    }

    [Fact]
    public void Mutated_csv_files_train_or_are_exit_2()
    {
        using var work = new TempDir("fuzz-csv");
        string csv = Path.Combine(work.Path, "d.csv");
        var original = System.Text.Encoding.UTF8.GetBytes(Csv());
        var rng = new Random(13);
        for (int i = 0; i < 80; i++)
        {
            var (bytes, what) = Mutate(original, rng);
            File.WriteAllBytes(csv, bytes);
            TrainAndCheck(work.Path, CsvConfig(csv), $"case {i}: {what}");
        }
    }

    [Fact]
    public void Mutated_config_yaml_trains_or_is_exit_2()
    {
        using var work = new TempDir("fuzz-yaml");
        string csv = Path.Combine(work.Path, "d.csv");
        File.WriteAllText(csv, Csv());
        var original = System.Text.Encoding.UTF8.GetBytes(CsvConfig(csv));
        var rng = new Random(14);
        for (int i = 0; i < 80; i++)
        {
            var (bytes, what) = Mutate(original, rng);
            TrainAndCheck(work.Path, System.Text.Encoding.UTF8.GetString(bytes), $"case {i}: {what}");
        }
    }

    [Fact]
    public void The_unmutated_inputs_train()
    {
        using var f = new DataTestFiles();
        using var work = new TempDir("fuzz-base");
        DataInputCheckTests.WriteIdxSet(f, gzip: true);
        string csv = Path.Combine(work.Path, "d.csv");
        File.WriteAllText(csv, Csv());
        Assert.Equal(0, TestCli.Train(work.Path, IdxConfig, "--out", Path.Combine(work.Path, "idx"), "--data-dir", f.Dir).Code);
        Assert.Equal(0, TestCli.Train(work.Path, CsvConfig(csv), "--out", Path.Combine(work.Path, "csv")).Code);
    }
}
