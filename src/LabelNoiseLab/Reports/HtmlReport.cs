using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using LabelNoiseLab.RunFiles;
using LabelNoiseLab.Experiments;

namespace LabelNoiseLab.Reports;

/// <summary>
/// <c>lnlab report DIR</c>: one self-contained <c>DIR/report.html</c> (Vega, Vega-Lite and
/// vega-embed inline, data inline, nothing fetched) for a run, a preset's output or a sweep.
/// A run gets its config and summary as tables and a chart per CSV it holds (learning curves
/// split into clean / memorisation / recovery / test, losses, and any probe's CSV). A folder of
/// runs gets summary.csv as a table, a table of the runs, and each CSV kind drawn for all runs
/// together (one line per run). Large CSVs are thinned to <see cref="MaxRows"/> rows per file.
/// </summary>
internal static partial class HtmlReport
{
    public const string FileName = "report.html";
    public const int MaxRows = 2000;

    private static readonly string[] AccuracySeries = ["train_acc", "clean_acc", "noisy_given_acc", "noisy_true_acc", "test_acc", "val_acc"];
    private static readonly string[] LossSeries = ["train_loss", "clean_loss", "noisy_given_loss", "noisy_true_loss", "test_loss", "val_loss"];
    private static readonly string[] XPreference = ["step", "epoch", "t", "iteration", "k", "rank", "index", "rate", "noise_rate"];
    private static readonly string[] TimingColumns = ["seconds", "eval_seconds", "lr"];

    public static string Write(string dir)
    {
        if (!Directory.Exists(dir))
            throw new InputException($"{dir}: no such directory");
        bool isRun = RunDirectory.ReadStatus(dir) is not null;
        var runs = isRun ? [] : SweepSummary.FindRuns(dir);
        var csvFiles = isRun ? Directory.GetFiles(dir, "*.csv").Order(StringComparer.Ordinal).ToList() : [];
        if (!isRun && runs.Count == 0 && !File.Exists(Path.Combine(dir, SweepSummary.FileName)))
            throw new InputException($"{dir}: neither a run directory nor a folder of runs (no status file, no runs under it)");

        var page = new StringBuilder();
        var charts = new List<JsonObject>();
        page.Append("<h1>").Append(Html(Path.GetFileName(Path.GetFullPath(dir)))).Append("</h1>\n");
        if (isRun)
        {
            var (status, reason) = RunDirectory.ReadStatus(dir)!.Value;
            page.Append("<p>status: <b>").Append(Html(status.ToString().ToLowerInvariant())).Append("</b> ").Append(Html(reason ?? "")).Append("</p>\n");
            var summary = ReadSummary(Path.Combine(dir, RunDirectory.SummaryFile));
            AddSummaryCard(page, summary);
            AddPresetFigures(charts, page, dir, summary);
            AddTransitionHeatmap(charts, page, summary);
            foreach (var csv in csvFiles)
                AddCsvCharts(charts, page, Path.GetFileName(csv), ReadCsv(csv), runColumn: false);
            AddSummaryTable(page, Path.Combine(dir, RunDirectory.SummaryFile));
            AddConfigTable(page, Path.Combine(dir, RunDirectory.ConfigFile), preset: summary?["preset"] is not null);
        }
        else
        {
            var tables = new StringBuilder();
            if (File.Exists(Path.Combine(dir, SweepSummary.FileName)))
            {
                var summary = ReadCsv(Path.Combine(dir, SweepSummary.FileName));
                AddSummaryChart(charts, page, summary);
                AddTable(tables, "summary.csv (mean ± std over seeds)", summary);
            }
            AddRunsTable(tables, dir, runs);
            // The same CSV kind from every run, one line per run.
            var byName = runs.SelectMany(r => Directory.GetFiles(r.Path, "*.csv").Select(f => (Run: Path.GetRelativePath(dir, r.Path), File: f)))
                .GroupBy(x => Path.GetFileName(x.File)).OrderBy(g => g.Key == RunDirectory.MetricsFile ? "" : g.Key, StringComparer.Ordinal);
            foreach (var group in byName)
            {
                var rows = new List<Dictionary<string, object?>>();
                var columns = new List<string> { "run" };
                foreach (var (run, file) in group)
                {
                    var table = ReadCsv(file);
                    foreach (var c in table.Columns.Where(c => !columns.Contains(c)))
                        columns.Add(c);
                    foreach (var row in table.Rows)
                        rows.Add(new Dictionary<string, object?>(row) { ["run"] = run });
                }
                AddCsvCharts(charts, page, group.Key, new CsvTable(columns, rows), runColumn: true);
            }
            page.Append(tables);
        }

        string path = Path.Combine(dir, FileName);
        AtomicFile.WriteAllText(path, Page(Path.GetFileName(Path.GetFullPath(dir)), page.ToString(), charts));
        return path;
    }

