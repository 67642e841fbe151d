using System.IO.Compression;
using LabelNoiseLab.Data;
using LabelNoiseLab.Experiments;
using LabelNoiseLab.Noise;
using LabelNoiseLab.RunFiles;
using LabelNoiseLab.Tensors;

namespace LabelNoiseLab.Tests;

/// <summary>The user's own data: RFC 4180 CSV, data.test_path, .npy/.npz, data.noisy_labels, data.exclude/relabel, folds.</summary>
public class UserDataTests
{
    [Fact]
    public void Csv_quoted_cells_hold_delimiters_quotes_and_line_breaks()
    {
        using var f = new DataTestFiles();
        var p = f.WriteText("q.csv",
            "\"width, cm\",\"the \"\"odd\"\" one\",\"label\"\r\n" +
            "\"1.5\",2,0\r\n" +
            "  \"-3\" ,\"4e0\",\"1\"\r\n" +
            "\n" +
            "5,6,1\n");
        var d = CsvLoader.Load(p, new CsvOptions(LabelColumn: "label"));
        Assert.Equal(3, d.Count);
        Assert.Equal([1.5f, 2f, -3f, 4f, 5f, 6f], d.Features);
        Assert.Equal([0, 1, 1], d.Labels);

        // A header cell with a line break inside its quotes: the next row's line number counts it.
        var multi = f.WriteText("m.csv", "\"a\nb\",label\n1,0\nx,1\n");
        var e = Assert.Throws<DataException>(() => CsvLoader.Load(multi, new CsvOptions(LabelColumn: "label")));
        Assert.Contains("m.csv", e.Message);
        Assert.Contains("row 2 (line 4), column 1", e.Message);

        var open = f.WriteText("open.csv", "a,label\n\"1,0\n");
        e = Assert.Throws<DataException>(() => CsvLoader.Load(open));
        Assert.Contains("open.csv: line 2: a quoted cell is never closed", e.Message);

        var after = f.WriteText("after.csv", "a,label\n\"1\"x,0\n");
        e = Assert.Throws<DataException>(() => CsvLoader.Load(after));
        Assert.Contains("after.csv: line 2: text after a closing quote", e.Message);
    }

    [Fact]
    public void Csv_test_path_and_test_fraction_are_config_keys_named_in_their_errors()
    {
        using var t = new TempDir("csvkeys");
        var train = Path.Combine(t.Path, "train.csv");
        var test = Path.Combine(t.Path, "test.csv");
        File.WriteAllText(train, "x,y,label\n" + string.Join("\n", Enumerable.Range(0, 60).Select(i => $"{i % 7},{i % 5},{i % 3}")) + "\n");
        File.WriteAllText(test, "x,y,label\n1,2,0\n3,4,1\n5,6,2\n");
        var c = ExperimentConfig.Default with { DataName = "csv", DataPath = train, DataTestPath = test };
        var data = ExperimentSetup.PrepareData(c, null);
        Assert.Equal(60, data.Train.Count);
        Assert.Equal(3, data.Test.Count);

        string yaml = $"epochs: 1\nbatch_size: 8\ndata:\n  name: csv\n  path: {train}\n  test_fraction: 0\nmodel:\n  hidden: [4]\n";
        var (code, _, err) = TestCli.Train(t.Path, yaml, "--out", Path.Combine(t.Path, "r"));
        Assert.Equal(2, code);
        Assert.StartsWith("lnlab: config key 'data.test_fraction': ", err.Trim(), StringComparison.Ordinal);
        Assert.NotEqual("complete", RunDirectory.ReadStatus(Path.Combine(t.Path, "r"))?.Status.ToString().ToLowerInvariant());

        (code, _, err) = TestCli.Train(t.Path, yaml.Replace("test_fraction: 0", $"test_path: {t.Path}/missing.csv", StringComparison.Ordinal), "--out", Path.Combine(t.Path, "r2"));
        Assert.Equal(2, code);
        Assert.Single(err.Trim().Split('\n'));
        Assert.Contains("missing.csv", err);

        (code, _, err) = TestCli.Train(t.Path, yaml.Replace("name: csv", "name: mnist", StringComparison.Ordinal).Replace("test_fraction: 0", $"test_path: {test}", StringComparison.Ordinal));
        Assert.Equal(2, code);
        Assert.Contains("config key 'data.test_path'", err);
    }

