using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;

namespace LabelNoiseLab.Reports;

/// <summary>
/// The double-descent preset's figures (Kubo et al.'s axes), per training setting: test error
/// against epoch on a log axis for the networks together; the error and the loss split four ways
/// (clean training samples, noisy ones against their given and their true label, test) per
/// network; the clean/noisy separation (cosine of class means) per layer against epoch; the
/// shallowest probed layer's largest activation and its ratio to the median against epoch.
/// Read from phases.csv (the runs and their settings), each run's metrics.csv and layers.csv.
/// </summary>
internal static partial class HtmlReport
{
    private static void AddDoubleDescentFigures(List<JsonObject> charts, StringBuilder page, string dir, CsvTable phases)
    {
        var layers = File.Exists(Path.Combine(dir, "layers.csv")) ? ReadCsv(Path.Combine(dir, "layers.csv")) : new CsvTable([], []);
        var settings = phases.Rows.GroupBy(r => r.GetValueOrDefault("setting")?.ToString() ?? "").ToList();
        foreach (var setting in settings)
        {
            var runs = setting.Select(r => (Run: r.GetValueOrDefault("run")?.ToString() ?? "", Model: r.GetValueOrDefault("model")?.ToString() ?? "")).Where(r => r.Run.Length > 0).ToList();
            string Net(string run) => runs.FirstOrDefault(r => r.Run == run).Model is { Length: > 0 } m ? m : run;
            string suffix = settings.Count > 1 ? $" ({setting.Key})" : "";

            // Errors and losses of every evaluation, split four ways, from each run's own metrics.csv.
            var error = new JsonArray();
            var loss = new JsonArray();
            var test = new JsonArray();
            (string Column, string Part)[] parts = [("clean", "clean training samples"), ("noisy_given", "noisy, given label"), ("noisy_true", "noisy, true label"), ("test", "test")];
            foreach (var (run, model) in runs)
            {
                string file = Path.Combine(dir, run, RunFiles.RunDirectory.MetricsFile);
                if (!File.Exists(file))
                    continue;
                foreach (var r in Thin(ReadCsv(file).Rows))
                {
                    if (r.GetValueOrDefault("epoch") is not double epoch || epoch <= 0)
                        continue;
                    foreach (var (column, part) in parts)
                    {
                        if (r.GetValueOrDefault(column + "_acc") is double acc && double.IsFinite(acc))
                        {
                            error.Add(new JsonObject { ["x"] = epoch, ["y"] = 1 - acc, ["c"] = part, ["f"] = model });
                            if (column == "test")
                                test.Add(new JsonObject { ["x"] = epoch, ["y"] = 1 - acc, ["c"] = model });
                        }
                        if (r.GetValueOrDefault(column + "_loss") is double l && double.IsFinite(l) && l > 0)
                            loss.Add(new JsonObject { ["x"] = epoch, ["y"] = l, ["c"] = part, ["f"] = model });
                    }
                }
            }
            if (test.Count > 0)
            {
                page.Append("<h2>epoch-wise double descent").Append(Html(suffix)).Append(": test error and the training error split into clean and noisy samples</h2>\n");
                Emit(charts, page, Curves("test error against epoch, per network", test, "epoch (log)", "test error", "log", "network"));
                Emit(charts, page, Curves("error split four ways, per network", error, "epoch (log)", "error (1 − accuracy)", "log", "part", facet: "network"));
                if (loss.Count > 0)
                    Emit(charts, page, Curves("loss split four ways, per network", loss, "epoch (log)", "cross-entropy", "log", "part", facet: "network", logY: true));
            }

            // Separation per layer and the large activation, from layers.csv (epoch 0 = initialisation: symlog axis).
            var mine = layers.Rows.Where(r => runs.Any(x => x.Run == r.GetValueOrDefault("run")?.ToString())).ToList();
            var cosine = new JsonArray();
            foreach (var r in Thin(mine))
            {
                string run = r.GetValueOrDefault("run")?.ToString() ?? "";
                foreach (var (column, grouping) in (ReadOnlySpan<(string, string)>)[("clean_noisy_cosine_given", "by given label"), ("clean_noisy_cosine_true", "by true label")])
                {
                    if (r.GetValueOrDefault("epoch") is double e && r.GetValueOrDefault("layer") is double layer && r.GetValueOrDefault(column) is double v && double.IsFinite(v))
                        cosine.Add(new JsonObject { ["x"] = e, ["y"] = v, ["c"] = "layer " + layer.ToString(CultureInfo.InvariantCulture), ["d"] = grouping, ["f"] = Net(run) });
                }
            }
            var ratio = new JsonArray();
            var largest = new JsonArray();
            foreach (var byRun in mine.GroupBy(r => r.GetValueOrDefault("run")?.ToString() ?? ""))
            {
                var shallow = byRun.Select(r => r.GetValueOrDefault("layer")).OfType<double>().DefaultIfEmpty(double.NaN).Min();
                foreach (var r in byRun.Where(r => r.GetValueOrDefault("layer") is double l && l == shallow))
                {
                    if (r.GetValueOrDefault("epoch") is not double e)
                        continue;
                    if (r.GetValueOrDefault("max_to_median_ratio") is double q && double.IsFinite(q) && q > 0)
                        ratio.Add(new JsonObject { ["x"] = e, ["y"] = q, ["c"] = Net(byRun.Key) });
                    if (r.GetValueOrDefault("max_abs_activation") is double a && double.IsFinite(a) && a > 0)
                        largest.Add(new JsonObject { ["x"] = e, ["y"] = a, ["c"] = Net(byRun.Key) });
                }
            }
            if (cosine.Count > 0)
            {
                page.Append("<h2>separation of clean and noisy samples per layer").Append(Html(suffix))
                    .Append(": cosine of the clean and the noisy class-mean activations (lower = more separated)</h2>\n");
                Emit(charts, page, Curves("clean/noisy cosine per hidden layer against epoch (0 = initialisation)", cosine, "epoch (symlog)", "cosine of class means", "symlog", "layer", dash: "grouped", facet: "network"));
            }
            if (ratio.Count > 0)
            {
                page.Append("<h2>the large activation in the shallowest probed layer").Append(Html(suffix))
                    .Append(" (Sun et al.'s massive activations: |a| &gt; probe.massive_abs and &gt; probe.massive_ratio × the median)</h2>\n");
                Emit(charts, page, Curves("top unit's largest |activation| / median |activation|", ratio, "epoch (symlog)", "max / median", "symlog", "network", logY: true));
                if (largest.Count > 0)
                    Emit(charts, page, Curves("largest |activation|", largest, "epoch (symlog)", "max |activation|", "symlog", "network", logY: true));
            }
        }
    }

