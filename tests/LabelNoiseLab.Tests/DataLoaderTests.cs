using LabelNoiseLab.Data;

namespace LabelNoiseLab.Tests;

public class DataLoaderTests
{
    private const int Rows = 4, Cols = 3;

    private static (string Images, string Labels, byte[] Pixels, byte[] Labels_) WriteIdx(DataTestFiles f, string prefix, int n, bool gzip, int seed = 1)
    {
        var pixels = DataTestFiles.Pixels(n * Rows * Cols, seed);
        var labels = Enumerable.Range(0, n).Select(i => (byte)(i % 10)).ToArray();
        string ext = gzip ? ".gz" : "";
        var img = f.Write(prefix + "-images-idx3-ubyte" + ext, DataTestFiles.IdxImages(pixels, n, Rows, Cols), gzip);
        var lab = f.Write(prefix + "-labels-idx1-ubyte" + ext, DataTestFiles.IdxLabels(labels), gzip);
        return (img, lab, pixels, labels);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Idx_loads_raw_and_gzip(bool gzip)
    {
        using var f = new DataTestFiles();
        var (img, lab, pixels, labels) = WriteIdx(f, "train", 37, gzip);
        var d = IdxLoader.Load(img, lab, "t");
        Assert.Equal(37, d.Count);
        Assert.Equal([1, Rows, Cols], d.SampleShape);
        Assert.Equal(10, d.NumClasses);
        for (int i = 0; i < pixels.Length; i++)
            Assert.Equal(pixels[i] / 255f, d.Features[i]);
        Assert.Equal(labels.Select(b => (int)b), d.Labels);
        Assert.Equal(d.Labels, d.TrueLabels);
        Assert.DoesNotContain(true, d.NoiseMask);
    }

    [Fact]
    public void Byte_conversion_matches_scalar_loop_at_every_length()
    {
        for (int n = 0; n <= 300; n++)
        {
            var src = DataTestFiles.Pixels(n, n);
            var dst = new float[n];
            ByteConversion.ToUnitFloats(src, dst);
            for (int i = 0; i < n; i++)
                Assert.Equal(src[i] / 255f, dst[i]);
        }
    }

    [Fact]
    public void Idx_wrong_magic_names_the_file()
    {
        using var f = new DataTestFiles();
        var img = f.Write("bad-images", DataTestFiles.IdxImages(new byte[12], 1, Rows, Cols, magic: 0x801));
        var e = Assert.Throws<DataException>(() => IdxLoader.ReadImages(img));
        Assert.Contains("bad-images", e.Message);
        Assert.Contains("magic", e.Message);
        var lab = f.Write("bad-labels", DataTestFiles.IdxLabels([1, 2], magic: 0x803));
        e = Assert.Throws<DataException>(() => IdxLoader.ReadLabels(lab));
        Assert.Contains("bad-labels", e.Message);
        Assert.Contains("magic", e.Message);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Idx_truncated_data_names_the_file(bool gzip)
    {
        using var f = new DataTestFiles();
        var full = DataTestFiles.IdxImages(DataTestFiles.Pixels(5 * Rows * Cols, 2), 5, Rows, Cols);
        var img = f.Write("short-images" + (gzip ? ".gz" : ""), full[..^7], gzip);
        var e = Assert.Throws<DataException>(() => IdxLoader.ReadImages(img));
        Assert.Contains("short-images", e.Message);
        Assert.Contains("truncated", e.Message);

        var lab = f.Write("short-labels", DataTestFiles.IdxLabels([1, 2, 3], count: 5));
        e = Assert.Throws<DataException>(() => IdxLoader.ReadLabels(lab));
        Assert.Contains("short-labels", e.Message);
        Assert.Contains("truncated", e.Message);
    }

    [Fact]
    public void Idx_cut_gzip_stream_is_a_data_exception()
    {
        using var f = new DataTestFiles();
        var gzPath = f.Write("cut.gz", DataTestFiles.IdxImages(DataTestFiles.Pixels(50 * Rows * Cols, 3), 50, Rows, Cols), gzip: true);
        var bytes = File.ReadAllBytes(gzPath);
        File.WriteAllBytes(gzPath, bytes[..(bytes.Length / 2)]);
        var e = Assert.Throws<DataException>(() => IdxLoader.ReadImages(gzPath));
        Assert.Contains("cut.gz", e.Message);
    }

    [Fact]
    public void Idx_count_mismatch_names_the_labels_file()
    {
        using var f = new DataTestFiles();
        var img = f.Write("imgs", DataTestFiles.IdxImages(new byte[6 * Rows * Cols], 6, Rows, Cols));
        var lab = f.Write("labs", DataTestFiles.IdxLabels([0, 1, 2, 3, 4]));
        var e = Assert.Throws<DataException>(() => IdxLoader.Load(img, lab, "t"));
        Assert.Contains("labs", e.Message);
        Assert.Contains("imgs", e.Message);
        Assert.Contains("6", e.Message);
    }

    [Fact]
    public void Idx_label_out_of_range_is_rejected()
    {
        using var f = new DataTestFiles();
        var lab = f.Write("labels-10", DataTestFiles.IdxLabels([0, 10]));
        var e = Assert.Throws<DataException>(() => IdxLoader.ReadLabels(lab));
        Assert.Contains("labels-10", e.Message);
        Assert.Contains("label 10", e.Message);
    }

    [Fact]
    public void Missing_file_names_the_file()
    {
        using var f = new DataTestFiles();
        var missing = f.PathOf("nowhere-images");
        var e = Assert.Throws<DataException>(() => IdxLoader.ReadImages(missing));
        Assert.Contains("nowhere-images", e.Message);
        Assert.Contains("not found", e.Message);
        Assert.Throws<DataException>(() => CifarLoader.Load([f.PathOf("data_batch_9.bin")], "c"));
        e = Assert.Throws<DataException>(() => CsvLoader.Load(f.PathOf("gone.csv")));
        Assert.Contains("gone.csv", e.Message);
    }

    private static byte[] CifarBatch(int records, int seed, out byte[] labels)
    {
        var b = DataTestFiles.Pixels(records * CifarLoader.RecordBytes, seed);
        labels = new byte[records];
        for (int r = 0; r < records; r++)
        {
            labels[r] = (byte)((r * 7 + seed) % 10);
            b[r * CifarLoader.RecordBytes] = labels[r];
        }
        return b;
    }

    [Fact]
    public void Cifar_loads_records_in_order_across_files()
    {
        using var f = new DataTestFiles();
        var b1 = CifarBatch(3, 1, out var l1);
        var b2 = CifarBatch(2, 2, out var l2);
        var d = CifarLoader.Load([f.Write("data_batch_1.bin", b1), f.Write("data_batch_2.bin", b2)], "c");
        Assert.Equal(5, d.Count);
        Assert.Equal([3, 32, 32], d.SampleShape);
        Assert.Equal(l1.Concat(l2).Select(x => (int)x), d.Labels);
        // record 3 (first of the second file), pixel 100 (red plane, row 3, column 4)
        Assert.Equal(b2[1 + 100] / 255f, d.Features[3 * 3072 + 100]);
        Assert.Equal(b1[2 * CifarLoader.RecordBytes + 1 + 3071] / 255f, d.Features[2 * 3072 + 3071]);
    }

    [Fact]
    public void Cifar_truncated_or_bad_label_names_the_file()
    {
        using var f = new DataTestFiles();
        var b = CifarBatch(2, 1, out _);
        var p = f.Write("data_batch_3.bin", b[..^10]);
        var e = Assert.Throws<DataException>(() => CifarLoader.Load([p], "c"));
        Assert.Contains("data_batch_3.bin", e.Message);
        Assert.Contains("truncated", e.Message);
        b[CifarLoader.RecordBytes] = 12;
        p = f.Write("data_batch_4.bin", b);
        e = Assert.Throws<DataException>(() => CifarLoader.Load([p], "c"));
        Assert.Contains("data_batch_4.bin", e.Message);
        Assert.Contains("label 12", e.Message);
    }

    [Fact]
    public void Csv_without_header_uses_last_column_as_label()
    {
        using var f = new DataTestFiles();
        var p = f.WriteText("plain.csv", "1.5,2,0\n-3,4e-1,2\n\n0,0,1\n");
        var d = CsvLoader.Load(p);
        Assert.Equal(3, d.Count);
        Assert.Equal([2], d.SampleShape);
        Assert.Equal(3, d.NumClasses);
        Assert.Equal([0, 2, 1], d.Labels);
        Assert.Equal([1.5f, 2f, -3f, 0.4f, 0f, 0f], d.Features);
    }

    [Fact]
    public void Csv_with_header_detected_and_label_by_name_or_index()
    {
        using var f = new DataTestFiles();
        var p = f.WriteText("head.csv", "class,a,b\n1,0.5,7\n0,1,8\n4,2,9\n");
        var byName = CsvLoader.Load(p, new CsvOptions(LabelColumn: "class"));
        Assert.Equal([1, 0, 4], byName.Labels);
        Assert.Equal(5, byName.NumClasses);
        Assert.Equal([0.5f, 7f, 1f, 8f, 2f, 9f], byName.Features);
        var byIndex = CsvLoader.Load(p, new CsvOptions(LabelColumn: "0"));
        Assert.Equal(byName.Labels, byIndex.Labels);
        Assert.Equal(byName.Features, byIndex.Features);
        var e = Assert.Throws<DataException>(() => CsvLoader.Load(p, new CsvOptions(LabelColumn: "nope")));
        Assert.Contains("head.csv", e.Message);
    }

    [Fact]
    public void Csv_non_numeric_cell_names_file_row_and_column()
    {
        using var f = new DataTestFiles();
        var p = f.WriteText("cells.csv", "x,y,label\n1,2,0\n3,abc,1\n");
        var e = Assert.Throws<DataException>(() => CsvLoader.Load(p));
        Assert.Contains("cells.csv", e.Message);
        Assert.Contains("row 2", e.Message);
        Assert.Contains("column 2", e.Message);
        Assert.Contains("abc", e.Message);
    }

    [Theory]
    [InlineData("1,2,-1\n", "non-negative integer")]
    [InlineData("1,2,0.5\n", "non-negative integer")]
    [InlineData("1,2,0\n1,2\n", "columns")]
    public void Csv_bad_labels_and_ragged_rows_are_rejected(string text, string expected)
    {
        using var f = new DataTestFiles();
        var p = f.WriteText("bad.csv", text);
        var e = Assert.Throws<DataException>(() => CsvLoader.Load(p));
        Assert.Contains("bad.csv", e.Message);
        Assert.Contains(expected, e.Message);
    }

    [Fact]
    public void Csv_source_holds_out_a_seeded_test_split_or_reads_a_test_file()
    {
        using var f = new DataTestFiles();
        var rows = string.Join("\n", Enumerable.Range(0, 50).Select(i => $"{i},{i % 3}"));
        var p = f.WriteText("all.csv", "f,label\n" + rows + "\n");
        var opts = new DataOptions { Name = "csv", CsvPath = p, TestFraction = 0.2, Seed = 4 };
        var a = DataSources.Load(opts);
        var b = DataSources.Load(opts);
        Assert.Equal(40, a.Train.Count);
        Assert.Equal(10, a.Test.Count);
        Assert.Equal(a.Test.Features, b.Test.Features);
        Assert.Empty(a.Train.Features.Intersect(a.Test.Features));

        var t = f.WriteText("test.csv", "f,label\n1,5\n");
        var c = DataSources.Load(opts with { CsvTestPath = t });
        Assert.Equal(50, c.Train.Count);
        Assert.Equal(6, c.Train.NumClasses);
        Assert.Equal(6, c.Test.NumClasses);
    }

    [Fact]
    public void Locator_prefers_data_dir_then_env_and_lists_places_tried()
    {
        using var f = new DataTestFiles();
        foreach (var name in DataSources.IdxFiles)
            f.Write(name + ".gz", [0x1f, 0x8b]);
        Assert.Equal(f.Dir, DataLocator.Locate("mnist", DataSources.IdxFiles, f.Dir, _ => null));
        Assert.Equal(f.Dir, DataLocator.Locate("mnist", DataSources.IdxFiles, null, v => v == "LNLAB_DATA" ? f.Dir : null));

        var empty = Path.Combine(f.Dir, "empty");
        Directory.CreateDirectory(empty);
        var e = Assert.Throws<DataException>(() => DataLocator.Locate("mnist", DataSources.IdxFiles, empty, _ => null));
        Assert.Contains("train-images-idx3-ubyte", e.Message);
        Assert.Contains(empty, e.Message);
        Assert.Contains("looked in", e.Message);
        // with no --data-dir: the environment folder and the Debian folder are both listed
        e = Assert.Throws<DataException>(() => DataLocator.Locate("mnist", DataSources.IdxFiles, null, _ => empty));
        Assert.Contains(empty, e.Message);
        Assert.Contains("/usr/share/datasets/mnist", e.Message);
    }

    [Fact]
    public void Idx_source_loads_both_splits_from_a_data_dir()
    {
        using var f = new DataTestFiles();
        WriteIdx(f, "train", 20, gzip: true, seed: 1);
        WriteIdx(f, "t10k", 8, gzip: false, seed: 2);
        var s = DataSources.Load(new DataOptions { Name = "mnist", DataDir = f.Dir }, _ => null);
        Assert.Equal(20, s.Train.Count);
        Assert.Equal(8, s.Test.Count);
        Assert.Equal("mnist/train", s.Train.Name);
    }

    [Fact]
    public void Real_fashion_mnist_loads_when_installed()
    {
        MachineTools.RequireFashionMnist();
        var s = DataSources.Load(new DataOptions { Name = "fashion-mnist" }, _ => null);
        Assert.Equal(60000, s.Train.Count);
        Assert.Equal(10000, s.Test.Count);
        Assert.Equal([1, 28, 28], s.Train.SampleShape);
        Assert.All(Enumerable.Range(0, 10), c => Assert.Equal(6000, s.Train.Labels.Count(y => y == c)));
        Assert.All(Enumerable.Range(0, 10), c => Assert.Equal(1000, s.Test.Labels.Count(y => y == c)));
        Assert.Equal(0f, s.Train.Features.Min());
        Assert.Equal(1f, s.Train.Features.Max());
    }

    [Fact]
    public void Unknown_source_is_an_argument_error_naming_the_option()
    {
        var e = Assert.Throws<ArgumentException>(() => DataSources.Load(new DataOptions { Name = "imagenet" }));
        Assert.Equal("DataOptions.Name", e.ParamName);
        Assert.Contains("'imagenet'", e.Message, StringComparison.Ordinal);
    }
}
