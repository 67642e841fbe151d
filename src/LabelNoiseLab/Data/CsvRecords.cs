using System.Text;

namespace LabelNoiseLab.Data;

/// <summary>
/// RFC 4180 records: cells separated by a delimiter, records by CRLF or LF; a cell in double
/// quotes may hold the delimiter, line breaks and doubled quotes (<c>""</c> is one quote).
/// Unquoted cells are trimmed of surrounding white space; a blank line is no record. An
/// unterminated quoted cell or text after a closing quote is a <see cref="DataException"/>
/// naming the file and line.
/// </summary>
internal static class CsvRecords
{
    /// <summary>One record: its cells and the 1-based line on which it starts.</summary>
    internal readonly record struct Record(string[] Cells, int Line);

    public static List<Record> Read(string path, string text, char delimiter)
    {
        var records = new List<Record>();
        var cells = new List<string>();
        var cell = new StringBuilder();
        int line = 1, recordLine = 1, i = 0;
        bool quoted = false, any = false;
        void EndCell()
        {
            cells.Add(quoted ? cell.ToString() : cell.ToString().Trim());
            cell.Clear();
            quoted = false;
        }
        void EndRecord()
        {
            EndCell();
            bool blank = cells.Count == 1 && cells[0].Length == 0 && !any;
            if (!blank)
                records.Add(new Record([.. cells], recordLine));
            cells.Clear();
            any = false;
        }
        while (i < text.Length)
        {
            char ch = text[i];
            if (ch == '"' && cell.ToString().Trim().Length == 0 && !quoted)
            {
                // A quoted cell: up to the closing quote that is not doubled.
                cell.Clear();
                quoted = true;
                any = true;
                int startLine = line;
                i++;
                while (true)
                {
                    if (i >= text.Length)
                        throw new DataException(path, $"line {startLine}: a quoted cell is never closed (RFC 4180: a quote inside a quoted cell is written \"\")");
                    char q = text[i];
                    if (q == '"')
                    {
                        if (i + 1 < text.Length && text[i + 1] == '"')
                        {
                            cell.Append('"');
                            i += 2;
                            continue;
                        }
                        i++;
                        break;
                    }
                    if (q == '\n')
                        line++;
                    cell.Append(q);
                    i++;
                }
                // Only white space may follow up to the delimiter or the end of the record.
                while (i < text.Length && text[i] is ' ' or '\t')
                    i++;
                if (i < text.Length && text[i] != delimiter && text[i] != '\r' && text[i] != '\n')
                    throw new DataException(path, $"line {line}: text after a closing quote; expected '{delimiter}' or the end of the line");
                continue;
            }
            if (ch == delimiter)
            {
                EndCell();
                any = true;
                i++;
            }
            else if (ch == '\r' || ch == '\n')
            {
                EndRecord();
                i += ch == '\r' && i + 1 < text.Length && text[i + 1] == '\n' ? 2 : 1;
                line++;
                recordLine = line;
            }
            else
            {
                if (quoted)
                    throw new DataException(path, $"line {line}: text after a closing quote; expected '{delimiter}' or the end of the line");
                cell.Append(ch);
                i++;
            }
        }
        if (cell.Length > 0 || cells.Count > 0 || quoted || any)
            EndRecord();
        return records;
    }

    /// <summary>The whole file as text (regular files only, see <see cref="DataFiles.OpenRead"/>).</summary>
    public static string ReadText(string path, string what)
    {
        using var fs = DataFiles.OpenRead(path, what);
        using var reader = new StreamReader(fs);
        return reader.ReadToEnd();
    }
}
