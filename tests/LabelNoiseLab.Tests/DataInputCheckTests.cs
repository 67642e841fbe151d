using System.Buffers.Binary;
using System.Diagnostics;
using System.IO.Compression;
using LabelNoiseLab.Data;
using LabelNoiseLab.RunFiles;

namespace LabelNoiseLab.Tests;

/// <summary>
/// Issue 12, item 4: data files are checked before they cost memory, labels against the class
/// count, CSV values against float32, train against test shapes; only regular files are read;
/// messages are one printable line; each gzip failure is named for what it is.
/// </summary>
public class DataInputCheckTests
{
    private static DataException Fails(Action load) => Assert.Throws<DataException>(load);

    private static byte[] Gzip(byte[] bytes)
    {
        var ms = new MemoryStream();
        using (var gz = new GZipStream(ms, CompressionLevel.Fastest, leaveOpen: true))
            gz.Write(bytes);
        return ms.ToArray();
    }

    private static byte[] Labels(int n) => DataTestFiles.IdxLabels([.. Enumerable.Range(0, n).Select(i => (byte)(i % 10))]);

    /// <summary>An IDX set in a folder: images rows × cols (train and test may differ), labels 0..9.</summary>
    internal static string WriteIdxSet(DataTestFiles f, bool gzip, int trainN = 40, int testN = 20, int rows = 4, int cols = 4, int testRows = 4, int testCols = 4)
    {
        string ext = gzip ? ".gz" : "";
        f.Write(DataSources.IdxFiles[0] + ext, DataTestFiles.IdxImages(DataTestFiles.Pixels(trainN * rows * cols, 1), trainN, rows, cols), gzip);
        f.Write(DataSources.IdxFiles[1] + ext, Labels(trainN), gzip);
        f.Write(DataSources.IdxFiles[2] + ext, DataTestFiles.IdxImages(DataTestFiles.Pixels(testN * testRows * testCols, 2), testN, testRows, testCols), gzip);
        f.Write(DataSources.IdxFiles[3] + ext, Labels(testN), gzip);
        return f.Dir;
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void An_idx_labels_header_announcing_2_billion_labels_is_refused_before_allocating(bool gzip)
    {
        using var f = new DataTestFiles();
        var bytes = Labels(10);
        BinaryPrimitives.WriteInt32BigEndian(bytes.AsSpan(4), int.MaxValue);
        var path = f.Write("labels", bytes, gzip);
        long before = GC.GetTotalAllocatedBytes(precise: true);
        var e = Fails(() => IdxLoader.ReadLabels(path));
        Assert.True(GC.GetTotalAllocatedBytes(precise: true) - before < 64 << 20, "allocated as the header says");
        Assert.StartsWith(path + ": truncated: header announces 2147483647 labels, found 10", e.Message);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void An_idx_images_header_announcing_millions_of_images_is_refused_before_allocating(bool gzip)
    {
        using var f = new DataTestFiles();
        var path = f.Write("images", DataTestFiles.IdxImages(DataTestFiles.Pixels(5 * 28 * 28, 3), 2_700_000, 28, 28), gzip);
        long before = GC.GetTotalAllocatedBytes(precise: true);
        var e = Fails(() => IdxLoader.ReadImages(path));
        Assert.True(GC.GetTotalAllocatedBytes(precise: true) - before < 64 << 20, "allocated as the header says");
        Assert.Contains("truncated: header announces 2700000 images of 28×28", e.Message, StringComparison.Ordinal);
        Assert.Contains("found 3920", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void An_idx_labels_file_longer_than_its_header_is_refused_raw_and_gzip()
    {
        using var f = new DataTestFiles();
        var bytes = Labels(10);
        BinaryPrimitives.WriteInt32BigEndian(bytes.AsSpan(4), 9);
        Assert.Contains("longer than its header says (9 labels)", Fails(() => IdxLoader.ReadLabels(f.Write("raw", bytes))).Message, StringComparison.Ordinal);
        Assert.Contains("longer than its header says (9 labels)", Fails(() => IdxLoader.ReadLabels(f.Write("gz", bytes, gzip: true))).Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Idx_train_and_test_image_shapes_must_match(bool gzip)
    {
        using var f = new DataTestFiles();
        WriteIdxSet(f, gzip, rows: 14, cols: 56, testRows: 28, testCols: 28);
        var e = Fails(() => DataSources.Load(new DataOptions { Name = "mnist", DataDir = f.Dir }));
        Assert.Contains("t10k-images-idx3-ubyte", e.File, StringComparison.Ordinal);
        Assert.Contains("holds images of 28×28; expected 14×56 like the training images", e.Message, StringComparison.Ordinal);
        Assert.Contains(Path.Combine(f.Dir, "train-images-idx3-ubyte"), e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Cifar_sizes_are_checked_before_reading_and_labels_against_ten_classes()
    {
        using var f = new DataTestFiles();
        var record = new byte[CifarLoader.RecordBytes];
        Assert.Contains("not a positive multiple of the record size", Fails(() => CifarLoader.Load([f.Write("short.bin", record[..100])], "c")).Message, StringComparison.Ordinal);
        record[0] = 10;
        Assert.Contains("label 10 in record 0; expected 0..9", Fails(() => CifarLoader.Load([f.Write("label.bin", record)], "c")).Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("50000")]
    [InlineData("1000000000")]
    [InlineData("1000")]
    public void A_stray_large_csv_label_is_refused_with_its_row_and_column(string label)
    {
        using var f = new DataTestFiles();
        var path = f.WriteText("d.csv", $"a,b,label\n0.5,1,0\n0.25,2,{label}\n1,3,1\n");
        var e = Fails(() => CsvLoader.Load(path));
        Assert.Equal($"{path}: row 2 (line 3), column 3: label {label} is too large; expected labels 0..999 (at most 1000 classes)", e.Message);
        // 999 is the largest label that is inferred
        var ok = CsvLoader.Load(f.WriteText("ok.csv", "a,b,label\n0.5,1,0\n0.25,2,999\n"));
        Assert.Equal(1000, ok.NumClasses);
    }

    [Fact]
    public void A_given_csv_class_count_bounds_the_labels()
    {
        using var f = new DataTestFiles();
        var path = f.WriteText("d.csv", "a,label\n0.5,0\n0.25,3\n");
        Assert.Equal($"{path}: row 2 (line 3), column 2: label 3; expected labels 0..2 (3 classes)", Fails(() => CsvLoader.Load(path, numClasses: 3)).Message);
        Assert.Equal(5, CsvLoader.Load(path, numClasses: 5).NumClasses);
    }

    [Theory]
    [InlineData("1e39")]
    [InlineData("1e300")]
    [InlineData("-1e39")]
    public void Csv_values_outside_float32_are_refused_with_row_and_column(string value)
    {
        using var f = new DataTestFiles();
        var path = f.WriteText("d.csv", $"a,b,label\n0.5,1,0\n0.25,{value},1\n");
        Assert.Equal($"{path}: row 2 (line 3), column 2: '{value}' is outside float32's range (±3.4e38)", Fails(() => CsvLoader.Load(path)).Message);
        // the largest float32 is still a value
        Assert.Equal(float.MaxValue, CsvLoader.Load(f.WriteText("max.csv", "a,label\n3.4028235e38,0\n1,1\n")).Features[0]);
    }

    [Fact]
    public void A_fifo_or_a_device_is_refused_without_being_opened()
    {
        Assert.SkipWhen(OperatingSystem.IsWindows(), "FIFOs and /dev are Unix");
        using var f = new DataTestFiles();
        string fifo = f.PathOf("fifo.csv");
        using (var p = Process.Start("mkfifo", [fifo]))
            p.WaitForExit();
        // a FIFO would block the reader until a writer came: the test would hang, not fail
        var e = Fails(() => CsvLoader.Load(fifo));
        Assert.Equal($"{fifo}: is not a regular file (a FIFO); expected a CSV file of numeric features and a label column", e.Message);
        Assert.Contains("is not a regular file (a character device)", Fails(() => CsvLoader.Load("/dev/zero")).Message, StringComparison.Ordinal);
        Assert.Contains("is not a regular file (a character device)", Fails(() => IdxLoader.ReadLabels("/dev/zero")).Message, StringComparison.Ordinal);
        Assert.Contains("is not a regular file (a FIFO)", Fails(() => CifarLoader.Load([fifo], "c")).Message, StringComparison.Ordinal);

        // in a data folder: the IDX file found there is a FIFO
        WriteIdxSet(f, gzip: false);
        string labels = Path.Combine(f.Dir, DataSources.IdxFiles[1]);
        File.Delete(labels);
        using (var p = Process.Start("mkfifo", [labels]))
            p.WaitForExit();
        Assert.Contains("is not a regular file (a FIFO)", Fails(() => DataSources.Load(new DataOptions { Name = "mnist", DataDir = f.Dir })).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Control_characters_from_a_file_are_escaped_and_the_message_is_one_line()
    {
        using var f = new DataTestFiles();
        var path = f.WriteText("d.csv", "a,label\n0.5,0\n0\u0007\u001b[31m,1\n");
        var e = Fails(() => CsvLoader.Load(path));
        Assert.Equal($"{path}: row 2 (line 3), column 1: '0\\u0007\\u001B[31m' is not a finite number", e.Message);
        Assert.DoesNotContain(e.Message, char.IsControl);
        Assert.Equal("a\\u000Ab\\u2028c", new InputException("a\nb\u2028c").Message);
    }

    private static byte[] GoodGzipLabels(int n = 300) => Gzip(Labels(n));

    [Fact]
    public void Gzip_damage_is_named_for_what_it_is()
    {
        using var f = new DataTestFiles();
        var good = GoodGzipLabels();
        string Problem(string name, byte[] bytes) => Fails(() => IdxLoader.ReadLabels(f.Write(name, bytes))).Message;

        var crc = (byte[])good.Clone();
        crc[^6] ^= 1;
        Assert.Contains("gzip CRC mismatch", Problem("crc", crc), StringComparison.Ordinal);

        var size = (byte[])good.Clone();
        size[^3] ^= 1;
        Assert.Contains("gzip length mismatch", Problem("size", size), StringComparison.Ordinal);

        var method = (byte[])good.Clone();
        method[2] = 7;
        Assert.Contains("unsupported gzip compression method 7", Problem("method", method), StringComparison.Ordinal);

        var flags = (byte[])good.Clone();
        flags[3] = 0x80;
        Assert.Contains("corrupt gzip header", Problem("flags", flags), StringComparison.Ordinal);

        foreach (int cut in (int[])[4, 8, 12, good.Length / 2, good.Length - 12])
            Assert.Contains("truncated gzip stream", Problem("cut" + cut, good[..(good.Length - cut)]), StringComparison.Ordinal);

        // a damaged block header: invalid deflate data
        var data = (byte[])good.Clone();
        data[10] = 0xFF;
        string corrupt = Problem("data", data);
        Assert.True(corrupt.Contains("corrupt gzip data", StringComparison.Ordinal) || corrupt.Contains("gzip CRC mismatch", StringComparison.Ordinal), corrupt);
        Assert.DoesNotContain("unsupported compression method", corrupt, StringComparison.Ordinal);
    }

    [Fact]
    public void Valid_gzip_variants_still_load_multi_member_and_trailing_bytes()
    {
        using var f = new DataTestFiles();
        var raw = Labels(300);
        var expected = IdxLoader.ReadLabels(f.Write("raw", raw));
        // two members, concatenated (cat a.gz b.gz): one stream
        var twoMembers = Gzip(raw[..100]).Concat(Gzip(raw[100..])).ToArray();
        Assert.Equal(expected, IdxLoader.ReadLabels(f.Write("two", twoMembers)));
        // bytes after the last member are ignored, as GZipStream does
        Assert.Equal(expected, IdxLoader.ReadLabels(f.Write("trailing", [.. GoodGzipLabels(), 1, 2, 3])));
    }

    [Fact]
    public void Lnlab_train_on_a_huge_idx_header_is_exit_2_naming_the_file()
    {
        using var f = new DataTestFiles();
        WriteIdxSet(f, gzip: true);
        var labels = Labels(40);
        BinaryPrimitives.WriteInt32BigEndian(labels.AsSpan(4), int.MaxValue);
        string path = f.Write(DataSources.IdxFiles[1] + ".gz", labels, gzip: true);
        using var dir = new TempDir("huge");
        string outDir = dir.Sub("out");
        var (code, _, err) = TestCli.Train(dir.Path, "name: h\nepochs: 1\nthreads: 1\ndata: {name: mnist}\nmodel: {hidden: [8]}\n", "--out", outDir, "--data-dir", f.Dir);
        Assert.Equal(2, code);
        Assert.Equal($"lnlab: {path}: truncated: header announces 2147483647 labels, found 40\n", err.ReplaceLineEndings("\n"));
        Assert.NotEqual(RunStatus.Complete, RunDirectory.ReadStatus(outDir)?.Status);
    }
}
