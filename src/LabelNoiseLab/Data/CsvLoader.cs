using System.Globalization;

namespace LabelNoiseLab.Data;

/// <summary>How a CSV file is read.</summary>
/// <param name="LabelColumn">
/// The label column: a header name, or a 0-based index (negative counts from the end: -1 is the
/// last column). Null means the last column.
/// </param>
/// <param name="HasHeader">Whether the first row is a header; null detects it (a first row with any non-numeric cell is a header).</param>
/// <param name="Delimiter">The cell separator.</param>
public sealed record CsvOptions(string? LabelColumn = null, bool? HasHeader = null, char Delimiter = ',');

/// <summary>
/// A CSV file of numeric features plus one integer label column. Labels must be non-negative
/// integers; the number of classes is the largest label + 1 (or the value given). Sample shape
/// [features]. Blank lines are skipped.
/// </summary>
public static class CsvLoader
{
    /// <summary>The parsed content of one file, before it becomes a <see cref="Dataset"/>.</summary>
    internal sealed record Table(string Path, float[] Features, int[] Labels, int FeatureCount, int MaxLabel);

    public static Dataset Load(string path, CsvOptions? options = null, string? name = null, int? numClasses = null)
    {
        var t = Parse(path, options ?? new CsvOptions());
        return ToDataset(t, name ?? Path.GetFileNameWithoutExtension(path), numClasses ?? t.MaxLabel + 1);
    }

    internal static Dataset ToDataset(Table t, string name, int numClasses)
    {
        if (t.MaxLabel >= numClasses)
            throw new DataException(t.Path, $"label {t.MaxLabel} but only {numClasses} classes; expected labels 0..{numClasses - 1}");
        return new Dataset(name, t.Features, [t.FeatureCount], t.Labels, numClasses);
    }

    internal static Table Parse(string path, CsvOptions options)
    {
        string[] lines;
        using (var fs = DataFiles.OpenRead(path, "a CSV file of numeric features and a label column"))
        using (var reader = new StreamReader(fs))
        {
            var list = new List<string>();
            while (reader.ReadLine() is { } line)
                list.Add(line);
            lines = [.. list];
        }

        int first = 0;
        while (first < lines.Length && string.IsNullOrWhiteSpace(lines[first]))
            first++;
        if (first == lines.Length)
            throw new DataException(path, "empty; expected rows of numeric features and a label column");

        string[] firstCells = Split(lines[first], options.Delimiter);
        bool header = options.HasHeader ?? firstCells.Any(c => !TryNumber(c, out _));
        int columns = firstCells.Length;
        if (columns < 2)
            throw new DataException(path, $"line {first + 1} has {columns} column; expected at least one feature column and a label column");
        int labelCol = ResolveLabelColumn(path, options.LabelColumn, header ? firstCells : null, columns);

        int featureCount = columns - 1;
        var features = new List<float>(lines.Length * featureCount);
        var labels = new List<int>(lines.Length);
        int maxLabel = -1;
        int row = 0;
        for (int li = header ? first + 1 : first; li < lines.Length; li++)
        {
            if (string.IsNullOrWhiteSpace(lines[li]))
                continue;
            row++;
            string[] cells = Split(lines[li], options.Delimiter);
            if (cells.Length != columns)
                throw new DataException(path, $"row {row} (line {li + 1}) has {cells.Length} columns; expected {columns}");
            for (int c = 0; c < columns; c++)
            {
                if (!TryNumber(cells[c], out double v) || !double.IsFinite(v))
                    throw new DataException(path,
                        $"row {row} (line {li + 1}), column {c + 1}: '{cells[c]}' is not a finite number");
                if (c == labelCol)
                {
                    if (v < 0 || v != Math.Floor(v) || v > int.MaxValue - 1)
                        throw new DataException(path,
                            $"row {row} (line {li + 1}), column {c + 1}: label '{cells[c]}'; expected a non-negative integer");
                    labels.Add((int)v);
                    maxLabel = Math.Max(maxLabel, (int)v);
                }
                else
                {
                    features.Add((float)v);
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

    private static string[] Split(string line, char delimiter)
    {
        var cells = line.Split(delimiter);
        for (int i = 0; i < cells.Length; i++)
        {
            var c = cells[i].Trim();
            if (c.Length >= 2 && c[0] == '"' && c[^1] == '"')
                c = c[1..^1].Trim();
            cells[i] = c;
        }
        return cells;
    }

    private static bool TryNumber(string s, out double v) =>
        double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out v);
}
