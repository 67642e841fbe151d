using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;

namespace LabelNoiseLab.Reports;

/// <summary>
/// The figures a reader looks for first, ahead of the generic CSV charts: the summary card (best
/// and last test accuracy, memorisation, noise realised, claims held), the realised transition
/// matrix as a heatmap, and each preset's own figures on its paper's axes (two-phase,
/// two-phase-paper, robust, double-descent, spectral-tail).
/// </summary>
internal static partial class HtmlReport
{
    private const string Schema = "https://vega.github.io/schema/vega-lite/v5.json";

    /// <summary>The card at the top of a run's page; nothing when summary.json holds none of its figures.</summary>
    private static void AddSummaryCard(StringBuilder page, JsonObject? summary)
    {
        if (summary is null)
            return;
        var items = new List<(string Label, string Value)>();
        void Add(string label, string path, bool percent = true)
        {
            double v = SweepSummary.Figure(summary, path);
            if (!double.IsNaN(v))
                items.Add((label, percent ? (v * 100).ToString("F1", CultureInfo.InvariantCulture) + "%" : v.ToString("G4", CultureInfo.InvariantCulture)));
        }
        if (summary["preset"] is JsonValue p && p.TryGetValue(out string? preset))
            items.Add(("preset", preset + (summary["quick"] is JsonValue q && q.TryGetValue(out bool quick) && quick ? " (quick)" : "")));
        Add("best test accuracy", "best_test_acc");
        Add("last test accuracy", "final.test_acc");
        Add("memorisation (noisy_given_acc)", "final.noisy_given_acc");
        Add("recovery (noisy_true_acc)", "final.noisy_true_acc");
        Add("noise realised", "noise.realised_rate");
        if (summary["claims"] is JsonArray claims && claims.Count > 0)
        {
            int held = claims.Count(c => c is JsonObject o && o["pass"] is JsonValue v && v.TryGetValue(out bool b) && b);
            items.Add(("claims held", $"{held} of {claims.Count}"));
        }
        if (items.Count == 0)
            return;
        page.Append("<div class=\"card\" style=\"display:flex;gap:1.5em;flex-wrap:wrap;border:1px solid #ccc;border-radius:6px;padding:0.6em 1em;margin:0.5em 0 1em;background:#f7f7f9\">");
        foreach (var (label, value) in items)
            page.Append("<div><div style=\"font-size:11px;color:#666\">").Append(Html(label)).Append("</div><div style=\"font-size:20px;font-weight:bold\">").Append(Html(value)).Append("</div></div>");
        page.Append("</div>\n");
    }

    /// <summary>summary.json → noise.realised_transition (K×K, rows the true class) as a heatmap with the values written in.</summary>
    private static void AddTransitionHeatmap(List<JsonObject> charts, StringBuilder page, JsonObject? summary)
    {
        if (summary?["noise"] is not JsonObject noise || noise["realised_transition"] is not JsonArray rows || rows.Count == 0)
            return;
        var values = new JsonArray();
        for (int i = 0; i < rows.Count; i++)
        {
            if (rows[i] is not JsonArray row)
                return;
            for (int j = 0; j < row.Count; j++)
            {
                if (row[j] is JsonValue v && v.TryGetValue(out double d) && double.IsFinite(d))
                    values.Add(new JsonObject { ["true"] = i, ["given"] = j, ["p"] = d });
            }
        }
        if (values.Count == 0)
            return;
        page.Append("<h2>realised transition matrix</h2>\n");
        var axis = (string field, string title) => new JsonObject { ["field"] = field, ["type"] = "ordinal", ["title"] = title };
        Emit(charts, page, new JsonObject
        {
            ["$schema"] = Schema,
            ["title"] = "P(given label | true label), as injected",
            ["width"] = Math.Min(420, 32 * rows.Count),
            ["height"] = Math.Min(420, 32 * rows.Count),
            ["data"] = new JsonObject { ["values"] = values },
            ["encoding"] = new JsonObject { ["x"] = axis("given", "given label"), ["y"] = axis("true", "true label") },
            ["layer"] = new JsonArray(
                new JsonObject
                {
                    ["mark"] = "rect",
                    ["encoding"] = new JsonObject { ["color"] = new JsonObject { ["field"] = "p", ["type"] = "quantitative", ["scale"] = new JsonObject { ["scheme"] = "blues", ["domain"] = new JsonArray(0, 1) } } },
                },
                new JsonObject
                {
                    ["mark"] = new JsonObject { ["type"] = "text", ["fontSize"] = 9 },
                    ["encoding"] = new JsonObject
                    {
                        ["text"] = new JsonObject { ["field"] = "p", ["type"] = "quantitative", ["format"] = ".2f" },
                        ["color"] = new JsonObject { ["condition"] = new JsonObject { ["test"] = "datum.p > 0.5", ["value"] = "white" }, ["value"] = "black" },
                    },
                }),
        });
    }

