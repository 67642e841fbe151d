using System.Globalization;
using System.Text;

namespace LabelNoiseLab.RunFiles;

/// <summary>
/// One evaluation: one row of <c>metrics.csv</c>. A metric left at NaN (not measured, or an empty
/// group such as "no noisy samples") is written as an empty cell.
/// </summary>
public sealed record MetricsRow
{
    /// <summary>The epoch this row was evaluated in (mid-epoch evaluations) or after.</summary>
    public int Epoch { get; init; }
    /// <summary>Optimizer steps taken when this row was evaluated.</summary>
    public long Step { get; init; }
    /// <summary>Learning rate at that step.</summary>
    public double Lr { get; init; } = double.NaN;
    /// <summary>Mean loss over the training set, scored against the labels trained on (the noisy ones).</summary>
    public double TrainLoss { get; init; } = double.NaN;
    /// <summary>Accuracy (fraction in [0, 1]) over the training set against the labels trained on.</summary>
    public double TrainAcc { get; init; } = double.NaN;
    /// <summary>Mean loss over the training samples whose label was not corrupted.</summary>
    public double CleanLoss { get; init; } = double.NaN;
    /// <summary>Accuracy (fraction) over the training samples whose label was not corrupted.</summary>
    public double CleanAcc { get; init; } = double.NaN;
    /// <summary>Noisy samples scored against their given (wrong) label: memorisation.</summary>
    public double NoisyGivenLoss { get; init; } = double.NaN;
    /// <summary>Accuracy (fraction) of the noisy samples against their given (wrong) label: the share memorised.</summary>
    public double NoisyGivenAcc { get; init; } = double.NaN;
    /// <summary>Noisy samples scored against their true label: recovery.</summary>
    public double NoisyTrueLoss { get; init; } = double.NaN;
    /// <summary>Accuracy (fraction) of the noisy samples against their true label: the share recovered.</summary>
    public double NoisyTrueAcc { get; init; } = double.NaN;
    /// <summary>Mean loss over the (clean) test set.</summary>
    public double TestLoss { get; init; } = double.NaN;
    /// <summary>Accuracy (fraction) over the (clean) test set.</summary>
    public double TestAcc { get; init; } = double.NaN;
    /// <summary>Wall-clock seconds since the run started.</summary>
    public double Seconds { get; init; } = double.NaN;
    /// <summary>Values of the extra columns declared when the writer was opened (e.g. val_loss).</summary>
    public IReadOnlyDictionary<string, double>? Extra { get; init; }
}

/// <summary>
/// Writes <c>metrics.csv</c>: the standard columns in the order of DESIGN.md, then the extra
/// columns declared up front. The whole file is rewritten atomically after every row, so a
/// killed run keeps every row it had evaluated, and a reader never sees half a line.
/// </summary>
public sealed class MetricsWriter
{
    /// <summary>The standard columns of <c>metrics.csv</c>, in order; extra columns follow them.</summary>
    public static IReadOnlyList<string> StandardColumns { get; } =
    [
        "epoch", "step", "lr", "train_loss", "train_acc", "clean_loss", "clean_acc",
        "noisy_given_loss", "noisy_given_acc", "noisy_true_loss", "noisy_true_acc",
        "test_loss", "test_acc", "seconds",
    ];

    private readonly string _path;
    private readonly Action _beforeWrite;
    private readonly StringBuilder _content = new();
    private readonly List<MetricsRow> _rows = [];

    internal MetricsWriter(string path, IReadOnlyList<string> extraColumns, Action beforeWrite, string? resumeCsv = null)
    {
        foreach (var c in extraColumns)
        {
            if (StandardColumns.Contains(c) || c.Length == 0 || c.Any(ch => ch is ',' or '"' or '\n' or '\r'))
                throw new ArgumentException($"invalid extra metrics column '{c}'", nameof(extraColumns));
        }
        if (extraColumns.Distinct().Count() != extraColumns.Count)
            throw new ArgumentException("extra metrics columns repeat", nameof(extraColumns));
        _path = path;
        _beforeWrite = beforeWrite;
        ExtraColumns = [.. extraColumns];
        Columns = [.. StandardColumns, .. ExtraColumns];
        string header = string.Join(',', Columns);
        _content.Append(header).Append('\n');
        if (resumeCsv is not null)
            Restore(resumeCsv, header);
        Flush();
    }