    /// <summary>
    /// Lines over rows <c>{x, y, c}</c> (colour by c), with an optional line style (field d) and
    /// one panel per value of field f; the x scale is "log", "symlog" or "linear".
    /// </summary>
    private static JsonObject Curves(string title, JsonArray values, string xTitle, string yTitle, string xScale, string colorTitle,
        string? dash = null, string? facet = null, bool logY = false)
    {
        var encoding = new JsonObject
        {
            ["x"] = new JsonObject { ["field"] = "x", ["type"] = "quantitative", ["title"] = xTitle, ["scale"] = new JsonObject { ["type"] = xScale, ["nice"] = false } },
            ["y"] = new JsonObject { ["field"] = "y", ["type"] = "quantitative", ["title"] = yTitle, ["scale"] = new JsonObject { ["type"] = logY ? "log" : "linear", ["zero"] = false } },
            ["color"] = new JsonObject { ["field"] = "c", ["type"] = "nominal", ["title"] = colorTitle },
        };
        if (dash is not null)
            encoding["strokeDash"] = new JsonObject { ["field"] = "d", ["type"] = "nominal", ["title"] = dash };
        var mark = new JsonObject { ["type"] = "line", ["point"] = values.Count <= 80 };
        if (facet is null)
            return Spec(title, values, mark, encoding);
        return new JsonObject
        {
            ["$schema"] = Schema,
            ["title"] = title,
            ["data"] = new JsonObject { ["values"] = values },
            ["facet"] = new JsonObject { ["column"] = new JsonObject { ["field"] = "f", ["type"] = "nominal", ["title"] = facet, ["sort"] = null } },
            ["spec"] = new JsonObject { ["width"] = 220, ["height"] = 200, ["mark"] = mark, ["encoding"] = encoding },
        };
    }
}
