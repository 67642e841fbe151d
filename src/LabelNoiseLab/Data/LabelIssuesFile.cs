using System.Globalization;

namespace LabelNoiseLab.Data;

/// <summary>
/// Reads a <c>label_issues.csv</c> (as <c>lnlab audit</c> writes it, or by hand) for cleaning:
/// a header row naming at least <c>index</c>; with an <c>is_issue</c> column only its rows with
/// <c>1</c>/<c>true</c> count, without one every row does; relabelling also needs
/// <c>suggested_label</c>. An index is a sample's position in the training set after
/// <c>data.subset</c> and the label noise, before the validation split. Every failure is a
/// <see cref="DataException"/> naming the file (with row and column where it applies).
/// </summary>
public static class LabelIssuesFile
{
    /// <summary>The flagged samples: (index, suggested label or -1 when the file has none), each index once.</summary>
    public static List<(int Index, int Suggested)> Read(string path, int count, int classes, bool needSuggested)
    {
        var records = CsvRecords.Read(path, CsvRecords.ReadText(path, "a label_issues.csv (index, suggested_label, is_issue)"), ',');
        if (records.Count == 0)
            throw new DataException(path, "empty; expected a header row with an 'index' column");
        var header = records[0].Cells;
        int Col(string name) => Array.FindIndex(header, h => string.Equals(h, name, StringComparison.Ordinal));
        int indexCol = Col("index"), suggestedCol = Col("suggested_label"), issueCol = Col("is_issue");
        if (indexCol < 0)
            throw new DataException(path, $"line {records[0].Line}: no 'index' column; header has {string.Join(", ", header)}");
        if (needSuggested && suggestedCol < 0)
            throw new DataException(path, $"line {records[0].Line}: no 'suggested_label' column (data.relabel needs one); header has {string.Join(", ", header)}");
        var result = new List<(int, int)>();
        var seen = new HashSet<int>();
        for (int r = 1; r < records.Count; r++)
        {
            var (cells, line) = (records[r].Cells, records[r].Line);
            if (cells.Length != header.Length)
                throw new DataException(path, $"row {r} (line {line}) has {cells.Length} columns; expected {header.Length}");
            if (issueCol >= 0)
            {
                string flag = cells[issueCol];
                bool? issue = flag switch { "1" or "true" or "True" => true, "0" or "false" or "False" => false, _ => null };
                if (issue is null)
                    throw new DataException(path, $"row {r} (line {line}), column {issueCol + 1}: is_issue '{Short(flag)}'; expected 1, 0, true or false");
                if (!issue.Value)
                    continue;
            }
            int index = Int(path, cells[indexCol], r, line, indexCol, "index");
            if (index >= count)
                throw new DataException(path, $"row {r} (line {line}), column {indexCol + 1}: index {index} is out of range; the training set has {count} samples (0..{count - 1})");
            int suggested = -1;
            if (suggestedCol >= 0)
            {
                suggested = Int(path, cells[suggestedCol], r, line, suggestedCol, "suggested_label");
                if (suggested >= classes)
                    throw new DataException(path, $"row {r} (line {line}), column {suggestedCol + 1}: suggested_label {suggested}; the data set has {classes} classes (0..{classes - 1})");
            }
            if (!seen.Add(index))
                throw new DataException(path, $"row {r} (line {line}), column {indexCol + 1}: index {index} is listed twice");
            result.Add((index, suggested));
        }
        return result;
    }

    private static int Int(string path, string cell, int row, int line, int col, string what) =>
        int.TryParse(cell, NumberStyles.None, CultureInfo.InvariantCulture, out int v)
            ? v
            : throw new DataException(path, $"row {row} (line {line}), column {col + 1}: {what} '{Short(cell)}'; expected an integer ≥ 0");

    private static string Short(string cell) => cell.Length <= 40 ? cell : cell[..37] + "...";
}
