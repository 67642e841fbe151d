using System.Buffers.Binary;
using System.Globalization;
using System.IO.Compression;
using System.Text;
using System.Text.RegularExpressions;

namespace LabelNoiseLab.Data;

/// <summary>
/// Features and labels from NumPy files (<c>data.name: npy</c>): embeddings from another model,
/// or the arrays <c>lnlab export features</c> writes.
/// <list type="bullet">
/// <item><c>.npz</c>: arrays <c>x</c> (or <c>features</c>), <c>y</c> (or <c>labels</c>), and optionally
/// <c>y_true</c> (or <c>true_labels</c>), the true labels for evaluation.</item>
/// <item><c>.npy</c>: the features; <c>labels.npy</c> beside it, and optionally <c>true_labels.npy</c>.</item>
/// </list>
/// Features: any float or integer dtype, little-endian, C order, shape [n, d] (flat) or
/// [n, C, H, W] / [n, H, W] (images, read as [C, H, W] / [1, H, W]). Labels: an integer dtype,
/// shape [n], values 0..K-1 with K at most <see cref="CsvLoader.MaxClasses"/>. Anything else
/// (a float label array, a string array, Fortran order, big-endian data, a count that does not
/// match, a truncated file) is a <see cref="DataException"/> naming the file (and the array of an .npz).
/// </summary>
public static class NpyLoader
{
    /// <summary>A parsed array: its values as doubles (exact for every supported dtype up to 2^53) and its shape.</summary>
    internal sealed record NpyArray(string Source, string Descr, int[] Shape, double[] Values)
    {
        public long Count => Shape.Aggregate(1L, (a, b) => a * b);
    }

    /// <summary>Features and labels (and the optional true labels) of one file; not yet a <see cref="Dataset"/>.</summary>
    internal sealed record Arrays(string Path, float[] Features, int[] SampleShape, int[] Labels, int[]? TrueLabels)
    {
        public int MaxLabel => Math.Max(Labels.DefaultIfEmpty(-1).Max(), TrueLabels?.DefaultIfEmpty(-1).Max() ?? -1);
    }