    /// <summary>
    /// Writes a page of the same kind as <see cref="Write"/>'s to <paramref name="path"/>: <paramref name="bodyHtml"/>
    /// (which places <c>&lt;div id="chartN"&gt;</c> for chart N, see <see cref="ChartSlot"/>) and the Vega-Lite specs.
    /// </summary>
    public static string WritePage(string path, string title, string bodyHtml, IReadOnlyList<JsonObject> charts)
    {
        AtomicFile.WriteAllText(path, Page(title, bodyHtml, charts));
        return path;
    }

    /// <summary>The placeholder of chart <paramref name="index"/> in a page body.</summary>
    public static string ChartSlot(int index) => $"<div class=\"chart\" id=\"chart{index.ToString(CultureInfo.InvariantCulture)}\"></div>\n";

    private static string Page(string title, string body, IReadOnlyList<JsonObject> charts)
    {
        var html = new StringBuilder();
        html.Append("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>").Append(Html(title))
            .Append(" – lnlab report</title>\n<style>body{font-family:sans-serif;margin:1.5em;max-width:1400px}table{border-collapse:collapse;font-size:12px;margin:0.5em 0 1.5em}")
            .Append("td,th{border:1px solid #ccc;padding:2px 6px;text-align:left}.chart{display:inline-block;vertical-align:top;margin:0 1em 1em 0}h2{margin-top:1.5em}</style>\n");
        // Errors anywhere on the page are counted where a test (or a reader) can see them.
        html.Append("<script>window.lnlabErrors=[];window.addEventListener('error',function(e){window.lnlabErrors.push(String(e.message));document.documentElement.setAttribute('data-errors',window.lnlabErrors.length);});</script>\n");
        foreach (var lib in (string[])["vega.min.js", "vega-lite.min.js", "vega-embed.min.js"])
            html.Append("<script>").Append(Asset(lib)).Append("</script>\n");
        html.Append("</head><body data-charts=\"").Append(charts.Count.ToString(CultureInfo.InvariantCulture)).Append("\">\n");
        html.Append(body);
        html.Append("<p style=\"color:#888;font-size:11px\">written by lnlab report; charts: Vega-Lite (BSD-3-Clause)</p>\n");
        html.Append("<script>\nvar specs=").Append(new JsonArray([.. charts]).ToJsonString(new JsonSerializerOptions { NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.AllowNamedFloatingPointLiterals }).Replace("</", "<\\/", StringComparison.Ordinal)).Append(";\n");
        html.Append("""
            var rendered=0, failed=0;
            function mark(){document.body.setAttribute('data-rendered',rendered);document.body.setAttribute('data-failed',failed);}
            Promise.all(specs.map(function(s,i){
              return vegaEmbed('#chart'+i, s, {actions:false, renderer:'svg'}).then(function(r){
                var el=document.getElementById('chart'+i), rows=[], empty=[];
                (r.vgSpec.data||[]).forEach(function(d){var n=r.view.data(d.name).length;rows.push(d.name+':'+n);if(n===0){empty.push(d.name);}});
                el.setAttribute('data-datasets',rows.join(' '));
                var marks=document.querySelectorAll('#chart'+i+' svg .mark-line path, #chart'+i+' svg .mark-rect path, #chart'+i+' svg .mark-symbol path, #chart'+i+' svg .mark-line, #chart'+i+' svg .mark-rect, #chart'+i+' svg .mark-area path, #chart'+i+' svg .mark-text text');
                if(empty.length>0){failed++;el.setAttribute('data-empty',empty.join(' '));console.error('chart '+i+' has empty datasets: '+empty.join(' '));}
                else if(marks.length>0){rendered++;}else{failed++;console.error('chart '+i+' drew no marks');}
              }).catch(function(e){failed++;console.error('chart '+i+': '+e);window.lnlabErrors.push(String(e));});
            })).then(mark);
            </script>
            </body></html>

            """);
        return html.ToString();
    }