    private static string Npz(string path, params (string Name, Action<string> Write)[] arrays)
    {
        using var zip = ZipFile.Open(path, ZipArchiveMode.Create);
        foreach (var (name, write) in arrays)
        {
            string tmp = path + "." + name + ".npy";
            write(tmp);
            zip.CreateEntryFromFile(tmp, name + ".npy", CompressionLevel.Optimal);
            File.Delete(tmp);
        }
        return path;
    }

    [Fact]
    public void Npy_and_npz_load_features_labels_and_optional_true_labels()
    {
        using var f = new DataTestFiles();
        var x = Enumerable.Range(0, 12).Select(i => (float)i).ToArray();
        int[] y = [0, 1, 2, 1, 0, 2];
        int[] truth = [0, 1, 2, 2, 0, 2];

        // .npy of features with labels.npy (and true_labels.npy) beside it, as lnlab export writes them.
        var dir = Path.Combine(f.Dir, "exports");
        Directory.CreateDirectory(dir);
        Npy.Write(Path.Combine(dir, "features.npy"), x, 6, 2);
        Npy.Write(Path.Combine(dir, "labels.npy"), y, 6);
        var a = NpyLoader.ReadArrays(Path.Combine(dir, "features.npy"));
        Assert.Equal(x, a.Features);
        Assert.Equal([2], a.SampleShape);
        Assert.Equal(y, a.Labels);
        Assert.Null(a.TrueLabels);
        Npy.Write(Path.Combine(dir, "true_labels.npy"), truth, 6);
        var split = DataSources.Load(new DataOptions { Name = "npy", CsvPath = Path.Combine(dir, "features.npy"), TestFraction = 0.5, Seed = 1 });
        Assert.Equal(3, split.Train.Count);
        Assert.True(split.Train.TruthKnown);
        Assert.Equal(split.Train.Labels.Zip(split.Train.TrueLabels, (g, t) => g != t), split.Train.NoiseMask);
        Assert.Equal(split.Test.TrueLabels, split.Test.Labels); // the test set is scored on its truth

        // .npz with x, y, y_true (compressed), images [n, H, W] read as [1, H, W].
        var npz = Npz(Path.Combine(f.Dir, "d.npz"),
            ("x", p => Npy.Write(p, Enumerable.Range(0, 24).Select(i => (float)i).ToArray(), 6, 2, 2)),
            ("y", p => Npy.Write(p, y, 6)),
            ("y_true", p => Npy.Write(p, truth, 6)));
        var b = NpyLoader.ReadArrays(npz);
        Assert.Equal([1, 2, 2], b.SampleShape);
        Assert.Equal(truth, b.TrueLabels);

        var c = ExperimentConfig.Default with { DataName = "npy", DataPath = npz, DataTestPath = npz, ModelHidden = [4] };
        var data = ExperimentSetup.PrepareData(c, null);
        Assert.Equal(6, data.Train.Count);
        Assert.Equal(1, data.Train.NoisyCount);
    }

