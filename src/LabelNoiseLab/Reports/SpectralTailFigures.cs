using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;

namespace LabelNoiseLab.Reports;

/// <summary>
/// The spectral-tail preset's figures (the malignant-tail paper's axes), for the MLP at the
/// preset's width: the spectral probe's test accuracy against d on a log axis, one line per
/// noise rate (mean ± std over seeds as a band); the test accuracy of the full model, of its
/// truncation to the top d directions (d chosen on noisy validation labels) and of the
/// early-stopped model against the noise rate, mean ± std over seeds as error bars; the tail
/// energy at d = classes against width. Read from results.csv, per_d.csv, aggregate.csv and
/// widths.csv.
/// </summary>
internal static partial class HtmlReport
{
    private static void AddSpectralTailFigures(List<JsonObject> charts, StringBuilder page, string dir, CsvTable results)
    {
        static double Num(object? v) => v is double d ? d : double.NaN;
        int width = MainWidth(dir, results);
        bool Main(Dictionary<string, object?> r) => r.GetValueOrDefault("model") as string == "mlp" && Num(r.GetValueOrDefault("width")) == width;
        string widthText = width.ToString(CultureInfo.InvariantCulture);

        // The probe's valley: per_d.csv joined to results.csv by run (results.csv writes runs/<name>).
        string perD = Path.Combine(dir, "per_d.csv");
        if (File.Exists(perD))
        {
            var rate = results.Rows.Where(Main).ToDictionary(r => (r.GetValueOrDefault("run")?.ToString() ?? "").Replace("runs/", "", StringComparison.Ordinal), r => Num(r.GetValueOrDefault("noise_rate")));
            var points = new List<(double X, string Group, double Y)>();
            foreach (var r in ReadCsv(perD).Rows)
            {
                if (rate.TryGetValue(r.GetValueOrDefault("run")?.ToString() ?? "", out double noise) && r.GetValueOrDefault("d") is double d && d > 0
                    && r.GetValueOrDefault("probe_test_acc") is double acc && double.IsFinite(acc))
                    points.Add((d, "noise " + SweepSummary.Format(noise), acc));
            }
            if (points.Count > 0)
            {
                page.Append("<h2>spectral linear probe: test accuracy on the top d principal components of the penultimate features (MLP, width ").Append(widthText).Append(")</h2>\n");
                Emit(charts, page, MeanBand("probe test accuracy against d, per noise rate (mean ± std over seeds)", points, "d (log)", "probe test accuracy", "log", "noise rate", "line"));
            }
        }

        // Truncation against the full and the early-stopped model, mean ± std over seeds per noise rate.
        string aggregate = Path.Combine(dir, "aggregate.csv");
        if (File.Exists(aggregate))
        {
            var bars = new JsonArray();
            foreach (var r in ReadCsv(aggregate).Rows.Where(Main))
            {
                foreach (var (column, label) in (ReadOnlySpan<(string, string)>)[("full_test_acc", "full model"), ("trunc_test_acc_at_best_d", "truncation (d on noisy validation)"), ("best_early_stop_test_acc", "early stopping")])
                {
                    double mean = Num(r.GetValueOrDefault(column + "_mean")), std = Num(r.GetValueOrDefault(column + "_std"));
                    if (!double.IsFinite(mean))
                        continue;
                    std = double.IsFinite(std) ? std : 0;
                    bars.Add(new JsonObject { ["x"] = Num(r.GetValueOrDefault("noise_rate")), ["c"] = label, ["mean"] = mean, ["lo"] = mean - std, ["hi"] = mean + std });
                }
            }
            if (bars.Count > 0)
            {
                page.Append("<h2>explicit spectral truncation against the full model and early stopping (MLP, width ").Append(widthText).Append(")</h2>\n");
                Emit(charts, page, WithErrors("test accuracy against noise rate (mean ± std over seeds)", bars, "noise rate", "test accuracy", "linear", "model", "line"));
            }
        }

        // The width sweep's tail energy.
        string widths = Path.Combine(dir, "widths.csv");
        if (File.Exists(widths))
        {
            var tail = new JsonArray();
            foreach (var r in ReadCsv(widths).Rows)
            {
                foreach (var (column, label) in (ReadOnlySpan<(string, string)>)[("tail_energy_at_k", "all training samples"), ("clean_tail_energy_at_k", "clean samples"), ("noisy_tail_energy_at_k", "noisy samples")])
                {
                    if (r.GetValueOrDefault("width") is double w && w > 0 && r.GetValueOrDefault(column) is double v && double.IsFinite(v))
                        tail.Add(new JsonObject { ["x"] = w, ["y"] = v, ["c"] = label });
                }
            }
            if (tail.Count > 0)
            {
                page.Append("<h2>the tail against width (noise ").Append(Html(SweepSummary.Format(ReadCsv(widths).Rows.FirstOrDefault()?.GetValueOrDefault("noise_rate"))))
                    .Append("): share of the feature energy outside the top d = classes directions</h2>\n");
                Emit(charts, page, Curves("tail energy at d = classes against width", tail, "penultimate width (log)", "tail energy", "log", "samples"));
            }
        }
    }