    internal static Arrays ReadArrays(string path)
    {
        if (path.EndsWith(".npz", StringComparison.OrdinalIgnoreCase))
        {
            Dictionary<string, NpyArray> entries;
            using (var fs = DataFiles.OpenRead(path, "an .npz archive of arrays x, y (and y_true)"))
            {
                ZipArchive zip;
                try
                {
                    zip = new ZipArchive(fs, ZipArchiveMode.Read);
                }
                catch (InvalidDataException e)
                {
                    throw new DataException(path, $"not a readable .npz (zip) archive: {e.Message}");
                }
                using (zip)
                {
                    entries = new Dictionary<string, NpyArray>(StringComparer.Ordinal);
                    foreach (var entry in zip.Entries)
                    {
                        if (!entry.FullName.EndsWith(".npy", StringComparison.Ordinal))
                            continue;
                        string name = entry.FullName[..^4];
                        using var s = entry.Open();
                        using var ms = new MemoryStream();
                        try
                        {
                            s.CopyTo(ms);
                        }
                        catch (InvalidDataException e)
                        {
                            throw new DataException(path, $"array '{name}' is damaged: {e.Message}");
                        }
                        entries[name] = Parse($"{path} (array '{name}')", ms.ToArray());
                    }
                }
            }
            NpyArray? Find(params string[] names) => names.Select(n => entries.GetValueOrDefault(n)).FirstOrDefault(a => a is not null);
            var x = Find("x", "features") ?? throw new DataException(path, $"has no array 'x' (or 'features'); it holds {List(entries.Keys)}");
            var y = Find("y", "labels") ?? throw new DataException(path, $"has no array 'y' (or 'labels'); it holds {List(entries.Keys)}");
            return Combine(path, x, y, Find("y_true", "true_labels"));
        }
        var features = Parse(path, ReadAll(path, "a .npy array of features"));
        string dir = System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(path))!;
        string labelsPath = System.IO.Path.Combine(dir, "labels.npy");
        if (!File.Exists(labelsPath))
            throw new DataException(path, $"no labels.npy beside it ({labelsPath}); an .npy of features needs its labels in labels.npy in the same folder");
        var labels = Parse(labelsPath, ReadAll(labelsPath, "a .npy array of integer labels"));
        string truePath = System.IO.Path.Combine(dir, "true_labels.npy");
        var truth = File.Exists(truePath) ? Parse(truePath, ReadAll(truePath, "a .npy array of integer true labels")) : null;
        return Combine(path, features, labels, truth);
    }

    /// <summary>A file of labels, one per sample: <c>.npy</c> (integer, shape [n]) or text, one integer per line.</summary>
    public static int[] ReadLabelFile(string path)
    {
        if (path.EndsWith(".npy", StringComparison.OrdinalIgnoreCase))
            return Labels(Parse(path, ReadAll(path, "a .npy array of integer labels")), path);
        var text = CsvRecords.ReadText(path, "a file of labels, one integer per line");
        var labels = new List<int>();
        int line = 0;
        foreach (var raw in text.Split('\n'))
        {
            line++;
            string cell = raw.Trim();
            if (cell.Length == 0)
                continue;
            if (!int.TryParse(cell, NumberStyles.Integer, CultureInfo.InvariantCulture, out int v) || v < 0 || v >= CsvLoader.MaxClasses)
                throw new DataException(path, $"line {line}: '{(cell.Length <= 40 ? cell : cell[..37] + "...")}' is not a label; expected an integer 0..{CsvLoader.MaxClasses - 1}");
            labels.Add(v);
        }
        if (labels.Count == 0)
            throw new DataException(path, "holds no labels; expected one integer per line");
        return [.. labels];
    }

    private static Arrays Combine(string path, NpyArray x, NpyArray y, NpyArray? truth)
    {
        if (x.Shape.Length is not (2 or 3 or 4))
            throw new DataException(x.Source, $"has shape ({string.Join(", ", x.Shape)}); expected features of shape (n, d), (n, H, W) or (n, C, H, W)");
        int n = x.Shape[0];
        var labels = Labels(y, y.Source);
        if (labels.Length != n)
            throw new DataException(y.Source, $"holds {labels.Length} labels for {n} samples in {System.IO.Path.GetFileName(x.Source)}");
        int[]? trueLabels = null;
        if (truth is not null)
        {
            trueLabels = Labels(truth, truth.Source);
            if (trueLabels.Length != n)
                throw new DataException(truth.Source, $"holds {trueLabels.Length} true labels for {n} samples");
        }
        var features = new float[x.Values.Length];
        for (int i = 0; i < features.Length; i++)
        {
            float f = (float)x.Values[i];
            if (!float.IsFinite(f))
                throw new DataException(x.Source, $"value {i} (sample {i / Math.Max(1, x.Values.Length / Math.Max(1, n))}) is {x.Values[i].ToString(CultureInfo.InvariantCulture)}; expected finite numbers within float32's range");
            features[i] = f;
        }
        int[] shape = x.Shape.Length == 3 ? [1, x.Shape[1], x.Shape[2]] : x.Shape[1..];
        return new Arrays(path, features, shape, labels, trueLabels);
    }

    private static int[] Labels(NpyArray a, string source)
    {
        if (a.Descr[1] is not ('i' or 'u'))
            throw new DataException(source, $"has dtype '{a.Descr}'; labels must be an integer dtype (int64, int32, uint8, ...)");
        if (a.Shape.Length != 1)
            throw new DataException(source, $"has shape ({string.Join(", ", a.Shape)}); labels must be one-dimensional, shape (n,)");
        var labels = new int[a.Values.Length];
        for (int i = 0; i < labels.Length; i++)
        {
            double v = a.Values[i];
            if (v < 0 || v >= CsvLoader.MaxClasses)
                throw new DataException(source, $"label {i} is {v.ToString(CultureInfo.InvariantCulture)}; expected labels 0..{CsvLoader.MaxClasses - 1}");
            labels[i] = (int)v;
        }
        return labels;
    }

    private static byte[] ReadAll(string path, string what)
    {
        using var fs = DataFiles.OpenRead(path, what);
        using var ms = new MemoryStream();
        fs.CopyTo(ms);
        return ms.ToArray();
    }

    private static readonly Regex DescrRe = new(@"'descr'\s*:\s*'([^']*)'", RegexOptions.CultureInvariant);
    private static readonly Regex FortranRe = new(@"'fortran_order'\s*:\s*(True|False)", RegexOptions.CultureInvariant);
    private static readonly Regex ShapeRe = new(@"'shape'\s*:\s*\(([^)]*)\)", RegexOptions.CultureInvariant);

    /// <summary>Parses the bytes of one .npy array (format 1.0, 2.0 or 3.0).</summary>
    internal static NpyArray Parse(string source, byte[] bytes)
    {
        if (bytes.Length < 10 || bytes[0] != 0x93 || Encoding.ASCII.GetString(bytes, 1, 5) != "NUMPY")
            throw new DataException(source, "not a .npy array (no \\x93NUMPY magic)");
        int major = bytes[6];
        int headerLength, start;
        if (major == 1)
            (headerLength, start) = (BinaryPrimitives.ReadUInt16LittleEndian(bytes.AsSpan(8)), 10);
        else if (major is 2 or 3 && bytes.Length >= 12)
            (headerLength, start) = ((int)Math.Min(int.MaxValue, BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(8))), 12);
        else
            throw new DataException(source, $".npy format version {major} is not supported (1, 2 or 3)");
        if ((long)start + headerLength > bytes.Length)
            throw new DataException(source, "truncated: the header is cut off");
        string header = Encoding.UTF8.GetString(bytes, start, headerLength);
        var descr = DescrRe.Match(header);
        var fortran = FortranRe.Match(header);
        var shapeMatch = ShapeRe.Match(header);
        if (!descr.Success || !fortran.Success || !shapeMatch.Success)
            throw new DataException(source, "the .npy header lacks 'descr', 'fortran_order' or 'shape'");
        if (fortran.Groups[1].Value == "True")
            throw new DataException(source, "is stored in Fortran order; save it in C order (np.ascontiguousarray)");
        var shape = new List<int>();
        foreach (var part in shapeMatch.Groups[1].Value.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
        {
            if (!int.TryParse(part.TrimEnd('L'), NumberStyles.None, CultureInfo.InvariantCulture, out int d))
                throw new DataException(source, $"shape entry '{part}' is not a size");
            shape.Add(d);
        }
        string dt = descr.Groups[1].Value;
        if (dt.Length < 3 || dt[0] is not ('<' or '|' or '=') || dt[1] is not ('f' or 'i' or 'u' or 'b')
            || !int.TryParse(dt.AsSpan(2), NumberStyles.None, CultureInfo.InvariantCulture, out int size)
            || !(dt[1] == 'f' ? size is 4 or 8 : dt[1] == 'b' ? size == 1 : size is 1 or 2 or 4 or 8))
            throw new DataException(source, $"has dtype '{dt}'; expected little-endian numbers (float32, float64, int8..int64, uint8..uint64, bool)");
        long count = shape.Aggregate(1L, (a, b) => a * b);
        long data = bytes.Length - (long)start - headerLength;
        if (count * size > data)
            throw new DataException(source, $"truncated: shape ({string.Join(", ", shape)}) of '{dt}' needs {count * size} bytes, the file holds {data}");
        if (count > int.MaxValue)
            throw new DataException(source, $"shape ({string.Join(", ", shape)}) is too large");
        var values = new double[count];
        var span = bytes.AsSpan(start + headerLength);
        for (int i = 0; i < count; i++)
        {
            var b = span.Slice(i * size, size);
            values[i] = (dt[1], size) switch
            {
                ('f', 4) => BinaryPrimitives.ReadSingleLittleEndian(b),
                ('f', _) => BinaryPrimitives.ReadDoubleLittleEndian(b),
                ('b', _) => b[0] != 0 ? 1 : 0,
                ('i', 1) => (sbyte)b[0],
                ('i', 2) => BinaryPrimitives.ReadInt16LittleEndian(b),
                ('i', 4) => BinaryPrimitives.ReadInt32LittleEndian(b),
                ('i', _) => BinaryPrimitives.ReadInt64LittleEndian(b),
                ('u', 1) => b[0],
                ('u', 2) => BinaryPrimitives.ReadUInt16LittleEndian(b),
                ('u', 4) => BinaryPrimitives.ReadUInt32LittleEndian(b),
                _ => BinaryPrimitives.ReadUInt64LittleEndian(b),
            };
        }
        return new NpyArray(source, dt, [.. shape], values);
    }

    private static string List(IEnumerable<string> names)
    {
        var list = names.ToList();
        return list.Count == 0 ? "no arrays" : "arrays " + string.Join(", ", list);
    }
}