    /// <summary>The preset's own figures, by summary.json → preset.</summary>
    private static void AddPresetFigures(List<JsonObject> charts, StringBuilder page, string dir, JsonObject? summary)
    {
        string? preset = summary?["preset"] is JsonValue p && p.TryGetValue(out string? name) ? name : null;
        switch (preset)
        {
            case "two-phase" when File.Exists(Path.Combine(dir, "dynamics.csv")):
            {
                var t = ReadCsv(Path.Combine(dir, "dynamics.csv"));
                page.Append("<h2>two phases: neuron norms fall, then the alignment rises (per method)</h2>\n");
                Emit(charts, page, Lines("mean neuron norm against step", t, "step", "neuron_norm_mean", "method", logY: false));
                Emit(charts, page, Lines("alignment with the ground truth against step", t, "step", "alignment", "method", logY: false));
                break;
            }
            case "two-phase-paper" when File.Exists(Path.Combine(dir, "curves.csv")):
            {
                var t = ReadCsv(Path.Combine(dir, "curves.csv"));
                page.Append("<h2>the notebook's figure: the network (solid) and its linearised twin (dashed) against step</h2>\n");
                Emit(charts, page, Twin("train loss (clean labels)", t, "train_loss_clean", "lin_train_loss_clean"));
                Emit(charts, page, Twin("test loss", t, "test_loss", "lin_test_loss"));
                page.Append("<br>\n");
                Emit(charts, page, Lines("first-layer mean neuron norm", t, "step", "neuron_norm_mean", "method", logY: false));
                Emit(charts, page, Lines("tangent-kernel distance from the start", t, "step", "kernel_distance", "method", logY: false));
                break;
            }
            case "robust" when File.Exists(Path.Combine(dir, "results.csv")):
                AddRobustFigures(charts, page, dir, ReadCsv(Path.Combine(dir, "results.csv")));
                break;
            case "double-descent" when File.Exists(Path.Combine(dir, "phases.csv")):
                AddDoubleDescentFigures(charts, page, dir, ReadCsv(Path.Combine(dir, "phases.csv")));
                break;
            case "spectral-tail" when File.Exists(Path.Combine(dir, "results.csv")):
                AddSpectralTailFigures(charts, page, dir, ReadCsv(Path.Combine(dir, "results.csv")));
                break;
        }
    }

