using System.Buffers.Binary;

namespace LabelNoiseLab.Data;

/// <summary>
/// IDX files (MNIST, Fashion-MNIST), raw or gzip-compressed (detected from the content). Images
/// (magic 0x00000803: unsigned bytes, 3 dimensions) become float32 in [0, 1] with sample shape
/// [1, rows, cols]; labels (magic 0x00000801) must be below the number of classes.
/// </summary>
public static class IdxLoader
{
    internal const int ImagesMagic = 0x00000803;
    internal const int LabelsMagic = 0x00000801;

    private const string ImagesExpected = "an IDX images file with magic 0x00000803 (unsigned bytes, 3 dimensions)";
    private const string LabelsExpected = "an IDX labels file with magic 0x00000801 (unsigned bytes, 1 dimension)";

    /// <summary>Loads an images file and its labels file into one data set.</summary>
    public static Dataset Load(string imagesPath, string labelsPath, string name, int numClasses = 10)
    {
        var (pixels, count, rows, cols) = ReadImages(imagesPath);
        var labels = ReadLabels(labelsPath, numClasses);
        if (labels.Length != count)
            throw new DataException(labelsPath,
                $"holds {labels.Length} labels but the images file {Path.GetFileName(imagesPath)} holds {count} images; expected the same count");
        return new Dataset(name, pixels, [1, rows, cols], labels, numClasses);
    }

    /// <summary>
    /// Reads an IDX images file: pixels scaled to [0, 1], count × rows × cols. The header's
    /// dimensions are checked against the bytes the file really holds (decompressed) before the
    /// pixels are allocated.
    /// </summary>
    public static (float[] Pixels, int Count, int Rows, int Cols) ReadImages(string path)
    {
        using var d = DataFiles.OpenMaybeGzip(path, ImagesExpected);
        Span<byte> header = stackalloc byte[16];
        int got = DataFiles.ReadFully(d.Stream, header, path);
        CheckMagic(d, header, got, ImagesMagic, ImagesExpected);
        if (got < 16)
            throw new DataException(path, Truncated(d, $"truncated header: {got} bytes, expected 16 (magic and 3 dimensions)"));
        int count = BinaryPrimitives.ReadInt32BigEndian(header[4..]);
        int rows = BinaryPrimitives.ReadInt32BigEndian(header[8..]);
        int cols = BinaryPrimitives.ReadInt32BigEndian(header[12..]);
        if (count < 0 || rows <= 0 || cols <= 0 || (long)count * rows * cols > Array.MaxLength)
            throw new DataException(path, $"implausible dimensions {count} × {rows} × {cols}");

        long total = (long)count * rows * cols;
        float[] pixels = [];
        DataFiles.ReadPayload(d, 16, total,
            found => $"truncated: header announces {count} images of {rows}×{cols} ({total} pixel bytes), found {found}",
            $"longer than its header says ({count} images of {rows}×{cols})",
            () => pixels = new float[total],
            (offset, bytes) => ByteConversion.ToUnitFloats(bytes, pixels.AsSpan((int)offset, bytes.Length)));
        return (pixels, count, rows, cols);
    }

    /// <summary>
    /// Reads an IDX labels file; every label must be below <paramref name="numClasses"/>. The
    /// header's count is checked against the bytes the file really holds before anything is allocated.
    /// </summary>
    public static int[] ReadLabels(string path, int numClasses = 10)
    {
        using var d = DataFiles.OpenMaybeGzip(path, LabelsExpected);
        Span<byte> header = stackalloc byte[8];
        int got = DataFiles.ReadFully(d.Stream, header, path);
        CheckMagic(d, header, got, LabelsMagic, LabelsExpected);
        if (got < 8)
            throw new DataException(path, Truncated(d, $"truncated header: {got} bytes, expected 8 (magic and count)"));
        int count = BinaryPrimitives.ReadInt32BigEndian(header[4..]);
        if (count < 0)
            throw new DataException(path, $"negative label count {count}");
        int[] labels = [];
        DataFiles.ReadPayload(d, 8, count,
            found => $"truncated: header announces {count} labels, found {found}",
            $"longer than its header says ({count} labels)",
            () => labels = new int[count],
            (offset, bytes) =>
            {
                for (int j = 0; j < bytes.Length; j++)
                {
                    long i = offset + j;
                    if (bytes[j] >= numClasses)
                        throw new DataException(path, $"label {bytes[j]} at index {i}; expected labels 0..{numClasses - 1}");
                    labels[i] = bytes[j];
                }
            });
        return labels;
    }

    /// <summary>For a gzip file cut short, what is wrong with the gzip stream; otherwise <paramref name="problem"/>.</summary>
    private static string Truncated(DataStream d, string problem) => d.Gzip ? GzipCheck.Diagnose(d.Path) ?? problem : problem;

    private static void CheckMagic(DataStream d, ReadOnlySpan<byte> header, int got, int magic, string expected)
    {
        if (got < 4)
            throw new DataException(d.Path, Truncated(d, $"truncated: {got} bytes, expected {expected}"));
        int found = BinaryPrimitives.ReadInt32BigEndian(header);
        if (found != magic)
            throw new DataException(d.Path, $"wrong magic number 0x{found:X8}; expected {expected}");
    }
}