    /// <summary>The grid's width: config.yaml's <c>spectral_tail.width</c>, else the MLP width seen at the most noise rates.</summary>
    private static int MainWidth(string dir, CsvTable results)
    {
        string config = Path.Combine(dir, RunFiles.RunDirectory.ConfigFile);
        if (File.Exists(config))
        {
            foreach (var line in File.ReadLines(config))
            {
                if (line.StartsWith("spectral_tail.width:", StringComparison.Ordinal)
                    && int.TryParse(line["spectral_tail.width:".Length..].Trim(), NumberStyles.Integer, CultureInfo.InvariantCulture, out int w))
                    return w;
            }
        }
        return results.Rows.Where(r => r.GetValueOrDefault("model") as string == "mlp" && r.GetValueOrDefault("width") is double)
            .GroupBy(r => (int)(double)r["width"]!).OrderByDescending(g => g.Select(r => r.GetValueOrDefault("noise_rate")).Distinct().Count()).ThenByDescending(g => g.Count())
            .Select(g => g.Key).FirstOrDefault();
    }

    /// <summary>The mean over the points of each (group, x) as a line, ± one sample standard deviation as a band.</summary>
    private static JsonObject MeanBand(string title, List<(double X, string Group, double Y)> points, string xTitle, string yTitle, string xScale, string colorTitle, string mark)
    {
        var values = new JsonArray();
        foreach (var g in points.GroupBy(p => (p.Group, p.X)).OrderBy(g => g.Key.Group, StringComparer.Ordinal).ThenBy(g => g.Key.X))
        {
            var ys = g.Select(p => p.Y).ToList();
            double mean = ys.Average();
            double std = ys.Count < 2 ? 0 : Math.Sqrt(ys.Sum(y => (y - mean) * (y - mean)) / (ys.Count - 1));
            values.Add(new JsonObject { ["x"] = g.Key.X, ["c"] = g.Key.Group, ["mean"] = mean, ["lo"] = mean - std, ["hi"] = mean + std });
        }
        return WithErrors(title, values, xTitle, yTitle, xScale, colorTitle, mark, band: true);
    }

    /// <summary>Rows <c>{x, c, mean, lo, hi}</c>: the mean as a line with points, [lo, hi] as error bars (or a band).</summary>
    private static JsonObject WithErrors(string title, JsonArray values, string xTitle, string yTitle, string xScale, string colorTitle, string mark, bool band = false) => new()
    {
        ["$schema"] = Schema,
        ["title"] = title,
        ["width"] = 420,
        ["height"] = 240,
        ["data"] = new JsonObject { ["values"] = values },
        ["encoding"] = new JsonObject
        {
            ["x"] = new JsonObject { ["field"] = "x", ["type"] = "quantitative", ["title"] = xTitle, ["scale"] = new JsonObject { ["type"] = xScale, ["nice"] = false } },
            ["color"] = new JsonObject { ["field"] = "c", ["type"] = "nominal", ["title"] = colorTitle },
        },
        ["layer"] = new JsonArray(
            new JsonObject
            {
                ["mark"] = band ? new JsonObject { ["type"] = "errorband", ["opacity"] = 0.25 } : new JsonObject { ["type"] = "errorbar", ["ticks"] = true },
                ["encoding"] = new JsonObject { ["y"] = new JsonObject { ["field"] = "lo", ["type"] = "quantitative", ["title"] = yTitle, ["scale"] = new JsonObject { ["zero"] = false } }, ["y2"] = new JsonObject { ["field"] = "hi" } },
            },
            new JsonObject { ["mark"] = new JsonObject { ["type"] = mark, ["point"] = true }, ["encoding"] = new JsonObject { ["y"] = new JsonObject { ["field"] = "mean", ["type"] = "quantitative" } } }),
    };
}