    /// <summary>One or two charts for a CSV: learning curves for metrics.csv, else a generic line or bar chart.</summary>
    private static void AddCsvCharts(List<JsonObject> charts, StringBuilder page, string name, CsvTable table, bool runColumn)
    {
        if (table.Rows.Count == 0)
            return;
        page.Append("<h2>").Append(Html(name)).Append("</h2>\n");
        var numeric = table.Columns.Where(c => c != "run" && table.Rows.Any(r => r.TryGetValue(c, out var v) && v is double)).ToList();
        var categorical = table.Columns.Where(c => c != "run" && !numeric.Contains(c) && table.Rows.Any(r => r.TryGetValue(c, out var v) && v is string)).ToList();
        if (name == RunDirectory.MetricsFile)
        {
            string x = numeric.Contains("step") ? "step" : numeric.FirstOrDefault() ?? "epoch";
            AddChart(charts, page, "accuracy: clean, memorisation (noisy_given), recovery (noisy_true), test", table, x, [.. AccuracySeries.Where(numeric.Contains)], runColumn, null);
            AddChart(charts, page, "loss", table, x, [.. LossSeries.Where(numeric.Contains)], runColumn, null);
            return;
        }
        string? xCol = XPreference.FirstOrDefault(numeric.Contains) ?? numeric.FirstOrDefault();
        var ys = numeric.Where(c => c != xCol && !TimingColumns.Contains(c) && c != "epoch").Take(10).ToList();
        if (ys.Count == 0 && xCol is not null && categorical.Count > 0)
            (ys, xCol) = ([xCol], null);
        if (ys.Count == 0)
            return;
        string? category = categorical.FirstOrDefault(c => table.Rows.Select(r => r.GetValueOrDefault(c)).Distinct().Count() <= 24);
        if (xCol is null || (category is not null && table.Rows.Count <= 60 && !runColumn))
            AddBarChart(charts, page, name, table, category ?? table.Columns[0], ys);
        else
            AddChart(charts, page, name, table, xCol, ys, runColumn, category);
    }

    /// <summary>summary.csv of a sweep: the final figures' means over the first varying key, a second key as line style.</summary>
    private static void AddSummaryChart(List<JsonObject> charts, StringBuilder page, CsvTable summary)
    {
        int from = summary.Columns.IndexOf("point") + 1, to = summary.Columns.IndexOf("runs");
        if (from <= 0 || to <= from)
            return;
        var keys = summary.Columns.GetRange(from, to - from);
        string? x = keys.FirstOrDefault(k => summary.Rows.All(r => r.GetValueOrDefault(k) is double));
        if (x is null)
            return;
        string? style = keys.FirstOrDefault(k => k != x);
        page.Append("<h2>sweep: final figures (mean ± std over seeds)</h2>\n");
        var figures = ((string[])["final_clean_acc", "final_noisy_given_acc", "final_noisy_true_acc", "final_test_acc"]).Where(f => summary.Columns.Contains(f + "_mean")).ToList();
        if (figures.Count > 0)
            Emit(charts, page, Bands("final accuracy: clean, memorisation (noisy_given), recovery (noisy_true), test", summary, x, figures, style));
    }