    [Fact]
    public void Npy_of_the_wrong_dtype_shape_or_length_is_one_line_naming_the_file()
    {
        using var f = new DataTestFiles();
        string Dir(string name)
        {
            var d = Path.Combine(f.Dir, name);
            Directory.CreateDirectory(d);
            Npy.Write(Path.Combine(d, "features.npy"), new float[12], 6, 2);
            return d;
        }
        var floatLabels = Dir("float");
        Npy.Write(Path.Combine(floatLabels, "labels.npy"), new float[6], 6);
        var e = Assert.Throws<DataException>(() => NpyLoader.ReadArrays(Path.Combine(floatLabels, "features.npy")));
        Assert.Contains("labels.npy", e.Message);
        Assert.Contains("'<f4'; labels must be an integer dtype", e.Message);

        var wide = Dir("wide");
        Npy.Write(Path.Combine(wide, "labels.npy"), new int[6], 3, 2);
        e = Assert.Throws<DataException>(() => NpyLoader.ReadArrays(Path.Combine(wide, "features.npy")));
        Assert.Contains("labels must be one-dimensional", e.Message);

        var shortLabels = Dir("short");
        Npy.Write(Path.Combine(shortLabels, "labels.npy"), new int[5], 5);
        e = Assert.Throws<DataException>(() => NpyLoader.ReadArrays(Path.Combine(shortLabels, "features.npy")));
        Assert.Contains("holds 5 labels for 6 samples", e.Message);

        var none = Path.Combine(f.Dir, "none");
        Directory.CreateDirectory(none);
        Npy.Write(Path.Combine(none, "features.npy"), new float[6], 6);
        e = Assert.Throws<DataException>(() => NpyLoader.ReadArrays(Path.Combine(none, "features.npy")));
        Assert.Contains("no labels.npy beside it", e.Message);
        Npy.Write(Path.Combine(none, "labels.npy"), new int[6], 6);
        e = Assert.Throws<DataException>(() => NpyLoader.ReadArrays(Path.Combine(none, "features.npy")));
        Assert.Contains("expected features of shape (n, d)", e.Message);

        var cut = Dir("cut");
        Npy.Write(Path.Combine(cut, "labels.npy"), new int[6], 6);
        var bytes = File.ReadAllBytes(Path.Combine(cut, "features.npy"));
        File.WriteAllBytes(Path.Combine(cut, "features.npy"), bytes[..^5]);
        e = Assert.Throws<DataException>(() => NpyLoader.ReadArrays(Path.Combine(cut, "features.npy")));
        Assert.Contains("truncated", e.Message);

        var npz = Npz(Path.Combine(f.Dir, "nolabels.npz"), ("x", p => Npy.Write(p, new float[12], 6, 2)));
        e = Assert.Throws<DataException>(() => NpyLoader.ReadArrays(npz));
        Assert.Contains("has no array 'y' (or 'labels'); it holds arrays x", e.Message);

        // Through the command line: one line, exit 2, nothing complete.
        using var t = new TempDir("npybad");
        var (code, _, err) = TestCli.Train(t.Path, $"epochs: 1\nbatch_size: 2\ndata:\n  name: npy\n  path: {Path.Combine(floatLabels, "features.npy")}\nmodel:\n  hidden: [4]\n", "--out", t.Sub("r"));
        Assert.Equal(2, code);
        Assert.Single(err.Trim().Split('\n'));
        Assert.Contains("labels.npy", err);
        Assert.NotEqual(RunStatus.Complete, RunDirectory.ReadStatus(t.Sub("r"))?.Status);
    }

    [Fact]
    public void Noisy_labels_replace_the_given_labels_and_keep_the_originals_as_truth()
    {
        using var t = new TempDir("noisylabels");
        var train = Path.Combine(t.Path, "train.csv");
        File.WriteAllText(train, "a,label\n" + string.Join("\n", Enumerable.Range(0, 10).Select(i => $"{i},{i % 2}")) + "\n");
        var labels = Path.Combine(t.Path, "noisy.txt");
        File.WriteAllText(labels, string.Join("\n", Enumerable.Range(0, 10).Select(i => i < 3 ? 1 - i % 2 : i % 2)) + "\n");
        var c = ExperimentConfig.Default with { DataName = "csv", DataPath = train, DataTestPath = train, DataNoisyLabels = labels };
        var d = ExperimentSetup.PrepareData(c, null).Train;
        Assert.True(d.TruthKnown);
        Assert.Equal(3, d.NoisyCount);
        Assert.Equal(Enumerable.Range(0, 10).Select(i => i % 2), d.TrueLabels);

        var npy = Path.Combine(t.Path, "noisy.npy");
        Npy.Write(npy, Enumerable.Range(0, 10).Select(i => i < 3 ? 1 - i % 2 : i % 2).ToArray(), 10);
        Assert.Equal(d.Labels, ExperimentSetup.PrepareData(c with { DataNoisyLabels = npy }, null).Train.Labels);

        File.WriteAllText(labels, "0\n1\n");
        var e = Assert.Throws<DataException>(() => ExperimentSetup.PrepareData(c, null));
        Assert.Contains("noisy.txt: holds 2 labels; the training set", e.Message);
        File.WriteAllText(labels, "0\nseven\n");
        e = Assert.Throws<DataException>(() => ExperimentSetup.PrepareData(c, null));
        Assert.Contains("noisy.txt: line 2: 'seven' is not a label", e.Message);
        var ce = Assert.Throws<ConfigException>(() => (c with { NoiseKind = "symmetric", NoiseRate = 0.2 }).Validate());
        Assert.Equal("data.noisy_labels", ce.Key);
    }