    /// <summary>The accuracy table (mean ± std over seeds per method and setting) and, per method, the ROC and precision–recall curves of the gradient norm.</summary>
    private static void AddRobustFigures(List<JsonObject> charts, StringBuilder page, string dir, CsvTable results)
    {
        string Setting(Dictionary<string, object?> r) => $"{r.GetValueOrDefault("noise_kind")} {SweepSummary.Format(r.GetValueOrDefault("noise_rate"))}";
        var settings = results.Rows.Select(Setting).Distinct().ToList();
        var methods = results.Rows.Select(r => r.GetValueOrDefault("method") as string ?? "").Distinct().ToList();
        page.Append("<h2>last-epoch test accuracy, mean ± std over seeds (best epoch in brackets)</h2>\n<table><tr><th>method</th>");
        foreach (var s in settings)
            page.Append("<th>").Append(Html(s)).Append("</th>");
        page.Append("</tr>");
        foreach (var m in methods)
        {
            page.Append("<tr><th>").Append(Html(m)).Append("</th>");
            foreach (var s in settings)
            {
                var mine = results.Rows.Where(r => r.GetValueOrDefault("method") as string == m && Setting(r) == s).ToList();
                page.Append("<td>").Append(Html(MeanStd(mine, "last_test_acc") + " (" + MeanStd(mine, "best_test_acc") + ")")).Append("</td>");
            }
            page.Append("</tr>");
        }
        page.Append("</table>\n");

        // Detection curves of the first setting's first seed, one line per method.
        var roc = new List<Dictionary<string, object?>>();
        string runs = Path.Combine(dir, "runs");
        var first = results.Rows.FirstOrDefault();
        if (first is null || !Directory.Exists(runs))
            return;
        foreach (var m in methods)
        {
            string run = Path.Combine(runs, $"{m}_{first.GetValueOrDefault("noise_kind")}{SweepSummary.Format(first.GetValueOrDefault("noise_rate"))}_s{SweepSummary.Format(first.GetValueOrDefault("seed"))}");
            string file = Path.Combine(run, "detection_curves.csv");
            if (!File.Exists(file))
                continue;
            foreach (var row in ReadCsv(file).Rows.Where(r => r.GetValueOrDefault("score") as string == "grad_norm"))
                roc.Add(new Dictionary<string, object?>(row) { ["method"] = m, ["recall"] = row.GetValueOrDefault("tpr") });
        }
        if (roc.Count == 0)
            return;
        var table = new CsvTable(["method", "fpr", "tpr", "recall", "precision"], roc);
        page.Append("<h2>detection by the per-sample gradient norm (last epoch, ").Append(Html(Setting(first))).Append(", seed ").Append(Html(SweepSummary.Format(first.GetValueOrDefault("seed")))).Append(")</h2>\n");
        Emit(charts, page, Lines("ROC", table, "fpr", "tpr", "method", logY: false));
        Emit(charts, page, Lines("precision–recall", table, "recall", "precision", "method", logY: false));
    }

    private static string MeanStd(List<Dictionary<string, object?>> rows, string column)
    {
        var v = rows.Select(r => r.GetValueOrDefault(column)).OfType<double>().Where(double.IsFinite).ToList();
        if (v.Count == 0)
            return "–";
        double mean = v.Average();
        string text = mean.ToString("F4", CultureInfo.InvariantCulture);
        return v.Count < 2 ? text : text + " ± " + Math.Sqrt(v.Sum(x => (x - mean) * (x - mean)) / (v.Count - 1)).ToString("F4", CultureInfo.InvariantCulture);
    }

    /// <summary>One line per <paramref name="group"/> value of <paramref name="y"/> against <paramref name="x"/>.</summary>
    private static JsonObject Lines(string title, CsvTable table, string x, string y, string group, bool logY)
    {
        var values = new JsonArray();
        foreach (var r in Thin(table.Rows))
        {
            if (r.GetValueOrDefault(x) is double xv && r.GetValueOrDefault(y) is double yv && double.IsFinite(xv) && double.IsFinite(yv) && (!logY || yv > 0))
                values.Add(new JsonObject { ["x"] = xv, ["y"] = yv, [group] = r.GetValueOrDefault(group)?.ToString() ?? "" });
        }
        return Spec(title, values, new JsonObject { ["type"] = "line", ["point"] = values.Count <= 60 }, new JsonObject
            {
                ["x"] = new JsonObject { ["field"] = "x", ["type"] = "quantitative", ["title"] = x },
                ["y"] = new JsonObject { ["field"] = "y", ["type"] = "quantitative", ["title"] = y, ["scale"] = new JsonObject { ["type"] = logY ? "log" : "linear", ["zero"] = false } },
                ["color"] = new JsonObject { ["field"] = Field(group), ["type"] = "nominal" },
            });
    }

    /// <summary>A 420×240 single-view Vega-Lite spec over inline <paramref name="values"/>.</summary>
    private static JsonObject Spec(string title, JsonArray values, JsonNode mark, JsonObject encoding) => new()
    {
        ["$schema"] = Schema,
        ["title"] = title,
        ["width"] = 420,
        ["height"] = 240,
        ["data"] = new JsonObject { ["values"] = values },
        ["mark"] = mark,
        ["encoding"] = encoding,
    };