    private static void AddChart(List<JsonObject> charts, StringBuilder page, string title, CsvTable table, string x, List<string> ys, bool runColumn, string? facet)
    {
        if (ys.Count == 0)
            return;
        var values = Thin(table.Rows).Select(r => Pick(r, [x, .. ys, .. runColumn ? ["run"] : Array.Empty<string>(), .. facet is null ? [] : new[] { facet }])).ToList();
        var encoding = new JsonObject
        {
            ["x"] = new JsonObject { ["field"] = Field(x), ["type"] = "quantitative", ["title"] = x },
            ["y"] = new JsonObject { ["field"] = "value", ["type"] = "quantitative", ["title"] = ys.Count == 1 ? ys[0] : "value" },
            ["color"] = new JsonObject { ["field"] = "series", ["type"] = "nominal" },
        };
        if (runColumn)
            encoding["detail"] = new JsonObject { ["field"] = "run", ["type"] = "nominal" };
        if (facet is not null)
            encoding["strokeDash"] = new JsonObject { ["field"] = Field(facet), ["type"] = "nominal", ["title"] = facet };
        var mark = new JsonObject { ["type"] = "line", ["point"] = values.Count <= 60, ["opacity"] = runColumn ? 0.6 : 1 };
        Emit(charts, page, FoldedSpec(title, values, ys, mark, encoding));
    }

    private static void AddBarChart(List<JsonObject> charts, StringBuilder page, string title, CsvTable table, string category, List<string> ys)
    {
        var values = Thin(table.Rows).Select(r => Pick(r, [category, .. ys])).ToList();
        var encoding = new JsonObject
        {
            ["x"] = new JsonObject { ["field"] = Field(category), ["type"] = "nominal", ["title"] = category },
            ["xOffset"] = new JsonObject { ["field"] = "series", ["type"] = "nominal" },
            ["y"] = new JsonObject { ["field"] = "value", ["type"] = "quantitative" },
            ["color"] = new JsonObject { ["field"] = "series", ["type"] = "nominal" },
        };
        Emit(charts, page, FoldedSpec(title, values, ys, "bar", encoding));
    }

    /// <summary>A Vega-Lite spec that folds the <paramref name="ys"/> columns into (series, value) rows, dropping non-finite values.</summary>
    private static JsonObject FoldedSpec(string title, List<JsonObject> values, List<string> ys, JsonNode mark, JsonObject encoding) => new()
    {
        ["$schema"] = "https://vega.github.io/schema/vega-lite/v5.json",
        ["title"] = title,
        ["width"] = 420,
        ["height"] = 240,
        ["data"] = new JsonObject { ["values"] = new JsonArray([.. values]) },
        ["transform"] = new JsonArray(new JsonObject { ["fold"] = new JsonArray([.. ys.Select(y => (JsonNode)Field(y))]), ["as"] = new JsonArray("series", "value") },
            new JsonObject { ["filter"] = "isValid(datum.value) && isFinite(datum.value)" }),
        ["mark"] = mark,
        ["encoding"] = encoding,
    };

    private static void Emit(List<JsonObject> charts, StringBuilder page, JsonObject spec)
    {
        page.Append(ChartSlot(charts.Count));
        charts.Add(spec);
    }

    private static JsonObject Pick(Dictionary<string, object?> row, IEnumerable<string> columns)
    {
        var o = new JsonObject();
        foreach (var c in columns.Distinct())
        {
            o[c] = row.GetValueOrDefault(c) switch
            {
                double d when double.IsFinite(d) => d,
                string s => s,
                _ => null,
            };
        }
        return o;
    }

    private static IEnumerable<Dictionary<string, object?>> Thin(List<Dictionary<string, object?>> rows)
    {
        int stride = (rows.Count + MaxRows - 1) / MaxRows;
        return stride <= 1 ? rows : rows.Where((_, i) => i % stride == 0 || i == rows.Count - 1);
    }

    /// <summary>summary.json as an object; null when there is none; malformed is a <see cref="DataException"/> naming it.</summary>
    private static JsonObject? ReadSummary(string path)
    {
        if (!File.Exists(path))
            return null;
        JsonNode? root;
        try
        {
            root = JsonNode.Parse(File.ReadAllText(path));
        }
        catch (JsonException e)
        {
            throw new DataException(path, $"not valid JSON ({e.Message})");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new DataException(path, $"cannot be read ({e.Message})");
        }
        return root as JsonObject
            ?? throw new DataException(path, $"holds JSON {root?.GetValueKind().ToString().ToLowerInvariant() ?? "null"}; expected an object of figures");
    }

