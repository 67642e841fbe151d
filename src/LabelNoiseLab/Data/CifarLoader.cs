namespace LabelNoiseLab.Data;

/// <summary>
/// CIFAR-10 binary batches: each record is 1 label byte then 3072 pixel bytes (R, G, B planes
/// of 32×32, i.e. CHW). Pixels become float32 in [0, 1]; sample shape [3, 32, 32].
/// </summary>
public static class CifarLoader
{
    internal const int ImageBytes = 3 * 32 * 32;
    internal const int RecordBytes = 1 + ImageBytes;
    /// <summary>CIFAR-10's classes.</summary>
    public const int NumClasses = 10;

    internal static readonly string[] TrainFiles =
        ["data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin", "data_batch_5.bin"];

    internal const string TestFile = "test_batch.bin";

    private const string Expected = "a CIFAR-10 binary batch (records of 1 label byte + 3072 pixel bytes)";

    /// <summary>Loads several batch files, in order, into one data set.</summary>
    public static Dataset Load(IReadOnlyList<string> paths, string name)
    {
        // Sizes first: nothing is allocated for records the files do not hold.
        long records = 0;
        foreach (var path in paths)
        {
            using var fs = DataFiles.OpenRead(path, Expected);
            long length = fs.Length;
            if (length == 0 || length % RecordBytes != 0)
                throw new DataException(path,
                    $"truncated or malformed: {length} bytes is not a positive multiple of the record size {RecordBytes}; expected {Expected}");
            records += length / RecordBytes;
            if (records * ImageBytes > Array.MaxLength)
                throw new DataException(path, $"too many records ({records}) for one array");
        }

        var contents = new List<(string Path, byte[] Bytes)>(paths.Count);
        foreach (var path in paths)
        {
            byte[] bytes;
            using (var fs = DataFiles.OpenRead(path, Expected))
            {
                bytes = new byte[fs.Length];
                if (DataFiles.ReadFully(fs, bytes, path) != bytes.Length)
                    throw new DataException(path, $"changed while being read; expected {Expected}");
            }
            contents.Add((path, bytes));
        }
        if (contents.Sum(c => (long)c.Bytes.Length) != records * RecordBytes)
            throw new DataException(paths[0], $"changed while being read; expected {Expected}");

        var features = new float[records * ImageBytes];
        var labels = new int[records];
        int r = 0;
        foreach (var (path, bytes) in contents)
        {
            for (int off = 0; off < bytes.Length; off += RecordBytes, r++)
            {
                byte label = bytes[off];
                if (label >= NumClasses)
                    throw new DataException(path, $"label {label} in record {off / RecordBytes}; expected 0..{NumClasses - 1}");
                labels[r] = label;
                ByteConversion.ToUnitFloats(bytes.AsSpan(off + 1, ImageBytes), features.AsSpan(r * ImageBytes, ImageBytes));
            }
        }
        return new Dataset(name, features, [3, 32, 32], labels, NumClasses);
    }
}
