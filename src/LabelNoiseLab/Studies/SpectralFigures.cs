using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using LabelNoiseLab.Probes;
using LabelNoiseLab.RunFiles;

namespace LabelNoiseLab.Studies;

/// <summary>
/// What the spectral-tail preset reads of one probe of a run (<see cref="SpectralRunProbe"/>):
/// the figures of summary.json and the rows of spectral.csv. Taken from the probe just run
/// (<see cref="Of"/>), or read back from the files of a run a resumed preset keeps
/// (<see cref="Read"/>), which gives the same numbers: both files are written round-trip.
/// </summary>
internal sealed record SpectralFigures(int Classes, double FullTestAcc, int? BestDByVal, double TruncTestAccAtBestD, double EffectiveRank,
    double EffectiveRankAtInit, int? ProbeBestD, double ProbeBestTestAcc, IReadOnlyList<SpectralRow> Rows)
{
    /// <summary>The row of <paramref name="d"/>, or null when the grid has no such d.</summary>
    public SpectralRow? RowAt(int d) => Rows.FirstOrDefault(r => r.D == d);

    /// <summary>The figures of a probe just run.</summary>
    public static SpectralFigures Of(SpectralRunReport report)
    {
        ArgumentNullException.ThrowIfNull(report);
        var t = report.Trained;
        return new(t.Classes, t.FullTestAcc, t.BestDByVal, t.TruncTestAccAtBestD, t.EffectiveRank, report.Init?.EffectiveRank ?? double.NaN,
            t.ProbeBestD, t.ProbeBestTestAcc, t.Rows);
    }

    /// <summary>
    /// The figures a probe wrote into <paramref name="runDir"/> (<paramref name="suffix"/>: "" for
    /// the final model, <c>_early_stopped</c>); a missing or malformed file is a <see cref="DataException"/> naming it.
    /// </summary>
    public static SpectralFigures Read(string runDir, string suffix)
    {
        string summaryPath = Path.Combine(runDir, RunDirectory.SummaryFile);
        JsonObject summary;
        try
        {
            summary = JsonNode.Parse(File.ReadAllText(summaryPath)) as JsonObject ?? throw new DataException(summaryPath, "not a JSON object");
        }
        catch (JsonException e)
        {
            throw new DataException(summaryPath, $"not valid JSON ({e.Message})");
        }
        object? Value(string key) => SubRun.Plain(summary[key]);
        double Number(string key) => Value(key) switch
        {
            double d => d,
            int i => i,
            long l => l,
            null => double.NaN,
            var v => throw new DataException(summaryPath, $"'{key}' is {v}, not a number"),
        };
        int? Whole(string key) => Value(key) switch
        {
            null => null,
            int i => i,
            var v => throw new DataException(summaryPath, $"'{key}' is {v}, not a whole number"),
        };
        int classes = (summary["spectral_probe"] as JsonObject)?["classes"] is JsonValue c && c.TryGetValue(out int k) ? k
            : throw new DataException(summaryPath, "has no spectral_probe.classes (was the run probed?)");
        return new(classes, Number("full_test_acc" + suffix), Whole("best_d_by_val" + suffix), Number("trunc_test_acc_at_best_d" + suffix),
            Number("effective_rank" + suffix), suffix.Length == 0 ? Number("effective_rank_at_init") : double.NaN,
            Whole("probe_best_d" + suffix), Number("probe_best_test_acc" + suffix), ReadRows(Path.Combine(runDir, $"spectral{suffix}.csv")));
    }

    private static List<SpectralRow> ReadRows(string path)
    {
        if (!File.Exists(path))
            throw new DataException(path, "missing; a probed run has one");
        var lines = File.ReadAllLines(path).Where(l => l.Length > 0).ToList();
        if (lines.Count == 0 || lines[0] != SpectralResult.SpectralHeader)
            throw new DataException(path, $"expected the header '{SpectralResult.SpectralHeader}'");
        var rows = new List<SpectralRow>();
        foreach (var line in lines.Skip(1))
        {
            var cells = line.Split(',');
            if (cells.Length != 9 || !int.TryParse(cells[0], NumberStyles.None, CultureInfo.InvariantCulture, out int d))
                throw new DataException(path, $"row '{line}': expected d and 8 numbers");
            double Cell(int i) => cells[i].Length == 0 ? double.NaN
                : double.TryParse(cells[i], NumberStyles.Float, CultureInfo.InvariantCulture, out double v) ? v
                : throw new DataException(path, $"row '{line}': '{cells[i]}' is not a number");
            rows.Add(new SpectralRow(d, Cell(1), Cell(2), Cell(3), Cell(4), Cell(5), Cell(6), Cell(7), Cell(8)));
        }
        return rows;
    }
}