    private static void AddSummaryTable(StringBuilder page, string path)
    {
        var root = ReadSummary(path);
        if (root is null)
            return;
        var rows = new List<(string, string)>();
        void Walk(JsonNode? node, string prefix)
        {
            if (node is JsonObject o)
            {
                foreach (var (k, v) in o)
                    Walk(v, prefix.Length == 0 ? k : prefix + "." + k);
            }
            else
            {
                rows.Add((prefix, node?.ToJsonString() ?? "null"));
            }
        }
        Walk(root, "");
        page.Append("<h2>summary.json</h2>\n<table>");
        foreach (var (k, v) in rows)
            page.Append("<tr><th>").Append(Html(k)).Append("</th><td>").Append(Html(v)).Append("</td></tr>");
        page.Append("</table>\n");
    }

    private static void AddConfigTable(StringBuilder page, string path, bool preset)
    {
        if (!File.Exists(path))
            return;
        ExperimentConfig config;
        try
        {
            config = ExperimentConfig.Load(path);
        }
        catch (InputException) when (preset)
        {
            // A preset's config.yaml holds its own keys (two_phase.*, preset.*): shown as written.
            page.Append("<h2>config.yaml</h2>\n<pre style=\"font-size:12px\">").Append(Html(File.ReadAllText(path))).Append("</pre>\n");
            return;
        }
        page.Append("<h2>config.yaml</h2>\n<table>");
        foreach (var key in ConfigKeys.All)
            page.Append("<tr><th>").Append(Html(key.Name)).Append("</th><td>").Append(Html(SweepSummary.Format(config.Get(key.Name)))).Append("</td></tr>");
        page.Append("</table>\n");
    }

    private static void AddRunsTable(StringBuilder page, string dir, IReadOnlyList<FoundRun> runs)
    {
        if (runs.Count == 0)
            return;
        page.Append("<h2>runs</h2>\n<table><tr><th>run</th><th>status</th>");
        foreach (var f in SweepSummary.Figures)
            page.Append("<th>").Append(Html(f)).Append("</th>");
        page.Append("</tr>");
        foreach (var r in runs)
        {
            page.Append("<tr><td>").Append(Html(Path.GetRelativePath(dir, r.Path))).Append("</td><td>").Append(Html(r.Status.ToString().ToLowerInvariant())).Append("</td>");
            foreach (var f in SweepSummary.Figures)
            {
                double v = SweepSummary.Figure(r.Summary, f);
                page.Append("<td>").Append(double.IsNaN(v) ? "" : v.ToString("F4", CultureInfo.InvariantCulture)).Append("</td>");
            }
            page.Append("</tr>");
        }
        page.Append("</table>\n");
    }

    private static void AddTable(StringBuilder page, string title, CsvTable table)
    {
        page.Append("<h2>").Append(Html(title)).Append("</h2>\n<table><tr>");
        foreach (var c in table.Columns)
            page.Append("<th>").Append(Html(c)).Append("</th>");
        page.Append("</tr>");
        foreach (var row in table.Rows)
        {
            page.Append("<tr>");
            foreach (var c in table.Columns)
            {
                string cell = row.GetValueOrDefault(c) switch
                {
                    double d => d.ToString("G5", CultureInfo.InvariantCulture),
                    string s => s,
                    _ => "",
                };
                page.Append("<td>").Append(Html(cell)).Append("</td>");
            }
            page.Append("</tr>");
        }
        page.Append("</table>\n");
    }

    internal sealed record CsvTable(List<string> Columns, List<Dictionary<string, object?>> Rows);