    /// <summary>Every column of the file: <see cref="StandardColumns"/>, then <see cref="ExtraColumns"/>.</summary>
    public IReadOnlyList<string> Columns { get; }

    /// <summary>The extra columns declared when the writer was opened (values in <see cref="MetricsRow.Extra"/>).</summary>
    public IReadOnlyList<string> ExtraColumns { get; }

    /// <summary>Rows written so far (for early stopping, best-epoch figures, the summary).</summary>
    public IReadOnlyList<MetricsRow> Rows => _rows;

    /// <summary>Full path of the <c>metrics.csv</c> being written.</summary>
    public string Path => _path;

    /// <summary>Appends a row and rewrites the file atomically.</summary>
    public void Append(MetricsRow row)
    {
        if (row.Extra is not null)
        {
            foreach (var key in row.Extra.Keys)
            {
                if (!ExtraColumns.Contains(key))
                    throw new ArgumentException($"metrics column '{key}' was not declared when metrics.csv was opened", nameof(row));
            }
        }
        _content.Append(FormatLine(row, ExtraColumns)).Append('\n');
        _rows.Add(row);
        Flush();
    }

    /// <summary>
    /// One row as a line of <c>metrics.csv</c> (no newline): the standard columns, then
    /// <paramref name="extraColumns"/> in that order (a column the row lacks is an empty cell).
    /// </summary>
    public static string FormatLine(MetricsRow row, IReadOnlyList<string> extraColumns)
    {
        ArgumentNullException.ThrowIfNull(row);
        ArgumentNullException.ThrowIfNull(extraColumns);
        var line = new StringBuilder();
        line.Append(row.Epoch.ToString(CultureInfo.InvariantCulture)).Append(',')
            .Append(row.Step.ToString(CultureInfo.InvariantCulture));
        foreach (double v in (double[])[
            row.Lr, row.TrainLoss, row.TrainAcc, row.CleanLoss, row.CleanAcc,
            row.NoisyGivenLoss, row.NoisyGivenAcc, row.NoisyTrueLoss, row.NoisyTrueAcc,
            row.TestLoss, row.TestAcc, row.Seconds])
            line.Append(',').Append(Format(v));
        foreach (var c in extraColumns)
            line.Append(',').Append(row.Extra is not null && row.Extra.TryGetValue(c, out double v) ? Format(v) : "");
        return line.ToString();
    }

    /// <summary>
    /// Round-trip formatting in the invariant culture; NaN (missing) is an empty cell, infinities
    /// are <c>inf</c> / <c>-inf</c> (read as floats by numpy and pandas).
    /// </summary>
    public static string Format(double v) =>
        double.IsNaN(v) ? ""
        : double.IsPositiveInfinity(v) ? "inf"
        : double.IsNegativeInfinity(v) ? "-inf"
        : v.ToString("R", CultureInfo.InvariantCulture);

    /// <summary>
    /// What is wrong with a metrics.csv text (as stored in a checkpoint), or null: a header of the
    /// standard columns first, every row as many cells as the header, epoch and step integers, every
    /// other cell a number, empty, <c>inf</c> or <c>-inf</c>.
    /// </summary>
    public static string? Check(string csv)
    {
        ArgumentNullException.ThrowIfNull(csv);
        var lines = csv.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        if (lines.Length == 0)
            return "no header";
        var header = lines[0].Split(',');
        if (header.Length < StandardColumns.Count || !header.AsSpan(0, StandardColumns.Count).SequenceEqual([.. StandardColumns]))
            return "the header does not start with the standard columns";
        for (int r = 1; r < lines.Length; r++)
        {
            var cells = lines[r].Split(',');
            if (cells.Length != header.Length)
                return $"row {r} has {cells.Length} cells, the header {header.Length}";
            if (!int.TryParse(cells[0], NumberStyles.None, CultureInfo.InvariantCulture, out _)
                || !long.TryParse(cells[1], NumberStyles.None, CultureInfo.InvariantCulture, out _))
                return $"row {r}: epoch '{cells[0]}' or step '{cells[1]}' is not a whole number";
            for (int c = 2; c < cells.Length; c++)
            {
                string cell = cells[c];
                if (cell.Length > 0 && cell is not ("inf" or "-inf" or "NaN")
                    && !double.TryParse(cell, NumberStyles.Float, CultureInfo.InvariantCulture, out _))
                    return $"row {r}, column {header[c]}: '{cell}' is not a number";
            }
        }
        return null;
    }