    [Fact]
    public void Exclude_drops_and_relabel_fixes_the_flagged_indices_of_a_label_issues_file()
    {
        using var t = new TempDir("clean");
        var train = Path.Combine(t.Path, "train.csv");
        File.WriteAllText(train, "a,label\n" + string.Join("\n", Enumerable.Range(0, 10).Select(i => $"{i},{i % 2}")) + "\n");
        var issues = Path.Combine(t.Path, "label_issues.csv");
        File.WriteAllText(issues, "index,given_label,suggested_label,score,is_issue\n0,0,1,0.9,1\n1,1,1,0.2,0\n7,1,0,0.8,1\n");
        var c = ExperimentConfig.Default with { DataName = "csv", DataPath = train, DataTestPath = train };

        var excluded = ExperimentSetup.PrepareData(c with { DataExclude = issues }, null).Train;
        Assert.Equal(8, excluded.Count);
        Assert.Equal([1f, 2, 3, 4, 5, 6, 8, 9], excluded.Features);

        var relabelled = ExperimentSetup.PrepareData(c with { DataRelabel = issues }, null).Train;
        Assert.Equal(10, relabelled.Count);
        Assert.Equal(1, relabelled.Labels[0]);
        Assert.Equal(0, relabelled.Labels[7]);
        Assert.Equal(1, relabelled.Labels[1]);

        File.WriteAllText(issues, "index,suggested_label,is_issue\n3,0,1\n10,0,1\n");
        var e = Assert.Throws<DataException>(() => ExperimentSetup.PrepareData(c with { DataExclude = issues }, null));
        Assert.Contains("label_issues.csv: row 2 (line 3), column 1: index 10 is out of range; the training set has 10 samples", e.Message);

        using var r = new TempDir("cleancli");
        string yaml = $"epochs: 1\nbatch_size: 2\ndata:\n  name: csv\n  path: {train}\n  test_path: {train}\n  relabel: {issues}\nmodel:\n  hidden: [4]\n";
        var (code, _, err) = TestCli.Train(r.Path, yaml, "--out", r.Sub("run"));
        Assert.Equal(2, code);
        Assert.Single(err.Trim().Split('\n'));
        Assert.Contains("index 10 is out of range", err);
        Assert.NotEqual(RunStatus.Complete, RunDirectory.ReadStatus(r.Sub("run"))?.Status);
    }

    [Fact]
    public void Folds_are_stratified_by_given_label_and_refuse_more_folds_than_a_class_has_samples()
    {
        var labels = Enumerable.Range(0, 103).Select(i => i < 80 ? i % 2 : 2).ToArray();
        var d = new Dataset("s", new float[103], [1], labels, 3);
        var folds = Splits.StratifiedFolds(d, 5, Rng.ForPurpose(3, "folds"));
        for (int c = 0; c < 3; c++)
        {
            var sizes = Enumerable.Range(0, 5).Select(f => Enumerable.Range(0, 103).Count(i => folds[i] == f && labels[i] == c)).ToArray();
            Assert.True(sizes.Max() - sizes.Min() <= 1, $"class {c}: {string.Join(",", sizes)}");
        }
        var total = Enumerable.Range(0, 5).Select(f => folds.Count(x => x == f)).ToArray();
        Assert.True(total.Max() - total.Min() <= 1);
        Assert.Equal(folds, Splits.StratifiedFolds(d, 5, Rng.ForPurpose(3, "folds")));

        var e = Assert.Throws<ArgumentOutOfRangeException>(() => Splits.StratifiedFolds(d, 24, Rng.ForPurpose(3, "folds")));
        Assert.Contains("class 2 has only 23 samples", e.Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => Splits.StratifiedFolds(d, 1, Rng.ForPurpose(3, "folds")));
    }
}