    /// <summary>A loss and its linearised twin's against step, per method: the network solid, the twin dashed, log y.</summary>
    private static JsonObject Twin(string title, CsvTable table, string net, string twin)
    {
        var values = new JsonArray();
        foreach (var r in Thin(table.Rows))
        {
            foreach (var (column, model) in (ReadOnlySpan<(string, string)>)[(net, "network"), (twin, "linearised")])
            {
                if (r.GetValueOrDefault("step") is double s && r.GetValueOrDefault(column) is double v && double.IsFinite(v) && v > 0)
                    values.Add(new JsonObject { ["step"] = s, ["loss"] = v, ["method"] = r.GetValueOrDefault("method")?.ToString() ?? "", ["model"] = model });
            }
        }
        return Spec(title, values, "line", new JsonObject
            {
                ["x"] = new JsonObject { ["field"] = "step", ["type"] = "quantitative" },
                ["y"] = new JsonObject { ["field"] = "loss", ["type"] = "quantitative", ["scale"] = new JsonObject { ["type"] = "log" } },
                ["color"] = new JsonObject { ["field"] = "method", ["type"] = "nominal" },
                ["strokeDash"] = new JsonObject { ["field"] = "model", ["type"] = "nominal", ["scale"] = new JsonObject { ["domain"] = new JsonArray("network", "linearised") } },
            });
    }

    /// <summary>
    /// A sweep's final figures against <paramref name="x"/>: the mean over seeds as a line, ± one
    /// standard deviation as a band, per figure (and per <paramref name="style"/> value).
    /// </summary>
    private static JsonObject Bands(string title, CsvTable summary, string x, IReadOnlyList<string> figures, string? style)
    {
        var values = new JsonArray();
        foreach (var r in summary.Rows)
        {
            foreach (var f in figures)
            {
                if (r.GetValueOrDefault(x) is not double xv || r.GetValueOrDefault(f + "_mean") is not double mean || !double.IsFinite(mean))
                    continue;
                double std = r.GetValueOrDefault(f + "_std") is double s && double.IsFinite(s) ? s : 0;
                var o = new JsonObject { ["x"] = xv, ["series"] = f, ["mean"] = mean, ["lo"] = mean - std, ["hi"] = mean + std };
                if (style is not null)
                    o["style"] = SweepSummary.Format(r.GetValueOrDefault(style));
                values.Add(o);
            }
        }
        var encoding = new JsonObject
        {
            ["x"] = new JsonObject { ["field"] = "x", ["type"] = "quantitative", ["title"] = x },
            ["color"] = new JsonObject { ["field"] = "series", ["type"] = "nominal" },
        };
        if (style is not null)
            encoding["strokeDash"] = new JsonObject { ["field"] = "style", ["type"] = "nominal", ["title"] = style };
        var detail = style is null ? null : new JsonObject { ["field"] = "style", ["type"] = "nominal" };
        var band = new JsonObject
        {
            ["y"] = new JsonObject { ["field"] = "lo", ["type"] = "quantitative", ["title"] = "mean ± std over seeds" },
            ["y2"] = new JsonObject { ["field"] = "hi" },
        };
        if (detail is not null)
            band["detail"] = detail;
        return new JsonObject
        {
            ["$schema"] = Schema,
            ["title"] = title,
            ["width"] = 420,
            ["height"] = 240,
            ["data"] = new JsonObject { ["values"] = values },
            ["encoding"] = encoding,
            ["layer"] = new JsonArray(
                new JsonObject { ["mark"] = new JsonObject { ["type"] = "errorband", ["opacity"] = 0.25 }, ["encoding"] = band },
                new JsonObject { ["mark"] = new JsonObject { ["type"] = "line", ["point"] = true }, ["encoding"] = new JsonObject { ["y"] = new JsonObject { ["field"] = "mean", ["type"] = "quantitative" } } }),
        };
    }
}
