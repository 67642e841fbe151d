using System.Buffers.Binary;

namespace LabelNoiseLab.Data;

/// <summary>
/// IDX files (MNIST, Fashion-MNIST), raw or gzip-compressed (detected from the content). Images
/// (magic 0x00000803: unsigned bytes, 3 dimensions) become float32 in [0, 1] with sample shape
/// [1, rows, cols]; labels (magic 0x00000801) must be below the number of classes.
/// </summary>
public static class IdxLoader
{
    public const int ImagesMagic = 0x00000803;
    public const int LabelsMagic = 0x00000801;

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

    /// <summary>Reads an IDX images file: pixels scaled to [0, 1], count × rows × cols.</summary>
    public static (float[] Pixels, int Count, int Rows, int Cols) ReadImages(string path)
    {
        using var s = DataFiles.OpenMaybeGzip(path, ImagesExpected);
        Span<byte> header = stackalloc byte[16];
        int got = DataFiles.ReadFully(s, header, path);
        CheckMagic(path, header, got, ImagesMagic, ImagesExpected);
        if (got < 16)
            throw new DataException(path, $"truncated header: {got} bytes, expected 16 (magic and 3 dimensions)");
        int count = BinaryPrimitives.ReadInt32BigEndian(header[4..]);
        int rows = BinaryPrimitives.ReadInt32BigEndian(header[8..]);
        int cols = BinaryPrimitives.ReadInt32BigEndian(header[12..]);
        if (count < 0 || rows <= 0 || cols <= 0 || (long)count * rows * cols > Array.MaxLength)
            throw new DataException(path, $"implausible dimensions {count} × {rows} × {cols}");

        long total = (long)count * rows * cols;
        var pixels = new float[total];
        var chunk = new byte[1 << 16];
        long done = 0;
        while (done < total)
        {
            int want = (int)Math.Min(chunk.Length, total - done);
            int n = DataFiles.ReadFully(s, chunk.AsSpan(0, want), path);
            ByteConversion.ToUnitFloats(chunk.AsSpan(0, n), pixels.AsSpan((int)done, n));
            done += n;
            if (n < want)
                throw new DataException(path,
                    $"truncated: header announces {count} images of {rows}×{cols} ({total} pixel bytes), found {done}");
        }
        if (DataFiles.ReadFully(s, chunk.AsSpan(0, 1), path) != 0)
            throw new DataException(path, $"longer than its header says ({count} images of {rows}×{cols})");
        return (pixels, count, rows, cols);
    }

    /// <summary>Reads an IDX labels file; every label must be below <paramref name="numClasses"/>.</summary>
    public static int[] ReadLabels(string path, int numClasses = 10)
    {
        using var s = DataFiles.OpenMaybeGzip(path, LabelsExpected);
        Span<byte> header = stackalloc byte[8];
        int got = DataFiles.ReadFully(s, header, path);
        CheckMagic(path, header, got, LabelsMagic, LabelsExpected);
        if (got < 8)
            throw new DataException(path, $"truncated header: {got} bytes, expected 8 (magic and count)");
        int count = BinaryPrimitives.ReadInt32BigEndian(header[4..]);
        if (count < 0)
            throw new DataException(path, $"negative label count {count}");
        var bytes = new byte[count];
        int n = DataFiles.ReadFully(s, bytes, path);
        if (n < count)
            throw new DataException(path, $"truncated: header announces {count} labels, found {n}");
        if (DataFiles.ReadFully(s, header[..1], path) != 0)
            throw new DataException(path, $"longer than its header says ({count} labels)");
        var labels = new int[count];
        for (int i = 0; i < count; i++)
        {
            if (bytes[i] >= numClasses)
                throw new DataException(path, $"label {bytes[i]} at index {i}; expected labels 0..{numClasses - 1}");
            labels[i] = bytes[i];
        }
        return labels;
    }

    private static void CheckMagic(string path, ReadOnlySpan<byte> header, int got, int magic, string expected)
    {
        if (got < 4)
            throw new DataException(path, $"truncated: {got} bytes, expected {expected}");
        int found = BinaryPrimitives.ReadInt32BigEndian(header);
        if (found != magic)
            throw new DataException(path, $"wrong magic number 0x{found:X8}; expected {expected}");
    }
}
