using System.Globalization;

namespace LabelNoiseLab.Data;

/// <summary>How a CSV file is read.</summary>
/// <param name="LabelColumn">
/// The label column: a header name, or a 0-based index (negative counts from the end: -1 is the
/// last column). Null means the last column.
/// </param>
/// <param name="HasHeader">Whether the first row is a header; null detects it (a first row with any non-numeric cell is a header).</param>
/// <param name="Delimiter">The cell separator.</param>
/// <param name="Classes">
/// The number of classes: every label must be below it. Null infers it as the largest label + 1,
/// which may be at most <see cref="CsvLoader.MaxClasses"/>.
/// </param>
public sealed record CsvOptions(string? LabelColumn = null, bool? HasHeader = null, char Delimiter = ',', int? Classes = null);

/// <summary>
/// A CSV file of numeric features plus one integer label column. Labels must be integers
/// 0..K-1: K is the number of classes given, else the largest label + 1, at most
/// <see cref="MaxClasses"/> (a stray large label is an error naming its row and column, never a
/// model with that many outputs). Features must be finite numbers within float32's range. Sample
/// shape [features]. Blank lines are skipped. Cells follow RFC 4180 (see <see cref="CsvRecords"/>): quoted
/// cells may hold the delimiter, line breaks and doubled quotes; messages give the row and the line
/// on which the row starts.
/// </summary>
public static class CsvLoader
{
    /// <summary>The most classes a CSV file's labels may imply when no class count is given: labels 0..999.</summary>
    public const int MaxClasses = 1000;

    /// <summary>The parsed content of one file, before it becomes a <see cref="Dataset"/>.</summary>
    internal sealed record Table(string Path, float[] Features, int[] Labels, int FeatureCount, int MaxLabel);

    /// <summary>
    /// Reads a CSV file into a <see cref="Dataset"/> named <paramref name="name"/> (default: the file
    /// name), with <paramref name="numClasses"/> overriding <see cref="CsvOptions.Classes"/>. A missing or
    /// malformed file is a <see cref="DataException"/> naming the file, row and column.
    /// </summary>
    public static Dataset Load(string path, CsvOptions? options = null, string? name = null, int? numClasses = null)
    {
        options ??= new CsvOptions();
        if (numClasses is not null)
            options = options with { Classes = numClasses };
        var t = Parse(path, options);
        return ToDataset(t, name ?? Path.GetFileNameWithoutExtension(path), options.Classes ?? t.MaxLabel + 1);
    }

    internal static Dataset ToDataset(Table t, string name, int numClasses)
    {
        if (t.MaxLabel >= numClasses)
            throw new DataException(t.Path, $"label {t.MaxLabel} but only {numClasses} classes; expected labels 0..{numClasses - 1}");
        return new Dataset(name, t.Features, [t.FeatureCount], t.Labels, numClasses);
    }

    internal static Table Parse(string path, CsvOptions options)
    {
        if (options.Classes is < 1)
            throw new ArgumentOutOfRangeException(nameof(options), options.Classes, "the number of classes must be at least 1");
        int classes = options.Classes ?? MaxClasses;
        var records = CsvRecords.Read(path, CsvRecords.ReadText(path, "a CSV file of numeric features and a label column"), options.Delimiter);
        if (records.Count == 0)
            throw new DataException(path, "empty; expected rows of numeric features and a label column");

        string[] firstCells = records[0].Cells;
        bool header = options.HasHeader ?? firstCells.Any(c => !TryNumber(c, out _));
        int columns = firstCells.Length;
        if (columns < 2)
            throw new DataException(path, $"line {records[0].Line} has {columns} column; expected at least one feature column and a label column");
        int labelCol = ResolveLabelColumn(path, options.LabelColumn, header ? firstCells : null, columns);

        int featureCount = columns - 1;
        var features = new List<float>(records.Count * featureCount);
        var labels = new List<int>(records.Count);
        int maxLabel = -1;
        int row = 0;
        for (int r = header ? 1 : 0; r < records.Count; r++)
        {
            row++;
            var (cells, li) = (records[r].Cells, records[r].Line - 1);
            if (cells.Length != columns)
                throw new DataException(path, $"row {row} (line {li + 1}) has {cells.Length} columns; expected {columns}");
            for (int c = 0; c < columns; c++)
            {
                if (!TryNumber(cells[c], out double v) || !double.IsFinite(v))
                    throw new DataException(path,
                        $"row {row} (line {li + 1}), column {c + 1}: '{Shorten(cells[c])}' is not a finite number");
                if (c == labelCol)
                {
                    if (v < 0 || v != Math.Floor(v) || v > int.MaxValue - 1)
                        throw new DataException(path,
                            $"row {row} (line {li + 1}), column {c + 1}: label '{Shorten(cells[c])}'; expected a non-negative integer");
                    if (v >= classes)
                        throw new DataException(path, options.Classes is null
                            ? $"row {row} (line {li + 1}), column {c + 1}: label {v:R} is too large; expected labels 0..{MaxClasses - 1} (at most {MaxClasses} classes)"
                            : $"row {row} (line {li + 1}), column {c + 1}: label {v:R}; expected labels 0..{classes - 1} ({classes} classes)");
                    labels.Add((int)v);
                    maxLabel = Math.Max(maxLabel, (int)v);
                }
                else
                {
                    float f = (float)v;
                    if (!float.IsFinite(f))
                        throw new DataException(path,
                            $"row {row} (line {li + 1}), column {c + 1}: '{Shorten(cells[c])}' is outside float32's range (±3.4e38)");
                    features.Add(f);
                }
            }
        }
        if (row == 0)
            throw new DataException(path, "has a header but no data rows");
        return new Table(path, [.. features], [.. labels], featureCount, maxLabel);
    }

    private static int ResolveLabelColumn(string path, string? spec, string[]? header, int columns)
    {
        if (spec is null)
            return columns - 1;
        if (int.TryParse(spec, NumberStyles.Integer, CultureInfo.InvariantCulture, out int index))
        {
            int resolved = index < 0 ? columns + index : index;
            if (resolved < 0 || resolved >= columns)
                throw new DataException(path, $"label column {index} is outside the {columns} columns");
            return resolved;
        }
        if (header is null)
            throw new DataException(path, $"label column '{spec}' is named but the file has no header row");
        int found = Array.FindIndex(header, h => string.Equals(h, spec, StringComparison.Ordinal));
        if (found < 0)
            throw new DataException(path, $"no column named '{spec}'; header has {string.Join(", ", header)}");
        return found;
    }

    /// <summary>A cell as quoted in a message: at most 40 characters.</summary>
    private static string Shorten(string cell) => cell.Length <= 40 ? cell : cell[..37] + "...";

    private static bool TryNumber(string s, out double v) =>
        double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out v);
}
