using System.Globalization;
using System.Text;
using LabelNoiseLab.RunFiles;

namespace LabelNoiseLab.Studies;

/// <summary>
/// Concatenates one CSV file of several sub-runs into one table with a leading column naming the
/// run (the sub-runs' files must share a header; a run without the file adds nothing).
/// </summary>
internal sealed class CsvConcat(string runColumn)
{
    private readonly StringBuilder _text = new();
    private string? _header;

    public void Add(string run, string path)
    {
        if (!File.Exists(path))
            return;
        var lines = File.ReadAllLines(path);
        if (lines.Length == 0)
            return;
        if (_header is null)
        {
            _header = lines[0];
            _text.Append(runColumn).Append(',').Append(_header).Append('\n');
        }
        else if (_header != lines[0])
            throw new InvalidDataException($"{path}: header '{lines[0]}' differs from '{_header}'");
        foreach (var line in lines.Skip(1).Where(l => l.Length > 0))
            _text.Append(run).Append(',').Append(line).Append('\n');
    }

    /// <summary>The table (empty when no run had the file).</summary>
    public string Text => _text.ToString();

    /// <summary>Rows of named values as a CSV table (columns of the first row; null = empty cell).</summary>
    public static string Table(IReadOnlyList<Dictionary<string, object?>> rows)
    {
        ArgumentNullException.ThrowIfNull(rows);
        if (rows.Count == 0)
            return "";
        var columns = rows[0].Keys.ToList();
        var sb = new StringBuilder(string.Join(",", columns)).Append('\n');
        foreach (var row in rows)
            sb.Append(string.Join(",", columns.Select(c => Cell(row.GetValueOrDefault(c))))).Append('\n');
        return sb.ToString();
    }

    public static string Cell(object? v) => v switch
    {
        null => "",
        double d => MetricsWriter.Format(d),
        float f => MetricsWriter.Format(f),
        bool b => b ? "true" : "false",
        IFormattable f => f.ToString(null, CultureInfo.InvariantCulture),
        _ => v.ToString() ?? "",
    };
}