    /// <summary>
    /// Takes over the rows of a checkpoint's metrics.csv text (a resumed run): the header must be
    /// this writer's, each row is parsed back (round-trip formatting makes that exact).
    /// </summary>
    private void Restore(string csv, string header)
    {
        var lines = csv.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        if (lines.Length == 0 || lines[0] != header)
            throw new DataException(_path, $"the checkpoint's metrics have columns '{(lines.Length == 0 ? "" : lines[0])}', this run writes '{header}'");
        _rows.AddRange(ParseRows(lines, ExtraColumns, _path, "a checkpoint metrics row"));
        foreach (var line in lines.AsSpan(1))
            _content.Append(line).Append('\n');
    }

    /// <summary>
    /// Reads a run's <c>metrics.csv</c> back (a finished sub-run that a resumed preset keeps): its
    /// extra columns (after the standard ones) and every row, exactly as written (round-trip
    /// formatting). A file that is not a metrics.csv is a <see cref="DataException"/> naming it.
    /// </summary>
    internal static (IReadOnlyList<string> ExtraColumns, List<MetricsRow> Rows) Read(string path)
    {
        string csv = File.ReadAllText(path);
        if (Check(csv) is { } problem)
            throw new DataException(path, problem);
        var lines = csv.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        var extra = lines[0].Split(',')[StandardColumns.Count..];
        return (extra, ParseRows(lines, extra, path, "a row"));
    }

    // The rows after the header line, each with every extra column (an empty cell is NaN).
    private static List<MetricsRow> ParseRows(string[] lines, IReadOnlyList<string> extraColumns, string path, string what)
    {
        var rows = new List<MetricsRow>();
        int n = StandardColumns.Count;
        foreach (var line in lines.AsSpan(1))
        {
            var cells = line.Split(',');
            if (cells.Length != n + extraColumns.Count)
                throw new DataException(path, $"{what} has {cells.Length} cells, expected {n + extraColumns.Count}");
            double Cell(int i) => cells[i].Length == 0 ? double.NaN
                : cells[i] == "inf" ? double.PositiveInfinity
                : cells[i] == "-inf" ? double.NegativeInfinity
                : double.Parse(cells[i], CultureInfo.InvariantCulture);
            var extra = new Dictionary<string, double>();
            for (int c = 0; c < extraColumns.Count; c++)
                extra[extraColumns[c]] = Cell(n + c);
            rows.Add(new MetricsRow
            {
                Epoch = int.Parse(cells[0], CultureInfo.InvariantCulture),
                Step = long.Parse(cells[1], CultureInfo.InvariantCulture),
                Lr = Cell(2), TrainLoss = Cell(3), TrainAcc = Cell(4), CleanLoss = Cell(5), CleanAcc = Cell(6),
                NoisyGivenLoss = Cell(7), NoisyGivenAcc = Cell(8), NoisyTrueLoss = Cell(9), NoisyTrueAcc = Cell(10),
                TestLoss = Cell(11), TestAcc = Cell(12), Seconds = Cell(13),
                Extra = extra,
            });
        }
        return rows;
    }

    /// <summary>The file's text as written so far (stored in checkpoints).</summary>
    public string Text => _content.ToString();

    private void Flush()
    {
        _beforeWrite();
        AtomicFile.WriteAllText(_path, _content.ToString());
    }
}