    /// <summary>
    /// A CSV with a header; cells that parse as numbers are doubles, empty cells null, others
    /// strings. Quoted cells are supported. What lnlab wrote is checked, and a malformed file is a
    /// <see cref="DataException"/> naming it and the problem: an empty or duplicated column name, a
    /// row with more cells than the header; for metrics.csv also a header that is not
    /// metrics.csv's, a row with fewer cells, or a cell that is not a number.
    /// </summary>
    internal static CsvTable ReadCsv(string path)
    {
        bool metrics = Path.GetFileName(path) == RunDirectory.MetricsFile;
        List<string> lines;
        try
        {
            if (Data.DataFiles.NonRegularKind(path) is { } kind)
                throw new DataException(path, $"is not a regular file ({kind}); expected a CSV file");
            lines = File.ReadAllLines(path).Where(l => l.Length > 0).ToList();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new DataException(path, $"cannot be read ({e.Message})");
        }
        if (lines.Count == 0)
        {
            if (metrics)
                throw new DataException(path, $"empty; expected a header starting {string.Join(",", MetricsWriter.StandardColumns.Take(2))}");
            return new CsvTable([], []);
        }
        var columns = SplitCsv(lines[0]);
        for (int i = 0; i < columns.Count; i++)
        {
            if (columns[i].Trim().Length == 0)
                throw new DataException(path, $"header: column {i + 1} has no name");
            if (columns.IndexOf(columns[i]) != i)
                throw new DataException(path, $"header: column '{Shorten(columns[i])}' appears twice");
        }
        if (metrics && !columns.Take(MetricsWriter.StandardColumns.Count).SequenceEqual(MetricsWriter.StandardColumns))
            throw new DataException(path, $"header '{Shorten(lines[0])}' is not metrics.csv's; expected {string.Join(",", MetricsWriter.StandardColumns)} and any extra columns");
        var rows = new List<Dictionary<string, object?>>(lines.Count - 1);
        int lineNumber = 1;
        foreach (var line in lines.Skip(1))
        {
            lineNumber++;
            var cells = SplitCsv(line);
            if (cells.Count > columns.Count || (metrics && cells.Count != columns.Count))
                throw new DataException(path, $"data line {lineNumber} has {cells.Count} cells; the header has {columns.Count}");
            var row = new Dictionary<string, object?>(columns.Count);
            for (int i = 0; i < columns.Count; i++)
            {
                string cell = i < cells.Count ? cells[i] : "";
                object? value = cell.Length == 0 ? null
                    : double.TryParse(cell, NumberStyles.Float, CultureInfo.InvariantCulture, out double d) ? d
                    : cell is "inf" or "-inf" or "nan" or "NaN" ? null
                    : cell;
                if (metrics && value is string && i < MetricsWriter.StandardColumns.Count) // extra columns may name things (a preset's run column)
                    throw new DataException(path, $"data line {lineNumber}, column '{columns[i]}': '{Shorten(cell)}' is not a number");
                row[columns[i]] = value;
            }
            rows.Add(row);
        }
        return new CsvTable(columns, rows);
    }

    /// <summary>Text from a file as quoted in a message: at most 60 characters.</summary>
    private static string Shorten(string text) => text.Length <= 60 ? text : text[..57] + "...";

    private static List<string> SplitCsv(string line)
    {
        var cells = new List<string>();
        var cell = new StringBuilder();
        bool quoted = false;
        for (int i = 0; i < line.Length; i++)
        {
            char c = line[i];
            if (quoted)
            {
                if (c == '"' && i + 1 < line.Length && line[i + 1] == '"')
                {
                    cell.Append('"');
                    i++;
                }
                else if (c == '"')
                {
                    quoted = false;
                }
                else
                {
                    cell.Append(c);
                }
            }
            else if (c == '"')
            {
                quoted = true;
            }
            else if (c == ',')
            {
                cells.Add(cell.ToString());
                cell.Clear();
            }
            else
            {
                cell.Append(c);
            }
        }
        cells.Add(cell.ToString().TrimEnd('\r'));
        return cells;
    }

    private static string Asset(string name)
    {
        using var stream = typeof(HtmlReport).Assembly.GetManifestResourceStream("LabelNoiseLab.Reports." + name)
            ?? throw new InvalidOperationException($"{name} is not embedded in LabelNoiseLab.dll");
        using var reader = new StreamReader(stream);
        return reader.ReadToEnd();
    }

    private static string Html(string s) => WebUtility.HtmlEncode(s);

    /// <summary>A column name as a Vega-Lite field: dots and brackets would mean nested access, so they are escaped.</summary>
    private static string Field(string column) =>
        column.Replace("\\", "\\\\", StringComparison.Ordinal).Replace(".", "\\.", StringComparison.Ordinal)
            .Replace("[", "\\[", StringComparison.Ordinal).Replace("]", "\\]", StringComparison.Ordinal);
}
